import io
import json
import math
from dataclasses import replace

import numpy as np
import pytest

from curriculum.graph import SkillGraph
from tutor.policy.base import Candidate, LearnerView, Outcome
from tutor.policy.belief import (
    COEF_MAX,
    FORGET_MAX,
    LOGIT_MAX,
    BeliefModel,
    BeliefPolicy,
    FilterState,
    _pad,
    _torch_loglik,
)
from tutor.policy.registry import LEARNED, load_policy

GRAPH = SkillGraph([1, 2, 3, 4], [(1, 2), (2, 3), (1, 4)])
CANDS = [Candidate(10 * s + k, (s,), 0.5, d) for s in (1, 2, 3, 4) for k, d in enumerate((-1.0, 0.0, 1.0))]
PLAIN = {
    "difficulty_effect": 0.0,
    "fatigue": 0.0,
    "fit_linear": 0.0,
    "fit_quadratic": 0.0,
    "prereq": 1.0,
    "prior_prereq": 1.0,
    "forget": 0.0,
}


def _prereq(graph, skills):
    pos = {s: k for k, s in enumerate(skills)}
    p = np.zeros((len(skills), len(skills)), dtype=bool)
    for pre, post in graph.edges():
        p[pos[post], pos[pre]] = True
    return p


def model(classes=None, learn=(0.2, 0.2, 0.2, 0.2), **globals_):
    skills = [1, 2, 3, 4]
    return BeliefModel().set_params(
        skills,
        _prereq(GRAPH, skills),
        [0.5] * 4,
        list(learn),
        [0.2] * 4,
        [0.1] * 4,
        {**PLAIN, **globals_},
        classes,
    )


def test_filter_matches_a_hand_computed_bkt_step():
    m = model()
    st = m.filter([Outcome(10, (1,), True, 0.0, 0.0)])[0]
    # P(right) = 0.5 * 0.9 + 0.5 * 0.2 = 0.55; posterior 0.45 / 0.55; then learning with T = 0.2.
    post = 0.45 / 0.55
    assert st.loglik == pytest.approx(math.log(0.55))
    assert st.m[0] == pytest.approx(post + (1 - post) * 0.2)
    # A wrong answer: P(wrong) = 0.5 * 0.1 + 0.5 * 0.8 = 0.45.
    st = m.filter([Outcome(10, (1,), False, 0.0, 0.0)])[0]
    assert st.loglik == pytest.approx(math.log(0.45))
    assert st.m[0] == pytest.approx(0.05 / 0.45 + (1 - 0.05 / 0.45) * 0.2)


def test_difficulty_prerequisites_and_forgetting_enter_the_belief():
    m = model(difficulty_effect=1.0, prior_prereq=0.3, prereq=0.5, forget=0.1)
    st = FilterState(4)
    # Unseen skill 2 (prerequisite 1, unseen): prior 0.5 * (0.5 + 0.5 * 0.3).
    assert m.belief_of(st, 1, 0.0) == pytest.approx(0.5 * 0.65)
    # A right answer on a hard item is stronger evidence than on an easy one.
    hard = m.filter([Outcome(12, (1,), True, 0.0, 1.0)])[0].m[0]
    easy = m.filter([Outcome(10, (1,), True, 0.0, -1.0)])[0].m[0]
    assert hard > easy
    # Forgetting: a day later the belief has decayed by exp(-0.1).
    st = m.filter([Outcome(10, (1,), True, 0.0, 0.0)])[0]
    assert m.belief_of(st, 0, 86400.0) == pytest.approx(st.m[0] * math.exp(-0.1))


def _synthetic_log(rng, n_learners, n_steps, prior, learn, guess, slip, a, f):
    """Answers drawn from the model itself (two independent skills, sessions of 10 answers)."""
    rows = []
    for lrn in range(n_learners):
        known = rng.random(2) < prior
        for t in range(n_steps):
            s = int(rng.integers(2))
            d = float(rng.choice([-1.0, 0.0, 1.0]))
            k = t % 10
            time = (t // 10) * 86400.0 + k * 45.0
            g = 1 / (1 + math.exp(-(math.log(guess / (1 - guess)) - a * d)))
            sl = 1 / (1 + math.exp(-(math.log(slip / (1 - slip)) + a * d + f * k / 25)))
            p = 1 - sl if known[s] else g
            c = bool(rng.random() < p)
            rows.append((lrn, s + 1, d, c, time))
            if not known[s] and rng.random() < learn:
                known[s] = True
    arr = np.array(rows, dtype=np.float64)
    return arr[:, 0].astype(int), arr[:, 1].astype(int), arr[:, 2], arr[:, 3].astype(bool), arr[:, 4]


def test_maximum_likelihood_recovers_the_parameters_of_a_synthetic_log():
    rng = np.random.default_rng(0)
    learner, skill, diff, correct, time = _synthetic_log(rng, 600, 24, 0.4, 0.15, 0.2, 0.1, 0.8, 0.0)
    fitted = BeliefModel(n_classes=1, ridge=0.0).fit(
        SkillGraph([1, 2], []), learner, skill, diff, correct, time
    )
    assert fitted.globals_["difficulty_effect"] == pytest.approx(0.8, abs=0.2)
    assert np.allclose(fitted.guess_, 0.2, atol=0.05)
    assert np.allclose(fitted.slip_, 0.1, atol=0.05)
    assert np.allclose(fitted.prior_, 0.4, atol=0.1)
    assert np.allclose(fitted.learn_, 0.15, atol=0.07)
    # The vectorised likelihood it maximised is the per-learner filter's likelihood.
    assert fitted.loglik(learner, skill, diff, correct, time) == pytest.approx(fitted.loglik_, rel=1e-9)


def test_vectorised_likelihood_equals_the_filter_with_a_graph():
    import torch

    classes = [{"weight": 0.3, "rate": 0.5, "shift": -0.4}, {"weight": 0.7, "rate": 2.0, "shift": 0.2}]
    m = model(
        classes,
        difficulty_effect=0.5,
        fatigue=0.4,
        fit_linear=0.3,
        fit_quadratic=-0.2,
        prereq=0.2,
        prior_prereq=0.3,
        forget=0.05,
    )
    rng = np.random.default_rng(1)
    n = 40
    learner = np.repeat(np.arange(5), n // 5)
    skill = rng.choice([1, 2, 3, 4], size=n)
    diff = rng.choice([-1.0, 0.0, 1.0], size=n)
    correct = rng.random(n) < 0.6
    time = np.tile(np.cumsum(rng.choice([45.0, 90000.0], size=n // 5, p=[0.8, 0.2])), 5)
    pos = np.array([m.pos_[int(s)] for s in skill])
    data = {k: torch.as_tensor(v) for k, v in _pad(learner, pos, diff, correct, time).items()}

    def lg(p):
        return torch.tensor(math.log(p / (1 - p)), dtype=torch.float64)

    th = {
        "prior": torch.full((4,), float(lg(0.5)), dtype=torch.float64),
        "learn": torch.full((4,), float(lg(0.2)), dtype=torch.float64),
        "guess": torch.full((4,), float(lg(0.2)), dtype=torch.float64),
        "slip": torch.full((4,), float(lg(0.1)), dtype=torch.float64),
        "difficulty_effect": torch.tensor(0.5, dtype=torch.float64),
        "fatigue": torch.tensor(0.4, dtype=torch.float64),
        "fit_linear": torch.tensor(0.3, dtype=torch.float64),
        "fit_quadratic": torch.tensor(-0.2, dtype=torch.float64),
        "prereq": lg(0.2),
        "prior_prereq": lg(0.3),
        "forget": torch.tensor(math.log(0.05), dtype=torch.float64),
        "class_rate": torch.log(torch.tensor([0.5, 2.0], dtype=torch.float64)),
        "class_shift": torch.tensor([-0.4, 0.2], dtype=torch.float64),
        "class_weight": torch.log(torch.tensor([0.3, 0.7], dtype=torch.float64)),
    }
    vec = float(_torch_loglik(th, data, torch.as_tensor(m.prereq_, dtype=torch.float64)))
    assert vec == pytest.approx(m.loglik(learner, skill, diff, correct, time), rel=1e-9)
    # A forgetting rate beyond FORGET_MAX (where an optimiser's step can land: exp overflows) counts as the bound.
    pre = torch.as_tensor(m.prereq_, dtype=torch.float64)
    at_bound = float(_torch_loglik({**th, "forget": torch.tensor(math.log(FORGET_MAX))}, data, pre))
    beyond = float(_torch_loglik({**th, "forget": torch.tensor(1000.0, dtype=torch.float64)}, data, pre))
    assert math.isfinite(beyond) and beyond == at_bound
    # So do logits and coefficients beyond their bounds (a fit on a few dozen answers walked the prerequisite
    # logit and the item-fit coefficients far enough for 0 * inf: a NaN likelihood).
    far = {**th, "prior": th["prior"] - 800.0, "prereq": torch.tensor(-800.0, dtype=torch.float64),
           "prior_prereq": torch.tensor(-800.0, dtype=torch.float64),
           "fit_linear": torch.tensor(900.0, dtype=torch.float64), "difficulty_effect": torch.tensor(-900.0, dtype=torch.float64)}  # fmt: skip
    edge = {**th, "prior": (th["prior"] - 800.0).clamp(min=-LOGIT_MAX), "prereq": torch.tensor(-LOGIT_MAX, dtype=torch.float64),
            "prior_prereq": torch.tensor(-LOGIT_MAX, dtype=torch.float64),
            "fit_linear": torch.tensor(COEF_MAX, dtype=torch.float64), "difficulty_effect": torch.tensor(-COEF_MAX, dtype=torch.float64)}  # fmt: skip
    far_ll = float(_torch_loglik(far, data, pre))
    assert math.isfinite(far_ll) and far_ll == float(_torch_loglik(edge, data, pre))


def test_distribution_explores_every_candidate_and_sums_to_one():
    p = BeliefPolicy(model=model())
    probs = p.distribution(CANDS, LearnerView(GRAPH, {}))
    assert probs.sum() == pytest.approx(1.0)
    assert (probs > 0).all()
    assert probs.min() >= p.epsilon_all / len(CANDS) - 1e-12


@pytest.mark.parametrize("mode", ["goal", "gain"])
def test_prerequisites_first_and_teacher_targets(mode):
    # Skill 4 learns fastest, so the gain rule prefers it when nothing else decides.
    p = BeliefPolicy(
        done=0.95,
        unlock=0.9,
        epsilon=0.0,
        epsilon_all=0.0,
        mode=mode,
        model=model(learn=(0.2, 0.2, 0.2, 0.6)),
    )
    # Nothing known yet: only skill 1 is open (2, 3, 4 need it).
    probs = p.distribution(CANDS, LearnerView(GRAPH, {}))
    assert all(c.skills == (1,) for c, q in zip(CANDS, probs, strict=True) if q > 0)
    # Skill 1 answered right many times: 2 and 4 open; a target of 3 makes it 2 (3's missing prerequisite).
    hist = [Outcome(10 + k % 3, (1,), True, 45.0 * k, 0.0) for k in range(8)]
    view = LearnerView(GRAPH, {}, history=hist, now=400.0, targets=frozenset({3}))
    probs = p.distribution(CANDS, view)
    assert {c.skills[0] for c, q in zip(CANDS, probs, strict=True) if q > 0} == {2}
    if mode == "gain":
        probs = p.distribution(CANDS, LearnerView(GRAPH, {}, history=hist, now=400.0))
        assert {c.skills[0] for c, q in zip(CANDS, probs, strict=True) if q > 0} == {4}


def test_memo_gives_the_same_belief_as_filtering_from_scratch():
    p = BeliefPolicy(model=model(difficulty_effect=0.5, forget=0.05))
    hist = [Outcome(10 * (1 + k % 4), (1 + k % 4,), k % 3 != 0, 45.0 * k, 0.0) for k in range(30)]
    for n in range(1, 31):
        p.belief(LearnerView(GRAPH, {}, history=hist[:n], now=45.0 * n))
    incremental = p.belief(LearnerView(GRAPH, {}, history=hist, now=2000.0))
    fresh = BeliefPolicy(model=p.model_).belief(LearnerView(GRAPH, {}, history=list(hist), now=2000.0))
    assert incremental == pytest.approx(fresh)


def test_a_request_with_new_answer_objects_extends_the_previous_state_by_value(monkeypatch):
    p = BeliefPolicy(model=model(difficulty_effect=0.5, forget=0.05))
    hist = [Outcome(10 * (1 + k % 4), (1 + k % 4,), k % 3 != 0, 45.0 * k, 0.0) for k in range(30)]
    p.belief(LearnerView(GRAPH, {}, history=[replace(o) for o in hist[:29]], now=2000.0))
    calls = []
    real = p.model_.update
    monkeypatch.setattr(p.model_, "update", lambda *a: calls.append(a) or real(*a))
    # As the service does: the same answers rebuilt as new objects, plus the newest one.
    again = p.belief(LearnerView(GRAPH, {}, history=[replace(o) for o in hist], now=2000.0))
    assert len(calls) == 1  # one answer filtered, not thirty
    fresh = BeliefPolicy(model=model(difficulty_effect=0.5, forget=0.05)).belief(
        LearnerView(GRAPH, {}, history=hist, now=2000.0)
    )
    assert again == pytest.approx(fresh)


def test_a_window_that_slides_by_one_answer_costs_one_update_and_keeps_the_whole_stream(monkeypatch):
    # The service shows a policy the latest answers as the same objects across requests; once the learner has
    # more than the window, each request drops the oldest answer and appends the newest.
    p = BeliefPolicy(model=model(difficulty_effect=0.5, forget=0.05))
    hist = [Outcome(10 * (1 + k % 4), (1 + k % 4,), k % 3 != 0, 45.0 * k, 0.0) for k in range(40)]
    window = 25
    for n in range(1, 40):
        p.belief(LearnerView(GRAPH, {}, history=hist[max(0, n - window) : n], now=45.0 * n))
    calls = []
    real = p.model_.update
    monkeypatch.setattr(p.model_, "update", lambda *a: calls.append(a) or real(*a))
    slid = p.belief(LearnerView(GRAPH, {}, history=hist[40 - window :], now=2000.0))
    assert len(calls) == 1
    monkeypatch.undo()
    stream = BeliefPolicy(model=p.model_).belief(LearnerView(GRAPH, {}, history=hist, now=2000.0))
    window_only = BeliefPolicy(model=p.model_).belief(LearnerView(GRAPH, {}, history=hist[40 - window :], now=2000.0))
    assert slid == pytest.approx(stream)  # the answers that left the window still count
    assert slid != pytest.approx(window_only)


def test_answers_served_elsewhere_in_between_cost_one_update_each(monkeypatch):
    # Another process served the learner meanwhile: this one sees several new answers after the last it filtered.
    p = BeliefPolicy(model=model(difficulty_effect=0.5, forget=0.05))
    hist = [Outcome(10 * (1 + k % 4), (1 + k % 4,), k % 3 != 0, 45.0 * k, 0.0) for k in range(40)]
    p.belief(LearnerView(GRAPH, {}, history=hist[:20], now=900.0))
    calls = []
    real = p.model_.update
    monkeypatch.setattr(p.model_, "update", lambda *a: calls.append(a) or real(*a))
    grown = p.belief(LearnerView(GRAPH, {}, history=hist[:26], now=2000.0))
    slid = p.belief(LearnerView(GRAPH, {}, history=hist[10:34], now=2000.0))
    assert len(calls) == 6 + 8
    monkeypatch.undo()
    assert grown == pytest.approx(BeliefPolicy(model=p.model_).belief(LearnerView(GRAPH, {}, history=hist[:26], now=2000.0)))
    assert slid == pytest.approx(BeliefPolicy(model=p.model_).belief(LearnerView(GRAPH, {}, history=hist[:34], now=2000.0)))
    # The same answer objects after different earlier ones are another stream: filtered from the prior.
    other = [Outcome(40, (4,), False, 0.0, 0.0)] + hist[21:26]
    calls.clear()
    monkeypatch.setattr(p.model_, "update", lambda *a: calls.append(a) or real(*a))
    p.belief(LearnerView(GRAPH, {}, history=other, now=2000.0))
    assert len(calls) == len(other)


def test_save_load_round_trip():
    p = BeliefPolicy(done=0.97, unlock=0.95, mode="gain", model=model(difficulty_effect=0.5))
    buf = io.BytesIO()
    p.save(buf)
    assert "belief" in LEARNED
    q = load_policy("belief", io.BytesIO(buf.getvalue()))
    assert isinstance(q, BeliefPolicy)
    assert (q.done, q.unlock, q.mode) == (0.97, 0.95, "gain")
    hist = [Outcome(10, (1,), True, 0.0, 1.0), Outcome(40, (4,), False, 45.0, 0.0)]
    view = LearnerView(GRAPH, {}, history=hist, now=90.0)
    assert np.allclose(q.distribution(CANDS, view), p.distribution(CANDS, view))


def test_learner_classes_are_weighted_by_their_likelihood():
    slow = {"weight": 0.5, "rate": 0.1, "shift": 0.0}
    fast = {"weight": 0.5, "rate": 3.0, "shift": 0.0}
    m = model([slow, fast])
    # Many failures on one skill: the slow class explains them better, and the mixed belief is lower than
    # under the fast class alone.
    belief = m.filter([Outcome(10, (1,), False, 45.0 * k, 0.0) for k in range(8)])
    w = m.weights(belief)
    assert w[0] > 0.6 and sum(w) == pytest.approx(1.0)
    mixed = m.beliefs(belief, 400.0)[0]
    assert m.belief_of(belief[0], 0, 400.0) < mixed < m.belief_of(belief[1], 0, 400.0)
    assert mixed == pytest.approx(w[0] * belief[0].m[0] + w[1] * belief[1].m[0])


def test_a_log_where_every_pause_ends_in_wrong_answers_fits_a_bounded_forgetting_rate():
    # Right before each overnight pause, wrong after it: the evidence pushes the forgetting rate up. The fitted rate
    # stays finite and within FORGET_MAX, so the model and the reports made of it are valid JSON. (The overflow
    # itself is checked in the likelihood, test_vectorised_likelihood_equals_the_filter_with_a_graph.)
    from tutor.policy.belief import DAY

    n, per = 40, 6
    learner = np.repeat(np.arange(n), 2 * per)
    skill = np.ones(2 * n * per, dtype=np.int64)
    minutes = np.tile(np.r_[np.arange(per) * 60.0, 2 * DAY + np.arange(per) * 60.0], n)
    correct = np.tile(np.r_[np.ones(per, dtype=bool), np.zeros(per, dtype=bool)], n)
    fitted = BeliefModel(n_classes=1).fit(SkillGraph([1], []), learner, skill, np.zeros(len(skill)), correct, minutes)
    forget = fitted.globals_["forget"]
    assert math.isfinite(forget) and 1.0 < forget <= FORGET_MAX + 1e-9
    assert math.isfinite(fitted.loglik_)
    json.dumps(fitted.to_dict(), allow_nan=False)


def test_a_fit_on_a_few_dozen_answers_stays_within_the_bounds():
    # 96 answers of 8 learners, right half the time: nothing identifies the model and an unbounded fit walks
    # logits and coefficients to hundreds (probabilities of exactly 0 or 1). The fit is made again within the
    # bounds, so the model is finite and every probability strictly between 0 and 1.
    rng = np.random.default_rng(3)
    learner = np.repeat(np.arange(8), 12)
    skill = rng.choice([1, 2, 3], size=96)
    diff = rng.choice([-1.0, 0.0, 1.0], size=96)
    correct = rng.random(96) < 0.5 + 0.4 * (skill == 1)
    time = np.tile(np.arange(12) * 60.0, 8)
    m = BeliefModel(n_classes=1).fit(SkillGraph([1, 2, 3], [(1, 2), (2, 3)]), learner, skill, diff, correct, time)
    assert math.isfinite(m.loglik_)
    edge = 1.0 / (1.0 + math.exp(LOGIT_MAX))
    for name in ("prior_", "learn_", "guess_", "slip_"):
        p = getattr(m, name)
        assert np.all(p >= edge - 1e-12) and np.all(p <= 1 - edge + 1e-12), name
    for key in ("difficulty_effect", "fatigue", "fit_linear", "fit_quadratic"):
        assert abs(m.globals_[key]) <= COEF_MAX, key
    json.dumps(m.to_dict(), allow_nan=False)
