"""Teacher goals in plain language: proposed by `tutor.llm.goals.GoalMapper`, confirmed by the teacher, read by
the scheduler.

The mapping runs on the request path, so it uses the model only when the backend is fast (the template backend,
or a server marked fast); otherwise embedding similarity alone proposes the skills, and the teacher confirms or
changes them either way. Only confirmed goals whose date has not passed steer the scheduler
(`goal_targets_for_learner`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import transaction
from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from curriculum.models import Skill
from learners.errors import Forbidden, InvalidInput, NotFound
from learners.models import Classroom, Learner, User
from learners.selectors import classroom_visible, learner_visible
from tutor.caching import TTLCache
from tutor.llm.embed import get_embedder
from tutor.llm.goals import GoalMapper
from tutor.models import Goal
from tutor.services.llm import llm_backend, llm_embedder_name, llm_timeout

MAX_GOAL_CHARS = 500

_lock = threading.Lock()
_mapper: tuple[tuple[Any, ...], GoalMapper] | None = None


def goal_mapper() -> GoalMapper:
    """One mapper per curriculum version, embedder and backend (it embeds every skill description once)."""
    global _mapper
    agg = Skill.objects.aggregate(n=Count("id"), t=Max("updated_at"))
    backend = llm_backend()
    usable = backend if backend is not None and backend.fast else None
    key = (agg["n"], agg["t"], llm_embedder_name(), usable.version if usable is not None else None)
    cached = _mapper
    if cached is not None and cached[0] == key:
        return cached[1]
    skills = {s.code: f"{s.name}. {s.description}".strip() for s in Skill.objects.order_by("id")}
    if not skills:
        raise InvalidInput("curriculum", "no skills to map goals to; import a curriculum first")
    mapper = GoalMapper(
        skills, embedder=get_embedder(llm_embedder_name() or None), backend=usable, timeout=llm_timeout()
    )
    with _lock:
        _mapper = (key, mapper)
    return mapper


def _require_teacher(user: User) -> None:
    if user.role not in (User.Role.TEACHER, User.Role.ADMIN) and not user.is_superuser:
        raise Forbidden("role", "only teachers and admins may set goals")


def goal_propose(
    *,
    user: User,
    text: str,
    classroom_id: int | None = None,
    learner_id: int | None = None,
    today: date | None = None,
) -> Goal:
    """Map a goal to target skills and a date and store it as a proposal for the teacher to confirm."""
    _require_teacher(user)
    if (classroom_id is None) == (learner_id is None):
        raise InvalidInput("goal", "a goal is for one classroom or one learner")
    classroom = classroom_visible(user=user, classroom_id=classroom_id) if classroom_id is not None else None
    learner = learner_visible(user=user, learner_id=learner_id) if learner_id is not None else None
    text = " ".join(text.split())
    if not text:
        raise InvalidInput("text", "must not be empty")
    if len(text) > MAX_GOAL_CHARS:
        raise InvalidInput("text", f"at most {MAX_GOAL_CHARS} characters")
    mapping = goal_mapper().map(text, today=today or timezone.localdate())
    targets = list(Skill.objects.filter(code__in=mapping.targets))
    with transaction.atomic():
        goal = Goal.objects.create(
            text=text,
            classroom=classroom,
            learner=learner,
            due=mapping.due,
            due_text=(mapping.due_text or "")[:100],
            mapping=mapping.as_dict(),
            created_by=user,
        )
        goal.targets.set(targets)
    return goal


def _goal_visible(*, user: User, goal_id: int) -> Goal:
    goal = Goal.objects.filter(pk=goal_id).first()
    if goal is None:
        raise NotFound("goal_id", f"no goal with id {goal_id}")
    _require_teacher(user)
    try:
        if goal.classroom_id is not None:
            classroom_visible(user=user, classroom_id=goal.classroom_id)
        elif goal.learner_id is not None:
            learner_visible(user=user, learner_id=goal.learner_id)
    except NotFound:
        raise NotFound("goal_id", f"no goal with id {goal_id}") from None
    return goal


def goal_confirm(
    *, user: User, goal_id: int, skills: list[str] | None = None, due: date | None = None
) -> Goal:
    """Confirm a goal, optionally with the teacher's own choice of skills or date; confirming again updates it."""
    goal = _goal_visible(user=user, goal_id=goal_id)
    with transaction.atomic():
        if skills is not None:
            codes = list(dict.fromkeys(skills))
            found = {s.code: s for s in Skill.objects.filter(code__in=codes)}
            unknown = [c for c in codes if c not in found]
            if unknown:
                raise InvalidInput("skills", f"unknown skill codes: {', '.join(unknown)}")
            if not codes:
                raise InvalidInput("skills", "a goal needs at least one target skill")
            goal.targets.set([found[c] for c in codes])
        elif not goal.targets.exists():
            raise InvalidInput("skills", "the mapping found no skill: name the target skills to confirm")
        if due is not None:
            goal.due = due
        goal.status = Goal.Status.CONFIRMED
        goal.confirmed_by = user
        goal.confirmed_at = timezone.now()
        goal.save()
        goals_changed()
    return goal


def goals_list(
    *, user: User, classroom_id: int | None = None, learner_id: int | None = None
) -> QuerySet[Goal]:
    _require_teacher(user)
    if classroom_id is not None:
        room = classroom_visible(user=user, classroom_id=classroom_id)
        qs = Goal.objects.filter(classroom=room)
    else:
        assert learner_id is not None
        learner = learner_visible(user=user, learner_id=learner_id)
        qs = Goal.objects.filter(learner=learner)
    return qs.prefetch_related("targets").order_by("-id")


@dataclass(frozen=True)
class _LiveGoals:
    """The target skills of the confirmed goals that count on `day`, by learner and by classroom."""

    day: date
    by_learner: dict[int, frozenset[int]]
    by_classroom: dict[int, frozenset[int]]


def _read_live_goals(day: date) -> _LiveGoals:
    by_learner: dict[int, set[int]] = {}
    by_classroom: dict[int, set[int]] = {}
    rows = Goal.targets.through.objects.filter(
        Q(goal__due__isnull=True) | Q(goal__due__gte=day), goal__status=Goal.Status.CONFIRMED
    ).values_list("goal__learner_id", "goal__classroom_id", "skill_id")
    for learner_id, classroom_id, skill_id in rows:
        if learner_id is not None:
            by_learner.setdefault(learner_id, set()).add(skill_id)
        if classroom_id is not None:
            by_classroom.setdefault(classroom_id, set()).add(skill_id)
    return _LiveGoals(
        day,
        {k: frozenset(v) for k, v in by_learner.items()},
        {k: frozenset(v) for k, v in by_classroom.items()},
    )


# `/next` asks for every decision and a school has few live goals: read them at most once a second per process
# (another process sees a confirmed goal within the second, this one at once).
_live_cache = TTLCache(lambda: _read_live_goals(timezone.localdate()), ttl=1.0)


def _live_goals(day: date) -> _LiveGoals:
    live = _live_cache.get()
    if live.day == day:
        return live
    if day == timezone.localdate():  # the date changed since they were read
        _live_cache.clear()
        return _live_cache.get()
    return _read_live_goals(day)


def goals_changed() -> None:
    """Call after confirming a goal."""
    _live_cache.clear()
    transaction.on_commit(_live_cache.clear)


def goal_targets_for_learner(*, learner_id: int, today: date | None = None) -> frozenset[int]:
    """Skill ids the scheduler should favour: targets of the confirmed, unexpired goals of the learner and of
    the classrooms they are in (a goal's date counts as a whole day). Without classroom goals this costs no
    query; with them, one for the learner's classrooms."""
    live = _live_goals(today or timezone.localdate())
    targets = live.by_learner.get(learner_id, frozenset())
    if live.by_classroom:
        rooms = Classroom.learners.through.objects.filter(learner_id=learner_id)
        for room in rooms.values_list("classroom_id", flat=True):
            targets = targets | live.by_classroom.get(room, frozenset())
    return targets


def goal_out(goal: Goal) -> dict[str, Any]:
    return {
        "id": goal.pk,
        "text": goal.text,
        "classroom_id": goal.classroom_id,
        "learner_id": goal.learner_id,
        "status": goal.status,
        "targets": [s.code for s in goal.targets.order_by("id")],
        "due": goal.due,
        "due_text": goal.due_text or None,
        "method": goal.mapping.get("method"),
        "scores": goal.mapping.get("scores", {}),
        "rejected_codes": goal.mapping.get("rejected_codes", []),
    }


def learner_for_user(user: User) -> Learner | None:
    return Learner.objects.filter(user=user).first()
