"""The evaluation harness: learner splits, one prediction per attempt, metrics, and the leak check."""

from __future__ import annotations

from typing import IO, Any, Self

import numpy as np
import pytest

from learners.tracing.base import Attempt, AttemptLog, Query, State, Tracer
from learners.tracing.bkt import BKT
from learners.tracing.data import Dataset
from learners.tracing.evaluation import (
    attempt_labels,
    calibration,
    dataset_splits,
    evaluate,
    kfold_splits,
    leak_check,
    learner_folds,
    metrics,
    per_skill_auc,
)


def random_log(n_learners: int = 60, length: int = 12, seed: int = 0) -> AttemptLog:
    """Random answers; every third attempt is a two-skill problem (two rows sharing `attempt`)."""
    rng = np.random.default_rng(seed)
    learner, item, skill, correct, attempt = [], [], [], [], []
    a = 0
    for u in range(n_learners):
        for t in range(length):
            c = int(rng.random() < 0.6)
            skills = [t % 3, 3] if t % 3 == 0 else [t % 3]
            for k in skills:
                learner.append(u)
                item.append(100 + t)
                skill.append(k)
                correct.append(c)
                attempt.append(a)
            a += 1
    return AttemptLog.from_rows(learner, item, skill, correct, attempt)


class RowByRow(Tracer):
    """A leaky tracer: predicts each skill row after updating on the previous row, even within one attempt,
    and returns the prediction of the attempt's last row."""

    name = "row_by_row"

    def fit(self, log: AttemptLog) -> Self:
        return self

    def predict(self, log: AttemptLog) -> np.ndarray:
        last: dict[int, int] = {}
        row_pred = np.zeros(len(log))
        for r in range(len(log)):
            u = int(log.learner[r])
            row_pred[r] = 0.8 if last.get(u, 0) else 0.3
            last[u] = int(log.correct[r])
        starts = log.attempt_starts()
        ends = np.append(starts[1:], len(log))
        out: np.ndarray = row_pred[ends - 1]
        return out

    def init_state(self) -> State:
        return {}

    def update(self, state: State, attempt: Attempt) -> State:
        return state

    def predict_next(self, state: State, query: Query) -> float:
        return 0.5

    def mastery(self, state: State, skill: int) -> float:
        return 0.5

    def save(self, fp: IO[bytes]) -> None:
        raise NotImplementedError

    @classmethod
    def load(cls, fp: IO[bytes]) -> Self:
        raise NotImplementedError


class FirstRow(RowByRow):
    """The honest version of the same rule: one prediction per attempt from earlier attempts only."""

    def predict(self, log: AttemptLog) -> np.ndarray:
        last: dict[int, int] = {}
        starts = log.attempt_starts()
        out = np.zeros(len(starts))
        for i, r in enumerate(starts.tolist()):
            u = int(log.learner[r])
            out[i] = 0.8 if last.get(u, 0) else 0.3
            last[u] = int(log.correct[r])
        return out


def test_learner_folds_partition_learners_deterministically() -> None:
    log = random_log(n_learners=23)
    folds = learner_folds(log, 5, seed=3)
    assert sorted(np.concatenate(folds).tolist()) == list(range(23))
    assert [len(f) for f in folds] == [5, 5, 5, 4, 4]
    again = learner_folds(log, 5, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(folds, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(folds, learner_folds(log, 5, seed=4), strict=True))


def test_kfold_splits_never_share_a_learner() -> None:
    log = random_log(n_learners=20)
    splits = kfold_splits(log, 4)
    assert len(splits) == 4
    seen = []
    for s in splits:
        assert not set(s.train.learner.tolist()) & set(s.test.learner.tolist())
        assert len(s.train) + len(s.test) == len(log)
        seen += np.unique(s.test.learner).tolist()
    assert sorted(seen) == list(range(20))


def test_dataset_splits_follow_the_dataset_protocol() -> None:
    log = random_log(n_learners=10)
    train = log.take(np.flatnonzero(log.learner < 7))
    test = log.take(np.flatnonzero(log.learner >= 7))
    fixed = dataset_splits(Dataset(name="d", train=train, test=test))
    assert [s.name for s in fixed] == ["train/test"]
    folds = (train, test, log.take(np.flatnonzero(log.learner == 9)))
    by_fold = dataset_splits(Dataset(name="d", folds=folds))
    assert [s.name for s in by_fold] == ["fold 1/3", "fold 2/3", "fold 3/3"]
    assert len(by_fold[0].train) == len(test) + np.sum(log.learner == 9)
    forced = dataset_splits(Dataset(name="d", train=train, test=test), folds=5)
    assert len(forced) == 5


def test_attempt_labels_count_a_multi_skill_problem_once() -> None:
    log = random_log(n_learners=2, length=6)
    labels = attempt_labels(log)
    assert len(labels) == 12
    assert len(log) == 16  # 4 two-skill problems


def test_metrics_exact_values() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.9])
    m = metrics(y, p)
    assert m["auc"] == 0.75
    assert m["rmse"] == pytest.approx(np.sqrt((0.01 + 0.36 + 0.36 + 0.01) / 4))
    assert m["accuracy"] == 0.5
    assert m["logloss"] == pytest.approx(-(np.log(0.9) + np.log(0.4) + np.log(0.4) + np.log(0.9)) / 4)
    assert m["n"] == 4


def test_metrics_refuse_non_probabilities() -> None:
    with pytest.raises(ValueError, match="probabilities"):
        metrics(np.array([0, 1]), np.array([0.5, 1.2]))
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        metrics(np.array([0, 1]), np.array([0.5, 0.5, 0.5]))


def test_calibration_bins_and_ece() -> None:
    y = np.array([0, 1, 1, 1])
    p = np.array([0.05, 0.05, 0.95, 0.95])
    cal = calibration(y, p, bins=10)
    assert cal["count"][0] == 2 and cal["count"][9] == 2
    assert cal["fraction_correct"][0] == 0.5 and cal["mean_predicted"][9] == pytest.approx(0.95)
    assert cal["ece"] == pytest.approx((abs(0.1 - 1) + abs(1.9 - 2)) / 4)
    assert cal["mean_predicted"][4] is None


def test_per_skill_auc_counts_multi_skill_attempts_for_each_skill() -> None:
    log = AttemptLog.from_rows(
        learner=[0, 0, 0, 0, 0, 0],
        item=[1, 1, 2, 3, 4, 4],
        skill=[5, 6, 5, 6, 5, 6],
        correct=[1, 1, 0, 1, 0, 0],
        attempt=[0, 0, 1, 2, 3, 3],
    )
    p = np.array([0.9, 0.2, 0.3, 0.4])
    got = per_skill_auc(log, p, min_answers=1)
    assert got == {5: 1.0, 6: 0.5}
    assert per_skill_auc(log, np.array([0.1, 0.2, 0.3, 0.9]), min_answers=1) == {5: 0.0, 6: 0.0}
    assert per_skill_auc(log, p, min_answers=4) == {}


def test_leak_check_catches_a_tracer_that_reads_a_rows_answer() -> None:
    log = random_log()
    leaky = leak_check(RowByRow(), log)
    assert not leaky.ok
    assert leaky.violations > 0 and leaky.max_change == pytest.approx(0.5)
    honest = leak_check(FirstRow(), log)
    assert honest.ok and honest.checked > len(np.unique(log.learner))


def test_leak_check_passes_bkt_on_multi_skill_data() -> None:
    log = random_log()
    model = BKT(n_restarts=1, max_iter=10).fit(log)
    report = leak_check(model, log, rounds=3)
    assert report.ok, report.examples


def test_evaluate_scores_one_prediction_per_attempt() -> None:
    log = random_log(n_learners=40)
    splits = kfold_splits(log, 2)
    seen: list[Any] = []

    def make() -> Tracer:
        t = FirstRow()
        seen.append(t)
        return t

    ev = evaluate(make, splits)
    assert len(seen) == 2  # a fresh tracer per split
    assert len(ev.y) == len(ev.p) == len(attempt_labels(log))
    s = ev.summary()
    assert s["n"] == len(attempt_labels(log))
    assert {"auc", "rmse", "accuracy", "logloss", "ece", "auc_std", "auc_pooled", "fit_s"} <= set(s)
