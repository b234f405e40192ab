import numpy as np
import pytest

from curriculum.graph import SkillGraph
from tutor.policy.base import Candidate, LearnerView
from tutor.policy.spaced import DAY, SpacedReviewPolicy

GRAPH = SkillGraph([1, 2], [(1, 2)])
CANDS = [Candidate(10 * s + k, (s,), p, 0.0) for s in (1, 2) for k, p in enumerate((0.6, 0.7, 0.9))]


def view(seen_days_ago: float, attempts: int = 3) -> LearnerView:
    now = 100 * DAY
    return LearnerView(
        GRAPH, {1: 0.97, 2: 0.4}, attempts={1: attempts}, last_seen={1: now - seen_days_ago * DAY}, now=now
    )


def test_recall_halves_every_half_life_and_grows_with_practice():
    pol = SpacedReviewPolicy(half_life_days=2.0, growth=2.0)
    assert pol.predicted_recall(view(2.0), 1) == pytest.approx(0.5)
    assert pol.predicted_recall(view(2.0, attempts=5), 1) == pytest.approx(2**-0.25)
    assert pol.predicted_recall(view(2.0), 2) == 1.0  # never practised: nothing to review


def test_reviews_a_faded_mastered_skill_before_new_learning():
    pol = SpacedReviewPolicy(half_life_days=2.0, recall=0.6, epsilon=0.0)
    fresh = pol.distribution(CANDS, view(0.5))
    assert np.flatnonzero(fresh).tolist() == [4]  # skill 2, the item nearest 0.7
    faded = pol.distribution(CANDS, view(3.0))
    assert np.flatnonzero(faded).tolist() == [1]  # review skill 1
    d = pol.select(CANDS, view(3.0), np.random.default_rng(0))
    assert d.skill == 1 and d.info == {"review_skill": 1} and d.propensity == 1.0


def test_exploration_keeps_propensities_within_the_focus_skill():
    p = SpacedReviewPolicy(epsilon=0.3).distribution(CANDS, view(3.0))
    assert p.sum() == pytest.approx(1.0)
    assert np.all(p[:3] > 0) and np.all(p[3:] == 0)
