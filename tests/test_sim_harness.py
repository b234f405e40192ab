import numpy as np
import pytest

from tutor.policy.base import MasteryLearningPolicy
from tutor.policy.baselines import RandomPolicy
from tutor.policy.features import candidate_features
from tutor.sim.course import synthetic_course
from tutor.sim.env import SchedulingEnv, Setting
from tutor.sim.harness import DecisionLog, attempt_log, expected_gain, mean_ci, run_policy, summarize
from tutor.sim.learners import SimParams, SkillParams
from tutor.sim.tracking import BKTParams


@pytest.fixture
def setting():
    course = synthetic_course(4, 3, random_state=0)
    params = SimParams()
    return Setting(course, params, BKTParams.constant(4), SkillParams.draw(params, 4, 0), horizon=30)


def test_policies_meet_the_same_learners(setting):
    a = run_policy(MasteryLearningPolicy(), setting, 20, seed=5)
    b = run_policy(RandomPolicy(), setting, 20, seed=5)
    assert np.array_equal(a.post_test[:, 0], b.post_test[:, 0])
    assert not np.array_equal(a.post_test[:, -1], b.post_test[:, -1])
    again = run_policy(MasteryLearningPolicy(), setting, 20, seed=5)
    assert np.array_equal(a.post_test, again.post_test)
    assert np.array_equal(a.mastery_step, again.mastery_step)


def test_run_measures_are_consistent(setting):
    r = run_policy(MasteryLearningPolicy(), setting, 30, seed=1)
    assert r.post_test.shape == (30, 31)
    reached = r.mastery_step >= 0
    assert np.all(r.mastery_step[reached] <= 30)
    assert np.all(r.to_mastery()[~reached] == 30)
    assert np.all(r.before_mastery[reached] == r.mastery_step[reached])
    assert np.all(r.on_known + r.on_unready <= r.before_mastery)
    assert np.all(r.on_known_start <= r.on_known)
    # Mastery learning starts every skill below its threshold, so it practises some the learner knew already.
    assert r.on_known_start.sum() > 0
    assert np.all(r.exercises <= 30)


def test_decision_logs_of_learner_groups_concatenate(setting):
    def logged(n, seed):
        r = run_policy(
            MasteryLearningPolicy(epsilon=0.5), setting, n, seed, log=True, shadows={"random": RandomPolicy()},
            features=candidate_features, q_model=lambda x, up, down: x[:, 1],
        )
        return r.log

    a, b = logged(3, 1), logged(2, 2)
    both = DecisionLog.concat([a, b], [3, 2])
    assert len(both.item) == len(a.item) + len(b.item)
    assert set(both.learner.tolist()) == {0, 1, 2, 3, 4}
    assert np.array_equal(both.learner[len(a.item):], b.learner + 3)
    assert both.features.shape == (len(both.item), a.features.shape[1])
    assert np.array_equal(both.truth["random"], np.concatenate([a.truth["random"], b.truth["random"]]))
    assert np.array_equal(both.q_chosen, np.concatenate([a.q_chosen, b.q_chosen]))
    assert both.skill_features is None


def test_candidates_and_view_follow_the_service_rules(setting):
    env = SchedulingEnv(setting, 2, seed=0)
    items = np.array([0, 1])
    env.step(items)
    env.step(np.array([2, 1]))
    pc = env.tracker.p_correct()
    cands = env.candidates(0, pc[0], env.tracker.candidate_mask()[[0]][0])
    served = {0, 2}
    assert {c.item for c in cands} == set(range(setting.course.n_items)) - served
    view = env.view(0)
    assert list(view.recent_items) == [2, 0]  # newest first, as the service passes them
    assert [o.item for o in view.history] == [0, 2]
    assert view.step == 2
    assert view.attempts[setting.course.primary_skill[0]] >= 1


def test_decision_log_and_shadow_truth(setting):
    r = run_policy(
        MasteryLearningPolicy(epsilon=0.5), setting, 10, seed=2, log=True, shadows={"random": RandomPolicy()}
    )
    lg = r.log
    assert lg is not None and len(lg.item) == r.exercises.sum()
    assert np.all((lg.propensity > 0) & (lg.propensity <= 1))
    assert np.allclose(lg.target_prob["random"], 1.0 / (setting.course.n_items - np.minimum(lg.step, 3)))
    assert np.all(np.isfinite(lg.truth["random"]))
    # The served item's skill: mastery learning serves within its focus skill, so the skill's logging probability
    # is at least that of the item; uniform gives a skill its share of the candidates (3 items a skill, less
    # those in the window).
    assert lg.skill_propensity is not None and np.all(lg.skill_propensity >= lg.propensity - 1e-12)
    share = lg.target_skill_prob["random"] / lg.target_prob["random"]
    assert np.allclose(share, np.round(share)) and set(np.round(share)) <= {1.0, 2.0, 3.0}
    assert (np.round(share) == 3).any()  # a skill is more than its item
    log = attempt_log(lg, setting)
    assert len(log) == len(lg.item)
    assert np.all(np.diff(log.learner) >= 0)


def test_expected_gain_matches_the_tracker_update(setting):
    m = np.array([0.3, 0.5, 0.7, 0.9])
    skills = np.array([0, 1, 2, 3])
    b = setting.bkt
    g1 = expected_gain(m, skills, np.ones(4), setting)
    g0 = expected_gain(m, skills, np.zeros(4), setting)
    post1 = m * (1 - b.slip) / (m * (1 - b.slip) + (1 - m) * b.guess)
    assert np.allclose(g1, post1 + (1 - post1) * b.learn - m)
    assert np.all(g0 < g1)
    assert np.allclose(expected_gain(m, skills, np.full(4, 0.5), setting), (g0 + g1) / 2)


def test_reward_model_sees_the_tracer_gain_of_either_answer(setting):
    seen = []

    def q_model(feats, up, down):
        seen.append((feats, up, down))
        return down + (up - down) * feats[:, 14]  # the tracer's P(correct) column

    lg = run_policy(
        RandomPolicy(), setting, 6, seed=3, log=True, features=candidate_features, q_model=q_model
    ).log
    assert lg is not None and lg.q_chosen is not None and len(seen) == len(lg.item)
    for (feats, up, down), x, q, r, ok in zip(seen, lg.features, lg.q_chosen, lg.reward, lg.correct, strict=True):
        k = int(np.flatnonzero((feats == x).all(axis=1))[0])  # the served candidate
        assert np.all(up >= down)
        assert down[k] - 1e-12 <= q <= up[k] + 1e-12
        # The logged reward is the gain of the answer given: up if right, down if wrong.
        assert r == pytest.approx(up[k] if ok else down[k], abs=1e-9)


def test_summary_intervals():
    m, lo, hi = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0
    assert lo == pytest.approx(2.0 - 4.302652729749464 / np.sqrt(3))
    assert hi == pytest.approx(2.0 + 4.302652729749464 / np.sqrt(3))
    assert mean_ci([5.0]) == (5.0, 5.0, 5.0)


def test_summarize_keys(setting):
    rs = [run_policy(RandomPolicy(), setting, 10, seed=s) for s in (1, 2)]
    s = summarize(rs, ks=(5, 30))
    assert set(s) >= {
        "to_mastery",
        "share_mastered",
        "post_test@5",
        "post_test@30",
        "curve",
        "on_known_share",
        "on_known_start_share",
    }
    assert len(s["curve"]) == 31
    assert s["post_test@30"]["per_seed"] == [float(r.post_test[:, 30].mean()) for r in rs]
