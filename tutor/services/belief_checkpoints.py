"""Belief policies' filter states kept per learner in the database, so that a process meeting a learner for the
first time resumes from a checkpoint instead of filtering their whole history.

A belief policy (`BeliefPolicy`, `JointBeliefPolicy`) filters the learner's answers; within a process it keeps the
state and pays one update per new answer (`filter_state`'s memo). A process that has not served the learner yet
(a fresh worker, another server behind the balancer, a learner evicted from the history cache) used to filter up
to the whole window of 1,000 answers on the learner's first request: about 90 ms for `joint` at S = 12. Here, every
`EVERY` answers, the state after the learner's latest answer is written (`save`, one UPDATE), and a request whose
policy would have to filter more than `EVERY` answers first looks for the learner's checkpoint (`restore`, one
SELECT): the cost of a cold request becomes at most `EVERY` updates plus that query.

A checkpoint is used only when it provably covers a prefix of the answers the request sees: the same policy version,
the same model (`model_digest`), and the attempt at its position in the window is the one it was taken after
(answers deleted or rewritten since make it unusable; it is then replaced by the next save). The belief it gives
is the filter over the learner's answers since their first checkpoint, the same as a long-running process's
(which filters on from its first window of the learner). Curriculum edits to items already answered (difficulty,
skills) do not re-filter a checkpoint; the history cache's rebuild after such an edit does not either once a state
is remembered.

Rows are one per learner and served version (32 KiB for `joint` at 12 skills); `prune` drops those of versions that
no longer serve and are not among the `KEEP` latest activated (activation calls it), so rolling back finds its
checkpoints.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from tutor.models import BeliefCheckpoint, PolicyExperiment, PolicyVersion
from tutor.policy.base import Outcome, Policy
from tutor.policy.belief import BeliefPolicy

EVERY = settings.TUTOR_BELIEF_CHECKPOINT_EVERY
KEEP = 3  # activated versions whose checkpoints survive `prune`, the active one included

# (version id, learner id) -> n_attempts of the latest checkpoint this process wrote or read (bounded).
_saved: OrderedDict[tuple[int, int], int] = OrderedDict()
_saved_lock = threading.Lock()
_SAVED_SIZE = 8192


def _remember(key: tuple[int, int], n: int) -> None:
    with _saved_lock:
        _saved[key] = max(n, _saved.get(key, 0))
        _saved.move_to_end(key)
        while len(_saved) > _SAVED_SIZE:
            _saved.popitem(last=False)


def clear() -> None:
    with _saved_lock:
        _saved.clear()


def restore(
    *,
    policy: Policy,
    version: PolicyVersion | None,
    learner_id: int,
    history: Sequence[Outcome],
    ids: Sequence[int],
    n_attempts: int,
) -> int:
    """Seed `policy`'s memo from the learner's checkpoint when the policy would otherwise filter more than
    `EVERY` answers; returns how many answers of `history` the checkpoint covered (0: not used)."""
    if not isinstance(policy, BeliefPolicy) or version is None or not history:
        return 0
    known = policy.known_through(history)
    if len(history) - known <= EVERY:
        return 0
    ck = (
        BeliefCheckpoint.objects.filter(learner_id=learner_id, policy_version=version)
        .only("model_digest", "n_attempts", "last_attempt_id", "state")
        .first()
    )
    key = (version.pk, learner_id)
    if ck is None:
        _remember(key, 0)
        return 0
    _remember(key, ck.n_attempts)
    at = ck.n_attempts - (n_attempts - len(history))  # answers of the window the checkpoint covers
    if ck.model_digest != policy.model_digest() or not known < at <= len(history) or ids[at - 1] != ck.last_attempt_id:
        return 0
    try:
        belief = policy._model().load_belief(bytes(ck.state))
    except ValueError:
        return 0
    policy.resume(history, at, belief)
    return at


def save(
    *,
    policy: Policy,
    version: PolicyVersion | None,
    learner_id: int,
    history: Sequence[Outcome],
    ids: Sequence[int],
    n_attempts: int,
) -> bool:
    """Write the policy's state after the learner's latest answer when the last checkpoint is `EVERY` or more
    answers old. Idempotent and safe under concurrency: a row only moves forward (a writer holding an older
    state changes nothing)."""
    if not isinstance(policy, BeliefPolicy) or version is None or not history or len(ids) != len(history):
        return False
    key = (version.pk, learner_id)
    with _saved_lock:
        last = _saved.get(key)
    if last is None:
        row = BeliefCheckpoint.objects.filter(learner_id=learner_id, policy_version=version).values_list(
            "n_attempts", flat=True
        )
        last = next(iter(row), 0)
        _remember(key, last)
    if n_attempts - last < EVERY:
        return False
    data = policy._model().dump_belief(policy.filter_state(history))
    fields = {
        "model_digest": policy.model_digest(),
        "n_attempts": n_attempts,
        "last_attempt_id": ids[-1],
        "state": data,
        "updated_at": timezone.now(),
    }
    older = BeliefCheckpoint.objects.filter(learner_id=learner_id, policy_version=version, n_attempts__lt=n_attempts)
    if not older.update(**fields):
        # No older row: none yet, or one as new as ours. Insert (a no-op on a conflict), then move forward once
        # more: a writer that created the row between our update and our insert may hold an older state.
        BeliefCheckpoint.objects.bulk_create(
            [BeliefCheckpoint(learner_id=learner_id, policy_version=version, **fields)], ignore_conflicts=True
        )
        older.update(**fields)
    _remember(key, n_attempts)
    return True


def prune() -> int:
    """Delete the checkpoints of versions that serve no learner (neither active nor an arm of an active
    experiment) and are not among the `KEEP` latest activated; returns how many rows went."""
    keep = set(
        PolicyVersion.objects.filter(activated_at__isnull=False).order_by("-activated_at").values_list("pk", flat=True)[
            :KEEP
        ]
    )
    keep |= set(PolicyVersion.objects.filter(active=True).values_list("pk", flat=True))
    for control, treatment in PolicyExperiment.objects.filter(active=True).values_list("control", "treatment"):
        keep |= {control, treatment}
    deleted, _ = BeliefCheckpoint.objects.filter(~Q(policy_version__in=keep)).delete()
    return deleted
