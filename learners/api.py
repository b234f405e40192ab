"""Learner-facing and teacher-facing endpoints; each parses, checks access, calls one service, renders."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from ninja import Field, Router, Schema
from ninja.responses import Status

from curriculum.selectors import ItemInfo, curriculum_snapshot
from learners import selectors, services
from learners.models import User
from tutor.llm_api import ExplanationBrief

router = Router(tags=["learners"])


class MeOut(Schema):
    user_id: int
    username: str
    role: str
    learner_id: int | None
    classroom_ids: list[int]


class NextOut(Schema):
    decision_id: int
    item_id: int
    code: str
    prompt: str
    answer_type: str
    choices: list[str]
    skills: list[str]
    policy: str
    propensity: float


class AttemptIn(Schema):
    item: int = Field(..., description="id of the item answered")
    response: str = Field(..., max_length=2000)
    client_attempt_id: str = Field(..., min_length=1, max_length=64, description="idempotency key chosen by the client")
    decision_id: int | None = None
    time_taken_ms: int | None = Field(None, ge=0, le=86_400_000)


class SkillMasteryOut(Schema):
    skill_id: int
    skill: str
    p_mastery: float


class FeedbackOut(Schema):
    message: str
    correct_answer: str | None = None
    solution: str | None = None
    explanation: ExplanationBrief | None = None  # wrong answers: cached or template text, and where to stream more


class AttemptOut(Schema):
    attempt_id: int
    item: int
    correct: bool
    feedback: FeedbackOut
    mastery: list[SkillMasteryOut]


class MasteryRow(Schema):
    skill_id: int
    skill: str
    name: str
    p_mastery: float
    n_attempts: int
    n_correct: int


class MasteryOut(Schema):
    learner_id: int
    skills: list[MasteryRow]


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


@router.get("/me", response=MeOut)
def me(request: HttpRequest) -> dict[str, Any]:
    return services.user_describe(user=_user(request))


@router.post("/learners/{learner_id}/next", response=NextOut)
def next_item(request: HttpRequest, learner_id: int) -> dict[str, Any]:
    from tutor.services.goals import goal_targets_for_learner
    from tutor.services.scheduling import decision_next

    learner = selectors.learner_actable(user=_user(request), learner_id=learner_id)
    targets = goal_targets_for_learner(learner_id=learner.pk)
    decision = decision_next(learner_id=learner.pk, targets=targets, learner=learner)
    snapshot = curriculum_snapshot()  # the one the decision was made on (cached): no query for the item
    info = snapshot.items_by_id.get(decision.item_id)
    if info is not None:
        skills = [snapshot.skill_codes[s] for s in info.skills]
    else:  # the curriculum changed in between: read the item itself
        item = decision.item
        skills = list(item.skills.order_by("id").values_list("code", flat=True))
        answer = item.answer
        info = ItemInfo(item.pk, item.code, (), item.difficulty, item.prompt, answer.get("type", ""),
                        tuple(answer.get("choices", ())))  # fmt: skip
    return {
        "decision_id": decision.pk,
        "item_id": info.id,
        "code": info.code,
        "prompt": info.prompt,
        "answer_type": info.answer_type,
        "choices": list(info.choices),
        "skills": skills,
        "policy": decision.policy_name,
        "propensity": decision.propensity,
    }


@router.post("/learners/{learner_id}/attempts", response={200: AttemptOut, 201: AttemptOut})
def submit_attempt(request: HttpRequest, learner_id: int, payload: AttemptIn) -> Status[dict[str, Any]]:
    learner = selectors.learner_actable(user=_user(request), learner_id=learner_id)
    outcome = services.attempt_record(
        learner_id=learner.pk,
        item_id=payload.item,
        response=payload.response,
        client_attempt_id=payload.client_attempt_id,
        decision_id=payload.decision_id,
        time_taken_ms=payload.time_taken_ms,
    )
    return Status(201 if outcome.created else 200, outcome.result)


@router.get("/learners/{learner_id}/mastery", response=MasteryOut)
def learner_mastery(request: HttpRequest, learner_id: int) -> dict[str, Any]:
    learner = selectors.learner_visible(user=_user(request), learner_id=learner_id)
    return {"learner_id": learner.pk, "skills": selectors.learner_mastery(learner=learner)}


@router.get("/classrooms/{classroom_id}/mastery")
def classroom_mastery(request: HttpRequest, classroom_id: int) -> dict[str, Any]:
    room = selectors.classroom_visible(user=_user(request), classroom_id=classroom_id)
    return selectors.classroom_mastery(classroom=room, threshold=settings.TUTOR_MASTERY_THRESHOLD)


class TracerVersionOut(Schema):
    id: int
    name: str
    trained_through_attempt_id: int
    n_attempts: int
    metrics: dict[str, Any]
    active: bool


class RefitIn(Schema):
    tracer: str | None = Field(None, description="registered tracer name; default: the configured one")
    through_attempt_id: int | None = Field(None, ge=0)


class TaskOut(Schema):
    task_id: str
    state: str
    info: dict[str, Any] | None = None


def _require_admin(request: HttpRequest) -> User:
    from learners.errors import Forbidden

    user = _user(request)
    if user.role != User.Role.ADMIN and not user.is_superuser:
        raise Forbidden("role", "only admins may manage tracer versions and tasks")
    return user


@router.get("/tracers", response=list[TracerVersionOut], tags=["operations"])
def tracer_versions(request: HttpRequest) -> Any:
    from learners.models import TracerVersion

    _require_admin(request)
    return TracerVersion.objects.order_by("-id")


@router.post("/tracers/refit", response={202: TaskOut}, tags=["operations"])
def tracer_refit_enqueue(request: HttpRequest, payload: RefitIn) -> Status[dict[str, Any]]:
    """Queue a refit on the training queue; poll `/tasks/{task_id}` for its progress."""
    from learners.errors import InvalidInput
    from learners.tracing.registry import TRACERS
    from tasks.tracing import refit_tracer

    _require_admin(request)
    if payload.tracer is not None and payload.tracer not in TRACERS:
        raise InvalidInput("tracer", f"unknown tracer {payload.tracer!r}; known: {', '.join(sorted(TRACERS))}")
    task_id = str(uuid.uuid4())
    kwargs = {"name": payload.tracer, "through_attempt_id": payload.through_attempt_id}
    transaction.on_commit(lambda: refit_tracer.apply_async(kwargs=kwargs, task_id=task_id))
    return Status(202, {"task_id": task_id, "state": "PENDING"})


@router.post("/tracers/{version_id}/activate", response=TracerVersionOut, tags=["operations"])
def tracer_version_activate(request: HttpRequest, version_id: int) -> Any:
    _require_admin(request)
    return services.tracer_activate(version_id=version_id)


@router.get("/tasks/{task_id}", response=TaskOut, tags=["operations"])
def task_status(request: HttpRequest, task_id: str) -> dict[str, Any]:
    from celery.result import AsyncResult

    _require_admin(request)
    result: AsyncResult[Any] = AsyncResult(task_id)
    info = result.info
    if isinstance(info, BaseException):
        info = {"error": repr(info)}
    return {"task_id": task_id, "state": result.state, "info": info if isinstance(info, dict) else None}
