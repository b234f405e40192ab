"""Endpoints of the LLM tutor: hints, explanations (JSON or server-sent events), item drafts and their review,
feedback on explanations, teacher goals, reward model versions. Each parses, checks access, calls one service,
renders."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

from django.http import HttpRequest, StreamingHttpResponse
from ninja import Field, Router, Schema
from ninja.responses import Status

from curriculum.models import Item
from learners.errors import Forbidden, InvalidInput, NotFound
from learners.models import Learner, User
from learners.selectors import learner_visible
from tutor.llm.prompts import LEVELS
from tutor.services import explanations, feedback, goals, items

router = Router(tags=["tutor"])


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


# ---------------------------------------------------------------------------------------------------------------
# Explanations and hints


class ExplanationBrief(Schema):
    """The explanation object in the result of a wrong answer."""

    id: int
    text: str
    source: str
    cached: bool
    level: str
    style: str
    misconception: str
    stream_url: str | None = None


class ExplanationOut(Schema):
    id: int
    item_id: int
    kind: str
    text: str
    source: str = Field(..., description="model or template")
    cached: bool
    misconception: str
    diagnosis: str
    level: str
    style: str
    backend_version: str
    checks_passed: bool
    stream_url: str | None = Field(None, description="POST here to stream a fresh model explanation (SSE)")


@router.get("/items/{item_id}/hint", response=ExplanationOut)
def item_hint(request: HttpRequest, item_id: int, level: str | None = None) -> dict[str, Any]:
    """A hint before any attempt; it never states the answer. Learners get their level from their mastery."""
    user = _user(request)
    item = Item.objects.filter(pk=item_id).first()
    if item is None:
        raise NotFound("item_id", f"no item with id {item_id}")
    learner = Learner.objects.filter(user=user).first()
    if level is not None:
        if level not in LEVELS:
            raise InvalidInput("level", f"must be one of {', '.join(LEVELS)}")
        if user.role == User.Role.LEARNER:
            raise Forbidden("level", "a learner's level comes from their mastery")
    else:
        level = explanations.hint_level(learner=learner, item=item)
    return explanations.hint_for_item(item=item, level=level)


def _sse(events: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    for event in events:
        name = event.get("event", "message")
        body = {k: v for k, v in event.items() if k != "event"}
        yield f"event: {name}\ndata: {json.dumps(body, default=str)}\n\n".encode()


@router.post("/attempts/{attempt_id}/explanation", response=ExplanationOut)
def attempt_explanation(request: HttpRequest, attempt_id: int, stream: bool = False) -> Any:
    """Explain a wrong answer at the learner's level. A cached explanation comes at once; otherwise the template
    explanation, and with `?stream=1` a fresh one as server-sent events (`start`, `delta` per line of checked
    text, `done` with the stored record). Visible to the learner and their teachers."""
    attempt = explanations.attempt_for_explanation(user=_user(request), attempt_id=attempt_id)
    if not stream:
        return explanations.explanation_for_attempt(attempt=attempt)
    response = StreamingHttpResponse(
        _sse(explanations.explanation_events(attempt=attempt)), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass events through as they come
    return response


# ---------------------------------------------------------------------------------------------------------------
# Feedback and reward models


class FeedbackIn(Schema):
    helpful: bool | None = Field(None, description="learners: did the explanation help?")
    rating: int | None = Field(None, ge=1, le=5, description="teachers: 1 (bad) to 5 (excellent)")
    corrected_text: str | None = Field(None, max_length=2000, description="teachers: a better explanation")


class FeedbackOut(Schema):
    id: int
    explanation_id: int
    role: str
    helpful: bool | None
    rating: int | None
    corrected_text: str


@router.post("/explanations/{explanation_id}/feedback", response={200: FeedbackOut, 201: FeedbackOut})
def explanation_feedback(request: HttpRequest, explanation_id: int, payload: FeedbackIn) -> Status[Any]:
    outcome = feedback.feedback_give(
        user=_user(request),
        explanation_id=explanation_id,
        helpful=payload.helpful,
        rating=payload.rating,
        corrected_text=payload.corrected_text,
    )
    return Status(201 if outcome.created else 200, outcome.feedback)


class RewardModelOut(Schema):
    id: int
    name: str
    trained_through_feedback_id: int
    trained_through_attempt_id: int
    n_train: int
    n_test: int
    auc: float | None
    metrics: dict[str, Any]
    active: bool


class TaskOut(Schema):
    task_id: str
    state: str


def _require_admin(user: User) -> None:
    if user.role != User.Role.ADMIN and not user.is_superuser:
        raise Forbidden("role", "only admins may manage reward models")


@router.get("/reward-models", response=list[RewardModelOut], tags=["operations"])
def reward_models(request: HttpRequest) -> Any:
    from tutor.models import RewardModelVersion

    _require_admin(_user(request))
    return RewardModelVersion.objects.order_by("-id")


@router.post("/reward-models/train", response={202: TaskOut}, tags=["operations"])
def reward_model_train(request: HttpRequest) -> Status[dict[str, Any]]:
    """Queue a training run on the `llm` queue; poll `/tasks/{task_id}`."""
    from django.db import transaction

    from tasks.llm import train_reward_model

    _require_admin(_user(request))
    task_id = str(uuid.uuid4())
    transaction.on_commit(lambda: train_reward_model.apply_async(task_id=task_id))
    return Status(202, {"task_id": task_id, "state": "PENDING"})


# ---------------------------------------------------------------------------------------------------------------
# Item drafts


class DraftRequestIn(Schema):
    skill: str = Field(..., min_length=1, max_length=64, description="skill code")
    count: int = Field(..., ge=1, le=items.MAX_DRAFTS_PER_REQUEST)


class DraftRequestOut(Schema):
    id: int
    skill: str
    count: int
    done: int
    passed: int
    failed: int
    reasons: dict[str, int]
    status: str
    backend_version: str


def _request_out(req: Any) -> dict[str, Any]:
    return {
        "id": req.pk,
        "skill": req.skill.code,
        "count": req.count,
        "done": req.next_index,
        "passed": req.n_passed,
        "failed": req.n_failed,
        "reasons": req.reasons,
        "status": req.status,
        "backend_version": req.backend_version,
    }


class DraftOut(Schema):
    id: int
    code: str
    status: str
    source: str
    skills: list[str]
    prompt: str
    answer: dict[str, Any]
    solution: str
    difficulty: float
    template: str | None
    checks: dict[str, Any] | None


def _item_out(item: Item) -> dict[str, Any]:
    origin = getattr(item, "origin", None) if item.source == Item.Source.GENERATED else None
    return {
        "id": item.pk,
        "code": item.code,
        "status": item.status,
        "source": item.source,
        "skills": sorted(s.code for s in item.skills.all()),
        "prompt": item.prompt,
        "answer": item.answer,
        "solution": item.solution,
        "difficulty": item.difficulty,
        "template": origin.template if origin is not None else None,
        "checks": origin.checks if origin is not None else None,
    }


@router.post("/items/drafts", response={202: DraftRequestOut})
def drafts_request(request: HttpRequest, payload: DraftRequestIn) -> Status[dict[str, Any]]:
    """Queue the generation of `count` word-problem drafts for a skill (teachers and admins)."""
    req = items.draft_request_create(user=_user(request), skill_code=payload.skill, count=payload.count)
    req.refresh_from_db()  # an eager task (tests, demos) may already have advanced it
    return Status(202, _request_out(req))


@router.get("/items/drafts", response=list[DraftOut])
def drafts(
    request: HttpRequest, status: str | None = "draft", skill: str | None = None
) -> list[dict[str, Any]]:
    return [
        _item_out(i) for i in items.drafts_list(user=_user(request), status=status or None, skill_code=skill)
    ]


@router.get("/items/drafts/requests/{request_id}", response=DraftRequestOut)
def draft_request(request: HttpRequest, request_id: int) -> dict[str, Any]:
    return _request_out(items.draft_request_get(user=_user(request), request_id=request_id))


@router.post("/items/{item_id}/approve", response=DraftOut)
def item_approve(request: HttpRequest, item_id: int) -> dict[str, Any]:
    return _item_out(items.item_review(user=_user(request), item_id=item_id, approve=True))


@router.post("/items/{item_id}/reject", response=DraftOut)
def item_reject(request: HttpRequest, item_id: int) -> dict[str, Any]:
    return _item_out(items.item_review(user=_user(request), item_id=item_id, approve=False))


class ItemPatch(Schema):
    prompt: str | None = Field(None, max_length=5000)
    solution: str | None = Field(None, max_length=10000)
    answer: dict[str, Any] | None = None


@router.patch("/items/{item_id}", response=DraftOut)
def item_patch(request: HttpRequest, item_id: int, payload: ItemPatch) -> dict[str, Any]:
    """Edit an item's wording; a generated item's answer key stays its template's."""
    item = items.item_edit(
        user=_user(request),
        item_id=item_id,
        prompt=payload.prompt,
        solution=payload.solution,
        answer=payload.answer,
    )
    return _item_out(item)


# ---------------------------------------------------------------------------------------------------------------
# Goals


class GoalIn(Schema):
    text: str = Field(
        ..., min_length=1, max_length=goals.MAX_GOAL_CHARS, description='e.g. "fractions by Friday"'
    )


class GoalConfirmIn(Schema):
    skills: list[str] | None = Field(None, description="skill codes replacing the proposed targets")
    due: date | None = None


class GoalOut(Schema):
    id: int
    text: str
    classroom_id: int | None
    learner_id: int | None
    status: str
    targets: list[str]
    due: date | None
    due_text: str | None
    method: str | None
    scores: dict[str, float]
    rejected_codes: list[str]


@router.post("/classrooms/{classroom_id}/goals", response={201: GoalOut})
def classroom_goal(request: HttpRequest, classroom_id: int, payload: GoalIn) -> Status[dict[str, Any]]:
    """Map a goal for the whole class to target skills and a date; confirm it to steer the scheduler."""
    goal = goals.goal_propose(user=_user(request), text=payload.text, classroom_id=classroom_id)
    return Status(201, goals.goal_out(goal))


@router.post("/learners/{learner_id}/goals", response={201: GoalOut})
def learner_goal(request: HttpRequest, learner_id: int, payload: GoalIn) -> Status[dict[str, Any]]:
    goal = goals.goal_propose(user=_user(request), text=payload.text, learner_id=learner_id)
    return Status(201, goals.goal_out(goal))


@router.get("/classrooms/{classroom_id}/goals", response=list[GoalOut])
def classroom_goals(request: HttpRequest, classroom_id: int) -> list[dict[str, Any]]:
    return [goals.goal_out(g) for g in goals.goals_list(user=_user(request), classroom_id=classroom_id)]


@router.get("/learners/{learner_id}/goals", response=list[GoalOut])
def learner_goals(request: HttpRequest, learner_id: int) -> list[dict[str, Any]]:
    learner_visible(user=_user(request), learner_id=learner_id)
    return [goals.goal_out(g) for g in goals.goals_list(user=_user(request), learner_id=learner_id)]


@router.post("/goals/{goal_id}/confirm", response=GoalOut)
def goal_confirm(request: HttpRequest, goal_id: int, payload: GoalConfirmIn | None = None) -> dict[str, Any]:
    """Confirm the proposed mapping, or send `skills` (and `due`) to confirm your own."""
    goal = goals.goal_confirm(
        user=_user(request),
        goal_id=goal_id,
        skills=payload.skills if payload is not None else None,
        due=payload.due if payload is not None else None,
    )
    return goals.goal_out(goal)
