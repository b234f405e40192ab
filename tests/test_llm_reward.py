"""The reward model (fit, held-out AUC, save/load), best-of-n, and the style bandit's propensities."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tutor.llm.reward import (
    Candidate,
    RewardModel,
    StyleBandit,
    best_of_n,
    synthetic_candidate,
)

ITEMS = [
    (f"What is {a} + {b}?", str(a + b), f"Add the ones, then the tens.\n{a} + {b} = {a + b}.")
    for a in range(11, 40, 4)
    for b in range(5, 30, 6)
]


@pytest.fixture(scope="module")
def data() -> tuple[list[Candidate], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    cands, probs = [], []
    for _ in range(600):
        cand, p = synthetic_candidate(*ITEMS[int(rng.integers(len(ITEMS)))], rng)
        cands.append(cand)
        probs.append(p)
    p = np.array(probs)
    return cands, p, (rng.random(len(p)) < p).astype(int)


def test_held_out_auc_is_well_above_chance(data: tuple[list[Candidate], np.ndarray, np.ndarray]) -> None:
    cands, _, y = data
    model = RewardModel().fit_evaluate(cands, y, random_state=0)
    assert model.n_train_ == 450
    assert model.C_ in model.Cs  # chosen by cross-validation
    assert 0.6 < model.auc_ < 0.8
    assert model.version.startswith("rm-")


def test_save_and_load_round_trip_without_pickles(
    data: tuple[list[Candidate], np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    cands, _, y = data
    model = RewardModel(C=0.5).fit(cands[:300], y[:300])
    model.save(tmp_path / "rm")
    meta = json.loads((tmp_path / "rm.json").read_text())
    assert meta["params"]["C"] == 0.5 and meta["C_"] == 0.5
    loaded = RewardModel.load(tmp_path / "rm")
    np.testing.assert_allclose(loaded.predict_proba(cands[300:320]), model.predict_proba(cands[300:320]))
    assert loaded.version == model.version
    (tmp_path / "bad.json").write_text('{"class": "Other"}')
    with pytest.raises(ValueError, match="not a saved RewardModel"):
        RewardModel.load(tmp_path / "bad")


def test_best_of_n_beats_a_random_pick(data: tuple[list[Candidate], np.ndarray, np.ndarray]) -> None:
    cands, _, y = data
    model = RewardModel().fit(cands, y)
    rng = np.random.default_rng(1)
    best, rand = [], []
    for item in ITEMS[:20]:
        level = "beginner"
        group = [synthetic_candidate(*item, rng, level=level) for _ in range(4)]
        pick = best_of_n(model, [c for c, _ in group])
        best.append(group[pick][1])
        rand.append(group[int(rng.integers(4))][1])
    assert np.mean(best) > np.mean(rand) + 0.05


def test_bandit_propensities_are_exact_and_learning_moves_them() -> None:
    bandit = StyleBandit(epsilon=0.2, n_mc=500)
    rng = np.random.default_rng(0)
    choice = bandit.choose("beginner", rng)
    assert choice.propensity == pytest.approx(choice.probabilities[choice.style])
    assert sum(choice.probabilities.values()) == pytest.approx(1.0)
    assert min(choice.probabilities.values()) >= 0.2 / 4
    for _ in range(60):
        bandit.update("beginner", "worked_example", 1.0)
        bandit.update("beginner", "short_hint", 0.0)
    probs = bandit.probabilities("beginner", np.random.default_rng(2))
    assert probs[0] > 0.75  # worked_example now wins unless an untried style draws higher
    assert probs[3] == pytest.approx(0.2 / 4, abs=0.005)  # short_hint keeps only the floor
    assert bandit.means()["beginner"]["worked_example"] == pytest.approx(61 / 62)
    assert bandit.means()["advanced"]["worked_example"] == 0.5  # contexts learn separately
    again = StyleBandit.from_dict(json.loads(json.dumps(bandit.to_dict())))
    np.testing.assert_array_equal(again.alpha_, bandit.alpha_)
    assert again.choose("beginner", np.random.default_rng(5)) == bandit.choose(
        "beginner", np.random.default_rng(5)
    )
