import numpy as np
import pytest

from curriculum.graph import SkillGraph
from tutor.policy.base import Candidate, LearnerView, Outcome
from tutor.policy.zpdes import ZPDESPolicy

GRAPH = SkillGraph([1, 2, 3], [(1, 2), (2, 3)])
CANDS = [Candidate(10 * s + k, (s,), 0.5, d) for s in (1, 2, 3) for k, d in enumerate((-1.0, 0.0, 1.0))]


def outcomes(skill: int, answers: str) -> list[Outcome]:
    return [Outcome(10 * skill, (skill,), a == "1") for a in answers]


def test_cold_start_explores_the_roots_only():
    pol = ZPDESPolicy(epsilon=0.0)
    w = pol.skill_weights(LearnerView(GRAPH, {}), [1, 2, 3])
    assert w == {1: 1.0}
    p = pol.distribution(CANDS, LearnerView(GRAPH, {}))
    assert p.sum() == pytest.approx(1.0) and np.all(p[3:] == 0)
    assert p[1] > p[0] == pytest.approx(p[2])  # no answers yet: the middle of the skill's difficulty range


def test_success_unlocks_and_retires_skills():
    pol = ZPDESPolicy(window=6, unlock=0.7, done=0.85, gamma=0.2, w0=0.3, epsilon=0.0)
    view = LearnerView(GRAPH, {}, history=outcomes(1, "0011"))
    assert set(pol.skill_weights(view, [1, 2, 3])) == {1}
    view = LearnerView(GRAPH, {}, history=outcomes(1, "0111"))
    assert set(pol.skill_weights(view, [1, 2, 3])) == {1, 2}  # 3/4 >= unlock
    view = LearnerView(GRAPH, {}, history=outcomes(1, "011111"))
    assert set(pol.skill_weights(view, [1, 2, 3])) == {1, 2}  # 5/6 < done: skill 1 stays in the ZPD
    view = LearnerView(GRAPH, {}, history=outcomes(1, "111111"))
    assert set(pol.skill_weights(view, [1, 2, 3])) == {2}  # retired for good
    view = LearnerView(GRAPH, {}, history=outcomes(1, "1111110000"))
    assert set(pol.skill_weights(view, [1, 2, 3])) == {2}


def test_learning_progress_drives_the_choice():
    pol = ZPDESPolicy(window=6, unlock=0.5, done=0.95, gamma=0.0, w0=0.3, epsilon=0.0)
    # Skill 1 flat at 2/3; skill 2 going from 0% to 100% in its window: all weight on 2.
    hist = outcomes(1, "110110") + outcomes(2, "000111")
    w = pol.skill_weights(LearnerView(GRAPH, {}, history=hist), [1, 2])
    assert w == {1: 0.0, 2: 1.0}


def test_every_candidate_keeps_a_propensity():
    pol = ZPDESPolicy(epsilon=0.05)
    p = pol.distribution(CANDS, LearnerView(GRAPH, {}, history=outcomes(1, "0111")))
    assert p.sum() == pytest.approx(1.0) and np.all(p >= 0.05 / 9)
