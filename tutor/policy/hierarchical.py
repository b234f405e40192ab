"""A hierarchical scheduler: a high level chooses the sub-goal skill, a low level chooses the item within it.

High level (an "option" in the options framework): the open skills are those not yet held as done whose
prerequisites are held (mastery >= `unlock` on each). A skill is done when the tracer's mastery reaches `done`
or, if `run` > 0, when the learner's last `run` answers on it were all right (the skill-builder rule: BKT, blind
to item difficulty and fitted on noisy logs, can be slower to believe a streak than the streak deserves). When the teacher set targets
(`LearnerView.targets`) and some open skill is a target or a prerequisite of one, only those are eligible. The
policy keeps working on the skill of the learner's last answer while it is still open (commitment, so that a
sub-goal is pursued rather than re-decided every step) for at most `max_stint` answers; otherwise it picks the
eligible skill that the low level's model values most, ties going to the earlier skill of the syllabus.

Low level: within the sub-goal, two phases. While the tracer's mastery of the sub-goal is below `switch` the
learner is still learning it, and the item with the highest expected learning gain under a fitted
`PlannerPolicy` model is served (its item-fit term picks the difficulty for this learner). Above `switch` the
remaining exercises confirm mastery, and the item at the `confirm` quantile of the skill's difficulties is served
(0 = easiest: answered right more often, so the tracer reaches `done` sooner; 1 = hardest: a right answer is
stronger evidence in reality, though BKT cannot tell).

`done`, `unlock`, `switch` and `confirm` are learned by `tune`, a search that scores candidate settings with a
caller-given evaluation (the benchmark uses simulated learners of training seeds, never the evaluation seeds).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from typing import IO, Any, Self

import numpy as np

from tutor.policy.base import Candidate, Decision, LearnerView, Policy, epsilon_mix, grid_search
from tutor.policy.planner import PlannerPolicy


class HierarchicalPolicy(Policy):
    name = "hierarchical"

    def __init__(
        self,
        done: float = 0.95,
        unlock: float = 0.95,
        max_stint: int = 12,
        switch: float = 1.0,
        confirm: float = 0.5,
        run: int = 0,
        epsilon: float = 0.1,
        low: PlannerPolicy | None = None,
    ) -> None:
        self.done = done
        self.unlock = unlock
        self.max_stint = max_stint
        self.switch = switch
        self.confirm = confirm
        self.run = run
        self.epsilon = epsilon
        self.low = low

    def _low(self) -> PlannerPolicy:
        if self.low is None:
            raise ValueError("the hierarchical policy needs a fitted low-level planner (fit or load it)")
        return self.low

    def streaks(self, state: LearnerView) -> dict[int, int]:
        """Per skill, how many of the learner's latest answers on it were right in a row."""
        out: dict[int, int] = {}
        closed: set[int] = set()
        for o in reversed(state.history):
            if not o.skills:
                continue
            s = o.skills[0]
            if s in closed:
                continue
            if o.correct:
                out[s] = out.get(s, 0) + 1
                if out[s] >= self.run:
                    closed.add(s)
            else:
                out.setdefault(s, 0)
                closed.add(s)
        return out

    def sub_goal(self, candidates: Sequence[Candidate], state: LearnerView, values: np.ndarray) -> int:
        graph = state.graph
        m = state.mastery
        streak = self.streaks(state) if self.run > 0 else {}

        def done(s: int) -> bool:
            return m.get(s, 0.0) >= self.done or (self.run > 0 and streak.get(s, 0) >= self.run)

        def held(s: int) -> bool:
            return m.get(s, 0.0) >= self.unlock or (self.run > 0 and streak.get(s, 0) >= self.run)

        available = list(dict.fromkeys(c.skills[0] for c in candidates))
        open_skills = [s for s in available if not done(s) and all(held(p) for p in graph.prerequisites(s))]
        if state.targets:
            wanted = set(state.targets)
            for t in state.targets:
                if t in graph:
                    wanted |= graph.ancestors(t)
            preferred = [s for s in open_skills if s in wanted]
            if preferred:
                open_skills = preferred
        if not open_skills:
            # Everything reachable is done: consolidate the least certain skill.
            return min(available, key=lambda s: (m.get(s, 0.0), graph.rank(s)))
        if state.history:
            last = state.history[-1].skills[0] if state.history[-1].skills else None
            stint = 0
            for o in reversed(state.history):
                if not o.skills or o.skills[0] != last:
                    break
                stint += 1
            if last in open_skills and stint < self.max_stint:
                return last
        best: dict[int, float] = {}
        for c, v in zip(candidates, values, strict=True):
            s = c.skills[0]
            if s in open_skills:
                best[s] = max(best.get(s, -np.inf), float(v))
        return max(open_skills, key=lambda s: (round(best.get(s, -np.inf), 12), -graph.rank(s)))

    def distribution(self, candidates: Sequence[Candidate], state: LearnerView) -> np.ndarray:
        values = self._low().values(candidates, state)
        goal = self.sub_goal(candidates, state, values)
        eligible = np.array([c.skills[0] == goal for c in candidates])
        if state.mastery.get(goal, 0.0) < self.switch:
            v = np.where(eligible, values, -np.inf)
            return epsilon_mix(v >= v.max() - 1e-12, eligible, self.epsilon)
        diffs = np.array([c.difficulty for c in candidates])
        d_goal = np.sort(diffs[eligible])
        wanted = d_goal[int(round(self.confirm * (len(d_goal) - 1)))]
        gaps = np.where(eligible, np.abs(diffs - wanted), np.inf)
        return epsilon_mix(gaps <= gaps.min() + 1e-12, eligible, self.epsilon)

    def select(
        self, candidates: Sequence[Candidate], state: LearnerView, rng: np.random.Generator
    ) -> Decision:
        d = super().select(candidates, state, rng)
        goal = self.sub_goal(candidates, state, self._low().values(candidates, state))
        return Decision(d.item, d.propensity, d.probabilities, goal, {"sub_goal": goal})

    # -- learning -----------------------------------------------------------------------------------------
    def fit(self, low: PlannerPolicy) -> Self:
        self.low = low
        return self

    def tune(
        self,
        score: Callable[[HierarchicalPolicy], float],
        grid: dict[str, Sequence[float]] | None = None,
    ) -> Self:
        """Pick the thresholds that maximise `score(policy)` (e.g. minus exercises to mastery on training
        learners) over `grid`; keeps the scores in `tuning_`."""
        grid = grid or {"done": (0.9, 0.95), "confirm": (0.0, 1.0), "run": (0, 2, 3)}

        def complete(params: dict[str, Any]) -> dict[str, Any] | None:
            if "unlock" not in grid:
                params["unlock"] = params.get("done", self.done)  # a done skill unlocks its dependents
            if params.get("unlock", self.unlock) > params.get("done", self.done):
                return None  # a skill held done that does not unlock its dependents stalls the learner
            return params

        best, self.tuning_ = grid_search(
            grid, lambda p: HierarchicalPolicy(**{**self._hyper(), **p}, low=self.low), score, complete
        )
        for k, v in best.items():
            setattr(self, k, v)
        return self

    def _hyper(self) -> dict[str, Any]:
        return {
            "done": self.done,
            "unlock": self.unlock,
            "max_stint": self.max_stint,
            "switch": self.switch,
            "confirm": self.confirm,
            "run": self.run,
            "epsilon": self.epsilon,
        }

    def save(self, fp: IO[bytes]) -> None:
        buf = io.BytesIO()
        self._low().save(buf)
        doc = {"policy": self.name, "params": self._hyper(), "low": json.loads(buf.getvalue().decode())}
        fp.write(json.dumps(doc).encode())

    @classmethod
    def load(cls, fp: IO[bytes]) -> Self:
        doc = json.loads(fp.read().decode())
        low = PlannerPolicy.load(io.BytesIO(json.dumps(doc["low"]).encode()))
        return cls(**doc["params"], low=low)
