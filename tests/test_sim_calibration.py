import numpy as np
import pytest

from learners.tracing.base import AttemptLog
from tutor.sim.calibration import (
    PracticeSequences,
    accuracy_curve,
    calibrate,
    practice_sequences,
    simulate_practice,
    stopping_hazard,
)
from tutor.sim.learners import SimParams


def test_sequences_curves_and_hazard_on_a_handmade_log():
    log = AttemptLog.from_rows(
        learner=[0, 0, 0, 0, 1, 1],
        item=[-1] * 6,
        skill=[5, 7, 5, 5, 5, 5],
        correct=[0, 1, 1, 1, 1, 0],
    )
    seqs = practice_sequences(log, np.array([5, 7]))
    assert seqs.skill.tolist() == [0, 1, 0]
    assert seqs.length.tolist() == [3, 1, 2]
    assert seqs.correct.tolist() == [[0, 1, 1], [1, -1, -1], [1, 0, -1]]
    acc, counts = accuracy_curve(seqs.correct, 3)
    assert counts.tolist() == [3, 2, 1]
    assert acc.tolist() == pytest.approx([2 / 3, 0.5, 1.0])
    h = stopping_hazard(seqs)
    # After answer 1 with a run of 1 correct: sequences 1 (stops) and 2 (goes on): (1 + .5) / (2 + 1).
    assert h[0, 1] == pytest.approx(1.5 / 3.0)
    assert h[0, 0] == pytest.approx(0.5 / 2.0)  # sequence 0, wrong first answer, goes on


def test_simulated_practice_follows_the_hazard():
    seqs = PracticeSequences(
        skill=np.zeros(2000, dtype=np.int64),
        length=np.full(2000, 5),
        correct=np.zeros((2000, 40), dtype=np.int8),
    )
    stop_now = np.ones((6, 4))
    one = np.full(1, 0.5)
    sim = simulate_practice(
        SimParams(), seqs, one, np.full(1, 0.2), np.full(1, 0.2), np.full(1, 0.1), stop_now
    )
    assert np.all((sim >= 0).sum(axis=1) == 1)
    never = np.zeros((6, 4))
    sim = simulate_practice(SimParams(), seqs, one, np.full(1, 0.2), np.full(1, 0.2), np.full(1, 0.1), never)
    acc, _ = accuracy_curve(sim, 40)
    assert acc[-1] > acc[0] + 0.15  # learning shows in the curve


def test_calibration_reports_a_better_match_than_bkt_alone():
    rng = np.random.default_rng(0)
    rows = []
    for learner in range(300):
        ability = 0.9 * rng.standard_normal()
        for skill in (1, 2):
            known = rng.random() < 1 / (1 + np.exp(-(0.0 + ability)))
            for _ in range(int(rng.integers(2, 12))):
                p = 0.85 if known else 0.2
                rows.append((learner, skill, int(rng.random() < p)))
                known = known or rng.random() < 0.25
    learner, skill, correct = (np.array(x) for x in zip(*rows, strict=True))
    log = AttemptLog.from_rows(learner, np.full(len(learner), -1), skill, correct)
    # Without item effects the grid contains the BKT-only simulator, so the chosen spreads can only match better.
    base = SimParams(difficulty_effect=0.0, zpd_strength=0.0)
    cal = calibrate(
        log,
        base=base,
        ability_sds=(0.0, 0.8),
        rate_sds=(0.0,),
        prior_shifts=(0.0,),
        learn_scales=(1.0, 2.0),
        max_attempt=8,
    )
    seqs = practice_sequences(log, np.array([1, 2]))
    assert np.allclose(cal.real_curve, accuracy_curve(seqs.correct, 8)[0])
    assert cal.rmse <= cal.baseline_rmse
    assert round(cal.rmse, 5) == min(g["rmse"] for g in cal.grid)
    assert len(cal.grid) == 4
    doc = cal.to_dict()
    assert doc["rmse"] == round(cal.rmse, 4) and "not_identified" in doc
