"""The policy's view of simulated learners: BKT filtering over a whole population at once.

The service keeps BKT mastery per skill, updated by the active tracer on every answer; the harness must give
policies the same view, so this module applies the same update (posterior given the answer, then the learning
transition) to arrays of learners. `tests/test_sim_tracking.py` checks it against `learners.tracing.bkt` answer
by answer, so "exactly as the service would" is a tested claim rather than a hope.

Multi-skill items follow the tracer's convention: each skill of the item is updated as if the answer were about
that skill alone, and the predicted success of the item is the product over its skills (conjunctive).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from tutor.sim.course import Course


@dataclass(frozen=True)
class BKTParams:
    """Per-skill BKT parameters in course skill positions."""

    prior: np.ndarray
    learn: np.ndarray
    guess: np.ndarray
    slip: np.ndarray
    forget: np.ndarray

    @classmethod
    def constant(
        cls,
        n_skills: int,
        prior: float = 0.3,
        learn: float = 0.15,
        guess: float = 0.2,
        slip: float = 0.1,
        forget: float = 0.0,
    ) -> Self:
        def full(v: float) -> np.ndarray:
            return np.full(n_skills, v, dtype=np.float64)

        return cls(full(prior), full(learn), full(guess), full(slip), full(forget))

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k).tolist() for k in ("prior", "learn", "guess", "slip", "forget")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls(
            **{
                k: np.asarray(data[k], dtype=np.float64)
                for k in ("prior", "learn", "guess", "slip", "forget")
            }
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def bkt_posterior(p: np.ndarray, correct: np.ndarray, guess: np.ndarray, slip: np.ndarray) -> np.ndarray:
    """P(known | answer) by Bayes' rule."""
    hit = p * (1.0 - slip)
    miss = p * slip
    return np.asarray(
        np.where(correct, hit / (hit + (1.0 - p) * guess), miss / (miss + (1.0 - p) * (1.0 - guess)))
    )


def bkt_transition(p: np.ndarray, learn: np.ndarray, forget: np.ndarray) -> np.ndarray:
    return np.asarray(p * (1.0 - forget) + (1.0 - p) * learn)


class PopulationTracker:
    """BKT mastery, attempt counts, last practice time and recent items for n learners on one course."""

    def __init__(self, course: Course, params: BKTParams, n_learners: int, *, window: int = 3) -> None:
        self.course = course
        self.params = params
        self.n = n_learners
        self.window = window
        s = course.n_skills
        self.mastery = np.tile(params.prior, (n_learners, 1)).astype(np.float64)
        self.attempts = np.zeros((n_learners, s), dtype=np.int64)
        self.last_seen = np.full((n_learners, s), -np.inf)
        self.recent = np.full((n_learners, window), -1, dtype=np.int64)  # item positions, newest last
        self._single = all(len(x) == 1 for x in course.item_skills)
        self._primary = course.primary_skill
        self._q = course.q_matrix.astype(np.float64)

    def p_correct(self, rows: np.ndarray | None = None) -> np.ndarray:
        """(len(rows), I) the tracer's P(correct) of every item."""
        m = self.mastery if rows is None else self.mastery[rows]
        pr = self.params
        per_skill = m * (1.0 - pr.slip)[None, :] + (1.0 - m) * pr.guess[None, :]
        if self._single:
            return np.asarray(per_skill[:, self._primary])
        return np.asarray(np.exp(np.log(np.clip(per_skill, 1e-12, 1.0)) @ self._q.T))

    def candidate_mask(self, rows: np.ndarray | None = None) -> np.ndarray:
        """(len(rows), I) items not served within the last `window` exercises: the candidate set."""
        rec = self.recent if rows is None else self.recent[rows]
        mask = np.ones((len(rec), self.course.n_items), dtype=bool)
        r, c = np.nonzero(rec >= 0)
        mask[r, rec[r, c]] = False
        return mask

    def update(self, rows: np.ndarray, items: np.ndarray, correct: np.ndarray, now: np.ndarray) -> None:
        """Fold one answer per learner in `rows` into the view (the BKT update the service does)."""
        pr = self.params
        if self._single:
            s = self._primary[items]
            post = bkt_posterior(self.mastery[rows, s], correct, pr.guess[s], pr.slip[s])
            self.mastery[rows, s] = bkt_transition(post, pr.learn[s], pr.forget[s])
            self.attempts[rows, s] += 1
            self.last_seen[rows, s] = now
        else:
            for r, i, c, t in zip(rows, items, correct, now, strict=True):
                sk = np.array(self.course.item_skills[i], dtype=np.int64)
                post = bkt_posterior(self.mastery[r, sk], np.full(len(sk), c), pr.guess[sk], pr.slip[sk])
                self.mastery[r, sk] = bkt_transition(post, pr.learn[sk], pr.forget[sk])
                self.attempts[r, sk] += 1
                self.last_seen[r, sk] = t
        self.recent[rows, :-1] = self.recent[rows, 1:]
        self.recent[rows, -1] = items


def bkt_params_from_tracer(tracer: Any, course: Course) -> BKTParams:
    """Per-skill parameters of a fitted `learners.tracing.bkt.BKT` (its defaults for skills it never saw)."""
    rows = [tracer.params_for(sid) for sid in course.skill_ids]
    return BKTParams(
        **{
            k: np.array([r[k] for r in rows], dtype=np.float64)
            for k in ("prior", "learn", "guess", "slip", "forget")
        }
    )
