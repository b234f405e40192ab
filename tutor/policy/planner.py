"""A model-based planner: expected learning gain of each candidate, with a one-step lookahead, under the tracer.

Its model is the service's BKT (per-skill learn, guess, slip of the active tracer) extended by three effects that
BKT leaves out and that the decision log can identify, fitted by maximum likelihood of the logged answers:

* readiness: practice teaches `prereq_factor` times as much per prerequisite that is not mastered, in
  expectation over the tracer's belief: R_s = prod_p (m_p + (1 - m_p) * prereq_factor);
* item fit: the learning rate of an item is multiplied by a bump in difficulty around
  `zpd_center + ability_slope * ability`, of width `zpd_width` and height `zpd_strength` (ability is the
  tracer-independent proxy of `features.ability_proxy`);
* item difficulty in answers: guess and slip move by `difficulty_effect` per unit of difficulty (logit scale).

The value of serving item i of skill s is the expected rise of sum_s P(mastered):
gain(i) = (1 - m_s) * k * T_s * R_s * Z(i) (k rescales the tracer's rates, which average ready and unready practice), plus `lookahead` times the best gain available at the next step in the
belief where that rise has happened (so a prerequisite is worth more when it unlocks dependents). The planner
never reads a simulator; in the simulator its model class contains the simulator's BKT-shaped core, which is the
usual advantage and risk of model-based planning (see docs/decisions/0004-scheduler.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import IO, Any, Self

import numpy as np

from curriculum.graph import SkillGraph
from tutor.policy.base import Candidate, LearnerView, Policy, epsilon_mix
from tutor.policy.features import graph_index, skill_context

MODEL_KEYS = (
    "learn_scale",
    "prereq_factor",
    "zpd_center",
    "zpd_width",
    "zpd_strength",
    "ability_slope",
    "difficulty_effect",
)
GRID: dict[str, tuple[float, ...]] = {
    "learn_scale": (0.5, 1.0, 1.5, 2.0, 3.0, 4.0),
    "prereq_factor": (0.05, 0.15, 0.3, 0.6, 1.0),
    "zpd_center": (-1.0, -0.5, 0.0, 0.5, 1.0),
    "zpd_width": (0.4, 0.7, 1.0, 2.0),
    "zpd_strength": (0.0, 0.5, 0.8, 1.0),
    "ability_slope": (0.0, 0.25, 0.5, 1.0),
    "difficulty_effect": (0.0, 0.25, 0.5, 1.0),
}


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.asarray(np.log(p / (1 - p)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


class PlannerPolicy(Policy):
    name = "planner"

    def __init__(self, lookahead: float = 0.5, epsilon: float = 0.1, n_passes: int = 2) -> None:
        self.lookahead = lookahead
        self.epsilon = epsilon
        self.n_passes = n_passes

    # -- model ---------------------------------------------------------------------------------------------
    def _zpd(
        self, difficulty: np.ndarray, ability: np.ndarray | float, model: Mapping[str, float]
    ) -> np.ndarray:
        z = (difficulty - model["zpd_center"] - model["ability_slope"] * ability) / model["zpd_width"]
        s = model["zpd_strength"]
        return np.asarray(1.0 - s + s * np.exp(-0.5 * z * z))

    def _loglik(
        self,
        model: Mapping[str, float],
        skill: np.ndarray,
        difficulty: np.ndarray,
        correct: np.ndarray,
        ability: np.ndarray,
        valid: np.ndarray,
    ) -> float:
        """Log-likelihood of (n, T) answer matrices under the model, filtering the belief like BKT does."""
        n, t_max = skill.shape
        m = np.tile(self.prior_, (n, 1))
        rows = np.arange(n)
        pre = self.prereq_
        total = 0.0
        w = model["prereq_factor"]
        beta = model["difficulty_effect"]
        lg, ls = _logit(self.guess_), _logit(self.slip_)
        for t in range(t_max):
            ok = valid[:, t]
            if not ok.any():
                break
            s = skill[:, t]
            d = difficulty[:, t]
            ms = m[rows, s]
            g = _sigmoid(lg[s] - beta * d)
            sl = _sigmoid(ls[s] + beta * d)
            pc = ms * (1 - sl) + (1 - ms) * g
            c = correct[:, t]
            total += float(np.sum(np.where(ok, np.log(np.where(c, pc, 1 - pc) + 1e-12), 0.0)))
            post = np.where(c, ms * (1 - sl) / pc, ms * sl / (1 - pc))
            ready = np.prod(np.where(pre[s], m + (1 - m) * w, 1.0), axis=1)
            lr = np.clip(
                model["learn_scale"] * self.learn_[s] * ready * self._zpd(d, ability[:, t], model), 0.0, 1.0
            )
            new = post + (1 - post) * lr
            m[rows[ok], s[ok]] = new[ok]
        return total

    @staticmethod
    def _matrices(
        graph: SkillGraph[int],
        learner: np.ndarray,
        skill: np.ndarray,
        difficulty: np.ndarray,
        correct: np.ndarray,
        ability: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(n_learners, T) matrices of skill position, difficulty, correctness, ability proxy and validity from
        rows that are contiguous and chronological per learner."""
        gi = graph_index(graph)
        change = np.ones(len(learner), dtype=bool)
        change[1:] = learner[1:] != learner[:-1]
        starts = np.flatnonzero(change)
        lengths = np.diff(np.append(starts, len(learner)))
        n, t_max = len(starts), int(lengths.max())
        seq = np.repeat(np.arange(n), lengths)
        pos = np.arange(len(learner)) - np.repeat(starts, lengths)

        def mat(values: np.ndarray, fill: float | bool, dtype: Any) -> np.ndarray:
            out = np.full((n, t_max), fill, dtype=dtype)
            out[seq, pos] = values
            return out

        return (
            mat(np.array([gi.pos[int(s)] for s in skill], dtype=np.int64), 0, np.int64),
            mat(difficulty, 0.0, np.float64),
            mat(correct.astype(bool), False, bool),
            mat(ability, 0.0, np.float64),
            mat(np.ones(len(learner), dtype=bool), False, bool),
        )

    def fit(
        self,
        graph: SkillGraph[int],
        tracer_params: Mapping[int, Mapping[str, float]],
        learner: np.ndarray,
        skill: np.ndarray,
        difficulty: np.ndarray,
        correct: np.ndarray,
        ability: np.ndarray,
    ) -> Self:
        """Fit the model's extra effects on logged answers (rows chronological per learner; `skill` holds skill
        ids, `ability` the proxy at each decision) by coordinate ascent of the likelihood over `GRID`."""
        gi = graph_index(graph)
        self.skills_ = list(gi.skills)
        self.prior_ = np.array([tracer_params[s]["prior"] for s in gi.skills], dtype=np.float64)
        self.learn_ = np.array([tracer_params[s]["learn"] for s in gi.skills], dtype=np.float64)
        self.guess_ = np.array([tracer_params[s]["guess"] for s in gi.skills], dtype=np.float64)
        self.slip_ = np.array([tracer_params[s]["slip"] for s in gi.skills], dtype=np.float64)
        self.prereq_ = gi.prereq.copy()
        sk, dif, cor, abl, valid = self._matrices(graph, learner, skill, difficulty, correct, ability)
        model = {
            "learn_scale": 1.0,
            "prereq_factor": 1.0,
            "zpd_center": 0.0,
            "zpd_width": 1.0,
            "zpd_strength": 0.0,
            "ability_slope": 0.0,
            "difficulty_effect": 0.0,
        }
        best = self._loglik(model, sk, dif, cor, abl, valid)
        # Readiness and the overall learning rate trade off (the tracer's rate averages ready and unready
        # practice), and the bump's centre and width matter only once it has height: search those jointly first.
        for scale in GRID["learn_scale"]:
            for w in GRID["prereq_factor"]:
                trial = {**model, "learn_scale": scale, "prereq_factor": w}
                ll = self._loglik(trial, sk, dif, cor, abl, valid)
                if ll > best + 1e-9:
                    best, model = ll, trial
        for centre in GRID["zpd_center"]:
            for width in GRID["zpd_width"]:
                trial = {**model, "zpd_center": centre, "zpd_width": width, "zpd_strength": 0.8}
                ll = self._loglik(trial, sk, dif, cor, abl, valid)
                if ll > best + 1e-9:
                    best, model = ll, trial
        for _ in range(self.n_passes):
            for key in MODEL_KEYS:
                for v in GRID[key]:
                    trial = {**model, key: v}
                    ll = self._loglik(trial, sk, dif, cor, abl, valid)
                    if ll > best + 1e-9:
                        best, model = ll, trial
        self.model_ = model
        self.loglik_ = best
        return self

    # -- decisions ----------------------------------------------------------------------------------------
    def values(self, candidates: Sequence[Candidate], state: LearnerView) -> np.ndarray:
        ctx = skill_context(state)
        gi = ctx.index
        model = self.model_
        m = ctx.mastery
        w = model["prereq_factor"]
        pre = self.prereq_
        ready = np.prod(np.where(pre, (m + (1 - m) * w)[None, :], 1.0), axis=1)
        sk = np.array([gi.pos[c.skills[0]] for c in candidates], dtype=np.int64)
        d = np.array([c.difficulty for c in candidates], dtype=np.float64)
        zpd = self._zpd(d, ctx.ability, model)
        learn = model["learn_scale"] * self.learn_
        gain = (1 - m[sk]) * np.clip(learn[sk] * ready[sk] * zpd, 0.0, 1.0)
        if self.lookahead <= 0:
            return np.asarray(gain)
        # Best item factor per skill among the candidates: what the next step could use.
        best_z = np.zeros(len(m))
        np.maximum.at(best_z, sk, zpd)
        # Belief after the expected rise of each skill's best candidate (row s of m2), then the best next gain.
        rise = np.zeros(len(m))
        np.maximum.at(rise, sk, gain)
        m2 = np.tile(m, (len(m), 1))
        m2[np.diag_indices(len(m))] += rise
        factor = np.where(pre[None, :, :], (m2 + (1 - m2) * w)[:, None, :], 1.0)
        ready2 = factor.prod(axis=2)
        nxt = ((1 - m2) * np.clip(learn[None, :] * ready2 * best_z[None, :], 0.0, 1.0)).max(axis=1)
        return np.asarray(gain + self.lookahead * nxt[sk])

    def distribution(self, candidates: Sequence[Candidate], state: LearnerView) -> np.ndarray:
        q = self.values(candidates, state)
        return epsilon_mix(q >= q.max() - 1e-12, np.ones(len(candidates), dtype=bool), self.epsilon)

    # -- persistence --------------------------------------------------------------------------------------
    def save(self, fp: IO[bytes]) -> None:
        doc = {
            "policy": self.name,
            "params": {"lookahead": self.lookahead, "epsilon": self.epsilon, "n_passes": self.n_passes},
            "skills": self.skills_,
            "prior": self.prior_.tolist(),
            "learn": self.learn_.tolist(),
            "guess": self.guess_.tolist(),
            "slip": self.slip_.tolist(),
            "prereq": self.prereq_.astype(int).tolist(),
            "model": self.model_,
        }
        fp.write(json.dumps(doc).encode())

    @classmethod
    def load(cls, fp: IO[bytes]) -> Self:
        doc = json.loads(fp.read().decode())
        p = cls(**doc["params"])
        p.skills_ = [int(s) for s in doc["skills"]]
        for k in ("prior", "learn", "guess", "slip"):
            setattr(p, f"{k}_", np.asarray(doc[k], dtype=np.float64))
        p.prereq_ = np.asarray(doc["prereq"], dtype=bool)
        p.model_ = {k: float(v) for k, v in doc["model"].items()}
        return p
