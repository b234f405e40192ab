import io
import itertools
import math

import numpy as np
import pytest

from curriculum.graph import SkillGraph
from tests.test_policy_belief import _prereq
from tutor.policy.base import Candidate, LearnerView, Outcome
from tutor.policy.belief import BeliefModel, _pad
from tutor.policy.joint import MAX_SKILLS, JointBeliefPolicy, JointModel, rate_classes
from tutor.policy.registry import LEARNED, load_policy
from tutor.policy.sessions import SessionModel

GRAPH = SkillGraph([1, 2, 3, 4], [(1, 2), (2, 3), (1, 4)])
CANDS = [Candidate(10 * s + k, (s,), 0.5, d) for s in (1, 2, 3, 4) for k, d in enumerate((-1.0, 0.0, 1.0))]
GLOBALS = {
    "difficulty_effect": 0.5,
    "fatigue": 0.3,
    "fit_linear": 0.2,
    "fit_quadratic": -0.3,
    "prereq": 0.15,
    "prior_prereq": 0.3,
    "forget": 0.05,
}


def joint(graph=GRAPH, **globals_):
    skills = list(graph.order)
    n = len(skills)
    return JointModel().set_params(
        skills,
        _prereq(graph, skills),
        np.linspace(0.4, 0.7, n),
        np.linspace(0.15, 0.3, n),
        [0.2] * n,
        [0.1] * n,
        {**GLOBALS, **globals_},
    )


def history(rng, n, skills=(1, 2, 3, 4), start=0.0):
    out, t = [], start
    for k in range(n):
        t += 45.0 if k % 10 else 86400.0
        s = int(rng.choice(skills))
        out.append(Outcome(10 * s, (s,), bool(rng.random() < 0.6), t, float(rng.choice([-1.0, 0.0, 1.0]))))
    return out


def brute_force(m, hist):
    """Marginals and log-likelihood by enumerating every path of hidden states (tiny graphs only)."""
    skills = m.skills_
    n = len(skills)
    states = list(itertools.product([0, 1], repeat=n))  # state[s] for skill position s
    g = m.globals_
    pre = [np.flatnonzero(m.prereq_[s]).tolist() for s in range(n)]

    def prior(x):
        p = 1.0
        for s in range(n):
            q = m.prior_[s] * g["prior_prereq"] ** sum(1 - x[q_] for q_ in pre[s])
            p *= q if x[s] else 1 - q
        return p

    dist = {x: prior(x) for x in states}
    t_last, k, ll = None, 0, 0.0
    for o in hist:
        j = skills.index(o.skills[0])
        k = 0 if t_last is None or o.time - t_last > 3600 else k + 1
        if t_last is not None and o.time - t_last > 3600:
            f = math.exp(-g["forget"] * (o.time - t_last) / 86400.0)
            new = dict.fromkeys(states, 0.0)
            for x, px in dist.items():
                ones = [s for s in range(n) if x[s]]
                for kept in itertools.product([0, 1], repeat=len(ones)):
                    y = [0] * n
                    w = px
                    for s, keep in zip(ones, kept, strict=True):
                        y[s] = keep
                        w *= f if keep else 1 - f
                    new[tuple(y)] += w
            dist = new
        t_last = o.time
        a = g["difficulty_effect"] * o.difficulty
        guess = 1 / (1 + math.exp(-(math.log(0.2 / 0.8) - a)))
        slip = 1 / (1 + math.exp(-(math.log(0.1 / 0.9) + a + g["fatigue"] * k / 25)))
        lik = {x: ((1 - slip) if o.correct else slip) if x[j] else (guess if o.correct else 1 - guess) for x in states}
        total = sum(dist[x] * lik[x] for x in states)
        ll += math.log(total)
        post = {x: dist[x] * lik[x] / total for x in states}
        expo = math.exp(g["fit_linear"] * o.difficulty + g["fit_quadratic"] * o.difficulty**2)
        new = dict.fromkeys(states, 0.0)
        for x, px in post.items():
            if x[j]:
                new[x] += px
                continue
            missing = sum(1 - x[q] for q in pre[j])
            learn = 1 - (1 - m.learn_[j]) ** (expo * g["prereq"] ** missing)
            y = list(x)
            y[j] = 1
            new[tuple(y)] += px * learn
            new[x] += px * (1 - learn)
        dist = new
    marg = [sum(p for x, p in dist.items() if x[s]) for s in range(n)]
    return marg, ll


def test_filter_is_exact_against_enumerating_hidden_paths():
    m = joint()
    hist = history(np.random.default_rng(0), 25)
    st = m.filter(hist)[0]
    marg, ll = brute_force(m, hist)
    assert m.beliefs([st], hist[-1].time) == pytest.approx(marg, abs=1e-10)
    assert st.loglik[0] == pytest.approx(ll, abs=1e-9)
    assert st.p.sum() == pytest.approx(1.0)


def test_learner_classes_mix_single_class_filters_by_their_likelihood():
    m = JointModel.from_model(joint(), rate_sd=0.8)
    hist = history(np.random.default_rng(5), 40)
    st = m.filter(hist)[0]
    now = hist[-1].time + 3600.0
    mixed = np.array(m.beliefs([st], now))
    parts, logs = [], []
    for c in rate_classes(0.8):
        # One class alone: its rate multiplier folded into the learning rates, 1 - (1 - T)^rate.
        single = joint()
        doc = single.to_dict()
        doc["learn"] = (1 - (1 - np.asarray(doc["learn"])) ** c["rate"]).tolist()
        one = JointModel.from_dict(doc)
        s1 = one.filter(hist)[0]
        parts.append(one.beliefs([s1], now))
        logs.append(math.log(c["weight"]) + float(s1.loglik[0]))
    w = np.exp(np.array(logs) - max(logs))
    w /= w.sum()
    assert mixed == pytest.approx(w @ np.array(parts), abs=1e-10)
    assert m.loglik_of([st]) == pytest.approx(max(logs) + math.log(np.exp(np.array(logs) - max(logs)).sum()))
    # Classes are the same learners with other learning rates: slow learners lower, fast higher, mean 1.
    rates = [c["rate"] for c in rate_classes(0.8)]
    assert rates[0] < 1 < rates[2]
    assert sum(c["weight"] * c["rate"] for c in rate_classes(0.8)) == pytest.approx(1, abs=0.01)


def test_without_a_graph_or_forgetting_the_joint_filter_is_the_per_skill_filter():
    flat = SkillGraph([1, 2, 3, 4], [])
    jm = joint(flat, forget=0.0)
    mf = BeliefModel().from_dict(jm.to_dict())
    hist = history(np.random.default_rng(1), 60)
    a = jm.beliefs(jm.filter(hist), hist[-1].time)
    b = mf.beliefs(mf.filter(hist), hist[-1].time)
    assert a == pytest.approx(b, abs=1e-12)


def test_failing_a_practised_skill_is_evidence_against_its_prerequisite():
    m = joint(forget=0.0, fatigue=0.0)
    fails = [Outcome(20, (2,), False, 45.0 * k, 0.0) for k in range(8)]
    st = m.filter(fails)[0]
    before = m.beliefs(m.new_belief(), 0.0)
    after = m.beliefs([st], fails[-1].time)
    # Skill 1 was never answered, yet the learner who does not pick up skill 2 probably lacks skill 1 too.
    assert after[0] < before[0] - 0.05
    # Right answers on a deep skill raise the belief in what it builds on.
    rights = [Outcome(30, (3,), True, 45.0 * k, 0.0) for k in range(3)]
    up = m.beliefs(m.filter(rights), rights[-1].time)
    assert up[0] > before[0] + 0.05 and up[1] > before[1] + 0.05


def test_batch_likelihood_is_the_filter_vectorised():
    m = joint()
    rng = np.random.default_rng(2)
    rows = []
    for learner in range(6):
        for o in history(rng, 30 + 5 * learner, start=1000.0 * learner):
            rows.append((learner, o))
    learner = np.array([r[0] for r in rows])
    skill = np.array([m.pos_[r[1].skills[0]] for r in rows])
    data = _pad(
        learner,
        skill,
        np.array([r[1].difficulty for r in rows]),
        np.array([r[1].correct for r in rows]),
        np.array([r[1].time for r in rows]),
    )
    for mm in (m, JointModel.from_model(m, rate_sd=0.7)):
        online = sum(mm.loglik_of(mm.filter([o for lrn, o in rows if lrn == k])) for k in range(6))
        assert mm.batch_loglik(data) == pytest.approx(online, abs=1e-8)


def test_refine_raises_the_joint_likelihood_of_a_log_drawn_from_the_joint_model():
    truth = joint(prior_prereq=0.3, prereq=0.15)
    rng = np.random.default_rng(3)
    rows = []
    skills = truth.skills_
    for learner in range(60):
        state = int(rng.choice(truth.prior_joint_.shape[1], p=truth.prior_joint_[0]))
        t = 86400.0 * learner
        for _ in range(30):
            t += 45.0
            j = int(rng.integers(len(skills)))
            knows = bool(state >> j & 1)
            correct = bool(rng.random() < (0.9 if knows else 0.2))
            rows.append((learner, skills[j], 0.0, correct, t))
            missing = int(truth.missing_[j, state])
            if not knows and rng.random() < 1 - (1 - truth.learn_[j]) ** (0.15**missing):
                state |= 1 << j
    arr = [np.array(c) for c in zip(*rows, strict=True)]
    start = joint(prior_prereq=0.9, prereq=0.9)
    start.refine(GRAPH, *arr, max_learners=60)
    steps = start.refine_["steps"]
    assert steps[-1]["loglik"] > steps[0]["loglik"]
    assert all(b["loglik"] >= a["loglik"] for a, b in itertools.pairwise(steps))
    # The graph's coupling moved towards the truth from a start that ignored it.
    assert start.globals_["prior_prereq"] < 0.9 and start.globals_["prereq"] < 0.9


def test_policy_practises_the_prerequisite_of_an_unknown_skill_first_and_explores_everywhere():
    m = joint()
    policy = JointBeliefPolicy(unlock=0.7).fit(m)
    # Skill 1 failed several times: it and everything built on it look unknown.
    hist = [Outcome(10, (1,), False, 45.0 * k, 0.0) for k in range(4)]
    view = LearnerView(graph=GRAPH, mastery={}, history=hist, now=200.0)
    probs = policy.distribution(CANDS, view)
    assert probs.sum() == pytest.approx(1.0) and (probs > 0).all()
    best = CANDS[int(np.argmax(probs))]
    assert best.skills == (1,)
    d = policy.select(CANDS, view, np.random.default_rng(0))
    assert d.propensity == pytest.approx(probs[[c.item for c in CANDS].index(d.item)])


def test_teacher_targets_come_first():
    m = joint()
    policy = JointBeliefPolicy(unlock=0.0).fit(m)
    view = LearnerView(graph=GRAPH, mastery={}, history=(), now=0.0, targets=frozenset({4}))
    best = CANDS[int(np.argmax(policy.distribution(CANDS, view)))]
    assert best.skills[0] in (1, 4)  # the target or what it needs


def test_save_load_round_trip_and_registry():
    policy = JointBeliefPolicy(unlock=0.6, done=0.97).fit(joint())
    buf = io.BytesIO()
    policy.save(buf)
    again = load_policy("joint", io.BytesIO(buf.getvalue()))
    assert "joint" in LEARNED
    view = LearnerView(graph=GRAPH, mastery={}, history=history(np.random.default_rng(4), 20), now=1e6)
    assert np.array_equal(policy.distribution(CANDS, view), again.distribution(CANDS, view))
    assert again.unlock == 0.6 and again.done == 0.97


def test_courses_too_large_for_the_exact_filter_are_refused():
    n = MAX_SKILLS + 1
    big = SkillGraph(list(range(n)), [])
    with pytest.raises(ValueError, match="at most"):
        joint(big)


def sessions_ending_at_a_run_of(run):
    """A session model in which a session ends exactly when the run of wrong answers reaches `run`, and quitting
    rises with that run."""
    end = [-10.0] * 48 + [20.0 if f >= run else 0.0 for f in range(11)]
    return SessionModel.from_dict({"end_coef": end, "quit_coef": [-4.0, 3.0]})


def test_session_position_counts_answers_and_the_run_of_failures_since_the_last_pause():
    policy = JointBeliefPolicy().fit(joint())
    old = [Outcome(10, (1,), False, 0.0, 0.0)]
    now = [Outcome(10, (1,), c, 86400.0 + 45.0 * k, 0.0) for k, c in enumerate((False, True, False, False))]
    view = LearnerView(graph=GRAPH, mastery={}, history=old + now, now=86400.0 + 180.0)
    assert policy._session_position(view) == (4, 2)
    later = LearnerView(graph=GRAPH, mastery={}, history=old + now, now=2 * 86400.0)
    assert policy._session_position(later) == (0, 0)


def test_guard_serves_the_likeliest_right_item_only_when_a_failure_risks_losing_the_learner():
    model = joint()
    fails = [Outcome(10, (1,), False, 45.0 * k, 0.0) for k in range(2)]
    view = LearnerView(graph=GRAPH, mastery={}, history=fails, now=90.0)
    plain = JointBeliefPolicy(unlock=0.7).fit(model)
    guarded = JointBeliefPolicy(unlock=0.7, dropout_cost=200.0, sessions=sessions_ending_at_a_run_of(3)).fit(model)
    usual = plain.distribution(CANDS, view)
    probs = guarded.distribution(CANDS, view)
    right = guarded.p_right(CANDS, view, 2)
    assert int(np.argmax(probs)) == int(np.argmax(right)) != int(np.argmax(usual))
    assert probs.sum() == pytest.approx(1.0) and (probs > 0).all()
    d = guarded.select(CANDS, view, np.random.default_rng(0))
    assert d.propensity == pytest.approx(probs[[c.item for c in CANDS].index(d.item)])
    assert d.info["guard"] is True
    # One failure fewer: the next wrong answer would not end the session, so the usual choice stands.
    calm = LearnerView(graph=GRAPH, mastery={}, history=fails[:1], now=45.0)
    assert np.array_equal(guarded.distribution(CANDS, calm), plain.distribution(CANDS, calm))
    # Without a cost on losing learners, or without a session model, nothing changes.
    off = JointBeliefPolicy(unlock=0.7, dropout_cost=0.0, sessions=sessions_ending_at_a_run_of(3)).fit(model)
    assert np.array_equal(off.distribution(CANDS, view), usual)
    assert np.array_equal(JointBeliefPolicy(unlock=0.7, dropout_cost=200.0).fit(model).distribution(CANDS, view), usual)


def test_p_right_is_the_belief_weighted_answer_model_of_each_candidate():
    model = joint(difficulty_effect=0.4, fatigue=0.3)
    policy = JointBeliefPolicy().fit(model)
    view = LearnerView(graph=GRAPH, mastery={}, history=[Outcome(10, (1,), True, 0.0, 0.0)], now=30.0)
    cands = [*CANDS, Candidate(99, (42,), 0.5, 1.0)]  # a skill outside the model
    right = policy.p_right(cands, view, 7)
    p, w = policy._state_now(view)
    marg = w @ p @ model._bf
    for c, r in zip(cands[:-1], right[:-1], strict=True):
        j = model.pos_[c.skills[0]]
        guess, slip = model._guess_slip(j, c.difficulty, 7)
        assert r == pytest.approx(marg[j] * (1 - slip) + (1 - marg[j]) * guess, rel=1e-12)
    assert np.isnan(right[-1])


def test_save_load_keeps_the_session_model():
    policy = JointBeliefPolicy(unlock=0.7, dropout_cost=150.0, sessions=sessions_ending_at_a_run_of(3)).fit(joint())
    buf = io.BytesIO()
    policy.save(buf)
    again = load_policy("joint", io.BytesIO(buf.getvalue()))
    assert again.dropout_cost == 150.0 and again.sessions_ is not None
    fails = [Outcome(10, (1,), False, 45.0 * k, 0.0) for k in range(2)]
    view = LearnerView(graph=GRAPH, mastery={}, history=fails, now=90.0)
    assert np.array_equal(policy.distribution(CANDS, view), again.distribution(CANDS, view))


def test_an_extreme_item_fit_does_not_overflow_the_filter():
    """A model fitted on too little data can put its item fit far out; the learning multiplier stays finite."""
    from tutor.policy.belief import FIT_CAP, item_fit, item_fit_many

    g = {"fit_linear": 900.0, "fit_quadratic": 5.0}
    assert item_fit(g, 1.0) == pytest.approx(np.exp(FIT_CAP))
    assert item_fit({"fit_linear": 0.5, "fit_quadratic": -0.5}, 0.4) == pytest.approx(np.exp(0.2 - 0.08))
    assert np.all(np.isfinite(item_fit_many(g, np.array([-1.0, 0.0, 1.0]))))


def test_tuning_with_paired_z_keeps_the_grids_first_setting_through_a_near_tie():
    shared = np.random.default_rng(1).normal(0.0, 20.0, 300)

    def score(edge):
        def per_learner(p):  # each learner's minus exercises: the second setting ahead by `edge` on average
            noise = np.random.default_rng(int(p.unlock * 10) + p.lookahead).normal(0.0, 3.0, 300)
            return shared + noise - noise.mean() + (edge if p.unlock == 0.7 else 0.0)

        return per_learner

    grid = {"unlock": (0.6, 0.7), "lookahead": (0,)}
    near = JointBeliefPolicy().fit(joint()).tune(score(0.2), grid, paired_z=2.0)
    assert (near.unlock, near.lookahead) == (0.6, 0)
    assert near.tuning_[1]["score"] > near.tuning_[0]["score"] and near.tuning_[1]["vs_first_se"] > 0.1
    assert JointBeliefPolicy().fit(joint()).tune(score(0.2), grid).unlock == 0.7  # the plain best mean
    assert JointBeliefPolicy().fit(joint()).tune(score(2.0), grid, paired_z=2.0).unlock == 0.7
