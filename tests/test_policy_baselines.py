import numpy as np
import pytest

from curriculum.graph import SkillGraph
from tutor.policy.base import Candidate, LearnerView
from tutor.policy.baselines import ExpertOrderPolicy, RandomPolicy

GRAPH = SkillGraph([1, 2, 3], [(1, 2), (2, 3)])
CANDS = [Candidate(10 * s + k, (s,), 0.5, d) for s in (1, 2, 3) for k, d in enumerate((-1.0, 0.0, 1.0))]


def test_random_is_uniform():
    p = RandomPolicy().distribution(CANDS, LearnerView(GRAPH, {}))
    assert np.allclose(p, 1 / 9)


def test_expert_follows_the_syllabus_from_easy_to_hard():
    pol = ExpertOrderPolicy(per_skill=3, epsilon=0.0)
    p = pol.distribution(CANDS, LearnerView(GRAPH, {}, attempts={}))
    assert p.tolist() == [1.0] + [0.0] * 8  # first skill, easiest item
    p = pol.distribution(CANDS, LearnerView(GRAPH, {}, attempts={1: 2}))
    assert p[2] == 1.0  # last exercise of skill 1: the hardest
    p = pol.distribution(CANDS, LearnerView(GRAPH, {}, attempts={1: 3}))
    assert p[3] == 1.0  # skill 2 starts, whatever the answers were
    p = pol.distribution(CANDS, LearnerView(GRAPH, {}, attempts={1: 3, 2: 3, 3: 3}))
    assert p[2] == 1.0  # all done: cycle from the least practised, earliest skill, at full difficulty


def test_expert_explores_within_the_focus_skill():
    p = ExpertOrderPolicy(per_skill=3, epsilon=0.3).distribution(CANDS, LearnerView(GRAPH, {}))
    assert p.sum() == pytest.approx(1.0)
    assert np.all(p[:3] > 0) and np.all(p[3:] == 0)
    assert p[0] == pytest.approx(0.7 + 0.1)
