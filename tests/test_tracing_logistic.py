"""Elo, PFA, Best-LR and Best-LR+ on small synthetic logs whose generating parameters are known."""

from __future__ import annotations

import io

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from learners.tracing.base import Attempt, AttemptLog, Query
from learners.tracing.logistic import BestLRTracer, CountLogisticTracer, EloTracer, PFATracer
from learners.tracing.logistic_plus import BestLRPlusTracer


def _simulate(
    truth: CountLogisticTracer, n_learners: int, n_attempts: int, n_items: int, seed: int, multi: float = 0.0
) -> AttemptLog:
    """Answers drawn from `truth`'s own serving path; item i tests skill i % 3 (and skill (i + 1) % 3 if multi)."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list[float]] = {
        k: [] for k in ("learner", "item", "skill", "correct", "attempt", "timestamp")
    }
    att = 0
    for learner in range(n_learners):
        state = truth.init_state()
        t = float(rng.uniform(0, 1e5))
        for _ in range(n_attempts):
            item = int(rng.integers(n_items))
            skills = (item % 3, (item + 1) % 3) if rng.random() < multi else (item % 3,)
            t += float(rng.exponential(3600.0))
            p = truth.predict_next(state, Query(item, skills, t))
            correct = bool(rng.random() < p)
            truth.update(state, Attempt(item, skills, correct, t))
            for k in skills:
                for key, v in zip(rows, (learner, item, k, correct, att, t), strict=True):
                    rows[key].append(v)
            att += 1
    return AttemptLog.from_rows(**rows)  # type: ignore[arg-type]


def _with_coef(
    tracer: CountLogisticTracer, n_items: int, coef: list[float], intercept: float
) -> CountLogisticTracer:
    tracer.items_ = np.arange(n_items) if tracer.use_items else np.zeros(0, dtype=np.int64)
    tracer.skills_ = np.arange(3)
    tracer.windows_ = tuple(tracer.windows)
    tracer.recency_ = tuple(tracer.recency)
    tracer._set_coef(np.asarray(coef, dtype=np.float64), intercept)
    tracer.skill_item_bias_ = np.zeros(3)
    tracer._index()
    return tracer


def _mixed_log(seed: int = 0, with_items: bool = True) -> AttemptLog:
    """A log with multi-skill attempts, an unknown-time attempt and several learners, for the invariance tests."""
    truth = _with_coef(
        BestLRTracer(windows=(3600.0,), recency=(2.0,)),
        6,
        [0.3, -0.2, 0.1, 0.0, -0.4, 0.5]  # items
        + [0.2, -0.3, 0.1]  # skills
        + [0.3, 0.2, 0.1, -0.3, -0.2, -0.1]  # per-skill successes, failures
        + [0.1, -0.1]  # overall
        + [0.2, 0.1, 0.3, -0.1, -0.2, -0.3, 0.1, -0.1]  # window block
        + [0.4, 0.3, 0.2, -0.4, -0.3, -0.2, 0.2, -0.2],  # recency block
        0.2,
    )
    log = _simulate(truth, n_learners=30, n_attempts=25, n_items=6, seed=seed, multi=0.4)
    ts = log.timestamp.copy()
    ts[log.attempt == 7] = np.nan
    item = log.item if with_items else np.full(len(log), -1)
    return AttemptLog.from_rows(log.learner, item, log.skill, log.correct, log.attempt, ts)


def test_pfa_recovers_known_parameters() -> None:
    beta, gamma, rho = [0.5, -0.5, 0.0], [0.15, 0.3, 0.1], [-0.1, 0.05, 0.2]
    truth = _with_coef(PFATracer(), 0, beta + gamma + rho, 0.0)
    log = _simulate(truth, n_learners=400, n_attempts=30, n_items=3, seed=1)
    fitted = PFATracer(C=1e4).fit(log)
    np.testing.assert_allclose(fitted.skill_coef_ + fitted.intercept_, beta, atol=0.12)
    np.testing.assert_allclose(fitted.success_coef_, gamma, atol=0.04)
    np.testing.assert_allclose(fitted.failure_coef_, rho, atol=0.04)


def test_best_lr_recovers_item_and_count_weights() -> None:
    items = [1.0, 0.0, -1.0, 0.5, -0.5, 0.0]
    coef = items + [0.0, 0.0, 0.0] + [0.5, 0.3, 0.4] + [-0.4, -0.2, -0.3] + [0.2, -0.2]
    truth = _with_coef(BestLRTracer(windows=(), recency=()), 6, coef, 0.0)
    log = _simulate(truth, n_learners=400, n_attempts=30, n_items=6, seed=2)
    fitted = BestLRTracer(C=1e4, windows=(), recency=()).fit(log)
    # Item and skill one-hots are collinear with the intercept: compare item weights up to a shift per skill.
    item_w = fitted.item_coef_ + fitted.skill_coef_[np.arange(6) % 3]
    assert np.ptp(item_w - np.asarray(items) - (item_w - np.asarray(items)).mean()) < 0.2
    np.testing.assert_allclose(fitted.success_coef_, [0.5, 0.3, 0.4], atol=0.15)
    np.testing.assert_allclose(fitted.failure_coef_, [-0.4, -0.2, -0.3], atol=0.15)
    np.testing.assert_allclose(fitted.total_coef_, [0.2, -0.2], atol=0.15)


def test_elo_recovers_item_difficulty_order() -> None:
    rng = np.random.default_rng(3)
    difficulty = np.linspace(-2, 2, 12)
    ability = rng.normal(0, 1, 300)
    learner = np.repeat(np.arange(300), 40)
    item = rng.integers(12, size=learner.shape[0])
    p = 1 / (1 + np.exp(-(ability[learner] - difficulty[item])))
    correct = (rng.random(learner.shape[0]) < p).astype(int)
    log = AttemptLog.from_rows(learner, item, item % 2, correct)
    elo = EloTracer().fit(log)
    d = elo.item_difficulty_ + elo.skill_difficulty_[np.arange(12) % 2]
    assert np.corrcoef(d, difficulty)[0, 1] > 0.97
    assert roc_auc_score(correct, elo.predict(log)) > 0.75


TRACERS = [
    pytest.param(lambda: EloTracer(), id="elo"),
    pytest.param(lambda: PFATracer(), id="pfa"),
    pytest.param(lambda: BestLRTracer(), id="best_lr"),
    pytest.param(lambda: BestLRPlusTracer(), id="best_lr_plus"),
]


@pytest.mark.parametrize("make", TRACERS)
def test_flipping_an_answer_changes_no_prediction_up_to_it(make: object) -> None:
    log = _mixed_log()
    tracer = make().fit(log)  # type: ignore[operator]
    base = tracer.predict(log)
    starts = log.attempt_starts()
    # A multi-skill attempt in the middle of a learner's sequence.
    j = int(next(a for a in range(40, len(starts) - 1) if starts[a + 1] - starts[a] > 1))
    flipped = log.correct.copy()
    flipped[log.attempt == log.attempt[starts[j]]] ^= 1
    other = AttemptLog.from_rows(log.learner, log.item, log.skill, flipped, log.attempt, log.timestamp)
    after = tracer.predict(other)
    np.testing.assert_array_equal(after[: j + 1], base[: j + 1])
    same_learner = log.learner[starts] == log.learner[starts[j]]
    later = same_learner & (np.arange(len(starts)) > j)
    assert np.abs(after[later] - base[later]).max() > 1e-6  # the answer is used, just not too early
    np.testing.assert_array_equal(after[~same_learner], base[~same_learner])


@pytest.mark.parametrize("make", TRACERS)
@pytest.mark.parametrize("with_items", [True, False])
def test_replaying_update_gives_predict(make: object, with_items: bool) -> None:
    log = _mixed_log(seed=4, with_items=with_items)
    tracer = make().fit(log)  # type: ignore[operator]
    states: dict[int, dict[str, object]] = {}
    replay = []
    for learner, att in log.attempts():
        state = states.setdefault(learner, tracer.init_state())
        replay.append(tracer.predict_next(state, Query(att.item, att.skills, att.timestamp)))
        tracer.update(state, att)
    np.testing.assert_allclose(replay, tracer.predict(log), rtol=0, atol=1e-10)
    for state in states.values():
        for k in range(3):
            assert 0.0 < tracer.mastery(state, k) < 1.0


@pytest.mark.parametrize("make", TRACERS)
def test_save_load_round_trip(make: object) -> None:
    log = _mixed_log(seed=5)
    tracer = make().fit(log)  # type: ignore[operator]
    buf = io.BytesIO()
    tracer.save(buf)
    buf.seek(0)
    loaded = type(tracer).load(buf)
    np.testing.assert_array_equal(loaded.predict(log), tracer.predict(log))
    state = tracer.init_state()
    tracer.update(state, Attempt(2, (0, 1), True, 50.0))
    q = Query(3, (1,), 4000.0)
    assert loaded.predict_next(state, q) == tracer.predict_next(state, q)
    buf.seek(0)
    with pytest.raises(ValueError, match="not"):
        (PFATracer if tracer.name != "pfa" else EloTracer).load(buf)


def test_best_lr_state_is_json_and_unknown_ids_are_neutral() -> None:
    import json

    tracer = BestLRTracer().fit(_mixed_log(seed=6))
    state = tracer.init_state()
    for t in (10.0, None, 4000.0):
        tracer.update(state, Attempt(99, (0, 42), True, t))
    assert json.loads(json.dumps(state)) == state
    # An unseen item counts as an average item (weight 0), an unseen skill adds nothing.
    z_unknown = tracer.predict_next(state, Query(99, (0, 42), 5000.0))
    assert z_unknown == tracer.predict_next(state, Query(-1, (0,), 5000.0))


def test_recency_counts_decay_per_answer() -> None:
    tracer = _with_coef(
        BestLRTracer(windows=(), recency=(2.0,)),
        0,
        [0.0] * 3 + [0.0] * 6 + [0.0, 0.0] + [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        0.0,
    )
    state = tracer.init_state()
    tracer.update(state, Attempt(0, (0,), True))
    tracer.update(state, Attempt(0, (0,), False))
    g = np.exp(-0.5)
    assert state["k"]["0"][4][0] == pytest.approx([g * g, g])
    assert tracer.predict_next(state, Query(0, (0,))) == pytest.approx(1 / (1 + np.exp(-np.log1p(g * g))))
