import io

import numpy as np
import pytest

from curriculum.graph import SkillGraph
from tutor.policy.base import Candidate, LearnerView, Outcome
from tutor.policy.hierarchical import HierarchicalPolicy
from tutor.policy.planner import PlannerPolicy

GRAPH = SkillGraph([1, 2, 3, 4], [(1, 2), (2, 3), (1, 4)])
CANDS = [Candidate(10 * s + k, (s,), 0.5, d) for s in (1, 2, 3, 4) for k, d in enumerate((-1.0, 0.0, 1.0))]


@pytest.fixture
def low():
    p = PlannerPolicy(lookahead=0.0)
    p.skills_ = [1, 2, 3, 4]
    p.prior_ = np.full(4, 0.3)
    p.learn_ = np.array([0.2, 0.2, 0.2, 0.4])
    p.guess_ = np.full(4, 0.2)
    p.slip_ = np.full(4, 0.1)
    p.prereq_ = np.zeros((4, 4), dtype=bool)
    p.prereq_[1, 0] = p.prereq_[2, 1] = p.prereq_[3, 0] = True
    p.model_ = {
        "learn_scale": 1.0,
        "prereq_factor": 1.0,
        "zpd_center": 1.0,
        "zpd_width": 0.5,
        "zpd_strength": 1.0,
        "ability_slope": 0.0,
        "difficulty_effect": 0.0,
    }
    return p


def test_sub_goal_respects_prerequisites_and_targets(low):
    h = HierarchicalPolicy(done=0.95, unlock=0.95, low=low)
    v = low.values(CANDS, LearnerView(GRAPH, {}))
    assert h.sub_goal(CANDS, LearnerView(GRAPH, {1: 0.5}), v) == 1
    view = LearnerView(GRAPH, {1: 0.97, 2: 0.3, 4: 0.3})
    assert h.sub_goal(CANDS, view, low.values(CANDS, view)) == 4  # open: 2 and 4; 4 learns faster
    view = LearnerView(GRAPH, {1: 0.97, 2: 0.3, 4: 0.3}, targets=frozenset({3}))
    assert h.sub_goal(CANDS, view, low.values(CANDS, view)) == 2  # the teacher's goal needs 2 first


def test_commitment_to_the_current_sub_goal(low):
    h = HierarchicalPolicy(max_stint=3, low=low)
    hist = [Outcome(40, (4,), False)] * 2
    view = LearnerView(GRAPH, {1: 0.97, 2: 0.3, 4: 0.3}, history=hist)
    assert h.sub_goal(CANDS, view, low.values(CANDS, view)) == 4
    view = LearnerView(GRAPH, {1: 0.97, 2: 0.31, 4: 0.2}, history=[Outcome(20, (2,), False)] * 2)
    assert h.sub_goal(CANDS, view, low.values(CANDS, view)) == 2  # keeps 2 though 4 now scores higher
    view = LearnerView(GRAPH, {1: 0.97, 2: 0.31, 4: 0.2}, history=[Outcome(20, (2,), False)] * 3)
    assert h.sub_goal(CANDS, view, low.values(CANDS, view)) == 4  # stint used up


def test_low_level_learning_then_confirmation_items(low):
    h = HierarchicalPolicy(switch=0.8, confirm=0.0, epsilon=0.0, low=low)
    p = h.distribution(CANDS, LearnerView(GRAPH, {1: 0.5}))
    assert np.flatnonzero(p).tolist() == [2]  # learning: the item-fit optimum (difficulty 1)
    p = h.distribution(CANDS, LearnerView(GRAPH, {1: 0.85}))
    assert np.flatnonzero(p).tolist() == [0]  # confirming: the easiest item
    d = h.select(CANDS, LearnerView(GRAPH, {1: 0.85}), np.random.default_rng(0))
    assert d.skill == 1 and d.info == {"sub_goal": 1}


def test_tune_picks_the_best_thresholds_and_round_trips(low):
    h = HierarchicalPolicy(switch=0.8, run=2, low=low)
    seen = []

    def score(p: HierarchicalPolicy) -> float:
        seen.append((p.switch, p.run, p.max_stint))  # trials keep every hyperparameter not in the grid
        return -abs(p.done - 0.9) - abs(p.confirm - 1.0)

    h.tune(score, {"done": (0.9, 0.95), "confirm": (0.0, 1.0)})
    assert (h.done, h.unlock, h.confirm) == (0.9, 0.9, 1.0)
    assert len(h.tuning_) == 4
    assert set(seen) == {(0.8, 2, 12)}
    buf = io.BytesIO()
    h.save(buf)
    buf.seek(0)
    again = HierarchicalPolicy.load(buf)
    assert again._hyper() == h._hyper()
    view = LearnerView(GRAPH, {1: 0.97, 2: 0.85})
    assert np.array_equal(again.distribution(CANDS, view), h.distribution(CANDS, view))
