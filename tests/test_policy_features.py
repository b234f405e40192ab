import numpy as np
import pytest

from curriculum.graph import SkillGraph
from tutor.policy.base import Candidate, LearnerView, Outcome
from tutor.policy.features import (
    DAY,
    FEATURE_NAMES,
    ability_proxy,
    at_difficulty,
    candidate_features,
    skill_context,
)

GRAPH = SkillGraph([1, 2, 3], [(1, 2), (1, 3), (2, 3)])


def test_ability_proxy_is_the_logit_of_smoothed_recent_accuracy():
    hist = [Outcome(1, (1,), c) for c in (True, True, False)] + [Outcome(1, (1,), True)] * 30
    assert ability_proxy(LearnerView(GRAPH, {}, history=hist)) == pytest.approx(np.log(21 / 1))
    assert ability_proxy(LearnerView(GRAPH, {})) == 0.0


def test_skill_context_and_candidate_features():
    view = LearnerView(
        GRAPH,
        {1: 0.9, 2: 0.5, 3: 0.2},
        attempts={1: 3},
        last_seen={1: 0.0},
        now=2 * DAY,
        targets=frozenset({2}),
    )
    ctx = skill_context(view)
    assert ctx.ready.tolist() == pytest.approx([1.0, 0.9, 0.45])
    assert ctx.min_pre.tolist() == pytest.approx([1.0, 0.9, 0.5])
    assert ctx.days_since.tolist() == [2.0, 30.0, 30.0]
    assert ctx.target.tolist() == [True, True, False]
    x = candidate_features([Candidate(7, (3,), 0.4, 0.5)], view, ctx)
    row = dict(zip(FEATURE_NAMES, x[0], strict=True))
    assert row["mastery"] == 0.2 and row["ready"] == pytest.approx(0.45)
    assert row["ready_x_unmastered"] == pytest.approx(0.45 * 0.8)
    assert row["difficulty"] == 0.5 and row["p_correct"] == 0.4
    moved = at_difficulty(x, -1.0)
    assert dict(zip(FEATURE_NAMES, moved[0], strict=True))["rel_difficulty_sq"] == pytest.approx(1.0)
    assert moved[0, FEATURE_NAMES.index("mastery")] == 0.2
