import numpy as np
import pytest

from curriculum.graph import SkillGraph
from tutor.policy.base import Candidate, LearnerView, grid_search
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


# -- grid_search ----------------------------------------------------------------------------------------------
def _units(params: dict) -> np.ndarray:
    """Per-learner scores of a fake trial: 200 learners with a shared spread, shifted by the combination."""
    shared = np.random.default_rng(0).normal(0.0, 10.0, 200)
    noise = np.random.default_rng(int(params["a"] * 10)).normal(0.0, 2.0, 200)
    return shared + noise - noise.mean() + params["shift"]  # paired differences of mean `shift`, se about 0.2


def test_grid_search_takes_the_best_mean_by_default():
    best, scored = grid_search({"a": (1, 2, 3)}, lambda p: p, lambda p: {1: 0.0, 2: 0.3, 3: 0.1}[p["a"]])
    assert best == {"a": 2}
    assert [s["score"] for s in scored] == [0.0, 0.3, 0.1]


def test_grid_search_keeps_the_first_combination_unless_another_is_clearly_better():
    def score(p: dict) -> np.ndarray:
        return _units(p)

    def trial(shift: float):
        return lambda p: {**p, "shift": shift if p["a"] > 1 else 0.0}

    # A paired difference of 0.1 (standard error about 0.2) is a near-tie: the first stays with paired_z...
    best, scored = grid_search({"a": (1, 2)}, trial(0.1), score, paired_z=2.0)
    assert best == {"a": 1}
    assert scored[1]["score"] > scored[0]["score"]  # ...though the second's mean is higher
    assert scored[1]["vs_first"] == pytest.approx(scored[1]["score"] - scored[0]["score"])
    assert 0.1 < scored[1]["vs_first_se"] < 0.3
    assert grid_search({"a": (1, 2)}, trial(0.1), score)[0] == {"a": 2}  # and the plain best mean flips to it
    # A clear difference wins, and among several clear winners the best mean.
    assert grid_search({"a": (1, 2)}, trial(3.0), score, paired_z=2.0)[0] == {"a": 2}
    best, _ = grid_search(
        {"a": (1, 2, 3)}, lambda p: {**p, "shift": {1: 0.0, 2: 3.0, 3: 5.0}[p["a"]]}, score, paired_z=2.0
    )
    assert best == {"a": 3}
    # A later combination that is not better than the first cannot win by beating another later one.
    best, _ = grid_search(
        {"a": (1, 2, 3)}, lambda p: {**p, "shift": {1: 0.0, 2: -5.0, 3: 0.05}[p["a"]]}, score, paired_z=2.0
    )
    assert best == {"a": 1}


def test_grid_search_refuses_paired_z_without_one_score_per_unit():
    with pytest.raises(ValueError, match="paired_z"):
        grid_search({"a": (1, 2)}, lambda p: p, lambda p: float(p["a"]), paired_z=2.0)
