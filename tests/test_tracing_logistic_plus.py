"""Best-LR+ on small synthetic logs: it learns the patterns its features describe, and only from the past."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from learners.tracing.base import Attempt, AttemptLog, Query
from learners.tracing.evaluation import attempt_labels, kfold_splits, leak_check
from learners.tracing.logistic import BestLRTracer
from learners.tracing.logistic_plus import BestLRPlusTracer, _item_means
from learners.tracing.registry import available, load_tracer, make_tracer


def _streak_log(n_learners: int = 300, n_attempts: int = 30, seed: int = 0) -> AttemptLog:
    """One skill, 5 items of equal difficulty; P(correct) = .9 after two correct answers in a row, else .35."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list[int]] = {k: [] for k in ("learner", "item", "skill", "correct")}
    for learner in range(n_learners):
        last: list[int] = []
        for _ in range(n_attempts):
            c = int(rng.random() < (0.9 if last[-2:] == [1, 1] else 0.35))
            for key, v in zip(rows, (learner, int(rng.integers(5)), 0, c), strict=True):
                rows[key].append(v)
            last.append(c)
    return AttemptLog.from_rows(**rows)  # type: ignore[arg-type]


def _irt_log(n_learners: int = 400, n_attempts: int = 40, seed: int = 1) -> AttemptLog:
    """Rasch answers: a fixed ability per learner, 40 items of spread difficulty over 4 skills, some multi-skill.
    Items are picked adaptively (difficulty near the learner's ability), so raw success counts say little."""
    rng = np.random.default_rng(seed)
    ability = rng.normal(0.0, 1.2, n_learners)
    difficulty = np.linspace(-2.0, 2.0, 40)
    rows: dict[str, list[int]] = {k: [] for k in ("learner", "item", "skill", "correct", "attempt")}
    att = 0
    for learner in range(n_learners):
        for _ in range(n_attempts):
            item = int(np.clip(np.round((ability[learner] + rng.normal(0.0, 1.0) + 2.0) * 39 / 4), 0, 39))
            c = int(rng.random() < 1.0 / (1.0 + np.exp(-(ability[learner] - difficulty[item]))))
            skills = (item % 4,) if item % 5 else (item % 4, (item + 1) % 4)
            for k in skills:
                for key, v in zip(rows, (learner, item, k, c, att), strict=True):
                    rows[key].append(v)
            att += 1
    return AttemptLog.from_rows(**rows)  # type: ignore[arg-type]


def test_learns_the_streak_pattern() -> None:
    tracer = BestLRPlusTracer().fit(_streak_log(seed=0))
    test = _streak_log(seed=1)
    p = tracer.predict(test)
    y = test.correct.astype(int)
    first = np.r_[True, test.learner[1:] != test.learner[:-1]]
    second = np.r_[True, first[:-1]] | first
    two_right = ~second & (np.r_[0, y[:-1]] == 1) & (np.r_[0, 0, y[:-2]] == 1)
    truth = np.where(two_right, 0.9, 0.35)
    # Held-out learners: the mean prediction after each history matches the generating rate ...
    assert p[two_right].mean() == pytest.approx(0.9, abs=0.03)
    assert p[~two_right].mean() == pytest.approx(0.35, abs=0.03)
    # ... and ranks answers almost as well as the generating rates do.
    assert roc_auc_score(y, p) > roc_auc_score(y, truth) - 0.01


def test_residuals_track_ability_better_than_counts() -> None:
    """Successes on hard items say more than successes on easy ones: on Rasch data the difficulty-adjusted
    residuals beat Best-LR's plain counts on held-out learners."""
    split = kfold_splits(_irt_log(), 4)[0]
    y = attempt_labels(split.test)
    plus = roc_auc_score(y, BestLRPlusTracer().fit(split.train).predict(split.test))
    base = roc_auc_score(y, BestLRTracer().fit(split.train).predict(split.test))
    assert plus > base + 0.02  # .687 against .644 when written


def test_item_means_are_smoothed_and_leave_the_learner_out_during_fit() -> None:
    log = _irt_log(n_learners=60, n_attempts=20)
    tracer = BestLRPlusTracer(item_prior=5.0).fit(log)
    starts = log.attempt_starts()
    item, y = log.item[starts], log.correct[starts].astype(float)
    g = y.mean()
    for i in (0, 17, 39):
        n, s = float((item == i).sum()), float(y[item == i].sum())
        j = int(np.searchsorted(tracer.items_, i))
        assert tracer.item_p_[j] == pytest.approx((s + 5.0 * g) / (n + 5.0))
    # During fit each answer is compared with the item's rate without that learner's answers on it.
    learner = np.array([0, 0, 1, 1, 2])
    item_ix = np.array([0, 0, 0, 1, -1])
    y = np.array([1.0, 1.0, 0.0, 1.0, 0.0])
    item_p, loo = _item_means(learner, item_ix, y, 2, prior=2.0, base=0.5)
    np.testing.assert_allclose(item_p, [(2 + 1) / (3 + 2), (1 + 1) / (1 + 2)])
    np.testing.assert_allclose(loo, [(0 + 1) / (1 + 2), (0 + 1) / (1 + 2), (2 + 1) / (2 + 2), 0.5, 0.5])


def test_state_stays_small_and_json() -> None:
    tracer = BestLRPlusTracer().fit(_streak_log(n_learners=50, n_attempts=10))
    state = tracer.init_state()
    sizes = []
    for n in range(2000):
        tracer.update(state, Attempt(n % 5, (0,), n % 3 > 0))
        if n in (99, 1999):
            sizes.append(len(json.dumps(state)))
    assert json.loads(json.dumps(state)) == state
    assert sizes[1] < sizes[0] + 40  # counters, not a history
    z = tracer.predict_next(state, Query(12345, (0, 77)))  # unseen item and skill are neutral
    assert z == tracer.predict_next(state, Query(-1, (0,)))


def test_leak_check_and_replay_on_multi_skill_data() -> None:
    split = kfold_splits(_irt_log(n_learners=120, n_attempts=25), 3)[0]
    tracer = BestLRPlusTracer().fit(split.train)
    report = leak_check(tracer, split.test, rounds=2)
    assert report.ok and report.checked > 1000
    states: dict[int, dict[str, object]] = {}
    replay = []
    for learner, att in split.test.attempts():
        state = states.get(learner) or tracer.init_state()
        replay.append(tracer.predict_next(state, Query(att.item, att.skills)))
        states[learner] = json.loads(json.dumps(tracer.update(state, att)))  # as the service stores it
    np.testing.assert_allclose(replay, tracer.predict(split.test), rtol=0, atol=1e-10)


def test_registered_and_round_trips_through_the_registry() -> None:
    assert "best_lr_plus" in available()
    log = _irt_log(n_learners=40, n_attempts=15)
    tracer = make_tracer("best_lr_plus", C=0.5, cross_skills=False).fit(log)
    buf = io.BytesIO()
    tracer.save(buf)
    buf.seek(0)
    loaded = load_tracer("best_lr_plus", buf)
    assert isinstance(loaded, BestLRPlusTracer) and loaded.C == 0.5 and not loaded.cross_skills
    np.testing.assert_array_equal(loaded.predict(log), tracer.predict(log))
    state = loaded.init_state()
    loaded.update(state, Attempt(3, (3, 0), True))
    assert 0.0 < loaded.mastery(state, 3) < 1.0
    assert loaded.mastery(state, 3) == tracer.mastery(state, 3)
