"""The answers a policy sees when it decides for a learner, kept per process and extended by the answers since
the learner's previous request.

A decision used to read the learner's latest 200 attempts on every request, as new answer objects. Two costs
followed: the query (with its timestamp conversions) was a large share of `/next`, and belief policies, which
memoise their filter by the identity of answer objects, refiltered the whole window on every request once a
learner had more answers than the window (18 ms instead of under 1 for `joint` at 300 answers). Here each
learner's answers are `Outcome` objects made once: a request whose learner state (`LearnerState`: count and
last attempt id, written in the attempt's own transaction) matches the cached entry reads no attempt rows; one
that is behind reads the new rows only, plus the last cached one to check that it is still the same attempt
(SQLite reuses the ids of deleted rows). Anything else (another process wrote more than we can account for,
attempts deleted, the curriculum changed) rebuilds the entry from the log.

Bounded: `window` answers per learner, `size` learners (least recently served dropped first).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from django.conf import settings

from curriculum.selectors import CurriculumSnapshot
from learners.models import Attempt
from tutor.policy.base import Outcome

# How many of the learner's latest answers a policy sees. Belief policies filter them once per process and then
# one update per answer; a process meeting the learner for the first time resumes from their belief checkpoint
# (tutor.services.belief_checkpoints) instead of filtering all of them.
WINDOW = 1000


Row = tuple[int, int, bool, float]  # attempt id, item id, correct, time (s)


@dataclass(frozen=True)
class _Entry:
    n_attempts: int
    last_id: int
    curriculum_key: object
    last_row: Row  # the newest attempt held, to check that it is still there
    outcomes: tuple[Outcome, ...]
    ids: tuple[int, ...]  # the attempt id of each outcome


class HistoryCache:
    def __init__(self, size: int = 512, window: int = WINDOW) -> None:
        self.size = size
        self.window = window
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.stats = {"hit": 0, "extend": 0, "rebuild": 0}

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def outcomes(
        self, *, learner_id: int, n_attempts: int, last_attempt_id: int, snapshot: CurriculumSnapshot
    ) -> tuple[Outcome, ...]:
        """The learner's latest answers through `last_attempt_id` (the learner state the caller read), oldest
        first; the same objects across calls while the learner's log only grows."""
        return self.outcomes_and_ids(
            learner_id=learner_id, n_attempts=n_attempts, last_attempt_id=last_attempt_id, snapshot=snapshot
        )[0]

    def outcomes_and_ids(
        self, *, learner_id: int, n_attempts: int, last_attempt_id: int, snapshot: CurriculumSnapshot
    ) -> tuple[tuple[Outcome, ...], tuple[int, ...]]:
        """`outcomes` and the attempt id of each."""
        if n_attempts == 0:
            return (), ()
        with self._lock:
            entry = self._entries.get(learner_id)
            if entry is not None:
                self._entries.move_to_end(learner_id)
        new: _Entry | None = None
        if entry is not None and entry.curriculum_key == snapshot.key:
            if entry.n_attempts == n_attempts and entry.last_id == last_attempt_id:
                self.stats["hit"] += 1
                return entry.outcomes, entry.ids
            if entry.n_attempts < n_attempts and entry.last_id < last_attempt_id:
                new = self._extend(entry, learner_id, n_attempts, last_attempt_id, snapshot)
        if new is None:
            new = self._rebuild(learner_id, n_attempts, last_attempt_id, snapshot)
        with self._lock:
            old = self._entries.get(learner_id)
            if old is None or old.n_attempts <= new.n_attempts:
                self._entries[learner_id] = new
                self._entries.move_to_end(learner_id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return new.outcomes, new.ids

    def _fetch(self, learner_id: int, after: int, through: int, limit: int | None) -> list[Row]:
        qs = Attempt.objects.filter(learner_id=learner_id, id__gte=after, id__lte=through).order_by("-id")
        rows = qs.values_list("id", "item_id", "correct", "created_at")
        fetched = list(rows[:limit] if limit is not None else rows)
        fetched.reverse()
        return [(pk, item, correct, created.timestamp()) for pk, item, correct, created in fetched]

    def _extend(
        self, entry: _Entry, learner_id: int, n_attempts: int, last_attempt_id: int, snapshot: CurriculumSnapshot
    ) -> _Entry | None:
        rows = self._fetch(learner_id, entry.last_id, last_attempt_id, None)
        if not rows or rows[0] != entry.last_row:
            return None  # the last answer we hold is gone or is another attempt now
        fresh = rows[1:]
        if not fresh or fresh[-1][0] != last_attempt_id or entry.n_attempts + len(fresh) != n_attempts:
            return None  # answers were removed, or written out of order: read the log again
        self.stats["extend"] += 1
        outcomes = (entry.outcomes + tuple(_outcome(r, snapshot) for r in fresh))[-self.window :]
        ids = (entry.ids + tuple(r[0] for r in fresh))[-self.window :]
        return _Entry(n_attempts, last_attempt_id, snapshot.key, fresh[-1], outcomes, ids)

    def _rebuild(
        self, learner_id: int, n_attempts: int, last_attempt_id: int, snapshot: CurriculumSnapshot
    ) -> _Entry:
        self.stats["rebuild"] += 1
        rows = self._fetch(learner_id, 0, last_attempt_id, self.window)
        last = rows[-1] if rows else (0, 0, False, 0.0)
        outcomes = tuple(_outcome(r, snapshot) for r in rows)
        return _Entry(n_attempts, last_attempt_id, snapshot.key, last, outcomes, tuple(r[0] for r in rows))


def _outcome(row: Row, snapshot: CurriculumSnapshot) -> Outcome:
    _, item_id, correct, time = row
    info = snapshot.items_by_id.get(item_id)
    if info is None:
        return Outcome(item_id, (), correct, time, 0.0)
    return Outcome(item_id, info.skills, correct, time, info.difficulty)


cache = HistoryCache(size=settings.TUTOR_HISTORY_CACHE)  # the process's
