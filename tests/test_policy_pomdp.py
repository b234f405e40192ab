import io
import math

import numpy as np
import pytest

from curriculum.graph import SkillGraph
from tests.test_policy_joint import CANDS, GRAPH, history, joint
from tutor.policy.base import LearnerView
from tutor.policy.belief import item_fit
from tutor.policy.joint import JointBeliefPolicy, JointModel, rate_classes
from tutor.policy.pomdp import BeliefPlanner, BeliefRecorder, PlanningPolicy, PlanRecorder, _best_fit
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


def test_the_plan_extends_to_the_beliefs_its_own_policy_meets():
    m = joint()
    joint_policy = JointBeliefPolicy(unlock=0.7).fit(m)
    first = np.array([np.exp(m._clogw) @ m.prior_joint_])
    policy = PlanningPolicy.of(joint_policy).plan(first, iterations=20)
    assert policy.planner_ is not None
    # The recorder decides exactly as the policy it follows, and keeps the beliefs it met.
    recorder = PlanRecorder.following(policy)
    views = [
        LearnerView(graph=GRAPH, mastery={}, history=history(np.random.default_rng(k), k * 3), now=1e7)
        for k in range(12)
    ]
    for k, v in enumerate(views):
        assert recorder.select(CANDS, v, np.random.default_rng(k)) == policy.select(
            CANDS, v, np.random.default_rng(k)
        )
    more = recorder.sample(50, random_state=1)
    assert len(recorder.seen_) == 12 and len(more) >= 2
    before = [policy.planner_.value(b) for b in more]
    loaded = load_policy("pomdp", _saved(policy))
    policy.replan(np.concatenate([first, more]), iterations=20)
    # Perseus from the current vectors: no belief of the extended set gets worse, the new ones improve, the
    # rounds carry on in the history; the same replan of the saved plan gives the same vectors.
    after = [policy.planner_.value(b) for b in more]
    assert all(a <= b + 1e-4 for a, b in zip(after, before, strict=True)) and sum(after) < sum(before) - 1e-3
    assert len(policy.planner_.history_) == 40
    loaded.replan(np.concatenate([first, more]), iterations=20)
    assert np.array_equal(loaded.planner_.alphas_, policy.planner_.alphas_)


def _saved(policy: PlanningPolicy) -> io.BytesIO:
    buf = io.BytesIO()
    policy.save(buf)
    return io.BytesIO(buf.getvalue())


def test_planning_by_learner_class_gives_each_class_its_own_closed_form():
    # One skill, three learning-rate classes: practising is the only plan, and each class learns at its own
    # rate, so V(b) = sum_c b(c, unknown) / (1 - discount (1 - L_c)), not one rate for all.
    m = JointModel.from_dict({**joint(SkillGraph([1], [])).to_dict(), "classes": rate_classes(0.8)})
    planner = BeliefPlanner(discount=0.99, classes=True)
    w = np.exp(m._clogw)
    beliefs = np.array([planner.belief(m.prior_joint_, w), planner.belief(np.array([[1.0, 0.0]] * 3), w)])
    assert beliefs.shape == (2, 6)
    planner.fit(m, beliefs, [0], iterations=400)
    fit = item_fit(m.globals_, _best_fit(m.globals_))
    for b in beliefs:
        want = sum(b[2 * c] / (1.0 - 0.99 * math.exp(m._lt[0] * fit * m._crate[c])) for c in range(3))
        assert planner.value(b) == pytest.approx(want, rel=1e-3)
    blind = BeliefPlanner(discount=0.99).fit(m, np.array([w @ np.array([[1.0, 0.0]] * 3)]), [0], 400)
    assert planner.value(beliefs[1]) > blind.value(np.array([1.0, 0.0])) + 1.0  # slow learners weigh in


def test_a_policy_planned_by_class_records_serves_and_round_trips():
    m = JointModel.from_dict({**joint().to_dict(), "classes": rate_classes(0.8)})
    joint_policy = JointBeliefPolicy(unlock=0.7).fit(m)
    recorder = BeliefRecorder.of(joint_policy)
    recorder.by_class = True
    rng = np.random.default_rng(1)
    for k in range(6):
        view = LearnerView(graph=GRAPH, mastery={}, history=history(rng, k * 3), now=1e7)
        recorder.select(CANDS, view, rng)
    beliefs = recorder.sample(10)
    assert beliefs.shape == (7, 3 * 16) and np.allclose(beliefs.sum(axis=1), 1.0, atol=1e-5)
    policy = PlanningPolicy.of(joint_policy).plan(beliefs, 10, planner=BeliefPlanner(classes=True))
    assert policy.planner_ is not None and policy.planner_.alphas_.shape[1] == 3 * 16
    follower = PlanRecorder.following(policy)
    view = LearnerView(graph=GRAPH, mastery={}, history=history(rng, 9), now=1e7)
    assert follower.select(CANDS, view, np.random.default_rng(3)) == policy.select(
        CANDS, view, np.random.default_rng(3)
    )
    assert follower.seen_[0].shape == (3 * 16,)
    again = load_policy("pomdp", _saved(policy))
    assert again.planner_.classes and np.array_equal(
        again.distribution(CANDS, view), policy.distribution(CANDS, view)
    )
