"""Off-policy evaluation of a scheduling policy from a decision log: IPS, self-normalised IPS, doubly robust.

Each logged decision contributes the reward it earned, the logging propensity of the served item, the target
policy's probability of that item, and (for doubly robust) a reward model's prediction for the served item and
its expectation under the target policy. The value estimated is the expected reward per decision of the target
policy on the logged contexts (one-step, contextual-bandit value); a whole-trajectory value would need products
of ratios over hundreds of decisions and is not estimable this way.

Items cluster by skill. A policy that is nearly deterministic over items (a fixed syllabus that picks one item of
one skill) matches the logged item rarely, so item-level weights are large and few. The clustered doubly robust
estimator (`cdr`; OffCEM, Saito, Udagawa & Joachims 2023) weighs only the choice of the cluster, the served item's
skill, and leaves the differences between items of one skill to the reward model: it is unbiased when the model
gets those differences right (local correctness), with weights several times smaller. `AnswerRewardModel` is a
model made for it: the reward, the tracer's gain, is one of two values known before the answer (up if right, down
if wrong), so only P(right | context, item) is learned, and within a skill items differ by difficulty alone.

Confidence intervals are percentile bootstraps; pass `groups` (the learner of each decision) to resample learners
rather than decisions, since a learner's decisions are not independent.

References: Horvitz & Thompson (1952); Swaminathan & Joachims (2015) for self-normalisation; Dudik, Langford & Li
(2011) for doubly robust estimation; Saito, Udagawa & Joachims (2023), "Off-policy evaluation for large action
spaces via conjunct effect modeling", for the clustered estimator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LoggedDecisions:
    """Arrays over logged decisions, aligned."""

    reward: np.ndarray
    propensity: np.ndarray  # logging policy's probability of the served item
    target_prob: np.ndarray  # target policy's probability of the served item
    q_chosen: np.ndarray | None = None  # reward model at the served item
    q_target: np.ndarray | None = None  # sum over candidates of target prob x reward model
    cluster_propensity: np.ndarray | None = None  # logging probability of the served item's cluster (its skill)
    cluster_target_prob: np.ndarray | None = None  # target policy's probability of that cluster

    def __post_init__(self) -> None:
        if np.any(self.propensity <= 0):
            raise ValueError("logging propensities must be positive for every logged decision")
        if (self.cluster_propensity is None) != (self.cluster_target_prob is None):
            raise ValueError("cluster_propensity and cluster_target_prob go together")
        if self.cluster_propensity is not None and np.any(self.cluster_propensity < self.propensity - 1e-12):
            raise ValueError("a cluster's logging probability cannot be below that of its served item")

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
            cluster_propensity=None if self.cluster_propensity is None else self.cluster_propensity[rows],
            cluster_target_prob=None if self.cluster_target_prob is None else self.cluster_target_prob[rows],
        )


# Every estimator is a ratio of sums over decisions, sum(a) / sum(b); the terms are what the bootstrap resamples.
Terms = tuple[np.ndarray, np.ndarray]


def _ips_terms(data: LoggedDecisions) -> Terms:
    return data.weights * data.reward, np.ones(len(data))


def _snips_terms(data: LoggedDecisions) -> Terms:
    w = data.weights
    return w * data.reward, w


def _model_columns(data: LoggedDecisions, name: str) -> tuple[np.ndarray, np.ndarray]:
    if data.q_chosen is None or data.q_target is None:
        raise ValueError(f"{name} estimation needs q_chosen and q_target")
    return data.q_chosen, data.q_target


def _dr_terms(data: LoggedDecisions) -> Terms:
    q_chosen, q_target = _model_columns(data, "doubly robust")
    return q_target + data.weights * (data.reward - q_chosen), np.ones(len(data))


def _cdr_terms(data: LoggedDecisions) -> Terms:
    q_chosen, q_target = _model_columns(data, "clustered doubly robust")
    if data.cluster_propensity is None or data.cluster_target_prob is None:
        raise ValueError("clustered doubly robust estimation needs cluster_propensity and cluster_target_prob")
    w = data.cluster_target_prob / data.cluster_propensity
    return q_target + w * (data.reward - q_chosen), np.ones(len(data))


def _ratio(terms: Terms) -> float:
    a, b = terms
    total = float(b.sum())
    return float(a.sum() / total) if total > 0 else float("nan")


def ips(data: LoggedDecisions) -> float:
    """Inverse propensity scoring: unbiased when logging propensities are right and cover the target's support."""
    return _ratio(_ips_terms(data))


def snips(data: LoggedDecisions) -> float:
    """Self-normalised IPS: divides by the sum of weights; slightly biased, much lower variance."""
    return _ratio(_snips_terms(data))


def doubly_robust(data: LoggedDecisions) -> float:
    """Reward model's value under the target, corrected by importance-weighted residuals on the served items:
    unbiased if either the propensities or the reward model are right."""
    return _ratio(_dr_terms(data))


def clustered_dr(data: LoggedDecisions) -> float:
    """Doubly robust with the importance weight of the served item's cluster (its skill) instead of the item's:
    the reward model's value under the target, plus the cluster-weighted residual of the served item."""
    return _ratio(_cdr_terms(data))


ESTIMATORS: dict[str, Callable[[LoggedDecisions], float]] = {
    "ips": ips,
    "snips": snips,
    "dr": doubly_robust,
    "cdr": clustered_dr,
}
_TERMS: dict[Callable[[LoggedDecisions], float], Callable[[LoggedDecisions], Terms]] = {
    ips: _ips_terms,
    snips: _snips_terms,
    doubly_robust: _dr_terms,
    clustered_dr: _cdr_terms,
}


def applicable(data: LoggedDecisions) -> tuple[str, ...]:
    """The estimators this data supports: the model-based ones need the reward model's columns, `cdr` clusters."""
    out = ["ips", "snips"]
    if data.q_chosen is not None and data.q_target is not None:
        out.append("dr")
        if data.cluster_propensity is not None:
            out.append("cdr")
    return tuple(out)


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
    """Percentile bootstrap interval, resampling decisions or, with `groups`, whole groups (learners).

    The estimators of this module are ratios of sums, so a resample is the sums of each group weighted by how
    often it was drawn: O(groups) per resample, whatever the number of decisions. Any other estimator is run on
    the resampled rows."""
    rng = np.random.default_rng(random_state)
    if groups is None:
        inverse = np.arange(len(data))
        units = len(data)
    else:
        _, inverse = np.unique(groups, return_inverse=True)
        units = int(inverse.max()) + 1 if len(inverse) else 0
    values = np.empty(n_boot)
    terms_of = _TERMS.get(estimator)
    if terms_of is not None:
        a, b = terms_of(data)
        sum_a = np.bincount(inverse, weights=a, minlength=units)
        sum_b = np.bincount(inverse, weights=b, minlength=units)
        for k in range(n_boot):
            drawn = np.bincount(rng.integers(0, units, size=units), minlength=units)
            total = float(drawn @ sum_b)
            values[k] = float(drawn @ sum_a) / total if total > 0 else np.nan
    else:
        order = np.argsort(inverse, kind="stable")
        members = np.split(order, np.flatnonzero(np.diff(inverse[order])) + 1)
        for k in range(n_boot):
            pick = rng.integers(0, units, size=units)
            values[k] = estimator(data.take(np.concatenate([members[j] for j in pick])))
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
    names = estimators or applicable(data)
    out: dict[str, dict[str, float | list[float]]] = {}
    for name in names:
        fn = ESTIMATORS[name]
        lo, hi = bootstrap_ci(fn, data, n_boot=n_boot, groups=groups, random_state=random_state)
        out[name] = {"value": fn(data), "ci95": [lo, hi]}
    out["ess"] = {"value": effective_sample_size(data)}
    if "cdr" in out and "dr" in out:
        pick = select_estimator(out, ("cdr", "dr"))
        out["selected"] = {"estimator": pick, **out[pick]}  # type: ignore[dict-item]
    if data.cluster_propensity is not None and data.cluster_target_prob is not None:
        clustered = replace(data, propensity=data.cluster_propensity, target_prob=data.cluster_target_prob)
        out["ess_clustered"] = {"value": effective_sample_size(clustered)}
    return out


def select_estimator(results: dict[str, dict[str, Any]], order: tuple[str, ...]) -> str:
    """Lepski-style choice between estimators ordered from the least variance to the least bias (SLOPE, Su,
    Srinath & Krishnamurthy 2020): the first whose 95% interval overlaps the interval of every later one. The
    clustered estimator is taken unless the unclustered one's interval says its bias shows."""
    for k, name in enumerate(order):
        lo, hi = results[name]["ci95"]
        if all(lo <= results[o]["ci95"][1] and results[o]["ci95"][0] <= hi for o in order[k + 1 :]):
            return name
    return order[-1]


class AnswerRewardModel:
    """Reward model for a reward that is `up` after a right answer and `down` after a wrong one, both known before
    the answer (the tracer's gain): q = down + (up - down) P(right), with P(right) a logistic regression on the
    candidate features (standardised) plus the logit of a prediction column (the tracer's P(correct))."""

    def __init__(self, p_column: int | None = None, c: float = 1.0) -> None:
        self.p_column = p_column
        self.c = c

    def _design(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.p_column is None:
            return x
        p = np.clip(x[:, self.p_column], 1e-4, 1 - 1e-4)
        return np.column_stack([x, np.log(p / (1 - p))])

    def fit(self, x: np.ndarray, correct: np.ndarray) -> AnswerRewardModel:
        z = self._design(x)
        self.mean_ = z.mean(axis=0)
        self.scale_ = z.std(axis=0)
        self.scale_[self.scale_ < 1e-9] = 1.0
        y = np.asarray(correct, dtype=bool)
        if y.all() or not y.any():
            raise ValueError("correct: the log needs both right and wrong answers to fit P(right)")
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=self.c, max_iter=1000).fit((z - self.mean_) / self.scale_, y)
        self.coef_ = lr.coef_[0].astype(np.float64)
        self.intercept_ = float(lr.intercept_[0])
        return self

    def p_right(self, x: np.ndarray) -> np.ndarray:
        eta = ((self._design(x) - self.mean_) / self.scale_) @ self.coef_ + self.intercept_
        return np.asarray(1.0 / (1.0 + np.exp(-eta)))

    def predict(self, x: np.ndarray, up: np.ndarray, down: np.ndarray) -> np.ndarray:
        return np.asarray(down + (up - down) * self.p_right(x))
