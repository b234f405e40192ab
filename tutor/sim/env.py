"""A population of simulated learners as the scheduler sees it: the simulator plus the BKT view of each learner.

`SchedulingEnv` is the one place where simulated answers meet the tracer, used both by the evaluation harness
(which asks a `Policy` per learner through the service's interface) and by training loops that act on arrays
(deep RL). Policies only ever get the tracker's arrays; `env.sim` (the true state) is for measurement and for the
reward that simulator-trained policies learn from.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from tutor.policy.base import Candidate, LearnerView, Outcome
from tutor.sim.course import Course
from tutor.sim.learners import Population, SimParams, SkillParams
from tutor.sim.tracking import BKTParams, PopulationTracker


@dataclass(frozen=True)
class Setting:
    """Everything the compared policies share: course, simulator, tracer parameters, candidate rule, horizon."""

    course: Course
    sim: SimParams
    bkt: BKTParams
    skill_params: SkillParams
    horizon: int = 200
    window: int = 3  # items served within the last `window` exercises are not candidates (the service's rule)
    history: int = 200  # answers passed to policies in `LearnerView.history`
    targets: frozenset[int] = field(default_factory=frozenset)


class SchedulingEnv:
    """n learners of one seed. `step(items)` serves one item per active learner and updates the view."""

    def __init__(self, setting: Setting, n_learners: int, seed: int) -> None:
        self.setting = setting
        self.course = setting.course
        self.n = n_learners
        self.sim = Population(
            setting.course, setting.sim, n_learners, seed, skill_params=setting.skill_params
        )
        self.tracker = PopulationTracker(setting.course, setting.bkt, n_learners, window=setting.window)
        self.t = 0
        self._histories: list[deque[Outcome]] = [deque(maxlen=setting.history) for _ in range(n_learners)]
        self.correct_count = np.zeros(n_learners, dtype=np.int64)
        self._skill_ids = setting.course.skill_ids
        self._item_ids = setting.course.item_ids
        self._item_skill_ids = tuple(
            tuple(self._skill_ids[s] for s in skills) for skills in setting.course.item_skills
        )
        self._difficulty = setting.course.difficulty.tolist()
        self._item_pos = {item: k for k, item in enumerate(self._item_ids)}

    @property
    def active(self) -> np.ndarray:
        return self.sim.state.active

    def candidates(self, row: int, p_correct: np.ndarray, mask: np.ndarray) -> list[Candidate]:
        pc = p_correct.tolist()
        ids, sk, diff = self._item_ids, self._item_skill_ids, self._difficulty
        return [Candidate(ids[i], sk[i], pc[i], diff[i]) for i in np.flatnonzero(mask).tolist()]

    def view(self, row: int) -> LearnerView:
        tr = self.tracker
        sids = self._skill_ids
        seen = tr.last_seen[row]
        recent = [self._item_ids[i] for i in tr.recent[row][::-1].tolist() if i >= 0]
        return LearnerView(
            graph=self.course.graph,
            mastery=dict(zip(sids, tr.mastery[row].tolist(), strict=True)),
            attempts=dict(zip(sids, tr.attempts[row].tolist(), strict=True)),
            recent_items=recent,
            targets=self.setting.targets,
            step=int(self.sim.state.steps[row]),
            last_seen={sids[s]: float(seen[s]) for s in np.flatnonzero(np.isfinite(seen)).tolist()},
            now=float(self.sim.state.time[row]),
            history=tuple(self._histories[row]),
        )

    def item_position(self, item: int) -> int:
        return self._item_pos[item]

    def step(self, items: np.ndarray) -> np.ndarray:
        """Serve `items[k]` (positions) to every active learner; returns correctness (False when inactive)."""
        rows = np.flatnonzero(self.sim.state.active)
        before = self.sim.state.time[rows].copy()
        correct = self.sim.step(items)
        self.tracker.update(rows, items[rows], correct[rows], before)
        self.correct_count[rows] += correct[rows]
        for r, i, c, t in zip(
            rows.tolist(), items[rows].tolist(), correct[rows].tolist(), before.tolist(), strict=True
        ):
            self._histories[r].append(
                Outcome(self._item_ids[i], self._item_skill_ids[i], c, t, self._difficulty[i])
            )
        self.t += 1
        return correct
