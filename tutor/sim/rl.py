"""The simulator as a batched RL environment for `tutor.policy.deeprl.PPOPolicy`.

Observations are computed by `deeprl.observation` from the tracker's arrays and a rolling window of answers
(the same ability proxy as `features.ability_proxy`), so what the policy sees in training is what it sees when
served through `Policy.distribution` in the harness or the service; `tests/test_policy_deeprl.py` checks that.
The reward is learning measured on the simulator's true state: the change in the share of known skills, plus
`completion_bonus` the first time every skill is known.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tutor.policy.base import Policy
from tutor.policy.deeprl import PPOPolicy, band, observation
from tutor.policy.features import graph_index
from tutor.sim.env import SchedulingEnv, Setting
from tutor.sim.learners import DAY, Population
from tutor.sim.tracking import PopulationTracker


class SimVecEnv:
    """n simulated learners of one seed, acting in lockstep on (skill, difficulty band) actions."""

    def __init__(
        self,
        setting: Setting,
        n_learners: int,
        seed: int,
        *,
        band_edges: Sequence[float],
        horizon: int,
        completion_bonus: float = 1.0,
        window: int = 20,
    ) -> None:
        course = setting.course
        self.n = n_learners
        self.horizon = horizon
        self.completion_bonus = completion_bonus
        self.sim = Population(course, setting.sim, n_learners, seed, skill_params=setting.skill_params)
        self.tracker = PopulationTracker(course, setting.bkt, n_learners, window=setting.window)
        self.rng = np.random.default_rng([seed, 3])
        gi = graph_index(course.graph)
        # Graph skill order <- course positions.
        self.order = np.array([course.skill_ids.index(s) for s in gi.skills], dtype=np.int64)
        graph_pos = {s: k for k, s in enumerate(gi.skills)}
        n_bands = len(band_edges) + 1
        item_graph_skill = np.array([graph_pos[course.skill_ids[s[0]]] for s in course.item_skills])
        self.item_action = item_graph_skill * n_bands + band(course.difficulty, band_edges)
        self.n_actions = len(gi.skills) * n_bands
        self.prereq = gi.prereq
        self.window = np.zeros((n_learners, window), dtype=bool)
        n_skills = len(gi.skills)
        self.last = np.zeros((n_learners, n_skills))
        self.before_last = np.zeros((n_learners, n_skills))
        self.last_difficulty = np.zeros((n_learners, n_skills))
        self.difficulty = course.difficulty
        self.item_graph_skill = item_graph_skill
        self.answered = np.zeros(n_learners, dtype=np.int64)
        self.t = 0
        self.done_all = self.sim.all_known()

    def ability(self) -> np.ndarray:
        n_w = np.minimum(self.answered, self.window.shape[1])
        k = self.window.sum(axis=1)
        p = (k + 1.0) / (n_w + 2.0)
        return np.asarray(np.log(p / (1.0 - p)))

    def observe(self) -> tuple[np.ndarray, np.ndarray]:
        tr = self.tracker
        progress = np.minimum(self.sim.state.steps / self.horizon, 1.0)
        seen = tr.last_seen[:, self.order]
        days = np.where(np.isfinite(seen), np.maximum(self.sim.state.time[:, None] - seen, 0.0) / DAY, 30.0)
        obs = observation(
            tr.mastery[:, self.order],
            tr.attempts[:, self.order].astype(np.float64),
            self.ability(),
            progress,
            self.prereq,
            self.last,
            self.before_last,
            self.last_difficulty,
            np.minimum(days, 30.0),
        )
        cand = tr.candidate_mask()
        mask = np.zeros((self.n, self.n_actions), dtype=bool)
        rows, items = np.nonzero(cand)
        mask[rows, self.item_action[items]] = True
        return obs, mask

    def items_for(self, actions: np.ndarray) -> np.ndarray:
        """A uniformly random candidate item of each learner's chosen (skill, band)."""
        cand = self.tracker.candidate_mask() & (self.item_action[None, :] == actions[:, None])
        keys = np.where(cand, self.rng.random(cand.shape), -1.0)
        return np.asarray(keys.argmax(axis=1))

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.step_items(self.items_for(np.asarray(actions, dtype=np.int64)))

    def step_items(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Serve item positions directly: (reward, alive)."""
        st = self.sim.state
        rows = np.flatnonzero(st.active)
        known_before = st.known.sum(axis=1)
        before = st.time[rows].copy()
        correct = self.sim.step(items)
        self.tracker.update(rows, items[rows], correct[rows], before)
        self.window[rows, :-1] = self.window[rows, 1:]
        self.window[rows, -1] = correct[rows]
        self.answered[rows] += 1
        k = self.item_graph_skill[items[rows]]
        self.before_last[rows, k] = self.last[rows, k]
        self.last[rows, k] = np.where(correct[rows], 1.0, -1.0)
        self.last_difficulty[rows, k] = self.difficulty[items[rows]]
        reward = (st.known.sum(axis=1) - known_before) / st.known.shape[1]
        now_all = self.sim.all_known()
        reward = reward + self.completion_bonus * (now_all & ~self.done_all)
        self.done_all |= now_all
        self.t += 1
        return np.asarray(reward, dtype=np.float64), st.active.copy()


def demonstrations(
    teacher: Policy,
    student: PPOPolicy,
    setting: Setting,
    n_learners: int,
    seed: int,
    *,
    horizon: int,
    completion_bonus: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(observations, action masks, actions, discounted returns) of `teacher` run through the service interface,
    in the student's observation and action spaces: training data for `PPOPolicy.imitate`."""
    env = SchedulingEnv(setting, n_learners, seed)
    rng = np.random.default_rng([seed, 4])
    gi = graph_index(setting.course.graph)
    if not hasattr(student, "skills_"):
        student._init(gi.skills, gi.prereq)
    n_actions = len(gi.skills) * student.n_bands
    obs_l, mask_l, act_l, rew_l, who_l = [], [], [], [], []
    done_all = env.sim.all_known()
    items = np.zeros(n_learners, dtype=np.int64)
    for _ in range(horizon):
        rows = np.flatnonzero(env.active)
        if len(rows) == 0:
            break
        pc = env.tracker.p_correct(rows)
        cand_mask = env.tracker.candidate_mask(rows)
        for k, r in enumerate(rows.tolist()):
            cands = env.candidates(r, pc[k], cand_mask[k])
            view = env.view(r)
            d = teacher.select(cands, view, rng)
            acts = student.candidate_actions(cands, view)
            chosen = next(j for j, c in enumerate(cands) if c.item == d.item)
            mask = np.zeros(n_actions, dtype=bool)
            mask[acts] = True
            obs_l.append(student._obs(view)[0])
            mask_l.append(mask)
            act_l.append(int(acts[chosen]))
            who_l.append(r)
            items[r] = env.item_position(d.item)
        known_before = env.sim.state.known.sum(axis=1)
        env.step(items)
        gain = (env.sim.state.known.sum(axis=1) - known_before) / setting.course.n_skills
        now_all = env.sim.all_known()
        gain = gain + completion_bonus * (now_all & ~done_all)
        done_all |= now_all
        rew_l.extend(gain[rows].tolist())
    who = np.asarray(who_l)
    rew = np.asarray(rew_l)
    ret = np.zeros(len(rew))
    running = np.zeros(n_learners)
    for j in range(len(rew) - 1, -1, -1):
        running[who[j]] = rew[j] + student.gamma * running[who[j]]
        ret[j] = running[who[j]]
    return np.asarray(obs_l), np.asarray(mask_l), np.asarray(act_l), ret
