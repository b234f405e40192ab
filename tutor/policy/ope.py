"""Off-policy evaluation of a scheduling policy from a decision log: IPS, self-normalised IPS, doubly robust.

Each logged decision contributes the reward it earned, the logging propensity of the served item, the target
policy's probability of that item, and (for doubly robust) a reward model's prediction for the served item and
its expectation under the target policy. The value estimated is the expected reward per decision of the target
policy on the logged contexts (one-step, contextual-bandit value); a whole-trajectory value would need products
of ratios over hundreds of decisions and is not estimable this way.

Confidence intervals are percentile bootstraps; pass `groups` (the learner of each decision) to resample learners
rather than decisions, since a learner's decisions are not independent.

References: Horvitz & Thompson (1952); Swaminathan & Joachims (2015) for self-normalisation; Dudik, Langford & Li
(2011) for doubly robust estimation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LoggedDecisions:
    """Arrays over logged decisions, aligned."""

    reward: np.ndarray
    propensity: np.ndarray  # logging policy's probability of the served item
    target_prob: np.ndarray  # target policy's probability of the served item
    q_chosen: np.ndarray | None = None  # reward model at the served item
    q_target: np.ndarray | None = None  # sum over candidates of target prob x reward model

    def __post_init__(self) -> None:
        if np.any(self.propensity <= 0):
            raise ValueError("logging propensities must be positive for every logged decision")

    def __len__(self) -> int:
        return len(self.reward)

    @property
    def weights(self) -> np.ndarray:
        return np.asarray(self.target_prob / self.propensity)

    def take(self, rows: np.ndarray) -> LoggedDecisions:
        return LoggedDecisions(
            reward=self.reward[rows],
            propensity=self.propensity[rows],
            target_prob=self.target_prob[rows],
            q_chosen=None if self.q_chosen is None else self.q_chosen[rows],
            q_target=None if self.q_target is None else self.q_target[rows],
        )


def ips(data: LoggedDecisions) -> float:
    """Inverse propensity scoring: unbiased when logging propensities are right and cover the target's support."""
    return float(np.mean(data.weights * data.reward))


def snips(data: LoggedDecisions) -> float:
    """Self-normalised IPS: divides by the sum of weights; slightly biased, much lower variance."""
    w = data.weights
    total = float(w.sum())
    return float(np.sum(w * data.reward) / total) if total > 0 else float("nan")


def doubly_robust(data: LoggedDecisions) -> float:
    """Reward model's value under the target, corrected by importance-weighted residuals on the served items:
    unbiased if either the propensities or the reward model are right."""
    if data.q_chosen is None or data.q_target is None:
        raise ValueError("doubly robust estimation needs q_chosen and q_target")
    return float(np.mean(data.q_target + data.weights * (data.reward - data.q_chosen)))


ESTIMATORS: dict[str, Callable[[LoggedDecisions], float]] = {"ips": ips, "snips": snips, "dr": doubly_robust}


def effective_sample_size(data: LoggedDecisions) -> float:
    """Kish's effective sample size of the importance weights: how many on-policy samples the log is worth."""
    w = data.weights
    return float(w.sum() ** 2 / max(float((w * w).sum()), 1e-300))


def bootstrap_ci(
    estimator: Callable[[LoggedDecisions], float],
    data: LoggedDecisions,
    *,
    n_boot: int = 200,
    level: float = 0.95,
    groups: np.ndarray | None = None,
    random_state: int | np.random.Generator | None = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval, resampling decisions or, with `groups`, whole groups (learners)."""
    rng = np.random.default_rng(random_state)
    if groups is None:
        index = [np.arange(len(data))]
        members = index * 1
        units = len(data)
    else:
        _, inverse = np.unique(groups, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.flatnonzero(np.diff(inverse[order])) + 1
        members = np.split(order, bounds)
        units = len(members)
    values = np.empty(n_boot)
    for b in range(n_boot):
        pick = rng.integers(0, units, size=units)
        rows = pick if groups is None else np.concatenate([members[k] for k in pick])
        values[b] = estimator(data.take(rows))
    alpha = (1.0 - level) / 2.0
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1.0 - alpha))


def evaluate(
    data: LoggedDecisions,
    *,
    estimators: tuple[str, ...] | None = None,
    n_boot: int = 200,
    groups: np.ndarray | None = None,
    random_state: int = 0,
) -> dict[str, dict[str, float | list[float]]]:
    """Every estimator's value and bootstrap CI, plus the effective sample size."""
    names = estimators or tuple(k for k in ESTIMATORS if k != "dr" or data.q_chosen is not None)
    out: dict[str, dict[str, float | list[float]]] = {}
    for name in names:
        fn = ESTIMATORS[name]
        lo, hi = bootstrap_ci(fn, data, n_boot=n_boot, groups=groups, random_state=random_state)
        out[name] = {"value": fn(data), "ci95": [lo, hi]}
    out["ess"] = {"value": effective_sample_size(data)}
    return out
