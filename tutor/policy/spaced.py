"""Mastery learning with spaced review of mastered skills.

BKT has no forgetting, so a mastered skill stays "mastered" in the service's view however long ago it was
practised. This policy keeps its own, deliberately simple memory model on top: a mastered skill's recall decays
as 2^(-days since last practice / half-life), the half-life doubling (`growth`) with each practice beyond the
first few (expanding intervals, as in Leitner boxes and Pimsleur's schedule). When some mastered skill's predicted
recall falls below `recall`, one review exercise on the weakest of them comes first; otherwise mastery learning.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tutor.policy.base import Candidate, Decision, LearnerView, MasteryLearningPolicy, epsilon_mix

DAY = 86400.0


class SpacedReviewPolicy(MasteryLearningPolicy):
    name = "spaced"

    def __init__(
        self,
        threshold: float = 0.95,
        target: float = 0.7,
        epsilon: float = 0.1,
        half_life_days: float = 2.0,
        growth: float = 1.6,
        recall: float = 0.6,
    ) -> None:
        super().__init__(threshold=threshold, target=target, epsilon=epsilon)
        self.half_life_days = half_life_days
        self.growth = growth
        self.recall = recall

    def predicted_recall(self, state: LearnerView, skill: int) -> float:
        seen = state.last_seen.get(skill)
        if seen is None:
            return 1.0
        n = max(state.attempts.get(skill, 1), 1)
        half_life = self.half_life_days * self.growth ** max(n - 3, 0)
        return float(2.0 ** (-max(state.now - seen, 0.0) / DAY / half_life))

    def review_skill(self, state: LearnerView, available: set[int]) -> int | None:
        due = [
            (self.predicted_recall(state, s), s)
            for s in available
            if state.mastery.get(s, 0.0) >= self.threshold
        ]
        due = [(r, s) for r, s in due if r < self.recall]
        return min(due)[1] if due else None

    def distribution(self, candidates: Sequence[Candidate], state: LearnerView) -> np.ndarray:
        available = {s for c in candidates for s in c.skills}
        review = self.review_skill(state, available)
        if review is None:
            return super().distribution(candidates, state)
        eligible = np.array([review in c.skills for c in candidates])
        gaps = np.array([abs(c.p_correct - self.target) for c in candidates])
        gaps[~eligible] = np.inf
        return epsilon_mix(gaps == gaps.min(), eligible, self.epsilon)

    def select(
        self, candidates: Sequence[Candidate], state: LearnerView, rng: np.random.Generator
    ) -> Decision:
        decision = super().select(candidates, state, rng)
        review = self.review_skill(state, {s for c in candidates for s in c.skills})
        if review is None:
            return decision
        return Decision(
            decision.item, decision.propensity, decision.probabilities, review, {"review_skill": review}
        )
