"""Reads that only the pages need. Access rules stay in `learners.selectors`; these functions take objects that
have already passed them."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet

from curriculum.models import Skill
from learners.errors import Forbidden
from learners.models import Attempt, Classroom, Learner, User
from tutor.models import Decision

# The learner detail page reads at most this many of the latest answers: a chart of thousands of points tells
# nothing more and would make the page slow.
HISTORY_LIMIT = 1000


def learner_of_user(*, user: User) -> Learner:
    """The learner record of a logged-in learner; teachers and admins have none to practise with."""
    learner = Learner.objects.filter(user=user).first() if user.role == User.Role.LEARNER else None
    if learner is None:
        raise Forbidden("role", "this page is for learners")
    return learner


def decision_of(*, learner: Learner, decision_id: int) -> Decision | None:
    """A decision served to this learner, with its item, to show the question again after a refused answer."""
    return Decision.objects.select_related("item").filter(pk=decision_id, learner=learner).first()


def classrooms_for(*, user: User) -> QuerySet[Classroom]:
    """The classes a teacher teaches (all of them for an admin), with their number of learners."""
    rooms = Classroom.objects.all() if user.role == User.Role.ADMIN else user.classrooms_taught.all()
    return rooms.annotate(n_learners=Count("learners", distinct=True)).order_by("name")


def mastery_history(*, learner: Learner, limit: int = HISTORY_LIMIT) -> dict[str, Any]:
    """P(mastery) of each practised skill after each answer, as the attempt log stored it (`Attempt.result`).

    The stored values are what the learner was shown at the time, with the tracer version active then; a later
    refit does not rewrite history. Points are `[n, p]` with n the answer's position in the learner's whole log.
    """
    total = Attempt.objects.filter(learner=learner).count()
    rows = list(
        Attempt.objects.filter(learner=learner).order_by("-id").values_list("result", flat=True)[:limit]
    )
    rows.reverse()
    first = total - len(rows) + 1
    series: dict[int, dict[str, Any]] = {}
    for n, result in enumerate(rows, start=first):
        for m in (result or {}).get("mastery", []):
            s = series.setdefault(
                int(m["skill_id"]), {"skill_id": int(m["skill_id"]), "skill": m["skill"], "points": []}
            )
            s["points"].append([n, float(m["p_mastery"])])
    names = dict(Skill.objects.filter(pk__in=series).values_list("pk", "name"))
    for skill_id, s in series.items():
        s["name"] = names.get(skill_id, s["skill"])
    return {
        "n_attempts": total,
        "shown": len(rows),
        "truncated": total > len(rows),
        "skills": [series[k] for k in sorted(series)],
    }
