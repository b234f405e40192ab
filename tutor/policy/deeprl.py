"""A deep RL scheduler: PPO (Schulman et al. 2017) on the tracer's view, trained in the calibrated simulator.

Observation (all from what the service knows): per skill, in the graph's skill order, the tracer's mastery,
readiness (product of the prerequisites' mastery), log attempt count, a "mastered" flag (>= 0.95), the last two
answers on the skill (+1 right, -1 wrong, 0 none) and the difficulty of the last item answered on it (BKT ignores
difficulty, so these let the policy weigh evidence itself), and the days since the skill was last practised; plus
the ability proxy of `features.ability_proxy` and the fraction of the training horizon elapsed.

Action: a (skill, difficulty band) pair; the band of an item is its difficulty cut at `band_edges`. The policy
gives a probability to each pair that has candidates, then splits it evenly among the candidates of the pair, and
mixes in `epsilon` uniform exploration so every candidate keeps a logged propensity for off-policy evaluation.

Training needs an environment that produces the same observations for a batch of learners (`VecEnv` below,
implemented by `tutor.sim.rl.SimVecEnv`); the reward comes from the simulator (learning measured on its true
state), which is what "trained in the simulator" means; at serving time the policy sees only the view. Weights
are saved as a torch state_dict with a JSON header (skills, bands, hyperparameters).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any, Protocol, Self

import numpy as np

from tutor.policy.base import Candidate, LearnerView, Policy
from tutor.policy.features import MASTERED, graph_index, skill_context

if TYPE_CHECKING:
    import torch


class VecEnv(Protocol):
    """A batch of learners acting in lockstep (what PPO training needs)."""

    n: int

    def observe(self) -> tuple[np.ndarray, np.ndarray]:
        """(observations (n, obs_dim) float32, action masks (n, n_actions) bool)."""

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Serve one item per learner for `actions`; returns (reward (n,), alive (n,) bool after the step)."""


OBS_PER_SKILL = 8


def observation(
    mastery: np.ndarray,
    attempts: np.ndarray,
    ability: np.ndarray,
    progress: np.ndarray,
    prereq: np.ndarray,
    last: np.ndarray,
    before_last: np.ndarray,
    last_difficulty: np.ndarray,
    days_since: np.ndarray,
) -> np.ndarray:
    """(n, 8S + 2) observations from (n, S) arrays in graph skill order; shared by serving and training."""
    ready = np.prod(np.where(prereq[None, :, :], mastery[:, None, :], 1.0), axis=2)
    return np.concatenate(
        [
            mastery,
            ready,
            np.log1p(attempts) / 3.0,
            (mastery >= MASTERED).astype(np.float64),
            last,
            before_last,
            last_difficulty,
            np.log1p(np.minimum(days_since, 30.0)) / 2.0,
            (ability / 2.0)[:, None],
            progress[:, None],
        ],
        axis=1,
    ).astype(np.float32)


def recent_answers(
    state: LearnerView, positions: dict[int, int], n_skills: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per skill position: last answer, the one before (+1/-1/0) and the last item's difficulty, from history."""
    last = np.zeros(n_skills)
    before = np.zeros(n_skills)
    last_d = np.zeros(n_skills)
    seen = np.zeros(n_skills, dtype=np.int64)
    for o in reversed(state.history):
        if not o.skills:
            continue
        k = positions.get(o.skills[0])
        if k is None or seen[k] >= 2:
            continue
        if seen[k] == 0:
            last[k] = 1.0 if o.correct else -1.0
            last_d[k] = o.difficulty
        else:
            before[k] = 1.0 if o.correct else -1.0
        seen[k] += 1
        if seen.min() >= 2:
            break
    return last, before, last_d


def band(difficulty: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    return np.searchsorted(np.asarray(edges, dtype=np.float64), difficulty, side="right").astype(np.int64)


def _network(obs_dim: int, n_actions: int, hidden: int) -> torch.nn.Module:
    import torch
    from torch import nn

    class ActorCritic(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.actor = nn.Sequential(
                nn.Linear(obs_dim, hidden),
                nn.Tanh(),
                nn.Linear(hidden, hidden),
                nn.Tanh(),
                nn.Linear(hidden, n_actions),
            )
            self.critic = nn.Sequential(
                nn.Linear(obs_dim, hidden),
                nn.Tanh(),
                nn.Linear(hidden, hidden),
                nn.Tanh(),
                nn.Linear(hidden, 1),
            )
            with torch.no_grad():
                last = self.actor[-1]
                assert isinstance(last, nn.Linear)
                last.weight.mul_(0.01)

        def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.actor(obs), self.critic(obs).squeeze(-1)

    return ActorCritic()


def masked_logits(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.where(mask, logits, torch.full_like(logits, -1e9))


class PPOPolicy(Policy):
    name = "ppo"

    def __init__(
        self,
        band_edges: Sequence[float] = (-0.34, 0.34),
        horizon: int = 200,
        hidden: int = 128,
        epsilon: float = 0.05,
        iterations: int = 60,
        n_envs: int = 256,
        rollout: int = 200,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        clip: float = 0.2,
        lr: float = 3e-4,
        epochs: int = 4,
        minibatch: int = 4096,
        entropy: float = 0.01,
        random_state: int = 0,
    ) -> None:
        self.band_edges = tuple(band_edges)
        self.horizon = horizon
        self.hidden = hidden
        self.epsilon = epsilon
        self.iterations = iterations
        self.n_envs = n_envs
        self.rollout = rollout
        self.gamma = gamma
        self.gae_lambda = gae_lambda
        self.clip = clip
        self.lr = lr
        self.epochs = epochs
        self.minibatch = minibatch
        self.entropy = entropy
        self.random_state = random_state

    @property
    def n_bands(self) -> int:
        return len(self.band_edges) + 1

    def _init(self, skills: Sequence[int], prereq: np.ndarray) -> None:
        import torch

        torch.manual_seed(self.random_state)
        self.skills_ = [int(s) for s in skills]
        self.prereq_ = np.asarray(prereq, dtype=bool)
        n_skills = len(self.skills_)
        self.net_ = _network(OBS_PER_SKILL * n_skills + 2, n_skills * self.n_bands, self.hidden)

    # -- training -----------------------------------------------------------------------------------------
    def imitate(
        self,
        skills: Sequence[int],
        prereq: np.ndarray,
        obs: np.ndarray,
        masks: np.ndarray,
        actions: np.ndarray,
        returns: np.ndarray,
        *,
        epochs: int = 20,
    ) -> Self:
        """Behaviour cloning: fit the actor to a teacher's (observation, action) pairs and the critic to the
        discounted returns the teacher obtained, as a starting point for `fit(..., warm_start=True)`."""
        import torch

        torch.set_num_threads(1)
        self._init(skills, prereq)
        opt = torch.optim.Adam(self.net_.parameters(), lr=1e-3)
        o = torch.from_numpy(obs.astype(np.float32))
        m = torch.from_numpy(masks)
        a = torch.from_numpy(actions.astype(np.int64))
        r = torch.from_numpy(returns.astype(np.float32))
        gen = torch.Generator().manual_seed(self.random_state)
        self.imitation_: list[float] = []
        for _ in range(epochs):
            perm = torch.randperm(len(a), generator=gen)
            total = 0.0
            for start in range(0, len(a), self.minibatch):
                idx = perm[start : start + self.minibatch]
                logits, value = self.net_(o[idx])
                dist = torch.distributions.Categorical(logits=masked_logits(logits, m[idx]))
                loss = -dist.log_prob(a[idx]).mean() + 0.5 * ((value - r[idx]) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.item()) * len(idx)
            self.imitation_.append(total / len(a))
        return self

    def fit(
        self,
        make_env: Any,
        skills: Sequence[int],
        prereq: np.ndarray,
        log: Any = None,
        warm_start: bool = False,
    ) -> Self:
        """Train with PPO on environments from `make_env(seed) -> VecEnv` (fresh learners per iteration); with
        `warm_start`, continue from the current network (e.g. after `imitate`)."""
        import torch

        torch.set_num_threads(1)
        if not (warm_start and hasattr(self, "net_")):
            self._init(skills, prereq)
        opt = torch.optim.Adam(self.net_.parameters(), lr=self.lr)
        self.history_: list[dict[str, float]] = []
        for it in range(self.iterations):
            env: VecEnv = make_env(self.random_state * 100_003 + it)
            obs_l, mask_l, act_l, logp_l, val_l, rew_l, alive_l = [], [], [], [], [], [], []
            alive = np.ones(env.n, dtype=bool)
            for _ in range(self.rollout):
                obs, mask = env.observe()
                with torch.no_grad():
                    logits, value = self.net_(torch.from_numpy(obs))
                    dist = torch.distributions.Categorical(
                        logits=masked_logits(logits, torch.from_numpy(mask))
                    )
                    action = dist.sample()
                    logp = dist.log_prob(action)
                reward, alive_next = env.step(action.numpy())
                obs_l.append(obs)
                mask_l.append(mask)
                act_l.append(action.numpy())
                logp_l.append(logp.numpy())
                val_l.append(value.numpy())
                rew_l.append(reward * alive)
                alive_l.append(alive.copy())
                alive = alive_next
            t_len = len(rew_l)
            rewards = np.stack(rew_l)
            values = np.stack(val_l)
            live = np.stack(alive_l)
            adv = np.zeros_like(rewards)
            last = np.zeros(env.n)
            for t in range(t_len - 1, -1, -1):
                nxt_v = values[t + 1] if t + 1 < t_len else np.zeros(env.n)
                nxt_live = live[t + 1] if t + 1 < t_len else np.zeros(env.n, dtype=bool)
                delta = rewards[t] + self.gamma * nxt_v * nxt_live - values[t]
                last = delta + self.gamma * self.gae_lambda * nxt_live * last
                adv[t] = last
            returns = adv + values
            sel = live.reshape(-1)
            b_obs = torch.from_numpy(np.concatenate(obs_l)[sel])
            b_mask = torch.from_numpy(np.concatenate(mask_l)[sel])
            b_act = torch.from_numpy(np.concatenate(act_l)[sel])
            b_logp = torch.from_numpy(np.concatenate(logp_l)[sel])
            b_adv = torch.from_numpy(adv.reshape(-1)[sel].astype(np.float32))
            b_ret = torch.from_numpy(returns.reshape(-1)[sel].astype(np.float32))
            b_adv = (b_adv - b_adv.mean()) / (b_adv.std() + 1e-8)
            gen = torch.Generator().manual_seed(self.random_state + it)
            n_b = len(b_act)
            for _ in range(self.epochs):
                perm = torch.randperm(n_b, generator=gen)
                for start in range(0, n_b, self.minibatch):
                    idx = perm[start : start + self.minibatch]
                    logits, value = self.net_(b_obs[idx])
                    dist = torch.distributions.Categorical(logits=masked_logits(logits, b_mask[idx]))
                    ratio = torch.exp(dist.log_prob(b_act[idx]) - b_logp[idx])
                    a = b_adv[idx]
                    pg = -torch.min(ratio * a, torch.clamp(ratio, 1 - self.clip, 1 + self.clip) * a).mean()
                    vf = 0.5 * ((value - b_ret[idx]) ** 2).mean()
                    loss = pg + 0.5 * vf - self.entropy * dist.entropy().mean()
                    opt.zero_grad()
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(self.net_.parameters(), 0.5)
                    opt.step()
            stats = {"iteration": it, "return": float(rewards.sum(axis=0).mean()), "samples": float(n_b)}
            self.history_.append(stats)
            if log is not None:
                log(stats)
        return self

    # -- serving ------------------------------------------------------------------------------------------
    def _obs(self, state: LearnerView) -> np.ndarray:
        ctx = skill_context(state)
        gi = ctx.index
        if list(gi.skills) != self.skills_:
            raise ValueError("this PPO policy was trained on another skill set")
        progress = np.array([min(state.step / self.horizon, 1.0)])
        last, before, last_d = recent_answers(state, gi.pos, len(gi.skills))
        return observation(
            ctx.mastery[None, :],
            ctx.attempts[None, :],
            np.array([ctx.ability]),
            progress,
            self.prereq_,
            last[None, :],
            before[None, :],
            last_d[None, :],
            np.minimum(ctx.days_since, 30.0)[None, :],
        )

    def action_probabilities(self, state: LearnerView, mask: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            logits, _ = self.net_(torch.from_numpy(self._obs(state)))
            probs = torch.softmax(masked_logits(logits, torch.from_numpy(mask[None, :])), dim=-1)
        return np.asarray(probs.numpy()[0], dtype=np.float64)

    def candidate_actions(self, candidates: Sequence[Candidate], state: LearnerView) -> np.ndarray:
        gi = graph_index(state.graph)
        sk = np.array([gi.pos[c.skills[0]] for c in candidates], dtype=np.int64)
        b = band(np.array([c.difficulty for c in candidates]), self.band_edges)
        return np.asarray(sk * self.n_bands + b)

    def distribution(self, candidates: Sequence[Candidate], state: LearnerView) -> np.ndarray:
        acts = self.candidate_actions(candidates, state)
        n_actions = len(self.skills_) * self.n_bands
        counts = np.bincount(acts, minlength=n_actions)
        pa = self.action_probabilities(state, counts > 0)
        probs = pa[acts] / counts[acts]
        probs = probs / probs.sum()
        return np.asarray((1 - self.epsilon) * probs + self.epsilon / len(candidates))

    # -- persistence --------------------------------------------------------------------------------------
    def _hyper(self) -> dict[str, Any]:
        keys = (
            "band_edges",
            "horizon",
            "hidden",
            "epsilon",
            "iterations",
            "n_envs",
            "rollout",
            "gamma",
            "gae_lambda",
            "clip",
            "lr",
            "epochs",
            "minibatch",
            "entropy",
            "random_state",
        )
        return {k: (list(getattr(self, k)) if k == "band_edges" else getattr(self, k)) for k in keys}

    def save(self, fp: IO[bytes]) -> None:
        """A JSON header line, then the torch state_dict (tensors only, loadable with weights_only=True)."""
        import torch

        header = {
            "policy": self.name,
            "params": self._hyper(),
            "skills": self.skills_,
            "prereq": self.prereq_.astype(int).tolist(),
        }
        fp.write(json.dumps(header).encode() + b"\n")
        buf = io.BytesIO()
        torch.save(self.net_.state_dict(), buf)
        fp.write(buf.getvalue())

    @classmethod
    def load(cls, fp: IO[bytes]) -> Self:
        import torch

        header = json.loads(fp.readline().decode())
        params = header["params"]
        params["band_edges"] = tuple(params["band_edges"])
        policy = cls(**params)
        policy._init(header["skills"], np.asarray(header["prereq"], dtype=bool))
        state = torch.load(io.BytesIO(fp.read()), weights_only=True)
        policy.net_.load_state_dict(state)
        policy.net_.eval()
        return policy
