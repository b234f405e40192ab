"""A contextual bandit whose reward is the measured learning gain.

The value of serving a candidate is modelled as a ridge regression on `features.candidate_features` (mastery,
readiness, difficulty relative to an ability proxy, ...). It is fitted offline on the decision log: each logged
decision's features with its reward. Two rewards are supported:

* ``"later"`` (default): correctness of the learner's next attempt on the same skill minus the tracer's predicted
  success at the decision. It credits an item for what the learner can do afterwards, so an easy item answered
  correctly earns nothing by itself.
* ``"gain"``: the immediate change of the tracer's mastery. Cheap and dense, but BKT ignores item difficulty, so
  an easy item answered correctly looks like learning; the bandit then learns to serve easy items. Kept because
  the issue names it and because the comparison shows why ``"later"`` is the default.

Serving is greedy on the predicted reward with `epsilon` uniform exploration, so every candidate has a logged
propensity of at least epsilon/|candidates|. Optional importance weights (the inverse of the logging propensity,
clipped) fit the model for the target rather than the logging distribution of actions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import IO, Any, Self

import numpy as np

from tutor.policy.base import Candidate, LearnerView, Policy, epsilon_mix
from tutor.policy.features import FEATURE_NAMES, at_difficulty, candidate_features


class RidgeModel:
    """Weighted ridge regression with standardised features; parameters are plain arrays."""

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def fit(self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> Self:
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        self.mean_ = np.average(x, axis=0, weights=w)
        self.mean_[0] = 0.0  # the bias column stays a bias
        self.scale_ = np.sqrt(np.average((x - self.mean_) ** 2, axis=0, weights=w))
        self.scale_[self.scale_ < 1e-9] = 1.0
        z = (x - self.mean_) / self.scale_
        a = (z * w[:, None]).T @ z + self.alpha * np.eye(z.shape[1])
        a[0, 0] -= self.alpha  # do not shrink the bias
        self.coef_ = np.linalg.solve(a, (z * w[:, None]).T @ y)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(((x - self.mean_) / self.scale_) @ self.coef_)

    def to_dict(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "mean": self.mean_.tolist(),
            "scale": self.scale_.tolist(),
            "coef": self.coef_.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RidgeModel:
        m = cls(alpha=float(data["alpha"]))
        m.mean_ = np.asarray(data["mean"], dtype=np.float64)
        m.scale_ = np.asarray(data["scale"], dtype=np.float64)
        m.coef_ = np.asarray(data["coef"], dtype=np.float64)
        return m


class ContextualBanditPolicy(Policy):
    name = "bandit"

    def __init__(
        self,
        epsilon: float = 0.1,
        alpha: float = 10.0,
        reward: str = "later",
        weight_clip: float = 20.0,
        importance_weighted: bool = False,
    ) -> None:
        self.epsilon = epsilon
        self.alpha = alpha
        self.reward = reward
        self.weight_clip = weight_clip
        self.importance_weighted = importance_weighted

    def fit(self, features: np.ndarray, reward: np.ndarray, propensity: np.ndarray | None = None) -> Self:
        """Fit on logged decisions: features of the chosen candidates, their rewards (NaN rows are skipped) and
        optionally the logging propensities. See `later_gain` for the default reward."""
        ok = np.isfinite(reward)
        w = None
        if self.importance_weighted and propensity is not None:
            w = np.minimum(1.0 / np.maximum(propensity[ok], 1e-6), self.weight_clip)
        self.model_ = RidgeModel(self.alpha).fit(features[ok], reward[ok], w)
        return self

    @staticmethod
    def uplift_targets(
        features: np.ndarray,
        skill_features: np.ndarray,
        learner: np.ndarray,
        skill: np.ndarray,
        correct: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Training rows for the "later" reward from a log in chronological order per learner.

        Returns (x_treated, y_treated, x_control, y_control): for each decision, the chosen candidate's features
        with the success of the next attempt on its skill; and for each other skill (features of a typical item
        of it at that decision) the success of the next attempt on that skill. Under an exploring logging
        policy the difference of the two regressions is the effect of practising now.
        """
        n, n_skills, _ = skill_features.shape
        next_on = np.full((n, n_skills), -1, dtype=np.int64)
        last: dict[tuple[int, int], int] = {}
        upcoming = np.full(n_skills, -1, dtype=np.int64)
        current = -1
        for k in range(n - 1, -1, -1):
            if int(learner[k]) != current:
                current = int(learner[k])
                upcoming[:] = -1
            next_on[k] = upcoming
            upcoming[int(skill[k])] = k
        del last
        own = next_on[np.arange(n), skill]
        t_ok = own >= 0
        x_t = features[t_ok]
        y_t = correct[own[t_ok]].astype(np.float64)
        mask = (next_on >= 0) & np.isfinite(skill_features[:, :, 0])
        mask[np.arange(n), skill] = False
        rows, cols = np.nonzero(mask)
        x_c = at_difficulty(skill_features[rows, cols].astype(np.float64), 0.0)
        y_c = correct[next_on[rows, cols]].astype(np.float64)
        return x_t, y_t, x_c, y_c

    def fit_uplift(
        self,
        features: np.ndarray,
        skill_features: np.ndarray,
        learner: np.ndarray,
        skill: np.ndarray,
        correct: np.ndarray,
    ) -> Self:
        """Fit the "later" reward: success after practising minus success without (see `uplift_targets`)."""
        x_t, y_t, x_c, y_c = self.uplift_targets(features, skill_features, learner, skill, correct)
        self.model_ = RidgeModel(self.alpha).fit(x_t, y_t)
        self.control_ = RidgeModel(self.alpha).fit(x_c, y_c)
        return self

    def scores(self, candidates: Sequence[Candidate], state: LearnerView) -> np.ndarray:
        x = candidate_features(candidates, state)
        q = self.model_.predict(x)
        control = getattr(self, "control_", None)
        if control is not None:
            q = q - control.predict(at_difficulty(x, 0.0))
        return q

    def distribution(self, candidates: Sequence[Candidate], state: LearnerView) -> np.ndarray:
        q = self.scores(candidates, state)
        return epsilon_mix(q >= q.max() - 1e-12, np.ones(len(candidates), dtype=bool), self.epsilon)

    def save(self, fp: IO[bytes]) -> None:
        doc = {
            "policy": self.name,
            "params": {
                k: getattr(self, k)
                for k in ("epsilon", "alpha", "reward", "weight_clip", "importance_weighted")
            },
            "features": list(FEATURE_NAMES),
            "model": self.model_.to_dict(),
            "control": self.control_.to_dict() if getattr(self, "control_", None) is not None else None,
        }
        fp.write(json.dumps(doc).encode())

    @classmethod
    def load(cls, fp: IO[bytes]) -> Self:
        doc = json.loads(fp.read().decode())
        if doc["features"] != list(FEATURE_NAMES):
            raise ValueError("saved bandit uses a different feature set")
        policy = cls(**doc["params"])
        policy.model_ = RidgeModel.from_dict(doc["model"])
        if doc.get("control") is not None:
            policy.control_ = RidgeModel.from_dict(doc["control"])
        return policy
