"""Leak-proof evaluation of knowledge tracers: splits by learner, one prediction per problem attempt, metrics.

The rules, which every tracer is held to in the same way:
- train and test never share a learner (k-fold over learners, or a dataset's fixed train/test split);
- a problem attempt counts once, with the label of the attempt, however many skill rows it was expanded into;
- `leak_check` flips the label of an attempt and of everything after it and verifies that the predictions up to and
  including that attempt do not move, which catches a tracer that reads the answer it is predicting (the trap
  of multi-skill rows in assist2009_pid: AUC jumps to about .89).
Seeds are fixed so that two runs split and sample identically.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from learners.tracing.base import AttemptLog, Tracer
from learners.tracing.data import Dataset, concat

SEED = 20240607


@dataclass(frozen=True)
class Split:
    name: str
    train: AttemptLog
    test: AttemptLog


def _learners_rows(log: AttemptLog, learners: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.isin(log.learner, learners))


def learner_folds(log: AttemptLog, k: int, *, seed: int = SEED) -> list[np.ndarray]:
    """k disjoint sets of learner ids covering all learners, shuffled with `seed`."""
    if k < 2:
        raise ValueError("k-fold needs k >= 2")
    learners = np.unique(log.learner)
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(learners)
    return [np.sort(part) for part in np.array_split(shuffled, k)]


def kfold_splits(log: AttemptLog, k: int = 5, *, seed: int = SEED) -> list[Split]:
    """k train/test splits by learner: test fold i, train on the others."""
    folds = learner_folds(log, k, seed=seed)
    out = []
    for i, test_learners in enumerate(folds):
        test_rows = _learners_rows(log, test_learners)
        train_rows = np.setdiff1d(np.arange(len(log)), test_rows, assume_unique=True)
        out.append(Split(name=f"fold {i + 1}/{k}", train=log.take(train_rows), test=log.take(test_rows)))
    return out


def dataset_splits(dataset: Dataset, *, folds: int | None = None, seed: int = SEED) -> list[Split]:
    """The dataset's own protocol: its fixed train/test split, or its predefined folds (each fold the test set
    once, the others the training set). `folds` forces a k-fold split by learner over all the data instead."""
    if folds is not None:
        return kfold_splits(dataset.all(), folds, seed=seed)
    if dataset.train is not None and dataset.test is not None:
        return [Split(name="train/test", train=dataset.train, test=dataset.test)]
    if len(dataset.folds) >= 2:
        k = len(dataset.folds)
        return [
            Split(
                name=f"fold {i + 1}/{k}",
                train=concat([f for j, f in enumerate(dataset.folds) if j != i]),
                test=dataset.folds[i],
            )
            for i in range(k)
        ]
    return kfold_splits(dataset.all(), 5, seed=seed)


def subsample_learners(log: AttemptLog, fraction: float, *, seed: int = SEED) -> AttemptLog:
    """Keep a random `fraction` of the learners (all of their rows)."""
    learners = np.unique(log.learner)
    rng = np.random.default_rng(seed)
    keep = rng.choice(learners, size=max(1, int(round(fraction * len(learners)))), replace=False)
    return log.take(_learners_rows(log, keep))


# ---------------------------------------------------------------------- labels and metrics


def attempt_labels(log: AttemptLog) -> np.ndarray:
    """The label of each problem attempt (aligned with `predict`)."""
    out: np.ndarray = log.correct[log.attempt_starts()].astype(np.int64)
    return out


def attempt_skills(log: AttemptLog) -> list[np.ndarray]:
    """The distinct skills of each problem attempt."""
    starts = log.attempt_starts()
    ends = np.append(starts[1:], len(log))
    return [np.unique(log.skill[s:e]) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]


def calibration(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Reliability diagram on equal-width bins, and the expected calibration error (count-weighted gap)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    count = np.bincount(idx, minlength=bins)
    sum_p = np.bincount(idx, weights=p, minlength=bins)
    sum_y = np.bincount(idx, weights=y, minlength=bins)
    nz = count > 0
    mean_p = np.where(nz, sum_p / np.maximum(count, 1), np.nan)
    frac = np.where(nz, sum_y / np.maximum(count, 1), np.nan)
    ece = float(np.sum(np.abs(sum_p[nz] - sum_y[nz])) / max(len(y), 1))
    return {
        "edges": edges.tolist(),
        "count": count.tolist(),
        "mean_predicted": [None if np.isnan(v) else float(v) for v in mean_p],
        "fraction_correct": [None if np.isnan(v) else float(v) for v in frac],
        "ece": ece,
    }


def metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """AUC, RMSE, accuracy (threshold 0.5), log-loss and ECE of predictions `p` for labels `y`."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    if len(y) != len(p):
        raise ValueError(f"{len(p)} predictions for {len(y)} labels")
    if not np.all(np.isfinite(p)) or p.min() < 0.0 or p.max() > 1.0:
        raise ValueError("predictions must be probabilities in [0, 1]")
    pc = np.clip(p, 1e-7, 1.0 - 1e-7)
    both = 0.0 < y.mean() < 1.0
    return {
        "auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "rmse": float(np.sqrt(np.mean((y - p) ** 2))),
        "accuracy": float(np.mean((p >= 0.5) == (y == 1.0))),
        "logloss": float(-np.mean(y * np.log(pc) + (1.0 - y) * np.log(1.0 - pc))),
        "ece": calibration(y, p)["ece"],
        "n": float(len(y)),
    }


def per_skill_auc(log: AttemptLog, p: np.ndarray, *, min_answers: int = 20) -> dict[int, float]:
    """AUC per skill over the attempts tagged with it (a multi-skill attempt counts for each of its skills);
    skills with fewer than `min_answers` attempts or one class only are left out."""
    y = attempt_labels(log)
    starts = log.attempt_starts()
    ends = np.append(starts[1:], len(log))
    attempt_of_row = np.repeat(np.arange(len(starts)), ends - starts)
    pairs = np.unique(np.stack([log.skill, attempt_of_row], axis=1), axis=0)
    out: dict[int, float] = {}
    bounds = np.flatnonzero(np.diff(pairs[:, 0])) + 1
    for group in np.split(pairs, bounds):
        if len(group) < min_answers:
            continue
        a = group[:, 1]
        ys = y[a]
        if 0 < ys.sum() < len(ys):
            out[int(group[0, 0])] = float(roc_auc_score(ys, p[a]))
    return out


# ---------------------------------------------------------------------- leak check


@dataclass
class LeakReport:
    checked: int
    violations: int
    max_change: float
    examples: list[tuple[int, int]] = field(default_factory=list)  # (learner, attempt index within the log)

    @property
    def ok(self) -> bool:
        return self.violations == 0


def leak_check(
    tracer: Tracer, log: AttemptLog, *, rounds: int = 3, seed: int = SEED, tol: float = 1e-9
) -> LeakReport:
    """Flip the label of a random attempt of every learner and of all that learner's later rows; the
    predictions of that attempt and of every earlier one must not change (beyond `tol`)."""
    rng = np.random.default_rng(seed)
    base = tracer.predict(log)
    starts = log.attempt_starts()
    a_learner = log.learner[starts]
    ends = np.append(starts[1:], len(log))
    violations = 0
    checked = 0
    worst = 0.0
    examples: list[tuple[int, int]] = []
    _, counts = np.unique(a_learner, return_counts=True)
    # attempts of one learner need not be contiguous in the log; rank them per learner
    order = np.argsort(a_learner, kind="stable")
    pos_in_learner = np.empty(len(starts), dtype=np.int64)
    group_start = np.repeat(np.cumsum(counts) - counts, counts)
    pos_in_learner[order] = np.arange(len(starts)) - group_start
    for _ in range(rounds):
        cut = rng.integers(0, counts)  # one cut position per learner
        cut_of_attempt = np.empty(len(starts), dtype=np.int64)
        cut_of_attempt[order] = np.repeat(cut, counts)
        flip_attempt = pos_in_learner >= cut_of_attempt
        flip_rows = np.repeat(flip_attempt, ends - starts)
        flipped = log.correct.copy()
        flipped[flip_rows] = 1 - flipped[flip_rows]
        other = AttemptLog(
            learner=log.learner,
            item=log.item,
            skill=log.skill,
            correct=flipped,
            attempt=log.attempt,
            timestamp=log.timestamp,
        )
        pred = tracer.predict(other)
        must_hold = pos_in_learner <= cut_of_attempt
        diff = np.abs(pred - base)[must_hold]
        bad = diff > tol
        checked += int(must_hold.sum())
        violations += int(bad.sum())
        worst = max(worst, float(diff.max()) if len(diff) else 0.0)
        if bad.any() and len(examples) < 10:
            idx = np.flatnonzero(must_hold)[bad][:10]
            examples += [(int(a_learner[i]), int(i)) for i in idx]
    return LeakReport(checked=checked, violations=violations, max_change=worst, examples=examples[:10])


# ---------------------------------------------------------------------- running a tracer over splits


@dataclass
class SplitResult:
    split: str
    metrics: dict[str, float]
    fit_s: float
    predict_s: float
    y: np.ndarray
    p: np.ndarray


@dataclass
class Evaluation:
    splits: list[SplitResult]

    @property
    def y(self) -> np.ndarray:
        return np.concatenate([s.y for s in self.splits])

    @property
    def p(self) -> np.ndarray:
        return np.concatenate([s.p for s in self.splits])

    def summary(self) -> dict[str, float]:
        """Mean over splits of each metric (the pyKT convention for k-fold), plus the pooled AUC and times."""
        keys = self.splits[0].metrics.keys()
        out = {k: float(np.mean([s.metrics[k] for s in self.splits])) for k in keys if k != "n"}
        out["n"] = float(sum(s.metrics["n"] for s in self.splits))
        if len(self.splits) > 1:
            out["auc_std"] = float(np.std([s.metrics["auc"] for s in self.splits]))
            out["auc_pooled"] = metrics(self.y, self.p)["auc"]
        out["fit_s"] = float(np.mean([s.fit_s for s in self.splits]))
        out["predict_s"] = float(np.mean([s.predict_s for s in self.splits]))
        return out


def evaluate(make: Callable[[], Tracer], splits: Sequence[Split]) -> Evaluation:
    """Fit a fresh tracer on each split's training learners and score one prediction per test attempt."""
    results = []
    for split in splits:
        tracer = make()
        t0 = time.perf_counter()
        tracer.fit(split.train)
        t1 = time.perf_counter()
        p = np.asarray(tracer.predict(split.test), dtype=np.float64)
        t2 = time.perf_counter()
        y = attempt_labels(split.test)
        results.append(SplitResult(split.name, metrics(y, p), t1 - t0, t2 - t1, y, p))
    return Evaluation(results)
