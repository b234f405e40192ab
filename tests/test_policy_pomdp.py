import io
import math

import numpy as np
import pytest

from curriculum.graph import SkillGraph
from tests.test_policy_joint import CANDS, GRAPH, history, joint
from tutor.policy.base import LearnerView
from tutor.policy.belief import item_fit
from tutor.policy.joint import JointBeliefPolicy
from tutor.policy.pomdp import BeliefPlanner, BeliefRecorder, PlanningPolicy, _best_fit
from tutor.policy.registry import LEARNED, load_policy


def test_one_skill_value_is_the_closed_form_of_practising_until_learned():
    # One skill: the only sensible plan is to practise it at the item that teaches most; a learner who does
    # not know it yet keeps costing an exercise, so V(b) = (1 - b) / (1 - discount (1 - L)).
    m = joint(SkillGraph([1], []))
    beliefs = np.array([[1.0, 0.0], [0.5, 0.5], [0.2, 0.8]])
    planner = BeliefPlanner(discount=0.99).fit(m, beliefs, [0], iterations=400)
    d = _best_fit(m.globals_)
    learn = 1.0 - math.exp(m._lt[0] * item_fit(m.globals_, d))
    for b in beliefs:
        assert planner.value(b) == pytest.approx((1.0 - b[1]) / (1.0 - 0.99 * (1.0 - learn)), rel=1e-3)
    assert planner.action(beliefs[0]) == (0, pytest.approx(d))
    # The values fell from the upper bounds round by round.
    values = [h["value"] for h in planner.history_]
    assert all(b <= a + 1e-4 for a, b in zip(values, values[1:], strict=False)) and values[-1] < values[0]


def _state(bits, n):
    b = np.zeros(1 << n)
    b[bits] = 1.0
    return b


def test_chain_plan_teaches_the_prerequisite_first_and_lies_between_full_information_and_blind_bounds():
    graph = SkillGraph([1, 2], [(1, 2)])
    m = joint(graph)
    rng = np.random.default_rng(0)
    beliefs = np.concatenate([np.eye(4), rng.dirichlet(np.ones(4), size=60)])
    planner = BeliefPlanner(discount=0.99).fit(m, beliefs, [0, 1], iterations=300)
    # Nothing known: skill 1 (position 0) first; skill 1 known for sure: skill 2.
    assert planner.action(_state(0, 2))[0] == 0
    assert planner.action(_state(1, 2))[0] == 1
    # Seeing the state can only help: the planned value of a belief is at least the mixture of the values of
    # its states (each planned with the state known), and below the blind syllabi it started from.
    blind, _ = planner._blind([0, 1], 3, (planner._cost / (1.0 - 0.99)).astype(np.float32))
    for b in beliefs[4:]:
        told = sum(b[x] * planner.value(_state(x, 2)) for x in range(4))
        assert told - 1e-3 <= planner.value(b) <= (blind @ b).min() + 1e-3
        assert planner.value(b) < (blind @ b).min() - 0.5  # and planning bought something
    assert planner.value(_state(3, 2)) == pytest.approx(0.0, abs=1e-6)


def test_policy_serves_the_plan_explores_everywhere_and_round_trips():
    m = joint()
    joint_policy = JointBeliefPolicy(unlock=0.7).fit(m)
    recorder = BeliefRecorder.of(joint_policy)
    rng = np.random.default_rng(1)
    for k in range(10):
        hist = history(rng, k * 3)
        recorder.select(CANDS, LearnerView(graph=GRAPH, mastery={}, history=hist, now=1e7), rng)
    beliefs = recorder.sample(8)
    assert beliefs.shape == (9, 16) and np.allclose(beliefs.sum(axis=1), 1.0, atol=1e-5)
    # Beliefs already settled on "everything known" are left out; the prior is always there.
    recorder.seen_.append(np.eye(16, dtype=np.float32)[15])
    assert (recorder.sample(100)[:, -1] < 0.8).all() and len(recorder.sample(100)) == 11
    policy = PlanningPolicy.of(joint_policy).plan(beliefs, iterations=30)
    view = LearnerView(graph=GRAPH, mastery={}, history=(), now=0.0)
    probs = policy.distribution(CANDS, view)
    assert probs.sum() == pytest.approx(1.0) and (probs > 0).all()
    j, d = policy.planner_.action(beliefs[-1])  # the prior
    best = CANDS[int(np.argmax(probs))]
    assert best.skills[0] == m.skills_[j] and best.skills[0] == 1  # the root first
    decision = policy.select(CANDS, view, np.random.default_rng(0))
    assert decision.propensity == pytest.approx(probs[[c.item for c in CANDS].index(decision.item)])
    buf = io.BytesIO()
    policy.save(buf)
    again = load_policy("pomdp", io.BytesIO(buf.getvalue()))
    assert "pomdp" in LEARNED
    for k in (0, 5, 20):
        v = LearnerView(graph=GRAPH, mastery={}, history=history(np.random.default_rng(k), k), now=1e7)
        assert np.array_equal(policy.distribution(CANDS, v), again.distribution(CANDS, v))
    with pytest.raises(ValueError, match="do not match"):
        load_policy("pomdp", io.BytesIO(buf.getvalue()[:-4]))


def test_teacher_targets_and_an_unplanned_policy():
    m = joint()
    policy = PlanningPolicy(unlock=0.0).fit(m)
    view = LearnerView(graph=GRAPH, mastery={}, history=(), now=0.0, targets=frozenset({4}))
    with pytest.raises(ValueError, match="not planned"):
        policy.distribution(CANDS, view)
    policy.plan(np.array([np.exp(m._clogw) @ m.prior_joint_]), iterations=5)
    # Targets: decided as `joint` decides (the target or what it needs first).
    assert np.array_equal(
        policy.distribution(CANDS, view), JointBeliefPolicy(unlock=0.0).fit(m).distribution(CANDS, view)
    )
