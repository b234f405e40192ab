"""ZPDES: a learning-progress bandit over a zone of proximal development (Clement, Roy, Oudeyer & Lopes 2015,
"Multi-armed bandits for intelligent tutoring systems", JEDM 7(2)).

Activities are skills. The zone of proximal development (ZPD) holds the skills whose prerequisites the learner
has shown they can do (recent success rate >= `unlock` on each) and that are not yet done (recent success rate
>= `done` retires a skill). Inside the ZPD a skill is drawn with probability proportional to its learning
progress, the absolute difference between the success rate of the latest `window/2` answers and of the
`window/2` before them, mixed with `gamma` uniform exploration; skills with too few answers get the optimistic
quality `w0` so that new activities are tried. Within a skill, the difficulty grows with the recent success rate
(the paper's second ZPD dimension, collapsed to a target quantile of the skill's items).

Like the paper, it ignores the tracer: it reads only the learner's recent answers (`LearnerView.history`), so it
needs the service to pass them. The distribution is a pure function of the view, which makes it loggable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tutor.policy.base import Candidate, LearnerView, Policy


class ZPDESPolicy(Policy):
    name = "zpdes"

    def __init__(
        self,
        window: int = 6,
        unlock: float = 0.7,
        done: float = 0.85,
        gamma: float = 0.2,
        w0: float = 0.3,
        epsilon: float = 0.05,
    ) -> None:
        self.window = window
        self.unlock = unlock
        self.done = done
        self.gamma = gamma
        self.w0 = w0
        self.epsilon = epsilon

    def _outcomes(self, state: LearnerView) -> dict[int, list[bool]]:
        per_skill: dict[int, list[bool]] = {}
        for o in state.history:
            for s in o.skills:
                per_skill.setdefault(s, []).append(o.correct)
        return per_skill

    def skill_weights(self, state: LearnerView, available: Sequence[int]) -> dict[int, float]:
        """Sampling weight of each available skill (0 outside the ZPD)."""
        graph = state.graph
        outcomes = self._outcomes(state)
        w = self.window

        def rate(s: int) -> float:
            ys = outcomes.get(s, [])[-w:]
            return sum(ys) / len(ys) if len(ys) >= min(3, w) else 0.0

        def retired(s: int) -> bool:
            ys = outcomes.get(s, [])
            # Retired once any full window reached the `done` rate (ZPDES removes mastered activities for good).
            return any(sum(ys[i - w : i]) / w >= self.done for i in range(w, len(ys) + 1))

        status = {s: retired(s) for s in available}
        zpd = [
            s
            for s in available
            if not status[s]
            and all(status.get(p, retired(p)) or rate(p) >= self.unlock for p in graph.prerequisites(s))
        ]
        if not zpd:
            # Everything reachable is retired: review the skills with the lowest recent success.
            low = min(available, key=lambda s: (rate(s), graph.rank(s)))
            return {low: 1.0}
        quality: dict[int, float] = {}
        half = w // 2
        for s in zpd:
            ys = outcomes.get(s, [])
            if len(ys) < w:
                quality[s] = self.w0
            else:
                recent = sum(ys[-half:]) / half
                before = sum(ys[-w:-half]) / (w - half)
                quality[s] = abs(recent - before)
        total = sum(quality.values())
        k = len(zpd)
        return {
            s: (1 - self.gamma) * (quality[s] / total if total > 0 else 1.0 / k) + self.gamma / k for s in zpd
        }

    def distribution(self, candidates: Sequence[Candidate], state: LearnerView) -> np.ndarray:
        available = list(dict.fromkeys(s for c in candidates for s in c.skills[:1]))
        weights = self.skill_weights(state, available)
        outcomes = self._outcomes(state)
        probs = np.zeros(len(candidates))
        skill_of = np.array([c.skills[0] for c in candidates])
        diffs = np.array([c.difficulty for c in candidates])
        for s, ws in weights.items():
            idx = np.flatnonzero(skill_of == s)
            if len(idx) == 0:
                continue
            ys = outcomes.get(s, [])[-self.window :]
            level = (sum(ys) + 0.5) / (len(ys) + 1.0)  # harder items as the success rate rises
            order = np.argsort(np.argsort(diffs[idx]))
            quantile = order / max(len(idx) - 1, 1)
            closeness = np.exp(-(((quantile - level) / 0.25) ** 2))
            probs[idx] += ws * closeness / closeness.sum()
        probs /= probs.sum()
        return (1 - self.epsilon) * probs + self.epsilon / len(candidates)
