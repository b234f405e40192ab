import io

import numpy as np
import pytest

from curriculum.graph import SkillGraph
from tutor.policy.base import POLICIES, Candidate, LearnerView, make_policy
from tutor.policy.baselines import ExploringPolicy
from tutor.policy.registry import LEARNED, load_policy

GRAPH = SkillGraph([1, 2], [(1, 2)])
CANDS = [Candidate(10 * s + k, (s,), 0.5, d) for s in (1, 2) for k, d in enumerate((-1.0, 0.0, 1.0))]


def test_every_policy_is_registered():
    assert set(POLICIES) >= {
        "random",
        "expert",
        "mastery",
        "zpdes",
        "spaced",
        "explore",
        "bandit",
        "planner",
        "ppo",
        "hierarchical",
        "belief",
        "joint",
        "pomdp",
    }
    assert {"bandit", "planner", "ppo", "hierarchical", "belief", "joint", "pomdp"} == LEARNED


@pytest.mark.parametrize("name", ["random", "expert", "mastery", "zpdes", "spaced", "explore"])
def test_unlearned_policies_give_a_distribution(name):
    p = make_policy(name).distribution(CANDS, LearnerView(GRAPH, {1: 0.5}))
    assert p.sum() == pytest.approx(1.0) and np.all(p >= 0) and p.max() > 0


def test_exploring_policy_covers_every_candidate():
    pol = make_policy("explore", base="mastery", epsilon=0.3, threshold=0.9)
    assert isinstance(pol, ExploringPolicy) and pol.base.threshold == 0.9
    p = pol.distribution(CANDS, LearnerView(GRAPH, {1: 0.5}))
    assert np.all(p >= 0.3 / 6) and p.sum() == pytest.approx(1.0)


def test_load_policy_refuses_unlearned_kinds():
    with pytest.raises(ValueError, match="learned"):
        load_policy("mastery", io.BytesIO(b""))
