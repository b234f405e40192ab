"""Policy versions: which policy serves which learner, activation, rollback and A/B experiments.

A version names a registered policy kind with its hyperparameters and, for learned policies, the explicit
parameters its `save` wrote. Activation is one transaction, so a failed or killed training run never leaves a
half-activated version behind.
"""

from __future__ import annotations

import hashlib
import io
import math
import threading
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from learners.errors import Conflict, InvalidInput, NotFound
from tutor.caching import TTLCache
from tutor.models import PolicyExperiment, PolicyVersion
from tutor.policy.base import POLICIES, Policy, make_policy
from tutor.policy.baselines import ExploringPolicy
from tutor.services import belief_checkpoints

_loaded: dict[int, Policy] = {}
_lock = threading.Lock()


def policy_load(version: PolicyVersion) -> Policy:
    """The policy of a version, built once per process."""
    cached = _loaded.get(version.pk)
    if cached is not None:
        return cached
    with _lock:
        if version.pk not in _loaded:
            cls = POLICIES.get(version.kind)
            if cls is None:
                raise InvalidInput("kind", f"unknown policy {version.kind!r}; known: {', '.join(sorted(POLICIES))}")
            # The serving lookup leaves the parameters out (`_serving`); they are read here, once per process, and
            # not kept on the shared cached version.
            params = bytes(
                PolicyVersion.objects.filter(pk=version.pk).values_list("params", flat=True).get()
                if "params" in version.get_deferred_fields()
                else version.params
            )
            loader = getattr(cls, "load", None)
            if params and loader is not None:
                _loaded[version.pk] = loader(io.BytesIO(params))
            else:
                _loaded[version.pk] = make_policy(version.kind, **version.hyperparameters)
        return _loaded[version.pk]


def policy_bytes(policy: Policy) -> bytes:
    save = getattr(policy, "save", None)
    if save is None:
        return b""
    buf = io.BytesIO()
    save(buf)
    return buf.getvalue()


def _arm(experiment: PolicyExperiment, learner_id: int) -> bool:
    digest = hashlib.sha256(f"{experiment.name}:{learner_id}".encode()).hexdigest()
    return int(digest[:8], 16) / 0xFFFFFFFF < experiment.treatment_share


# Columns the serving lookup leaves out: a version's parameters (a plan of 2,404 vectors over 4,096 states is
# 39 MB) and its training report. Read every second, they made about one request in a hundred wait 50-200 ms.
_HEAVY = ("params", "ope_report")


def _serving() -> tuple[PolicyExperiment | None, PolicyVersion | None]:
    experiment = (
        PolicyExperiment.objects.filter(active=True)
        .select_related("control", "treatment")
        .defer(*(f"{arm}__{field}" for arm in ("control", "treatment") for field in _HEAVY))
        .first()
    )
    return experiment, PolicyVersion.objects.filter(active=True).defer(*_HEAVY).first()


# Which versions serve: looked up at most once a second per process; changes here clear it at once.
_serving_cache = TTLCache(_serving, ttl=1.0)


def serving_changed() -> None:
    _serving_cache.clear()
    transaction.on_commit(_serving_cache.clear)


def policy_active() -> tuple[PolicyVersion | None, Policy, str]:
    """The active version (experiments aside), or the default policy from settings."""
    _, version = _serving_cache.get()
    if version is None:
        return None, make_policy(settings.TUTOR_POLICY), settings.TUTOR_POLICY
    return version, policy_load(version), str(version)


def explore_epsilon() -> float:
    """The share of decisions drawn uniformly from all candidates (`TUTOR_EXPLORE`), whatever policy serves."""
    epsilon = float(settings.TUTOR_EXPLORE)
    if not 0.0 <= epsilon < 1.0:
        raise InvalidInput("TUTOR_EXPLORE", f"must be in [0, 1), got {epsilon}")
    return epsilon


def served(policy: Policy, epsilon: float | None = None) -> Policy:
    """A policy as it serves: mixed with uniform choice over every candidate, so that every item keeps a logged
    propensity of at least epsilon / n (rule-based policies explore only within their focus skill)."""
    epsilon = explore_epsilon() if epsilon is None else epsilon
    return ExploringPolicy(policy, epsilon=epsilon) if epsilon > 0 else policy


def policy_for_learner(*, learner_id: int) -> tuple[PolicyVersion | None, Policy, str]:
    """The policy serving a learner: an active experiment's arm, else the active version, else the default."""
    experiment, _ = _serving_cache.get()
    if experiment is not None:
        version = experiment.treatment if _arm(experiment, learner_id) else experiment.control
        return version, policy_load(version), str(version)
    return policy_active()


def _non_finite(value: Any, path: str) -> tuple[str, float] | None:
    """(path, number) of the first NaN or infinity in a JSON-like `value`: JSON cannot hold one (PostgreSQL refuses
    it, SQLite would store what no JSON reader takes back)."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, value)
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _non_finite(item, f"{path}.{key}")
        if found is not None:
            return found
    return None


def policy_version_create(
    *,
    name: str,
    kind: str,
    hyperparameters: dict[str, Any] | None = None,
    params: bytes = b"",
    trained_through_decision_id: int = 0,
    ope_report: dict[str, Any] | None = None,
) -> tuple[PolicyVersion, bool]:
    """Record a version; idempotent on (name, trained_through_decision_id). Returns (version, created)."""
    if kind not in POLICIES:
        raise InvalidInput("kind", f"unknown policy {kind!r}; known: {', '.join(sorted(POLICIES))}")
    hyper = hyperparameters or {}
    try:
        make_policy(kind, **hyper)
    except TypeError as exc:
        raise InvalidInput("hyperparameters", str(exc)) from None
    for field, value in (("hyperparameters", hyper), ("ope_report", ope_report or {})):
        bad = _non_finite(value, field)
        if bad is not None:
            raise InvalidInput(field, f"{bad[0]} is {bad[1]}: a report or a hyperparameter must be a finite number")
    try:
        with transaction.atomic():
            version = PolicyVersion.objects.create(
                name=name,
                kind=kind,
                hyperparameters=hyper,
                params=params,
                trained_through_decision_id=trained_through_decision_id,
                ope_report=ope_report or {},
            )
            return version, True
    except IntegrityError:
        return PolicyVersion.objects.get(name=name, trained_through_decision_id=trained_through_decision_id), False


@transaction.atomic
def policy_activate(*, version_id: int) -> PolicyVersion:
    version = PolicyVersion.objects.select_for_update().filter(pk=version_id).first()
    if version is None:
        raise NotFound("version_id", f"no policy version {version_id}")
    PolicyVersion.objects.filter(active=True).exclude(pk=version.pk).update(active=False)
    PolicyVersion.objects.filter(pk=version.pk).update(active=True, activated_at=timezone.now())
    version.refresh_from_db()
    serving_changed()
    belief_checkpoints.prune()
    return version


@transaction.atomic
def policy_rollback() -> PolicyVersion | None:
    """Re-activate the version that was active before the current one; with none, fall back to the default
    policy from settings (returns None). The rolled-back version leaves the activation chain (its activated_at
    is cleared), so rolling back twice steps back twice."""
    current = PolicyVersion.objects.select_for_update().filter(active=True).first()
    if current is None:
        raise Conflict("version", "no active policy version to roll back from")
    previous = (
        PolicyVersion.objects.exclude(pk=current.pk)
        .filter(activated_at__isnull=False, activated_at__lte=current.activated_at)
        .order_by("-activated_at")
        .first()
    )
    PolicyVersion.objects.filter(pk=current.pk).update(active=False, activated_at=None)
    serving_changed()
    if previous is None:
        return None
    PolicyVersion.objects.filter(pk=previous.pk).update(active=True)
    previous.refresh_from_db()
    return previous


@transaction.atomic
def experiment_start(*, name: str, treatment_id: int, treatment_share: float = 0.5) -> PolicyExperiment:
    """Split learners between the active version (control) and a treatment version."""
    if not 0 < treatment_share < 1:
        raise InvalidInput("treatment_share", "must be strictly between 0 and 1")
    control = PolicyVersion.objects.filter(active=True).first()
    if control is None:
        raise Conflict("control", "activate a policy version first: it becomes the control arm")
    treatment = PolicyVersion.objects.filter(pk=treatment_id).first()
    if treatment is None:
        raise NotFound("treatment_id", f"no policy version {treatment_id}")
    if treatment.pk == control.pk:
        raise InvalidInput("treatment_id", "treatment must differ from the active version")
    PolicyExperiment.objects.filter(active=True).update(active=False)
    serving_changed()
    try:
        return PolicyExperiment.objects.create(
            name=name, control=control, treatment=treatment, treatment_share=treatment_share
        )
    except IntegrityError:
        raise Conflict("name", f"an experiment named {name!r} exists") from None


def experiment_stop() -> int:
    stopped = PolicyExperiment.objects.filter(active=True).update(active=False)
    serving_changed()
    return stopped
