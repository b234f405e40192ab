import io

import numpy as np
import pytest

from curriculum.graph import SkillGraph
from tutor.policy.bandit import ContextualBanditPolicy, RidgeModel
from tutor.policy.base import Candidate, LearnerView
from tutor.policy.features import FEATURE_NAMES

GRAPH = SkillGraph([1, 2], [(1, 2)])
CANDS = [Candidate(10 * s + k, (s,), 0.5, d) for s in (1, 2) for k, d in enumerate((-1.0, 0.0, 1.0))]


def test_ridge_recovers_a_linear_function():
    rng = np.random.default_rng(0)
    x = np.column_stack([np.ones(500), rng.normal(size=(500, 3))])
    y = 0.5 + x[:, 1:] @ np.array([1.0, -2.0, 0.5])
    m = RidgeModel(alpha=1e-6).fit(x, y)
    assert np.allclose(m.predict(x), y, atol=1e-5)
    again = RidgeModel.from_dict(m.to_dict())
    assert np.array_equal(again.predict(x), m.predict(x))


def synthetic_log(n: int, rng: np.random.Generator):
    """Decisions on 2 skills: practising a skill with low mastery raises the next success on it by 0.4; the
    control rows (other skill, not practised) keep their current success."""
    f = len(FEATURE_NAMES)
    feats = np.zeros((n, f))
    skill_feats = np.zeros((n, 2, f), dtype=np.float32)
    learner = np.repeat(np.arange(n // 10), 10)
    mastery = rng.random((n // 10, 2))[learner]  # constant per learner and skill
    skill = rng.integers(0, 2, size=n)
    for k in range(n):
        for s in range(2):
            row = np.zeros(f)
            row[0] = 1.0
            row[FEATURE_NAMES.index("mastery")] = mastery[k, s]
            skill_feats[k, s] = row
        feats[k] = skill_feats[k, skill[k]]
    # correctness: 0.3 + 0.4 * mastery, +0.4 * (1 - mastery) right after practising the skill
    correct = np.zeros(n, dtype=bool)
    prev_practised = np.zeros((n // 10, 2), dtype=bool)
    for k in range(n):
        s, l_ = skill[k], learner[k]
        p = 0.3 + 0.4 * mastery[k, s] + (0.4 * (1 - mastery[k, s]) if prev_practised[l_, s] else 0.0)
        correct[k] = rng.random() < p
        prev_practised[l_] = False
        prev_practised[l_, s] = True
    return feats, skill_feats, learner, skill, correct


def test_uplift_targets_pair_each_decision_with_the_next_attempt_on_its_skill():
    f = len(FEATURE_NAMES)
    feats = np.zeros((4, f))
    sf = np.zeros((4, 2, f), dtype=np.float32)
    learner = np.array([0, 0, 0, 1])
    skill = np.array([0, 1, 0, 0])
    correct = np.array([True, False, False, True])
    x_t, y_t, x_c, y_c = ContextualBanditPolicy.uplift_targets(feats, sf, learner, skill, correct)
    assert y_t.tolist() == [0.0]  # decision 0 (skill 0) -> next on skill 0 is decision 2 (wrong)
    assert y_c.tolist() == [0.0, 0.0]  # decisions 0 and 1 -> next on the other skill: 1 (wrong), 2 (wrong)
    assert len(x_t) == 1 and len(x_c) == 2


def test_fit_uplift_prefers_low_mastery_skills_and_round_trips():
    rng = np.random.default_rng(1)
    pol = ContextualBanditPolicy(epsilon=0.2).fit_uplift(*synthetic_log(20_000, rng))
    view = LearnerView(GRAPH, {1: 0.9, 2: 0.1})
    p = pol.distribution(CANDS, view)
    assert p.sum() == pytest.approx(1.0) and np.all(p >= 0.2 / 6 - 1e-12)
    assert p[3:].sum() == pytest.approx(0.8 + 0.2 * 3 / 6)  # greedy on skill 2: low mastery gains most
    buf = io.BytesIO()
    pol.save(buf)
    buf.seek(0)
    again = ContextualBanditPolicy.load(buf)
    assert np.array_equal(again.distribution(CANDS, view), p)


def test_plain_fit_uses_the_given_reward():
    rng = np.random.default_rng(2)
    x = np.zeros((300, len(FEATURE_NAMES)))
    x[:, 0] = 1.0
    x[:, FEATURE_NAMES.index("difficulty")] = rng.choice([-1.0, 0.0, 1.0], size=300)
    reward = x[:, FEATURE_NAMES.index("difficulty")] + np.where(np.arange(300) % 7 == 0, np.nan, 0.0)
    pol = ContextualBanditPolicy(epsilon=0.0, alpha=1e-3).fit(x, reward)
    p = pol.distribution(CANDS, LearnerView(GRAPH, {1: 0.5, 2: 0.5}))
    assert p[2] + p[5] == pytest.approx(1.0)  # the hardest items
