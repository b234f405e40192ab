"""Non-learning baselines: uniform random and a fixed expert syllabus.

They are here so that gains of adaptive policies are measured against something honest: random shows what any
sequencing is worth, the fixed order is what a textbook does (prerequisites first, a set number of exercises per
skill from easy to hard, whatever the answers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tutor.policy.base import Candidate, LearnerView, Policy, epsilon_mix


class RandomPolicy(Policy):
    """Uniform over the candidates."""

    name = "random"

    def distribution(self, candidates: Sequence[Candidate], state: LearnerView) -> np.ndarray:
        return np.full(len(candidates), 1.0 / len(candidates))


class ExpertOrderPolicy(Policy):
    """A fixed syllabus: skills in topological order, `per_skill` exercises each, items from easy to hard.

    Progress is counted from `state.attempts`, so the order ignores correctness entirely. Once every skill has had
    its share, it keeps cycling through the least-practised skill.
    """

    name = "expert"

    def __init__(self, per_skill: int = 8, epsilon: float = 0.1) -> None:
        self.per_skill = per_skill
        self.epsilon = epsilon

    def focus_skill(self, state: LearnerView, available: set[int]) -> int:
        order = [s for s in state.graph.order if s in available]
        for s in order:
            if state.attempts.get(s, 0) < self.per_skill:
                return s
        return min(order, key=lambda s: (state.attempts.get(s, 0), state.graph.rank(s)))

    def distribution(self, candidates: Sequence[Candidate], state: LearnerView) -> np.ndarray:
        available = {s for c in candidates for s in c.skills}
        focus = self.focus_skill(state, available)
        eligible = np.array([focus in c.skills for c in candidates])
        # Easy to hard: the k-th exercise on the skill goes to the item at the k-th quantile of difficulty.
        diffs = np.array([c.difficulty for c in candidates])
        d_elig = np.sort(diffs[eligible])
        frac = min(state.attempts.get(focus, 0) / max(self.per_skill - 1, 1), 1.0)
        wanted = d_elig[int(round(frac * (len(d_elig) - 1)))]
        gaps = np.where(eligible, np.abs(diffs - wanted), np.inf)
        return epsilon_mix(gaps == gaps.min(), eligible, self.epsilon)


class ExploringPolicy(Policy):
    """Another policy mixed with uniform exploration over every candidate: (1 - epsilon) * base + epsilon / n.

    This is the logging policy that off-policy evaluation needs: every candidate keeps a propensity of at least
    epsilon / n, whatever the base policy does (mastery learning alone explores only within its focus skill).
    """

    name = "explore"

    def __init__(self, base: str | Policy = "mastery", epsilon: float = 0.3, **base_params: Any) -> None:
        from tutor.policy.base import make_policy

        self.base = make_policy(base, **base_params) if isinstance(base, str) else base
        self.epsilon = epsilon

    def distribution(self, candidates: Sequence[Candidate], state: LearnerView) -> np.ndarray:
        p = self.base.distribution(candidates, state)
        return np.asarray((1 - self.epsilon) * p + self.epsilon / len(candidates))
