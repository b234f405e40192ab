"""The tracer interface shared by every knowledge tracer.

A tracer is fitted offline on an `AttemptLog` (columnar numpy arrays, one row per (attempt, skill)) and serves
online through `update(state, attempt)`, which must cost O(1) per answer. State is a JSON-able dict owned by the
tracer, so the service can store it in a JSON column without knowing which tracer made it. Parameters are saved
as explicit arrays (npz) or a torch state_dict, never as pickled objects.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, ClassVar, Self

import numpy as np

State = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One answer as the online update sees it; `timestamp` is in seconds, None when unknown."""

    item: int
    skills: tuple[int, ...]
    correct: bool
    timestamp: float | None = None


@dataclass(frozen=True, slots=True)
class Query:
    """An item the learner might be shown next: what `predict_next` scores."""

    item: int
    skills: tuple[int, ...]
    timestamp: float | None = None


@dataclass(frozen=True)
class AttemptLog:
    """Answers in chronological order per learner, one row per (attempt, skill).

    A problem tagged with several skills is several consecutive rows sharing `attempt`; tracers must predict all of
    them before updating on any, so the answer of one row never leaks into another (the harness checks this).
    `item` is -1 where the data has no item ids; `timestamp` is NaN where it has no times.
    """

    learner: np.ndarray  # int64
    item: np.ndarray  # int64
    skill: np.ndarray  # int64
    correct: np.ndarray  # int8, 0/1
    attempt: np.ndarray  # int64, rows of one problem attempt share it; increasing along the log
    timestamp: np.ndarray  # float64 seconds

    @classmethod
    def from_rows(
        cls,
        learner: Sequence[int] | np.ndarray,
        item: Sequence[int] | np.ndarray,
        skill: Sequence[int] | np.ndarray,
        correct: Sequence[int] | np.ndarray,
        attempt: Sequence[int] | np.ndarray | None = None,
        timestamp: Sequence[float] | np.ndarray | None = None,
    ) -> AttemptLog:
        n = len(learner)
        return cls(
            learner=np.asarray(learner, dtype=np.int64),
            item=np.asarray(item, dtype=np.int64),
            skill=np.asarray(skill, dtype=np.int64),
            correct=np.asarray(correct, dtype=np.int8),
            attempt=np.arange(n, dtype=np.int64) if attempt is None else np.asarray(attempt, dtype=np.int64),
            timestamp=np.full(n, np.nan) if timestamp is None else np.asarray(timestamp, dtype=np.float64),
        )

    def __len__(self) -> int:
        return int(self.learner.shape[0])

    def take(self, rows: np.ndarray) -> AttemptLog:
        return AttemptLog(
            learner=self.learner[rows],
            item=self.item[rows],
            skill=self.skill[rows],
            correct=self.correct[rows],
            attempt=self.attempt[rows],
            timestamp=self.timestamp[rows],
        )

    def attempt_starts(self) -> np.ndarray:
        """Index of the first row of each problem attempt, in log order."""
        if len(self) == 0:
            return np.zeros(0, dtype=np.int64)
        change = np.ones(len(self), dtype=bool)
        change[1:] = (self.attempt[1:] != self.attempt[:-1]) | (self.learner[1:] != self.learner[:-1])
        return np.flatnonzero(change)

    def attempts(self) -> Iterator[tuple[int, Attempt]]:
        """(learner, Attempt) per problem attempt in log order: how the service replays a log."""
        starts = self.attempt_starts()
        ends = np.append(starts[1:], len(self))
        for s, e in zip(starts, ends, strict=True):
            ts = float(self.timestamp[s])
            yield (
                int(self.learner[s]),
                Attempt(
                    item=int(self.item[s]),
                    skills=tuple(int(k) for k in self.skill[s:e]),
                    correct=bool(self.correct[s]),
                    timestamp=None if np.isnan(ts) else ts,
                ),
            )


class Tracer(ABC):
    """Base class: scikit-learn conventions (hyperparameters in __init__, learned attributes end in `_`)."""

    name: ClassVar[str]

    @abstractmethod
    def fit(self, log: AttemptLog) -> Self:
        """Learn parameters from a log; returns self."""

    @abstractmethod
    def predict(self, log: AttemptLog) -> np.ndarray:
        """P(correct) of each problem attempt (aligned with `log.attempt_starts()`), given only earlier answers of
        the same learner within `log`."""

    @abstractmethod
    def init_state(self) -> State:
        """The state of a learner with no answers yet."""

    @abstractmethod
    def update(self, state: State, attempt: Attempt) -> State:
        """Fold one answer into a learner's state in O(1); may mutate and return `state`."""

    @abstractmethod
    def predict_next(self, state: State, query: Query) -> float:
        """P(correct) if the learner in `state` answered `query` now."""

    def predict_next_many(self, state: State, queries: Sequence[Query]) -> list[float]:
        """`predict_next` for every query (the scheduler's candidate set); tracers override it where items can
        share work."""
        return [self.predict_next(state, q) for q in queries]

    @abstractmethod
    def mastery(self, state: State, skill: int) -> float:
        """P(the skill is mastered), or the tracer's closest equivalent, in [0, 1]."""

    @abstractmethod
    def save(self, fp: IO[bytes]) -> None:
        """Write the fitted parameters as explicit arrays (npz or a torch state_dict)."""

    @classmethod
    @abstractmethod
    def load(cls, fp: IO[bytes]) -> Self:
        """Read what `save` wrote."""
