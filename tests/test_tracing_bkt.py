"""BKT family: parameter recovery on synthetic data, bounds, exact online replay, persistence, no leakage."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from learners.tracing import bkt_em
from learners.tracing.base import Attempt, AttemptLog, Query
from learners.tracing.bkt import BKT, BKTForget, BKTIdem, BKTPrior
from learners.tracing.registry import TRACERS, UnknownTracerError, make_tracer


def simulate(
    skills: dict[int, dict[str, float]],
    *,
    n_learners: int,
    length: int,
    seed: int,
    item_guess: dict[int, float] | None = None,
    n_items: int = 1,
) -> AttemptLog:
    """Learners answer `length` problems per skill, skills in blocks; items drawn uniformly from `n_items`.

    `item_guess` overrides the skill's guess for some item ids (KT-IDEM data)."""
    rng = np.random.default_rng(seed)
    cols: dict[str, list[np.ndarray]] = {"learner": [], "item": [], "skill": [], "correct": [], "t": []}
    for k, prm in skills.items():
        mastered = rng.random(n_learners) < prm["prior"]
        for t in range(length):
            items = rng.integers(0, n_items, n_learners) + 1000 * k
            guess = np.full(n_learners, prm["guess"])
            for it, g in (item_guess or {}).items():
                guess[items == it] = g
            p = np.where(mastered, 1.0 - prm["slip"], guess)
            correct = rng.random(n_learners) < p
            learn = ~mastered & (rng.random(n_learners) < prm["learn"])
            forget = mastered & (rng.random(n_learners) < prm.get("forget", 0.0))
            mastered = (mastered | learn) & ~forget
            cols["learner"].append(np.arange(n_learners))
            cols["item"].append(items)
            cols["skill"].append(np.full(n_learners, k))
            cols["correct"].append(correct.astype(int))
            cols["t"].append(np.full(n_learners, k * length + t))
    learner = np.concatenate(cols["learner"])
    order = np.lexsort((np.concatenate(cols["t"]), learner))
    return AttemptLog.from_rows(
        learner=learner[order],
        item=np.concatenate(cols["item"])[order],
        skill=np.concatenate(cols["skill"])[order],
        correct=np.concatenate(cols["correct"])[order],
    )


TRUE = {
    0: {"prior": 0.3, "learn": 0.15, "guess": 0.2, "slip": 0.1},
    1: {"prior": 0.6, "learn": 0.05, "guess": 0.25, "slip": 0.05},
    2: {"prior": 0.1, "learn": 0.3, "guess": 0.1, "slip": 0.2},
}


@pytest.fixture(scope="module")
def synthetic() -> AttemptLog:
    return simulate(TRUE, n_learners=1500, length=15, seed=1)


@pytest.fixture(scope="module")
def fitted(synthetic: AttemptLog) -> BKT:
    return BKT(n_restarts=3, random_state=0).fit(synthetic)


def replay(tracer: BKT, log: AttemptLog, *, via_json: bool = False) -> np.ndarray:
    """P(correct) of every attempt through the online API, as the service computes it."""
    states: dict[int, dict[str, object]] = {}
    out = []
    for learner, attempt in log.attempts():
        state = states.setdefault(learner, tracer.init_state())
        out.append(tracer.predict_next(state, Query(item=attempt.item, skills=attempt.skills)))
        state = tracer.update(state, attempt)
        states[learner] = json.loads(json.dumps(state)) if via_json else state
    return np.asarray(out)


def test_em_recovers_known_parameters(fitted: BKT) -> None:
    for skill, truth in TRUE.items():
        got = fitted.params_for(skill)
        for name, value in truth.items():
            assert got[name] == pytest.approx(value, abs=0.035), (skill, name, got[name], value)
        assert got["forget"] == 0.0


def test_forgetting_is_recovered() -> None:
    truth = {0: {"prior": 0.4, "learn": 0.2, "guess": 0.2, "slip": 0.1, "forget": 0.1}}
    log = simulate(truth, n_learners=3000, length=20, seed=2)
    model = BKTForget(n_restarts=3).fit(log)
    got = model.params_for(0)
    assert got["forget"] == pytest.approx(0.1, abs=0.03)
    assert got["learn"] == pytest.approx(0.2, abs=0.04)
    assert got["slip"] == pytest.approx(0.1, abs=0.03)
    # plain BKT cannot represent forgetting and fits a worse likelihood
    assert BKT(n_restarts=3).fit(log).loglik_ < model.loglik_ - 50


def test_bounds_hold_on_degenerate_data() -> None:
    # answers nearly independent of mastery: unconstrained EM drifts to guess/slip above 0.5
    truth = {0: {"prior": 0.5, "learn": 0.6, "guess": 0.7, "slip": 0.6}}
    log = simulate(truth, n_learners=800, length=10, seed=3)
    model = BKTForget(max_guess=0.3, max_slip=0.25, max_learn=0.4, max_forget=0.05, n_restarts=4).fit(log)
    got = model.params_for(0)
    assert 0.0 < got["guess"] <= 0.3
    assert 0.0 < got["slip"] <= 0.25
    assert 1e-4 <= got["learn"] <= 0.4
    assert 0.0 < got["forget"] <= 0.05
    assert 0.0 < got["prior"] < 1.0


def test_bounds_must_keep_guess_and_slip_below_half(synthetic: AttemptLog) -> None:
    with pytest.raises(ValueError, match="max_guess"):
        BKT(max_guess=0.6).fit(synthetic)


def test_em_log_likelihood_never_decreases(synthetic: AttemptLog) -> None:
    model = BKT(n_restarts=1, tol=0.0, max_iter=15, chunk=10_000)
    trace: list[np.ndarray] = []
    original = bkt_em.baum_welch

    def spy(*args: object, **kwargs: object) -> object:
        kwargs["trace"] = trace
        return original(*args, **kwargs)  # type: ignore[arg-type]

    bkt_em.baum_welch = spy  # type: ignore[assignment]
    try:
        model.fit(synthetic)
    finally:
        bkt_em.baum_welch = original
    totals = np.array([t.sum() for t in trace])
    assert len(totals) == 15
    assert np.all(np.diff(totals) >= -1e-6)


def test_chunked_em_reaches_the_exact_fixed_point(synthetic: AttemptLog) -> None:
    exact = BKT(n_restarts=1, chunk=100_000, tol=0.0, max_iter=200).fit(synthetic)
    chunked = BKT(n_restarts=1, chunk=4, tol=0.0, max_iter=200).fit(synthetic)
    for name in ("prior_", "learn_", "guess_", "slip_"):
        np.testing.assert_allclose(getattr(chunked, name), getattr(exact, name), atol=2e-3)


def test_replaying_updates_reproduces_predict_exactly(fitted: BKT, synthetic: AttemptLog) -> None:
    log = synthetic.take(np.flatnonzero(synthetic.learner < 200))
    batch = fitted.predict(log)
    assert len(batch) == len(log.attempt_starts())
    np.testing.assert_array_equal(replay(fitted, log), batch)
    np.testing.assert_array_equal(replay(fitted, log, via_json=True), batch)


def multi_skill_log() -> AttemptLog:
    """Learner 0: attempt 1 tags skills 0 and 2, attempt 3 tags 1 twice and the unseen skill 9."""
    return AttemptLog.from_rows(
        learner=[0, 0, 0, 0, 0, 0, 0, 1, 1],
        item=[5, 6, 6, 7, 8, 8, 8, 5, 6],
        skill=[0, 0, 2, 1, 1, 1, 9, 0, 0],
        correct=[1, 0, 0, 1, 1, 1, 1, 0, 1],
        attempt=[0, 1, 1, 2, 3, 3, 3, 4, 5],
    )


@pytest.mark.parametrize("combine", ["mean", "product", "min"])
def test_multi_skill_attempts_replay_exactly(fitted: BKT, combine: str) -> None:
    fitted.combine = combine
    try:
        log = multi_skill_log()
        batch = fitted.predict(log)
        assert batch.shape == (6,)
        np.testing.assert_array_equal(replay(fitted, log), batch)
    finally:
        fitted.combine = "mean"


def test_multi_skill_attempt_never_sees_its_own_answer(fitted: BKT) -> None:
    log = multi_skill_log()
    base = fitted.predict(log)
    for a in range(6):
        flipped = log.correct.copy()
        rows = log.attempt == a
        flipped[rows] = 1 - flipped[rows]
        later = log.attempt > a
        flipped[later] = 1 - flipped[later]
        other = AttemptLog.from_rows(log.learner, log.item, log.skill, flipped, log.attempt)
        pred = fitted.predict(other)
        np.testing.assert_array_equal(pred[: a + 1], base[: a + 1])


def test_multi_skill_prediction_combines_skills(fitted: BKT) -> None:
    p0 = fitted.predict_next(fitted.init_state(), Query(item=1, skills=(0,)))
    p2 = fitted.predict_next(fitted.init_state(), Query(item=1, skills=(2,)))
    assert fitted.predict_next(fitted.init_state(), Query(item=1, skills=(0, 2))) == (p0 + p2) / 2
    fitted.combine = "product"
    try:
        assert fitted.predict_next(fitted.init_state(), Query(item=1, skills=(0, 2, 2))) == p0 * p2
    finally:
        fitted.combine = "mean"


def test_unseen_skill_uses_defaults(fitted: BKT) -> None:
    d = BKT.DEFAULTS
    assert fitted.params_for(42) == {k: pytest.approx(v) for k, v in d.items()}
    state = fitted.init_state()
    assert fitted.mastery(state, 42) == pytest.approx(d["prior"])
    expected = d["prior"] * (1 - d["slip"]) + (1 - d["prior"]) * d["guess"]
    assert fitted.predict_next(state, Query(item=3, skills=(42,))) == pytest.approx(expected)


def test_correct_answer_never_lowers_mastery(fitted: BKT) -> None:
    rng = np.random.default_rng(0)
    for skill in (0, 1, 2, 42):
        state = fitted.init_state()
        for _ in range(200):
            before = fitted.mastery(state, skill)
            correct = bool(rng.random() < 0.8)
            state = fitted.update(state, Attempt(item=1, skills=(skill,), correct=correct))
            if correct:
                assert fitted.mastery(state, skill) >= before


def test_mastery_recovers_after_a_long_run_of_correct_answers(fitted: BKT) -> None:
    # After 40 correct answers P(mastered) is 1 - 1e-29, which rounds to 1.0 and could never move again; the state
    # keeps P(not mastered), so enough wrong answers still bring mastery down as exact BKT says.
    state = fitted.init_state()
    for _ in range(40):
        state = fitted.update(state, Attempt(item=1, skills=(0,), correct=True))
    assert fitted.mastery(state, 0) == 1.0
    assert 0.0 < state["q"]["0"] < 1e-20
    for _ in range(40):
        state = fitted.update(state, Attempt(item=1, skills=(0,), correct=False))
    assert fitted.mastery(state, 0) < 0.5


def test_update_is_json_state(fitted: BKT) -> None:
    state = fitted.update(fitted.init_state(), Attempt(item=1, skills=(0, 2), correct=True))
    assert json.loads(json.dumps(state)) == state
    assert set(state["q"]) == {"0", "2"}


def test_save_load_round_trip(fitted: BKT, synthetic: AttemptLog) -> None:
    buf = io.BytesIO()
    fitted.save(buf)
    buf.seek(0)
    with np.load(io.BytesIO(buf.getvalue()), allow_pickle=False) as z:
        assert all(z[name].dtype != object for name in z.files)
    loaded = BKT.load(buf)
    assert loaded.get_params() == fitted.get_params()
    for skill in (0, 1, 2, 42):
        assert loaded.params_for(skill) == fitted.params_for(skill)
    log = synthetic.take(np.flatnonzero(synthetic.learner < 100))
    np.testing.assert_array_equal(loaded.predict(log), fitted.predict(log))


def test_fit_is_deterministic_for_a_random_state(synthetic: AttemptLog) -> None:
    a = BKT(n_restarts=3, random_state=7, max_iter=20).fit(synthetic)
    b = BKT(n_restarts=3, random_state=7, max_iter=20).fit(synthetic)
    np.testing.assert_array_equal(a.learn_, b.learn_)
    np.testing.assert_array_equal(a.guess_, b.guess_)


def test_kt_idem_recovers_item_guess_and_backs_off_rare_items() -> None:
    truth = {0: {"prior": 0.2, "learn": 0.15, "guess": 0.15, "slip": 0.1}}
    log = simulate(truth, n_learners=2000, length=12, seed=4, n_items=4, item_guess={1: 0.4})
    # make item 3 rare: keep only a handful of its answers
    rare = np.flatnonzero(log.item == 3)
    keep = np.setdiff1d(np.arange(len(log)), rare[5:])
    log = log.take(keep)
    model = BKTIdem(n_restarts=3, item_min_answers=20).fit(log)
    q = Query(item=1, skills=(0,))
    state = model.init_state()
    prior = model.mastery(state, 0)
    _, _, g1, _ = model._skill_params(0, 1)
    _, _, g0, _ = model._skill_params(0, 0)
    _, _, g3, s3 = model._skill_params(0, 3)
    assert g1 == pytest.approx(0.4, abs=0.05)
    assert g0 == pytest.approx(0.15, abs=0.04)
    skill = model.params_for(0)
    assert (g3, s3) == (skill["guess"], skill["slip"])  # rare item: the skill's own values
    assert model.predict_next(state, q) == pytest.approx(
        prior * (1 - model._skill_params(0, 1)[3]) + (1 - prior) * g1
    )
    np.testing.assert_array_equal(
        replay(model, log.take(np.flatnonzero(log.learner < 100))),
        model.predict(log.take(np.flatnonzero(log.learner < 100))),
    )


def test_learner_prior_uses_only_earlier_attempts() -> None:
    # strong learners (high prior on every skill) and weak ones; skill 3 comes last
    rng = np.random.default_rng(5)
    strong = {k: {"prior": 0.85, "learn": 0.1, "guess": 0.2, "slip": 0.1} for k in range(4)}
    weak = {k: {"prior": 0.1, "learn": 0.1, "guess": 0.2, "slip": 0.1} for k in range(4)}
    a = simulate(strong, n_learners=600, length=6, seed=int(rng.integers(1000)))
    b = simulate(weak, n_learners=600, length=6, seed=int(rng.integers(1000)))
    log = AttemptLog.from_rows(
        learner=np.concatenate([a.learner, b.learner + 600]),
        item=np.concatenate([a.item, b.item]),
        skill=np.concatenate([a.skill, b.skill]),
        correct=np.concatenate([a.correct, b.correct]),
    )
    model = BKTPrior(n_restarts=2, prior_min_history=3).fit(log)
    plain = BKT(n_restarts=2).fit(log)
    assert model.loglik_ > plain.loglik_ + 100
    table = model.prior_table_[3]
    assert table[1] < 0.3 < 0.7 < table[-1]  # low-accuracy class vs high-accuracy class
    sub = log.take(np.flatnonzero((log.learner < 50) | ((log.learner >= 600) & (log.learner < 650))))
    np.testing.assert_array_equal(replay(model, sub), model.predict(sub))
    # flipping an attempt's own label (and everything after it) never changes its prediction
    base = model.predict(sub)
    starts = sub.attempt_starts()
    for a_idx in (0, 5, 6, 13, 20):
        flipped = sub.correct.copy()
        flipped[starts[a_idx] :] = 1 - flipped[starts[a_idx] :]
        other = AttemptLog.from_rows(sub.learner, sub.item, sub.skill, flipped, sub.attempt)
        np.testing.assert_array_equal(model.predict(other)[: a_idx + 1], base[: a_idx + 1])


def test_registry_builds_bkt_variants() -> None:
    assert TRACERS["bkt"] is BKT
    assert isinstance(make_tracer("bkt_forget", n_restarts=2), BKTForget)
    assert make_tracer("bkt_idem").item_level is True  # type: ignore[attr-defined]
    assert {"bkt", "bkt_forget", "bkt_idem", "bkt_prior"} <= set(TRACERS)
    with pytest.raises(UnknownTracerError, match="no_such_tracer"):
        make_tracer("no_such_tracer")


def test_empty_log_serves_defaults_and_round_trips() -> None:
    empty = AttemptLog.from_rows([], [], [], [])
    model = BKT().fit(empty)
    assert model.params_for(3) == {k: pytest.approx(v) for k, v in BKT.DEFAULTS.items()}
    assert model.predict(empty).shape == (0,)
    buf = io.BytesIO()
    model.save(buf)
    buf.seek(0)
    loaded = BKT.load(buf)
    log = multi_skill_log()
    pred = model.predict(log)
    # every skill is unseen: each starts from the defaults in its own sequence
    first = (
        BKT.DEFAULTS["prior"] * (1 - BKT.DEFAULTS["slip"])
        + (1 - BKT.DEFAULTS["prior"]) * BKT.DEFAULTS["guess"]
    )
    assert pred[[0, 2, 4]] == pytest.approx([first] * 3)
    np.testing.assert_array_equal(loaded.predict(log), pred)
    np.testing.assert_array_equal(replay(loaded, log), pred)


def test_interleaved_learners_predict_as_if_contiguous(fitted: BKT, synthetic: AttemptLog) -> None:
    log = synthetic.take(np.flatnonzero(synthetic.learner < 30))
    # interleave: order rows by position within learner, then learner (a time-ordered export of many learners)
    pos = np.arange(len(log)) - np.searchsorted(log.learner, log.learner)
    order = np.lexsort((log.learner, pos))
    mixed = log.take(order)
    got = fitted.predict(mixed)
    expected = fitted.predict(log)
    np.testing.assert_array_equal(got, expected[order])


@pytest.mark.parametrize("item_level", [False, True])
def test_predict_next_many_equals_one_query_at_a_time(synthetic: AttemptLog, item_level: bool) -> None:
    """The scheduler asks for a whole candidate set at once; BKT shares the work per skill set unless guess and
    slip are per item (KT-IDEM)."""
    log = synthetic.take(np.flatnonzero(synthetic.learner < 60))
    model = (BKTIdem(n_restarts=1, item_min_answers=5) if item_level else BKT(n_restarts=1)).fit(log)
    assert model.item_level == item_level
    queries = [Query(item=i, skills=s) for i in range(4) for s in ((0,), (1,), (2,), (0, 2), (42,))]
    state = model.init_state()
    for _, attempt in list(log.attempts())[:30]:
        state = model.update(state, attempt)
        assert model.predict_next_many(state, queries) == [model.predict_next(state, q) for q in queries]
