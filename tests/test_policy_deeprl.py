import io

import numpy as np
import pytest

from tutor.policy.deeprl import PPOPolicy, band
from tutor.policy.features import graph_index
from tutor.sim.course import synthetic_course
from tutor.sim.env import SchedulingEnv, Setting
from tutor.sim.learners import SimParams, SkillParams
from tutor.sim.rl import SimVecEnv
from tutor.sim.tracking import BKTParams


@pytest.fixture(scope="module")
def setting():
    course = synthetic_course(4, 3, random_state=0)
    params = SimParams()
    return Setting(course, params, BKTParams.constant(4), SkillParams.draw(params, 4, 0), horizon=20)


@pytest.fixture(scope="module")
def trained(setting):
    pol = PPOPolicy(iterations=2, n_envs=16, rollout=20, horizon=20, minibatch=64, random_state=1)
    gi = graph_index(setting.course.graph)
    pol.fit(
        lambda seed: SimVecEnv(setting, 16, seed, band_edges=pol.band_edges, horizon=20), gi.skills, gi.prereq
    )
    return pol


def test_training_and_serving_observations_agree(setting, trained):
    """What PPO learns from (batched arrays) is what it sees when served through a LearnerView."""
    vec = SimVecEnv(setting, 5, seed=3, band_edges=trained.band_edges, horizon=20)
    env = SchedulingEnv(setting, 5, seed=3)
    rng = np.random.default_rng(0)
    for _ in range(12):
        obs, mask = vec.observe()
        for r in range(5):
            if not env.active[r]:
                continue
            assert np.allclose(trained._obs(env.view(r)), obs[r], atol=1e-6)
            pc = env.tracker.p_correct([r])[0]
            cands = env.candidates(r, pc, env.tracker.candidate_mask([r])[0])
            acts = trained.candidate_actions(cands, env.view(r))
            assert set(acts.tolist()) == set(np.flatnonzero(mask[r]).tolist())
        items = rng.integers(0, setting.course.n_items, size=5)
        vec.step_items(items)
        env.step(items)


def test_distribution_and_round_trip(setting, trained):
    env = SchedulingEnv(setting, 1, seed=4)
    env.step(np.array([0]))
    view = env.view(0)
    cands = env.candidates(0, env.tracker.p_correct([0])[0], env.tracker.candidate_mask([0])[0])
    p = trained.distribution(cands, view)
    assert p.sum() == pytest.approx(1.0)
    assert np.all(p >= trained.epsilon / len(cands) - 1e-12)
    buf = io.BytesIO()
    trained.save(buf)
    buf.seek(0)
    again = PPOPolicy.load(buf)
    assert np.array_equal(again.distribution(cands, view), p)
    assert len(trained.history_) == 2


def test_candidates_of_one_action_share_its_probability(setting, trained):
    env = SchedulingEnv(setting, 1, seed=4)
    view = env.view(0)
    cands = env.candidates(0, env.tracker.p_correct([0])[0], env.tracker.candidate_mask([0])[0])
    acts = trained.candidate_actions(cands, view)
    probs = trained.distribution(cands, view)
    for a in set(acts.tolist()):
        assert np.ptp(probs[acts == a]) < 1e-12


def test_bands():
    assert band(np.array([-1.0, -0.34, 0.0, 0.34, 1.0]), (-0.34, 0.34)).tolist() == [0, 1, 1, 2, 2]


def test_imitation_learns_a_teachers_choices(setting):
    from tutor.policy.baselines import ExpertOrderPolicy
    from tutor.sim.rl import demonstrations

    student = PPOPolicy(horizon=20, minibatch=256, random_state=0)
    teacher = ExpertOrderPolicy(per_skill=3, epsilon=0.0)
    obs, masks, acts, ret = demonstrations(teacher, student, setting, 30, seed=9, horizon=20)
    assert obs.shape[0] == acts.shape[0] == masks.shape[0] == ret.shape[0]
    assert np.all(masks[np.arange(len(acts)), acts])
    gi = graph_index(setting.course.graph)
    student.imitate(gi.skills, gi.prereq, obs, masks, acts, ret, epochs=40)
    assert student.imitation_[-1] < 0.5 * student.imitation_[0]
    import torch

    with torch.no_grad():
        logits, _ = student.net_(torch.from_numpy(obs))
        logits = torch.where(torch.from_numpy(masks), logits, torch.full_like(logits, -1e9))
    agree = (logits.argmax(dim=1).numpy() == acts).mean()
    assert agree > 0.8
