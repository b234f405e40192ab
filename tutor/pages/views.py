"""Pages for learners and teachers. Each view parses, checks access with the selectors, calls one service and
renders; the htmx endpoints answer with a fragment for htmx and a whole page for a plain form post, so the pages
work without JavaScript too."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from learners.errors import Forbidden, InvalidInput, NotFound, ServiceError
from learners.models import Learner, User
from learners.selectors import classroom_mastery, classroom_visible, learner_mastery, learner_visible
from learners.services import attempt_record
from tutor.models import Decision
from tutor.pages import present
from tutor.pages.forms import AnswerForm
from tutor.pages.selectors import classrooms_for, decision_of, learner_of_user, mastery_history
from tutor.services.scheduling import decision_next

View = Callable[..., HttpResponse]
TEACHING_ROLES = (User.Role.TEACHER, User.Role.ADMIN)


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def page(*roles: str) -> Callable[[View], View]:
    """Login and role gate, and service errors as 404/403 pages.

    An htmx request from an expired session gets 401 with `HX-Redirect`: following the usual 302 inside the
    XMLHttpRequest would swap the login page into the question panel.
    """

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                if _is_htmx(request):
                    back = urlsplit(request.headers.get("HX-Current-URL", "")).path or "/"
                    response = HttpResponse(status=401)
                    response["HX-Redirect"] = redirect_to_login(back)["Location"]
                    return response
                return redirect_to_login(request.get_full_path())
            if roles and _user(request).role not in roles:
                raise PermissionDenied("This page is not for your role.")
            try:
                return view(request, *args, **kwargs)
            except NotFound as exc:
                raise Http404(exc.message) from None
            except Forbidden as exc:
                raise PermissionDenied(exc.message) from None

        return wrapper

    return decorate


@require_GET
@page()
def home(request: HttpRequest) -> HttpResponse:
    return redirect("pages:learn" if _user(request).role == User.Role.LEARNER else "pages:teach")


# ---------------------------------------------------------------------------------------------------------------
# Learners


def _exercise(
    decision: Decision, *, response: str = "", error: str | None = None, key: str | None = None
) -> dict[str, Any]:
    item = decision.item
    return present.exercise(
        item_id=item.pk,
        prompt=item.prompt,
        answer=item.answer,
        skills=list(item.skills.order_by("id").values_list("name", flat=True)),
        decision_id=decision.pk,
        # A fresh key per rendered question; a refused answer keeps its key (nothing was stored under it).
        client_attempt_id=key or uuid.uuid4().hex,
        response=response,
        error=error,
    )


def _mastery(learner: Learner) -> list[dict[str, Any]]:
    return present.mastery_bars(learner_mastery(learner=learner), threshold=settings.TUTOR_MASTERY_THRESHOLD)


def _learn(
    request: HttpRequest, learner: Learner, panel: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    """The panel alone for htmx (with the mastery overview swapped out of band after an answer), else the page."""
    if _is_htmx(request):
        return render(request, "pages/_panel.html", panel, status=status)
    return render(request, "pages/learn.html", {**panel, "mastery": _mastery(learner)}, status=status)


def _next(request: HttpRequest) -> HttpResponse:
    learner = learner_of_user(user=_user(request))
    try:
        decision = decision_next(learner_id=learner.pk)
    except InvalidInput as exc:
        return _learn(request, learner, {"problem": exc.message}, status=exc.status)
    return _learn(request, learner, {"exercise": _exercise(decision)})


@never_cache  # a question page carries a one-time key and decision: never from a cache
@require_GET
@page(User.Role.LEARNER)
def learn(request: HttpRequest) -> HttpResponse:
    """The page with the next question; each visit logs a new scheduling decision, as `POST .../next` does."""
    return _next(request)


@never_cache
@require_POST
@page(User.Role.LEARNER)
def learn_next(request: HttpRequest) -> HttpResponse:
    """The "Next question" button: a new decision into the panel; without htmx, back to the page (303)."""
    if not _is_htmx(request):
        return HttpResponseRedirect(reverse("pages:learn"), status=303)
    return _next(request)


def _refused(
    request: HttpRequest,
    learner: Learner,
    *,
    decision_id: int | None,
    response: str,
    key: str | None,
    error: str,
    status: int,
) -> HttpResponse:
    """The same question again with the reason, and the same key (nothing was stored under it); a problem panel
    when the question itself cannot be shown (unknown or someone else's decision)."""
    decision = decision_of(learner=learner, decision_id=decision_id) if decision_id else None
    if decision is None:
        return _learn(request, learner, {"problem": error}, status=status)
    panel = {"exercise": _exercise(decision, response=response, error=error, key=key)}
    return _learn(request, learner, panel, status=status)


@never_cache
@require_POST
@page(User.Role.LEARNER)
def learn_answer(request: HttpRequest) -> HttpResponse:
    learner = learner_of_user(user=_user(request))
    form = AnswerForm(request.POST)
    if not form.is_valid():
        got = form.cleaned_data
        error = "; ".join(str(e) for errors in form.errors.values() for e in errors)
        return _refused(
            request,
            learner,
            decision_id=got.get("decision"),
            key=got.get("client_attempt_id"),
            response=request.POST.get("response", ""),
            error=error,
            status=422,
        )
    data = form.cleaned_data
    try:
        outcome = attempt_record(
            learner_id=learner.pk,
            item_id=data["item"],
            response=data["response"],
            client_attempt_id=data["client_attempt_id"],
            decision_id=data["decision"],
            time_taken_ms=data["time_taken_ms"],
        )
    except ServiceError as exc:
        # A malformed answer (field "response") is the learner's to fix: 422 with the question; anything else
        # (a decision that is not theirs, a key reused for another answer) is shown as a problem panel.
        fixable = exc.field == "response"
        return _refused(
            request,
            learner,
            decision_id=data["decision"] if fixable else None,
            key=data["client_attempt_id"],
            response=data["response"],
            error=exc.message,
            status=422 if fixable else exc.status,
        )
    mastery = _mastery(learner)
    panel = {
        "feedback": present.feedback(outcome.result, names={m["skill_id"]: m["name"] for m in mastery}),
        "response": data["response"],
        "mastery": mastery,
    }
    if _is_htmx(request):
        return render(request, "pages/_panel.html", {**panel, "mastery_oob": True})
    return render(request, "pages/learn.html", panel)


# ---------------------------------------------------------------------------------------------------------------
# Teachers


@require_GET
@page(*TEACHING_ROLES)
def teach(request: HttpRequest) -> HttpResponse:
    return render(request, "pages/teach.html", {"classrooms": classrooms_for(user=_user(request))})


@require_GET
@page(*TEACHING_ROLES)
def teach_classroom(request: HttpRequest, classroom_id: int) -> HttpResponse:
    room = classroom_visible(user=_user(request), classroom_id=classroom_id)
    report = classroom_mastery(classroom=room, threshold=settings.TUTOR_MASTERY_THRESHOLD)
    return render(
        request, "pages/classroom.html", {"classroom": room, "grid": present.classroom_grid(report)}
    )


@require_GET
@page(*TEACHING_ROLES)
def teach_learner(request: HttpRequest, learner_id: int) -> HttpResponse:
    learner = learner_visible(user=_user(request), learner_id=learner_id)
    history = mastery_history(learner=learner)
    threshold = settings.TUTOR_MASTERY_THRESHOLD
    context = {
        "learner": learner,
        "history": history,
        "charts": present.history_charts(history, threshold=threshold),
        "mastery": present.mastery_bars(learner_mastery(learner=learner), threshold=threshold),
    }
    return render(request, "pages/learner.html", context)
