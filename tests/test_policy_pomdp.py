import io
import math

import numpy as np
import pytest

from curriculum.graph import SkillGraph
from tests.test_policy_joint import CANDS, GRAPH, history, joint
from tutor.policy.base import LearnerView
from tutor.policy.belief import item_fit
from tutor.policy.joint import JointBeliefPolicy, JointModel, rate_classes
from tutor.policy.pomdp import (
    BeliefPlanner,
    BeliefRecorder,
    MassScreen,
    PlanningPolicy,
    PlanRecorder,
    _best_fit,
)
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


def _values_over_states(rng, n, n_skills, noise):
    """n value vectors (>= 0) over the 2^S knowledge states, shaped as plans' are (each known skill saves some
    exercises, a pair interacts), with `noise` of unstructured spread."""
    bits = ((np.arange(1 << n_skills)[:, None] >> np.arange(n_skills)) & 1).astype(np.float64)
    saves = rng.uniform(0.0, 30.0, (n, n_skills))
    pairs = rng.uniform(0.0, 5.0, (n, 1)) * (bits[:, 0] * bits[:, 1])[None, :]
    values = 30.0 * n_skills + 10.0 - saves @ bits.T - pairs + rng.normal(0.0, noise, (n, 1 << n_skills))
    return np.maximum(values, 0.0).astype(np.float32)


def test_the_screen_finds_the_full_products_vector_reading_part_of_the_plan_for_a_likely_state():
    rng = np.random.default_rng(0)
    alphas = _values_over_states(rng, 600, 10, noise=0.3)
    screen = MassScreen(alphas, stages=(64, 256))
    settled = rng.dirichlet(np.full(1 << 10, 0.02), size=100).astype(np.float32)
    spread = rng.dirichlet(np.ones(1 << 10), size=40).astype(np.float32)
    known = np.eye(1 << 10, dtype=np.float32)[rng.choice(1 << 10, 30)]
    read = {}
    for name, beliefs in (("settled", settled), ("spread", spread), ("known", known)):
        read[name] = []
        for b in beliefs:
            full = alphas @ b
            row, value = screen.argmin(b)
            assert row == int(full.argmin()) and value == pytest.approx(float(full.min()), rel=1e-5)
            read[name].append(screen.read_ / alphas.size)
    # A known state is bounded exactly after the first stage: a quarter of the plan's states and a few vectors.
    assert max(read["known"]) < 0.1
    assert np.median(read["settled"]) < 0.5
    # A belief spread over every state keeps most vectors in: it reads the stages and then the whole plan.
    assert min(read["spread"]) > 1.0
    # Ties go to the first vector, as the full product's argmin sends them; the bounds hold for values of any sign.
    assert MassScreen(np.concatenate([alphas[:5], alphas[:5]])).argmin(known[0])[0] == int(
        (alphas[:5] @ known[0]).argmin()
    )
    below = MassScreen(alphas - 200.0, stages=(64, 256))
    for b in np.concatenate([settled[:20], known[:10]]):
        assert below.argmin(b)[0] == int(((alphas - 200.0) @ b).argmin())


def test_a_large_plan_serves_through_its_screen_the_decisions_of_the_full_product(monkeypatch):
    m = joint()
    joint_policy = JointBeliefPolicy(unlock=0.7).fit(m)
    recorder = BeliefRecorder.of(joint_policy)
    rng = np.random.default_rng(2)
    views = [LearnerView(graph=GRAPH, mastery={}, history=history(rng, k), now=1e7) for k in range(0, 60, 2)]
    for v in views:
        recorder.select(CANDS, v, rng)
    policy = PlanningPolicy.of(joint_policy).plan(recorder.sample(40), iterations=30)
    planner = policy.planner_
    assert planner is not None and planner.alphas_.size < planner.screen_above
    small = [policy.distribution(CANDS, v) for v in views]
    assert planner._screen is None  # a small plan reads every vector
    monkeypatch.setattr(BeliefPlanner, "screen_above", 0)
    monkeypatch.setattr(MassScreen.__init__, "__defaults__", ((4, 8), 0.1))  # stages within 16 states
    again = load_policy("pomdp", _saved(policy))
    assert again.planner_._screen is not None  # made when the plan is loaded
    assert again.planner_._screen.alphas is again.planner_.alphas_
    for v, want in zip(views, small, strict=True):
        assert np.array_equal(again.distribution(CANDS, v), want)
    read = []
    for b in np.random.default_rng(3).dirichlet(np.full(16, 0.3), size=50):
        assert again.planner_.action(b) == planner.action(b)
        read.append(again.planner_._screen.read_)
        assert again.planner_.value(b) == pytest.approx(planner.value(b), abs=1e-4)
    assert min(read) > 0  # through the screen (this plan is two vectors: the stages cannot rule one out)
    # New vectors (more rounds) get a new screen.
    again.replan(recorder.sample(40, random_state=5), iterations=3)
    b = np.full(16, 1.0 / 16, dtype=np.float32)
    assert again.planner_.value(b) == pytest.approx(float((again.planner_.alphas_ @ b).min()), abs=1e-4)
    assert again.planner_._screen.alphas is again.planner_.alphas_
