"""DKT and the attention tracer on tiny synthetic logs: learning, no leak, serving equals predict, persistence."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from learners.tracing.base import Attempt, AttemptLog, Query
from learners.tracing.neural import DKTTracer, SimpleKTTracer, _NeuralTracer


def _log(n_learners: int, n_attempts: int, seed: int, first: int = 0) -> AttemptLog:
    """Each learner is 'strong' or 'weak' (answers right with probability .95 or .05) on items 0..9.

    Item i tests skill i % 3, and also skill (i + 1) % 3 for even items (multi-skill problems). Nothing but the
    learner's own earlier answers tells the two kinds apart, so predicting above chance needs the history."""
    rng = np.random.default_rng(seed)
    cols: dict[str, list[int]] = {k: [] for k in ("learner", "item", "skill", "correct", "attempt")}
    att = 0
    for learner in range(first, first + n_learners):
        p = 0.95 if rng.random() < 0.5 else 0.05
        for _ in range(n_attempts):
            item = int(rng.integers(10))
            correct = int(rng.random() < p)
            skills = (item % 3, (item + 1) % 3) if item % 2 == 0 else (item % 3,)
            for k in skills:
                for key, v in zip(cols, (learner, item, k, correct, att), strict=True):
                    cols[key].append(v)
            att += 1
    return AttemptLog.from_rows(**cols)  # type: ignore[arg-type]


def _dkt() -> DKTTracer:
    return DKTTracer(
        dim=8, hidden=16, max_epochs=8, batch_size=16, lr=0.01, bptt=10, n_threads=1, min_item_count=1
    )


def _simplekt() -> SimpleKTTracer:
    return SimpleKTTracer(
        dim=8,
        heads=2,
        layers=2,
        ff=16,
        window=6,
        max_epochs=8,
        batch_size=16,
        lr=0.01,
        n_threads=1,
        min_item_count=1,
    )


MAKERS = [pytest.param(_dkt, id="dkt"), pytest.param(_simplekt, id="simplekt")]


@pytest.fixture(scope="module")
def fitted() -> dict[str, _NeuralTracer]:
    train = _log(120, 15, seed=0)
    return {"dkt": _dkt().fit(train), "simplekt": _simplekt().fit(train)}


@pytest.mark.parametrize("name", ["dkt", "simplekt"])
def test_learns_a_pattern_only_history_reveals(fitted: dict[str, _NeuralTracer], name: str) -> None:
    test = _log(60, 15, seed=1, first=1000)
    y = test.correct[test.attempt_starts()]
    p = fitted[name].predict(test)
    position = np.tile(np.arange(15), 60)
    later = position >= 3
    # .95 is the ceiling: one answer in twenty goes against the learner's kind.
    assert roc_auc_score(y[later], p[later]) > 0.9
    assert roc_auc_score(y[position == 0], p[position == 0]) == pytest.approx(0.5, abs=0.15)


@pytest.mark.parametrize("name", ["dkt", "simplekt"])
def test_flipping_an_answer_changes_no_prediction_up_to_it(
    fitted: dict[str, _NeuralTracer], name: str
) -> None:
    tracer = fitted[name]
    log = _log(5, 12, seed=2)
    starts = log.attempt_starts()
    multi = np.flatnonzero(np.diff(np.r_[starts, len(log)]) == 2)
    j = int(
        next(a for a in multi if 13 <= a <= 21)
    )  # a multi-skill attempt inside the second learner's answers
    flipped = log.correct.copy()
    flipped[log.attempt == log.attempt[starts[j]]] ^= 1
    base = tracer.predict(log)
    after = tracer.predict(AttemptLog.from_rows(log.learner, log.item, log.skill, flipped, log.attempt))
    np.testing.assert_array_equal(after[: j + 1], base[: j + 1])
    assert np.abs(after[j + 1 : 24] - base[j + 1 : 24]).max() > 1e-4
    np.testing.assert_array_equal(after[24:], base[24:])


@pytest.mark.parametrize("name", ["dkt", "simplekt"])
def test_replaying_update_gives_predict(fitted: dict[str, _NeuralTracer], name: str) -> None:
    tracer = fitted[name]
    log = _log(4, 20, seed=3)
    states: dict[int, dict[str, object]] = {}
    replay = []
    for learner, att in log.attempts():
        state = states.setdefault(learner, tracer.init_state())
        replay.append(tracer.predict_next(state, Query(att.item, att.skills)))
        tracer.update(state, att)
        assert json.loads(json.dumps(state)) == state
    np.testing.assert_allclose(replay, tracer.predict(log), rtol=0, atol=1e-5)
    strong = max(states.values(), key=lambda s: tracer.mastery(s, 0))
    weak = min(states.values(), key=lambda s: tracer.mastery(s, 0))
    assert tracer.mastery(strong, 0) > 0.5 > tracer.mastery(weak, 0)
    assert tracer.mastery(strong, 0) - tracer.mastery(weak, 0) > 0.4


def test_attention_state_keeps_only_the_window(fitted: dict[str, _NeuralTracer]) -> None:
    tracer = fitted["simplekt"]
    log = _log(1, 30, seed=4)
    state = tracer.init_state()
    for _, att in log.attempts():
        tracer.update(state, att)
    assert len(state["i"]) == len(state["c"]) == len(state["k"]) == 6
    # Only the last six answers matter: a log holding just them predicts the same next answer.
    tail = log.take(np.flatnonzero(log.attempt >= log.attempt[log.attempt_starts()[-6]]))
    probe = AttemptLog.from_rows(
        np.r_[tail.learner, 0],
        np.r_[tail.item, 3],
        np.r_[tail.skill, 0],
        np.r_[tail.correct, 0],
        np.r_[tail.attempt, 10**6],
    )
    assert tracer.predict_next(state, Query(3, (0,))) == pytest.approx(
        float(tracer.predict(probe)[-1]), abs=1e-6
    )


@pytest.mark.parametrize("name", ["dkt", "simplekt"])
def test_unknown_ids_use_the_unknown_embedding(fitted: dict[str, _NeuralTracer], name: str) -> None:
    tracer = fitted[name]
    state = tracer.init_state()
    tracer.update(state, Attempt(item=12345, skills=(777,), correct=True))
    tracer.update(state, Attempt(item=4, skills=(1, 2), correct=True))
    assert tracer.predict_next(state, Query(54321, (0,))) == tracer.predict_next(state, Query(-1, (0,)))
    assert tracer.predict_next(state, Query(4, (888,))) == tracer.predict_next(state, Query(4, (999,)))


@pytest.mark.parametrize("name", ["dkt", "simplekt"])
def test_save_load_round_trip(fitted: dict[str, _NeuralTracer], name: str) -> None:
    tracer = fitted[name]
    buf = io.BytesIO()
    tracer.save(buf)
    buf.seek(0)
    loaded = type(tracer).load(buf)
    log = _log(3, 10, seed=5)
    np.testing.assert_array_equal(loaded.predict(log), tracer.predict(log))
    assert {k: getattr(loaded, k) for k in tracer._hyper} == {k: getattr(tracer, k) for k in tracer._hyper}
    other: type[_NeuralTracer] = SimpleKTTracer if name == "dkt" else DKTTracer
    buf.seek(0)
    with pytest.raises(ValueError, match="does not hold"):
        other.load(buf)


@pytest.mark.parametrize("make", MAKERS)
def test_fixed_seed_gives_the_same_model(make: Callable[[], _NeuralTracer]) -> None:
    train = _log(30, 8, seed=6)
    a = make()
    a.max_epochs = 2
    b = make()
    b.max_epochs = 2
    np.testing.assert_array_equal(a.fit(train).predict(train), b.fit(train).predict(train))
