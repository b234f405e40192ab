"""Writes about learners: accounts and tokens, the attempt log, online mastery and tracer versions.

`attempt_record` is the hot path. It locks the learner's row, so answers of one learner are folded into the
tracer state one at a time, in log order, and the stored state always equals a replay of the log (`mastery_check`).
A repeated `client_attempt_id` returns the stored result and writes nothing.
"""

from __future__ import annotations

import hashlib
import io
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from curriculum.generation.answers import AnswerSpec, MalformedResponse, canonical, check_answer
from curriculum.models import Item, Skill
from learners.errors import Conflict, InvalidInput, NotFound
from learners.models import (
    ApiToken,
    Attempt,
    Classroom,
    Learner,
    LearnerState,
    SkillMastery,
    TracerVersion,
    User,
)
from learners.tracing.base import Attempt as TraceAttempt
from learners.tracing.base import AttemptLog, Tracer
from learners.tracing.registry import TRACERS, make_tracer
from tutor.caching import TTLCache

# ---------------------------------------------------------------------------------------------------------------
# Accounts


def token_create(*, user: User) -> str:
    key = "tut_" + secrets.token_urlsafe(32)
    ApiToken.objects.create(user=user, key_hash=hashlib.sha256(key.encode()).hexdigest(), prefix=key[:8])
    return key


def user_describe(*, user: User) -> dict[str, Any]:
    """The ids the API uses for this user; what `GET /api/v1/me` and `create_user` print."""
    learner = Learner.objects.filter(user=user).first()
    if user.role == User.Role.TEACHER:
        classrooms = list(user.classrooms_taught.order_by("id").values_list("id", flat=True))
    elif learner is not None:
        classrooms = list(learner.classrooms.order_by("id").values_list("id", flat=True))
    else:
        classrooms = []
    return {
        "user_id": user.pk,
        "username": user.username,
        "role": user.role,
        "learner_id": learner.pk if learner else None,
        "classroom_ids": classrooms,
    }


@transaction.atomic
def user_create(
    *, username: str, role: str, classroom: str | None = None, password: str | None = None
) -> dict[str, Any]:
    """Create a user (and its learner record), optionally enrolling it in a classroom created on demand."""
    if role not in User.Role.values:
        raise InvalidInput("role", f"must be one of {', '.join(User.Role.values)}")
    if not username or User.objects.filter(username=username).exists():
        raise Conflict("username", f"{username!r} is taken" if username else "required")
    user = User(username=username, role=role, is_staff=role == User.Role.ADMIN, is_superuser=role == User.Role.ADMIN)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    learner = Learner.objects.create(user=user, display_name=username) if role == User.Role.LEARNER else None
    room = None
    if classroom:
        room, _ = Classroom.objects.get_or_create(name=classroom)
        if learner is not None:
            room.learners.add(learner)
        elif role == User.Role.TEACHER:
            room.teachers.add(user)
    info = user_describe(user=user)
    info["classroom_id"] = room.pk if room else None
    info["token"] = token_create(user=user)
    return info


# ---------------------------------------------------------------------------------------------------------------
# Tracer versions


_tracers: dict[int, Tracer] = {}
_tracers_lock = threading.Lock()


def tracer_load(version: TracerVersion) -> Tracer:
    """The fitted tracer of a version, loaded once per process."""
    cached = _tracers.get(version.pk)
    if cached is not None:
        return cached
    with _tracers_lock:
        if version.pk not in _tracers:
            _tracers[version.pk] = TRACERS[version.name].load(io.BytesIO(bytes(version.params)))
        return _tracers[version.pk]


def _tracer_bytes(tracer: Tracer) -> bytes:
    buf = io.BytesIO()
    tracer.save(buf)
    return buf.getvalue()


def _active_version() -> TracerVersion:
    version = TracerVersion.objects.filter(active=True).first()
    if version is None:
        tracer = make_tracer(settings.TUTOR_TRACER).fit(AttemptLog.from_rows([], [], [], []))
        try:
            with transaction.atomic():
                version, _ = TracerVersion.objects.get_or_create(
                    name=settings.TUTOR_TRACER,
                    trained_through_attempt_id=0,
                    defaults={"params": _tracer_bytes(tracer), "metrics": {"note": "defaults, not fitted"}},
                )
                if not TracerVersion.objects.filter(active=True).exists():
                    TracerVersion.objects.filter(pk=version.pk).update(active=True, activated_at=timezone.now())
        except IntegrityError:
            pass  # another process activated a version first
        version = TracerVersion.objects.get(active=True)
    return version


_active_tracer_version = TTLCache(_active_version, ttl=1.0)


def tracer_active() -> tuple[TracerVersion, Tracer]:
    """The active tracer version (looked up at most once a second per process); before any fit, the configured
    tracer with its default parameters."""
    version = _active_tracer_version.get()
    return version, tracer_load(version)


# ---------------------------------------------------------------------------------------------------------------
# Attempts and mastery


@dataclass(frozen=True)
class AttemptOutcome:
    result: dict[str, Any]
    created: bool


def _timestamp(attempt: Attempt) -> float:
    return attempt.created_at.timestamp()


def _item_skills(item_ids: Iterable[int]) -> dict[int, tuple[int, ...]]:
    out: dict[int, list[int]] = {}
    for item_id, skill_id in Item.skills.through.objects.filter(item_id__in=set(item_ids)).values_list(
        "item_id", "skill_id"
    ):
        out.setdefault(item_id, []).append(skill_id)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def _replay(learner: Learner, tracer: Tracer) -> tuple[dict[str, Any], dict[int, list[int]], int, int]:
    """Fold the learner's whole log; returns state, per-skill [attempts, correct], count and last attempt id."""
    attempts = list(Attempt.objects.filter(learner=learner).order_by("id").only("id", "item_id", "correct", "created_at"))
    skills_of = _item_skills(a.item_id for a in attempts)
    state = tracer.init_state()
    counts: dict[int, list[int]] = {}
    for a in attempts:
        skills = skills_of.get(a.item_id, ())
        state = tracer.update(state, TraceAttempt(a.item_id, skills, a.correct, _timestamp(a)))
        for s in skills:
            c = counts.setdefault(s, [0, 0])
            c[0] += 1
            c[1] += int(a.correct)
    return state, counts, len(attempts), attempts[-1].pk if attempts else 0


def _write_mastery(learner: Learner, tracer: Tracer, state: dict[str, Any], counts: dict[int, list[int]]) -> None:
    for skill_id, (n, k) in counts.items():
        SkillMastery.objects.update_or_create(
            learner=learner,
            skill_id=skill_id,
            defaults={"p_mastery": tracer.mastery(state, skill_id), "n_attempts": n, "n_correct": k},
        )


def learner_state_rebuild(*, learner: Learner, version: TracerVersion, tracer: Tracer) -> LearnerState:
    """Recompute a learner's state and mastery from the log with `version` (call inside a transaction)."""
    state, counts, n, last = _replay(learner, tracer)
    ls, _ = LearnerState.objects.update_or_create(
        learner=learner,
        defaults={"tracer_version": version, "state": state, "n_attempts": n, "last_attempt_id": last},
    )
    SkillMastery.objects.filter(learner=learner).exclude(skill_id__in=counts).delete()
    _write_mastery(learner, tracer, state, counts)
    return ls


def _fold_mastery(
    learner: Learner, tracer: Tracer, state: dict[str, Any], skills: tuple[int, ...], correct: bool
) -> None:
    """Count the answer on its skills and refresh every stored mastery the answer moved. BKT moves only the
    item's skills; learner-level tracers (Elo ability, Best-LR's overall counts, DKT's hidden state) move the
    others too, and their stored rows must stay equal to a replay."""
    rows = {m.skill_id: m for m in SkillMastery.objects.filter(learner=learner)}
    now = timezone.now()
    changed = []
    for skill_id, row in rows.items():
        p = tracer.mastery(state, skill_id)
        if skill_id in skills:
            row.n_attempts += 1
            row.n_correct += int(correct)
        elif p == row.p_mastery:
            continue
        row.p_mastery, row.updated_at = p, now
        changed.append(row)
    SkillMastery.objects.bulk_update(changed, ["p_mastery", "n_attempts", "n_correct", "updated_at"])
    SkillMastery.objects.bulk_create(
        [
            SkillMastery(learner=learner, skill_id=s, p_mastery=tracer.mastery(state, s), n_attempts=1,
                         n_correct=int(correct))
            for s in skills
            if s not in rows
        ]
    )


def _locked_state(learner_id: int) -> tuple[Learner, LearnerState, TracerVersion, Tracer]:
    learner = Learner.objects.select_for_update().get(pk=learner_id)
    version, tracer = tracer_active()
    ls = LearnerState.objects.filter(learner=learner).first()
    if ls is None or ls.tracer_version_id != version.pk:
        ls = learner_state_rebuild(learner=learner, version=version, tracer=tracer)
    return learner, ls, version, tracer


def mastery_snapshot(*, learner: Learner) -> list[dict[str, Any]]:
    rows = SkillMastery.objects.filter(learner=learner).select_related("skill").order_by("skill_id")
    return [
        {
            "skill_id": m.skill_id,
            "skill": m.skill.code,
            "p_mastery": m.p_mastery,
            "n_attempts": m.n_attempts,
            "n_correct": m.n_correct,
        }
        for m in rows
    ]


def attempt_record(
    *,
    learner_id: int,
    item_id: int,
    response: str,
    client_attempt_id: str,
    decision_id: int | None = None,
    time_taken_ms: int | None = None,
) -> AttemptOutcome:
    """Store one answer and fold it into the learner's mastery, in one transaction; idempotent by
    (learner, client_attempt_id)."""
    if not client_attempt_id or len(client_attempt_id) > 64:
        raise InvalidInput("client_attempt_id", "required, at most 64 characters")
    if time_taken_ms is not None and not 0 <= time_taken_ms <= 24 * 3600 * 1000:
        raise InvalidInput("time_taken_ms", "must be between 0 and 86400000")
    item = Item.objects.filter(pk=item_id).first()
    if item is None:
        raise NotFound("item", f"no item with id {item_id}")
    if item.status != Item.Status.APPROVED:
        raise InvalidInput("item", f"item {item_id} is not approved for use")
    spec = AnswerSpec.from_dict(item.answer)
    try:
        correct = check_answer(spec, response)
    except MalformedResponse as exc:
        raise InvalidInput("response", str(exc)) from None

    from tutor.models import Decision  # the decision log belongs to the scheduler

    tracer_active()  # creates the default version, if needed, outside the answer's transaction
    with transaction.atomic():
        if not Learner.objects.filter(pk=learner_id).exists():
            raise NotFound("learner", f"no learner with id {learner_id}")
        learner, ls, version, tracer = _locked_state(learner_id)
        existing = Attempt.objects.filter(learner=learner, client_attempt_id=client_attempt_id).first()
        if existing is not None:
            if existing.item_id != item.pk or existing.response != response:
                raise Conflict("client_attempt_id", "already used for a different answer")
            return AttemptOutcome(existing.result, created=False)
        decision = None
        if decision_id is not None:
            decision = Decision.objects.filter(pk=decision_id, learner=learner).first()
            if decision is None:
                raise InvalidInput("decision_id", f"no decision {decision_id} for this learner")
            if decision.item_id != item.pk:
                raise InvalidInput("decision_id", f"decision {decision_id} served item {decision.item_id}, not {item.pk}")
            if Attempt.objects.filter(decision=decision).exists():
                raise Conflict("decision_id", f"decision {decision_id} was already answered")
        attempt = Attempt.objects.create(
            learner=learner,
            item=item,
            response=response,
            correct=correct,
            time_taken_ms=time_taken_ms,
            client_attempt_id=client_attempt_id,
            decision=decision,
            policy_version=decision.policy_name if decision else "",
            propensity=decision.propensity if decision else None,
            tracer_version=version,
        )
        skills = tuple(sorted(item.skills.values_list("pk", flat=True)))
        state = tracer.update(ls.state, TraceAttempt(item.pk, skills, correct, _timestamp(attempt)))
        ls.state = state
        ls.n_attempts += 1
        ls.last_attempt_id = attempt.pk
        ls.save(update_fields=["state", "n_attempts", "last_attempt_id", "updated_at"])
        _fold_mastery(learner, tracer, state, skills, correct)
        codes = dict(Skill.objects.filter(pk__in=skills).values_list("pk", "code"))
        feedback: dict[str, Any] = {"message": "Correct!" if correct else "Not quite."}
        if not correct:
            feedback["correct_answer"] = canonical(spec)
            if item.solution:
                feedback["solution"] = item.solution
            # --- LLM tutor (issue 5): a cached or template explanation and the bandit's style; never a model call.
            from tutor.services.explanations import explanation_brief

            feedback["explanation"] = explanation_brief(
                attempt=attempt, item=item, mastery=[tracer.mastery(state, s) for s in skills]
            )
            # --- end LLM tutor
        result = {
            "attempt_id": attempt.pk,
            "item": item.pk,
            "correct": correct,
            "feedback": feedback,
            "mastery": [
                {"skill_id": s, "skill": codes[s], "p_mastery": tracer.mastery(state, s)} for s in skills
            ],
        }
        attempt.result = result
        attempt.save(update_fields=["result"])
    return AttemptOutcome(result, created=True)


def mastery_check(*, learner_ids: Iterable[int] | None = None, tolerance: float = 0.0) -> list[dict[str, Any]]:
    """Replay each learner's log and compare with the stored state and mastery; returns the mismatches."""
    version, tracer = tracer_active()
    learners = Learner.objects.all() if learner_ids is None else Learner.objects.filter(pk__in=list(learner_ids))
    problems: list[dict[str, Any]] = []
    for learner in learners.order_by("id").iterator():
        ls = LearnerState.objects.filter(learner=learner).first()
        if ls is None or ls.tracer_version_id != version.pk:
            continue  # not yet folded with the active version: nothing stored to compare
        state, counts, n, _ = _replay(learner, tracer)
        stored = {m.skill_id: m for m in SkillMastery.objects.filter(learner=learner)}
        if n != ls.n_attempts:
            problems.append({"learner": learner.pk, "field": "n_attempts", "stored": ls.n_attempts, "replayed": n})
        for skill_id, (k, c) in counts.items():
            want = tracer.mastery(state, skill_id)
            row = stored.get(skill_id)
            if row is None or abs(row.p_mastery - want) > tolerance or (row.n_attempts, row.n_correct) != (k, c):
                problems.append(
                    {
                        "learner": learner.pk,
                        "skill": skill_id,
                        "stored": None if row is None else [row.p_mastery, row.n_attempts, row.n_correct],
                        "replayed": [want, k, c],
                    }
                )
    return problems


# ---------------------------------------------------------------------------------------------------------------
# Refit


def attempt_log(*, through_attempt_id: int | None = None) -> tuple[AttemptLog, int]:
    """The attempt log as the tracers read it (one row per attempt and skill), and its last attempt id."""
    qs = Attempt.objects.order_by("learner_id", "id")
    if through_attempt_id is not None:
        qs = qs.filter(pk__lte=through_attempt_id)
    rows = list(qs.values_list("id", "learner_id", "item_id", "correct", "created_at"))
    skills_of = _item_skills(r[2] for r in rows)
    cols: dict[str, list[Any]] = {k: [] for k in ("learner", "item", "skill", "correct", "attempt", "timestamp")}
    for attempt_id, learner_id, item_id, correct, created_at in rows:
        for skill_id in skills_of.get(item_id, ()):
            cols["learner"].append(learner_id)
            cols["item"].append(item_id)
            cols["skill"].append(skill_id)
            cols["correct"].append(int(correct))
            cols["attempt"].append(attempt_id)
            cols["timestamp"].append(created_at.timestamp())
    last = max((r[0] for r in rows), default=0)
    return AttemptLog.from_rows(**cols), last


def _holdout_split(log: AttemptLog, fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Split rows by learner with a fixed hash, so the same learners are held out on every run."""
    learners = np.unique(log.learner)
    held = np.array(
        [int(hashlib.sha256(str(int(x)).encode()).hexdigest(), 16) % 1000 < fraction * 1000 for x in learners],
        dtype=bool,
    )
    held_set = set(learners[held].tolist())
    mask = np.array([int(x) in held_set for x in log.learner], dtype=bool)
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def _score(tracer: Tracer, log: AttemptLog) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    if len(log) == 0:
        return {}
    p = np.clip(tracer.predict(log), 1e-6, 1 - 1e-6)
    y = log.correct[log.attempt_starts()].astype(float)
    out = {"n": float(len(y)), "rmse": float(np.sqrt(np.mean((p - y) ** 2)))}
    out["logloss"] = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    if 0 < y.sum() < len(y):
        out["auc"] = float(roc_auc_score(y, p))
    return out


@dataclass(frozen=True)
class RefitOutcome:
    version: TracerVersion
    activated: bool
    created: bool
    reason: str


def tracer_refit(
    *,
    name: str | None = None,
    through_attempt_id: int | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> RefitOutcome:
    """Fit a tracer on the log up to a cut-off and activate it if it scores at least as well as the active
    version on held-out learners. Idempotent: a version is unique on (name, trained_through_attempt_id)."""
    name = name or settings.TUTOR_TRACER
    if name not in TRACERS:
        raise InvalidInput("name", f"unknown tracer {name!r}; known: {', '.join(sorted(TRACERS))}")
    report = progress or (lambda stage, fraction: None)
    active_version, active_tracer = tracer_active()
    log, last = attempt_log(through_attempt_id=through_attempt_id)
    existing = TracerVersion.objects.filter(name=name, trained_through_attempt_id=last).first()
    if existing is not None:
        return RefitOutcome(existing, activated=existing.active, created=False, reason="already fitted")
    report("split", 0.05)
    train_rows, held_rows = _holdout_split(log)
    train, held = log.take(train_rows), log.take(held_rows)
    report("fit-holdout", 0.1)
    candidate = make_tracer(name).fit(train)
    report("score", 0.5)
    new_scores = _score(candidate, held)
    old_scores = _score(active_tracer, held)
    report("fit-all", 0.6)
    final = make_tracer(name).fit(log)
    better = new_scores.get("logloss", np.inf) <= old_scores.get("logloss", np.inf) + 1e-12
    metrics = {"holdout": new_scores, "active_on_holdout": old_scores, "active_version": active_version.pk}
    report("save", 0.9)
    try:
        with transaction.atomic():
            version = TracerVersion.objects.create(
                name=name,
                trained_through_attempt_id=last,
                n_attempts=int(len(log.attempt_starts())),
                params=_tracer_bytes(final),
                metrics=metrics,
            )
            if better:
                version = tracer_activate(version_id=version.pk)
    except IntegrityError:
        version = TracerVersion.objects.get(name=name, trained_through_attempt_id=last)
        return RefitOutcome(version, activated=version.active, created=False, reason="fitted concurrently")
    reason = "held-out log-loss at least as good as the active version" if better else "worse than the active version"
    report("done", 1.0)
    return RefitOutcome(version, activated=better, created=True, reason=reason)


def tracer_activate(*, version_id: int) -> TracerVersion:
    with transaction.atomic():
        version = TracerVersion.objects.select_for_update().filter(pk=version_id).first()
        if version is None:
            raise NotFound("version", f"no tracer version {version_id}")
        TracerVersion.objects.filter(active=True).exclude(pk=version.pk).update(active=False)
        TracerVersion.objects.filter(pk=version.pk).update(active=True, activated_at=timezone.now())
        version.refresh_from_db()
        _active_tracer_version.clear()
        transaction.on_commit(_active_tracer_version.clear)
    return version
