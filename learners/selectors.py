"""Reads about learners, with the access rules: a learner sees only itself, a teacher the learners of the classes
they teach, an admin everyone. A learner outside the caller's reach is reported as not found, so ids leak nothing."""

from __future__ import annotations

import hashlib
from typing import Any

from django.db.models import Avg, Count, Sum
from django.utils import timezone

from curriculum.models import Skill
from learners.errors import Forbidden, NotFound
from learners.models import ApiToken, Classroom, Learner, SkillMastery, User


def user_from_token(*, key: str) -> User | None:
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=hashlib.sha256(key.encode()).hexdigest(), user__is_active=True)
        .first()
    )
    if token is None:
        return None
    if token.last_used_at is None or (timezone.now() - token.last_used_at).total_seconds() > 300:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token.user


def learner_visible(*, user: User, learner_id: int) -> Learner:
    learner = Learner.objects.filter(pk=learner_id).first()
    if learner is None:
        raise NotFound("learner_id", f"no learner with id {learner_id}")
    if user.role == User.Role.ADMIN or user.is_superuser:
        return learner
    if user.role == User.Role.TEACHER and learner.classrooms.filter(teachers=user).exists():
        return learner
    if learner.user_id == user.pk:
        return learner
    raise NotFound("learner_id", f"no learner with id {learner_id}")


def learner_actable(*, user: User, learner_id: int) -> Learner:
    """Only the learner themself (or an admin, for simulations and support) may request items and answer."""
    learner = learner_visible(user=user, learner_id=learner_id)
    if learner.user_id != user.pk and user.role != User.Role.ADMIN:
        raise Forbidden("learner_id", "only the learner may request items or submit answers")
    return learner


def classroom_visible(*, user: User, classroom_id: int) -> Classroom:
    if user.role == User.Role.LEARNER:
        raise Forbidden("classroom_id", "learners cannot view classroom data")
    room = Classroom.objects.filter(pk=classroom_id).first()
    if room is None or (user.role != User.Role.ADMIN and not room.teachers.filter(pk=user.pk).exists()):
        raise NotFound("classroom_id", f"no classroom with id {classroom_id}")
    return room


def learner_mastery(*, learner: Learner) -> list[dict[str, Any]]:
    """Every skill with the learner's P(mastery) and counts; unpractised skills show the tracer's prior."""
    from learners.models import LearnerState
    from learners.services import tracer_active

    _, tracer = tracer_active()
    ls = LearnerState.objects.filter(learner=learner).first()
    state = ls.state if ls is not None else tracer.init_state()
    rows = {m.skill_id: m for m in SkillMastery.objects.filter(learner=learner)}
    out = []
    for skill in Skill.objects.order_by("id"):
        m = rows.get(skill.pk)
        out.append(
            {
                "skill_id": skill.pk,
                "skill": skill.code,
                "name": skill.name,
                "p_mastery": m.p_mastery if m else tracer.mastery(state, skill.pk),
                "n_attempts": m.n_attempts if m else 0,
                "n_correct": m.n_correct if m else 0,
            }
        )
    return out


def classroom_mastery(*, classroom: Classroom, threshold: float) -> dict[str, Any]:
    learners = list(classroom.learners.order_by("id"))
    per_learner = {
        (m["learner_id"], m["skill_id"]): m
        for m in SkillMastery.objects.filter(learner__in=learners).values(
            "learner_id", "skill_id", "p_mastery", "n_attempts", "n_correct"
        )
    }
    skills = list(Skill.objects.order_by("id"))
    summary = {
        row["skill_id"]: row
        for row in SkillMastery.objects.filter(learner__in=learners)
        .values("skill_id")
        .annotate(mean=Avg("p_mastery"), attempts=Sum("n_attempts"), learners=Count("learner_id"))
    }
    return {
        "classroom_id": classroom.pk,
        "name": classroom.name,
        "threshold": threshold,
        "skills": [
            {
                "skill_id": s.pk,
                "skill": s.code,
                "name": s.name,
                "mean_p_mastery": summary[s.pk]["mean"] if s.pk in summary else None,
                "attempts": summary[s.pk]["attempts"] if s.pk in summary else 0,
                "mastered": sum(
                    1
                    for lr in learners
                    if (lr.pk, s.pk) in per_learner and per_learner[(lr.pk, s.pk)]["p_mastery"] >= threshold
                ),
            }
            for s in skills
        ],
        "learners": [
            {
                "learner_id": lr.pk,
                "name": lr.display_name,
                "mastery": {
                    per_learner[(lr.pk, s.pk)]["skill_id"]: per_learner[(lr.pk, s.pk)]["p_mastery"]
                    for s in skills
                    if (lr.pk, s.pk) in per_learner
                },
            }
            for lr in learners
        ],
    }
