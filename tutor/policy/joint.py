"""The belief policy's model filtered exactly over joint knowledge states, and a policy deciding on it.

`BeliefModel` (tutor/policy/belief.py) filters one two-state HMM per skill and couples them through expected
values (mean field). That misses what the graph implies jointly: a learner who keeps failing a skill after
practice is likely to lack one of its prerequisites, and a learner who knows a deep skill is likely to know what it
builds on. For a course of S skills (S <= `MAX_SKILLS`) the 2^S knowledge states can be filtered exactly:

* prior: the graph's Bayesian network, P(x_s = 1 | x) = p_s rho0^missing_s(x), missing_s counting the direct
  prerequisites of s unknown in x;
* an answer on skill j: the likelihood of `BeliefModel` (guess and slip moved by item difficulty, slip by fatigue)
  on the states that know j or not; then learning: a state lacking j gains it with probability
  1 - (1 - T_j)^(E rho^missing_j(x)), E the item fit, so readiness is exact per state instead of an expectation;
* forgetting: every known skill is lost independently at rate phi per day over pauses between sessions (longer
  than an hour; within a session the loss is below 1e-4 and the filter skips it);
* learners differ several-fold in how fast they learn: three learner classes whose learning-rate multipliers
  discretise a log-normal (`rate_classes`, Gauss-Hermite nodes) are filtered side by side and mixed by their
  likelihood, so a learner who keeps failing after practice is believed slow rather than unready.

The parameters are `BeliefModel`'s (same names, the exact version of the same model), fitted first by its
mean-field maximum likelihood and then refined on the joint likelihood (`refine`: a coordinate search over the
parameters the mean field distorts most: shifts of every prior and every learning-rate logit, rho0, rho and the
log-sd of the learning rate; the joint likelihood comes from a forward pass vectorised over learners in numpy).
One answer costs O(C 2^S) (about 1 ms per decision at S = 12, C = 3, in pure numpy).

`JointBeliefPolicy` decides by the expected immediate learning gain of each candidate under the joint belief,
sum_c w_c sum_x P_c(x) [x_j = 0] (1 - (1 - T_j)^(r_c E rho^missing_j(x))): a skill whose prerequisites are
probably missing teaches little in expectation. A soft gate remains (tuned): a skill is open when P(its
prerequisites are known | it is not) >= `unlock` and its belief is below `done`. Above belief `switch` the item
is the one whose right answer is the strongest evidence. `lookahead` > 0 adds, for the best candidates of that
many skills, the expected best gain after their answer (a two-step rule that values informative answers; not
used by default: no better on training learners and twice the cost). Exploration: `epsilon_all` uniform over
all candidates, so every candidate has a positive propensity.

Learners quit at the end of a session, more often after a run of wrong answers, and a learner who quits learns
nothing more. With a `SessionModel` fitted on a log (`fit_sessions`: when sessions end, and how the run of
failures at the end raises quitting) the policy weighs that risk: when `dropout_cost` (the exercises a lost
learner is worth) x P(the session ends on this answer, after one more failure) x the rise in quitting x the
difference in P(wrong) between its usual choice and the candidate likeliest to be answered right exceeds one
exercise, it serves the latter. This guard fires late in a session or deep in a run of failures (a run of ten ends
a session in the simulator) and costs about one exercise when it does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any, Self

import numpy as np

from curriculum.graph import SkillGraph
from tutor.policy.base import Candidate, LearnerView, grid_search
from tutor.policy.belief import (
    DAY,
    FATIGUE_SCALE,
    SESSION_GAP,
    BeliefModel,
    BeliefPolicy,
    _logit,
    _pad,
    _sig,
    item_fit,
    item_fit_many,
)
from tutor.policy.sessions import SessionModel

MAX_SKILLS = 14  # 2^14 states per learner: beyond that the exact filter is not the right tool


def _subset_powers(bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For states y, x of `bits` skills: [y within x], |y| and |x| - |y| (forgetting maps x to y with
    probability f^|y| (1 - f)^(|x| - |y|) when y is within x)."""
    x = np.arange(1 << bits)
    pop = np.array([bin(v).count("1") for v in x])
    within = (x[:, None] & x[None, :]) == x[:, None]  # [y, x]
    return within, np.broadcast_to(pop[:, None], within.shape), pop[None, :] - pop[:, None]


class JointState:
    """One learner's distribution over the 2^S knowledge states, per learner class ((C, N)), at time `t_last`,
    and the log-likelihood of their answers under each class ((C,))."""

    __slots__ = ("p", "t_last", "k", "loglik")

    def __init__(self, p: np.ndarray) -> None:
        self.p = p
        self.t_last: float | None = None
        self.k = 0
        self.loglik = np.zeros(p.shape[0])

    def copy(self) -> JointState:
        c = JointState(self.p.copy())
        c.t_last, c.k, c.loglik = self.t_last, self.k, self.loglik.copy()
        return c


# Three-point Gauss-Hermite quadrature of a standard normal: learning-rate classes of a log-normal rate.
_GH_NODES = (-math.sqrt(3.0), 0.0, math.sqrt(3.0))
_GH_WEIGHTS = (1.0 / 6.0, 2.0 / 3.0, 1.0 / 6.0)


def rate_classes(sd: float) -> list[dict[str, float]]:
    """Learner classes whose learning-rate multipliers discretise a log-normal of log-sd `sd` and mean 1."""
    return [
        {"weight": w, "rate": math.exp(sd * z - 0.5 * sd * sd), "shift": 0.0}
        for z, w in zip(_GH_NODES, _GH_WEIGHTS, strict=True)
    ]


def _logsumexp(x: np.ndarray, axis: int = -1) -> np.ndarray:
    top = np.max(x, axis=axis, keepdims=True)
    return np.asarray(np.squeeze(top, axis=axis) + np.log(np.exp(x - top).sum(axis=axis)))


class JointModel(BeliefModel):
    """`BeliefModel`'s parameters, filtered over joint states, optionally per learner class (a learning-rate
    multiplier and a prior shift each, mixed by their likelihood as in `BeliefModel`). Build it from a fitted
    mean-field model with `JointModel.from_model(m, rate_sd=...)` (then optionally `refine`), or load it with
    `from_dict`."""

    rate_sd_: float | None = None

    @classmethod
    def from_model(cls, model: BeliefModel, rate_sd: float | None = None) -> JointModel:
        """The mean-field fit as a joint model; with `rate_sd`, three learning-rate classes (`rate_classes`)
        instead of the model's own classes."""
        doc = model.to_dict()
        if rate_sd is not None:
            doc = {**doc, "classes": rate_classes(rate_sd), "rate_sd": rate_sd}
        return cls.from_dict(doc)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> JointModel:
        m = cls(**doc.get("hyper", {}))
        m.rate_sd_ = doc.get("rate_sd")
        m.set_params(
            doc["skills"],
            np.asarray(doc["prereq"]),
            doc["prior"],
            doc["learn"],
            doc["guess"],
            doc["slip"],
            doc["globals"],
            doc.get("classes"),
        )
        return m

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "rate_sd": self.rate_sd_}

    def _compile(self) -> None:
        super()._compile()
        n_sk = len(self.skills_)
        if n_sk > MAX_SKILLS:
            raise ValueError(f"the joint filter handles at most {MAX_SKILLS} skills, the course has {n_sk}")
        n = 1 << n_sk
        x = np.arange(n)
        self.bits_ = ((x[:, None] >> np.arange(n_sk)[None, :]) & 1).astype(bool)  # (N, S)
        self._bt = np.ascontiguousarray(self.bits_.T)  # (S, N)
        self._bf = self.bits_.astype(np.float64)
        # missing[s, x]: direct prerequisites of s unknown in state x.
        self.missing_ = (~self.bits_[:, None, :] & self.prereq_[None, :, :]).sum(axis=2).T.astype(np.int64)
        self._flip = x[None, :] ^ (1 << np.arange(n_sk))[:, None]  # (S, N)
        k_max = int(self.missing_.max()) if n_sk else 0
        mass = [(~self._bt) & (self.missing_ == m) for m in range(k_max + 1)]
        self._mass_shape = (n_sk, k_max + 1)
        self._mass2 = np.stack(mass, axis=1).astype(np.float64).reshape(n_sk * (k_max + 1), n)
        self._rho_pow = self.globals_["prereq"] ** np.arange(k_max + 1)
        self._rho_x = self.globals_["prereq"] ** self.missing_  # (S, N)
        self._crate = np.array([c["rate"] for c in self.classes_])  # (C,)
        self._clogw = np.array(self._logw)
        self._forget_memo: dict[float, tuple[np.ndarray, ...]] = {}
        self._half = tuple(_subset_powers(b) for b in (n_sk - n_sk // 2, n_sk // 2))
        rows = []
        for c in self.classes_:
            prior = 1.0 / (1.0 + np.exp(-(_logit(self.prior_) + c["shift"])))
            q = prior[None, :] * self.globals_["prior_prereq"] ** self.missing_.T  # (N, S)
            rows.append(np.prod(np.where(self.bits_, q, 1.0 - q), axis=1))
        self.prior_joint_ = np.stack(rows)  # (C, N)

    # -- filtering ------------------------------------------------------------------------------------------
    def new_belief(self) -> list[JointState]:  # type: ignore[override]
        return [JointState(self.prior_joint_.copy())]

    def dump_belief(self, belief: Sequence[Any]) -> bytes:  # type: ignore[override]
        """A JSON header line, then the (C, N) state distribution as little-endian float64 (2^S x 8 bytes per
        class: 32 KiB at S = 12)."""
        st = belief[0]
        head = {"belief": "joint", "shape": list(st.p.shape), "t_last": st.t_last, "k": st.k,
                "loglik": st.loglik.tolist()}
        return json.dumps(head).encode() + b"\n" + np.ascontiguousarray(st.p, dtype="<f8").tobytes()

    def load_belief(self, data: bytes) -> list[JointState]:  # type: ignore[override]
        head_bytes, _, body = data.partition(b"\n")
        try:
            head = json.loads(head_bytes.decode())
        except ValueError:
            raise ValueError("the belief was written for another model") from None
        shape = (len(self.classes_), 1 << len(self.skills_))
        if head.get("belief") != "joint" or tuple(head.get("shape", ())) != shape or len(body) != 8 * shape[0] * shape[1]:
            raise ValueError("the belief was written for another model")
        st = JointState(np.frombuffer(body, dtype="<f8").reshape(shape).astype(np.float64))
        st.t_last = None if head["t_last"] is None else float(head["t_last"])
        st.k = int(head["k"])
        st.loglik = np.asarray(head["loglik"], dtype=np.float64)
        if st.loglik.shape != (shape[0],):
            raise ValueError("the belief was written for another model")
        return [st]

    def forget(self, p: np.ndarray, dt: float | np.ndarray) -> np.ndarray:
        """Every known skill survives `dt` seconds with probability exp(-phi dt / day), independently; returns a
        new array. One learner (scalar `dt`, `p` of any leading shape): the transition factorises over the low
        and the high half of the bits, M_high P M_low^T with P the state vector as a 2^h x 2^l matrix. A batch
        (`dt` of shape (n,), `p` (n, ..., N)) goes bit by bit (the same arithmetic, vectorised over learners)."""
        n_sk = len(self.skills_)
        surv = np.exp(-self.globals_["forget"] * np.asarray(dt, dtype=np.float64) / DAY)
        if surv.ndim == 0:
            f = float(surv)
            mats = self._forget_memo.get(f)
            if mats is None:
                hi, lo = self._half
                mats = tuple(
                    np.where(h[0], f ** h[1] * (1.0 - f) ** np.maximum(h[2], 0), 0.0) for h in (hi, lo)
                )
                if len(self._forget_memo) > 256:
                    self._forget_memo.clear()
                self._forget_memo[f] = mats
            m_hi, m_lo = mats
            n_lo = m_lo.shape[0]
            out = m_hi @ p.reshape(*p.shape[:-1], -1, n_lo) @ m_lo.T
            return np.asarray(out.reshape(p.shape))
        q = np.array(p, dtype=np.float64, copy=True)
        lead = q.shape[:-1]
        keep = surv.reshape(surv.shape + (1,) * (len(lead) - surv.ndim + 2))
        for s in range(n_sk):
            v = q.reshape(*lead, 1 << (n_sk - 1 - s), 2, 1 << s)  # axis -2 is bit s
            lost = v[..., 1, :] * (1.0 - keep)
            v[..., 0, :] += lost
            v[..., 1, :] -= lost
        return q

    def update(self, st: JointState, j: int, difficulty: float, correct: bool, time: float) -> None:  # type: ignore[override]
        if st.t_last is None or time - st.t_last > SESSION_GAP:
            st.k = 0
        else:
            st.k += 1
        if st.t_last is not None and time - st.t_last > SESSION_GAP:
            st.p = self.forget(st.p, time - st.t_last)
        st.t_last = time
        st.p, total = self.step(st.p, j, difficulty, correct, st.k)
        st.loglik = st.loglik + np.log(np.maximum(total, 1e-300))

    def _guess_slip(self, j: int, difficulty: float, k: int) -> tuple[float, float]:
        g = self.globals_
        a = g["difficulty_effect"] * difficulty
        return _sig(self._lg[j] - a), _sig(self._ls[j] + a + g["fatigue"] * k / FATIGUE_SCALE)

    def guess_slip_many(self, js: np.ndarray, difficulty: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """`_guess_slip` for many (skill, difficulty) pairs at once."""
        g = self.globals_
        a = g["difficulty_effect"] * difficulty
        lg, ls = np.asarray(self._lg)[js], np.asarray(self._ls)[js]
        guess = 0.5 * (1.0 + np.tanh((lg - a) / 2))  # the logistic, without overflow
        return guess, 0.5 * (1.0 + np.tanh((ls + a + g["fatigue"] * k / FATIGUE_SCALE) / 2))

    def step(
        self, p: np.ndarray, j: int, difficulty: float, correct: bool, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Posterior after one answer on skill j (`k` answers into the session), then the learning transition,
        per class; returns the new (C, N) distribution and each class's probability of the answer."""
        guess, slip = self._guess_slip(j, difficulty, k)
        lk = 1.0 - slip if correct else slip
        lu = guess if correct else 1.0 - guess
        q = p * np.where(self._bt[j], lk, lu)
        total = q.sum(axis=1)
        q /= np.maximum(total, 1e-300)[:, None]
        g = self.globals_
        expo = item_fit(g, difficulty)
        learn = 1.0 - np.exp(self._lt[j] * expo * self._crate[:, None] * self._rho_x[j][None, :])
        moved = np.where(self._bt[j], 0.0, q * learn)
        return q - moved + moved[:, self._flip[j]], total

    def at(self, st: JointState, now: float) -> np.ndarray:
        """The (C, N) state distribution at `now` (forgetting since the last answer if a session has ended)."""
        if st.t_last is None or now - st.t_last <= SESSION_GAP:
            return st.p
        return self.forget(st.p, now - st.t_last)

    def class_weights(self, loglik: np.ndarray) -> np.ndarray:
        """Posterior probability of each learner class given the per-class log-likelihoods."""
        x = self._clogw + loglik
        w = np.exp(x - x.max())
        return np.asarray(w / w.sum())

    def beliefs(self, belief: Sequence[Any], now: float) -> list[float]:
        st = belief[0]
        return (self.class_weights(st.loglik) @ self.at(st, now) @ self._bf).tolist()  # type: ignore[no-any-return]

    def weights(self, belief: Sequence[Any]) -> list[float]:
        return self.class_weights(belief[0].loglik).tolist()  # type: ignore[no-any-return]

    def loglik_of(self, belief: Sequence[Any]) -> float:
        return float(_logsumexp(self._clogw + belief[0].loglik))

    def unknown_mass(self, p: np.ndarray) -> np.ndarray:
        """(C, S, K+1) for `p` (C, N): P(skill j unknown and m of its direct prerequisites unknown)."""
        return np.asarray((p @ self._mass2.T).reshape(p.shape[0], *self._mass_shape))

    # -- likelihood of a log, vectorised over learners -------------------------------------------------------
    def batch_loglik(self, data: dict[str, np.ndarray]) -> float:
        """Sum over learners of the joint log-likelihood (classes mixed per learner); `data` as `belief._pad`
        returns it."""
        g = self.globals_
        t_max, n = data["mask"].shape
        p = np.tile(self.prior_joint_[None], (n, 1, 1))  # (n, C, N)
        ll = np.zeros((n, p.shape[1]))
        k = np.zeros(n)
        t_last = np.zeros(n)
        started = np.zeros(n, dtype=bool)
        lg, ls, lt = np.asarray(self._lg), np.asarray(self._ls), np.asarray(self._lt)
        rate = self._crate[None, :, None]
        for t in range(t_max):
            mask = data["mask"][t]
            if not mask.any():
                continue
            now, j = data["time"][t], data["skill"][t]
            dif, c = data["difficulty"][t], data["correct"][t]
            gap = now - t_last
            k = np.where(mask, np.where(started & (gap <= SESSION_GAP), k + 1, 0.0), k)
            dt = np.where(started & mask, gap, 0.0)
            rows = np.flatnonzero(dt > SESSION_GAP)
            if len(rows):
                p[rows] = self.forget(p[rows], dt[rows])
            started |= mask
            t_last = np.where(mask, now, t_last)
            a = g["difficulty_effect"] * dif
            guess = 1.0 / (1.0 + np.exp(-(lg[j] - a)))
            slip = 1.0 / (1.0 + np.exp(-(ls[j] + a + g["fatigue"] * k / FATIGUE_SCALE)))
            lk = np.where(c, 1.0 - slip, slip)
            lu = np.where(c, guess, 1.0 - guess)
            bj = self._bt[j][:, None, :]  # (n, 1, N)
            lik = np.where(bj, lk[:, None, None], lu[:, None, None])
            lik[~mask] = 1.0
            p *= lik
            total = p.sum(axis=2)  # (n, C)
            ll += np.where(mask[:, None], np.log(np.maximum(total, 1e-300)), 0.0)
            p /= np.maximum(total, 1e-300)[:, :, None]
            expo = item_fit_many(g, dif)
            learn = 1.0 - np.exp(lt[j][:, None, None] * expo[:, None, None] * rate * self._rho_x[j][:, None, :])
            moved = np.where(bj | ~mask[:, None, None], 0.0, p * learn)
            flip = np.broadcast_to(self._flip[j][:, None, :], moved.shape)
            p = p - moved + np.take_along_axis(moved, flip, axis=2)
        return float(_logsumexp(self._clogw[None, :] + ll, axis=1).sum())

    def refine(
        self,
        graph: SkillGraph[int],
        learner: np.ndarray,
        skill: np.ndarray,
        difficulty: np.ndarray,
        correct: np.ndarray,
        time: np.ndarray,
        *,
        max_learners: int = 200,
        rounds: int = 2,
        seed: int = 0,
        keys: Sequence[str] = ("shift", "learn_shift", "prior_prereq", "prereq", "rate_sd"),
    ) -> Self:
        """Coordinate search of the joint log-likelihood over shifts of every prior and every learning-rate
        logit, rho0 and rho (on the logit scale) and, with rate classes, their log-sd (log scale), on up to
        `max_learners` learners of the log; the other parameters stay at the mean-field fit. `refine_` records
        the steps and the log-likelihoods."""
        pos = {s: i for i, s in enumerate(self.skills_)}
        if list(graph.order) != self.skills_:
            raise ValueError("the log's graph is not the model's")
        learner = np.asarray(learner)
        ids = np.unique(learner)
        if len(ids) > max_learners:
            ids = np.sort(np.random.default_rng(seed).choice(ids, max_learners, replace=False))
        keep = np.isin(learner, ids)
        data = _pad(
            learner[keep],
            np.array([pos[int(s)] for s in np.asarray(skill)[keep]]),
            np.asarray(difficulty, dtype=np.float64)[keep],
            np.asarray(correct).astype(bool)[keep],
            np.asarray(time, dtype=np.float64)[keep],
        )
        base_prior = _logit(self.prior_)
        base_learn = _logit(self.learn_)
        x = {
            "shift": 0.0,
            "learn_shift": 0.0,
            "prior_prereq": float(_logit(self.globals_["prior_prereq"])),
            "prereq": float(_logit(self.globals_["prereq"])),
        }
        if self.rate_sd_ is not None:
            x["rate_sd"] = math.log(max(self.rate_sd_, 1e-3))
        keys = [key for key in keys if key in x]

        def apply(v: dict[str, float]) -> None:
            self.prior_ = 1.0 / (1.0 + np.exp(-(base_prior + v["shift"])))
            self.learn_ = 1.0 / (1.0 + np.exp(-(base_learn + v["learn_shift"])))
            self.globals_["prior_prereq"] = _sig(v["prior_prereq"])
            self.globals_["prereq"] = _sig(v["prereq"])
            if "rate_sd" in v:
                self.rate_sd_ = math.exp(v["rate_sd"])
                self.classes_ = rate_classes(self.rate_sd_)
            self._compile()

        def score(v: dict[str, float]) -> float:
            apply(v)
            return self.batch_loglik(data)

        best = score(x)
        steps: list[dict[str, float]] = [{**x, "loglik": best}]
        step = 0.5
        for _ in range(rounds):
            for key in keys:
                for direction in (1.0, -1.0):
                    moved = False
                    while True:
                        trial = {**x, key: x[key] + direction * step}
                        val = score(trial)
                        if val > best + 1e-6:
                            x, best, moved = trial, val, True
                            steps.append({**x, "loglik": best})
                        else:
                            break
                    if moved:
                        break
            step /= 2.0
        apply(x)
        self.refine_ = {"learners": int(len(ids)), "steps": steps, "loglik": best}
        return self


class JointBeliefPolicy(BeliefPolicy):
    """Expected learning gain on the joint belief (module docstring). Hyperparameters as `BeliefPolicy`:
    `done`, `unlock` (here: P(prerequisites known | skill unknown)), `switch`, `epsilon_all`."""

    name = "joint"
    model_class = JointModel

    def __init__(
        self,
        done: float = 0.95,
        unlock: float = 0.0,
        switch: float = 0.7,
        epsilon_all: float = 0.01,
        gate: str = "conditional",
        lookahead: int = 0,
        dropout_cost: float = 200.0,
        model: JointModel | None = None,
        sessions: SessionModel | None = None,
        **_: Any,
    ) -> None:
        self.gate = gate
        self.lookahead = lookahead
        self.dropout_cost = dropout_cost
        self.sessions_ = sessions
        super().__init__(done=done, unlock=unlock, switch=switch, epsilon=0.0, epsilon_all=epsilon_all, model=model)

    @classmethod
    def of(cls, joint: JointBeliefPolicy) -> Self:
        """This class over `joint`'s model, thresholds and session model (subclasses that decide or record
        differently on the same filter)."""
        return cls(**joint._hyper(), model=joint._joint(), sessions=joint.sessions_)

    def _joint(self) -> JointModel:
        m = self._model()
        if not isinstance(m, JointModel):
            raise ValueError("the joint policy needs a JointModel")
        return m

    def fit(self, model: BeliefModel) -> Self:
        self.model_ = model if isinstance(model, JointModel) else JointModel.from_model(model)
        return self

    def _now(self, state: LearnerView) -> float:
        now = state.now if state.history else 0.0
        if state.history and now < state.history[-1].time:
            now = state.history[-1].time
        return now

    def _state_now(self, state: LearnerView) -> tuple[np.ndarray, np.ndarray]:
        """(distribution over states per class (C, N), class weights (C,)) at the view's time; memoised for the
        last view asked."""
        last = state.history[-1] if state.history else None
        key = (id(last), len(state.history), self._now(state))
        memo = self._now_memo
        if memo is not None and memo[0] == key and memo[1] is last:
            return memo[2], memo[3]
        model = self._joint()
        st = self.filter_state(state.history)[0]
        assert isinstance(st, JointState)
        p = model.at(st, self._now(state))
        w = model.class_weights(st.loglik)
        self._now_memo = (key, last, p, w)
        return p, w

    def belief(self, state: LearnerView) -> dict[int, float]:
        p, w = self._state_now(state)
        marg = w @ p @ self._joint()._bf
        return dict(zip(self._joint().skills_, marg.tolist(), strict=True))

    def _summary(self, p: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-class unknown mass (C, S, K+1), marginals (S,) and P(prerequisites known | skill unknown) (S,)."""
        model = self._joint()
        mass = model.unknown_mass(p)
        marg = w @ p @ model._bf
        ready = (w @ mass[:, :, 0]) / np.maximum(1.0 - marg, 1e-12)
        return mass, marg, ready

    def candidate_gains(
        self, candidates: Sequence[Candidate], mass: np.ndarray, w: np.ndarray, j: np.ndarray
    ) -> np.ndarray:
        """Expected rise of P(known) of each candidate's skill if served now, mixed over the learner classes
        (NaN for skills outside the model); `j` the candidates' skill positions (-1 outside)."""
        model = self._joint()
        g = model.globals_
        d = np.array([c.difficulty for c in candidates], dtype=np.float64)
        expo = item_fit_many(g, d)
        jj = np.maximum(j, 0)
        lt = np.asarray(model._lt)[jj]
        # (C, n, K+1): the chance a practice teaches, per class, candidate and number of missing prerequisites.
        learn = 1.0 - np.exp(
            model._crate[:, None, None] * (lt * expo)[None, :, None] * model._rho_pow[None, None, :]
        )
        out = np.einsum("c,cnk,cnk->n", w, mass[:, jj, :], learn)
        return np.asarray(np.where(j >= 0, out, np.nan))

    def _positions(self, candidates: Sequence[Candidate]) -> np.ndarray:
        pos = self._joint().pos_
        return np.array([pos.get(c.skills[0], -1) for c in candidates])

    def _open(self, j: np.ndarray, marg: np.ndarray, ready: np.ndarray) -> np.ndarray:
        jj = np.maximum(j, 0)
        if self.gate == "marginal":
            held = marg >= self.unlock
            pre = self._joint()._pre
            ready_ok = np.array([k >= 0 and all(held[q] for q in pre[k]) for k in j.tolist()], dtype=bool)
        else:
            ready_ok = ready[jj] >= self.unlock
        return np.asarray((j >= 0) & (marg[jj] < self.done) & ready_ok)

    def choose_goal(self, candidates: Sequence[Candidate], state: LearnerView, b: dict[int, float]) -> int:
        p, w = self._state_now(state)
        mass, marg, ready = self._summary(p, w)
        j = self._positions(candidates)
        gains = self.candidate_gains(candidates, mass, w, j)
        ok = self._open(j, marg, ready)
        if state.targets:
            wanted = set(state.targets)
            for t in state.targets:
                if t in state.graph:
                    wanted |= state.graph.ancestors(t)
            preferred = ok & np.array([c.skills[0] in wanted for c in candidates])
            if preferred.any():
                ok = preferred
        if ok.any():
            scores = np.where(ok, gains, -np.inf)
            if self.lookahead > 0:
                scores = self._look_ahead(candidates, state, p, w, j, scores)
            return candidates[int(np.argmax(scores))].skills[0]
        # Everything looks known or blocked: the largest expected gain over all skills.
        return candidates[int(np.argmax(np.where(j >= 0, gains, -np.inf)))].skills[0]

    def tune(
        self,
        score: Callable[[BeliefPolicy], float | np.ndarray],
        grid: Mapping[str, Sequence[Any]],
        paired_z: float = 0.0,
    ) -> Self:
        """Pick the hyperparameters maximising `score(policy)` over `grid` (training learners only); with
        per-learner scores and `paired_z`, the grid's first combination unless another is better by more than
        `paired_z` standard errors (`grid_search`)."""
        best, self.tuning_ = grid_search(
            grid,
            lambda p: JointBeliefPolicy(**{**self._hyper(), **p}, model=self._joint(), sessions=self.sessions_),
            score,
            paired_z=paired_z,
        )
        for k, v in best.items():
            setattr(self, k, v)
        return self

    def _next_best(self, p: np.ndarray, w: np.ndarray, candidates: Sequence[Candidate], j: np.ndarray) -> float:
        """The largest gain among open candidates under belief (`p`, `w`) (0 when none is open)."""
        mass, marg, ready = self._summary(p, w)
        gains = self.candidate_gains(candidates, mass, w, j)
        ok = self._open(j, marg, ready)
        return float(gains[ok].max()) if ok.any() else 0.0

    def _look_ahead(
        self,
        candidates: Sequence[Candidate],
        state: LearnerView,
        p: np.ndarray,
        w: np.ndarray,
        j: np.ndarray,
        scores: np.ndarray,
    ) -> np.ndarray:
        """Two-step scores for the best candidate of each of the `lookahead` best skills: its gain plus the
        expected best gain after its answer (right or wrong), which values answers that tell what to do next."""
        model = self._joint()
        k = self.filter_state(state.history)[0].k + 1 if state.history else 0
        best_of: dict[int, int] = {}
        for i in np.argsort(-scores).tolist():
            if not np.isfinite(scores[i]):
                break
            best_of.setdefault(int(j[i]), i)
            if len(best_of) >= self.lookahead:
                break
        out = np.full(len(candidates), -np.inf)
        for jk, i in best_of.items():
            d = candidates[i].difficulty
            value = 0.0
            for correct in (True, False):
                q, total = model.step(p, jk, d, correct, k)
                prob = float(w @ total)  # P(this answer) under the class mixture
                w2 = w * total / max(prob, 1e-300)
                value += prob * self._next_best(q, w2, candidates, j)
            out[i] = scores[i] + value
        return out

    # -- the risk of losing the learner ----------------------------------------------------------------------
    def fit_sessions(self, learner: np.ndarray, correct: np.ndarray, time: np.ndarray, quit: Any) -> Self:
        """Fit when sessions end and how failures at their end raise quitting (`SessionModel`) on a log."""
        self.sessions_ = SessionModel().fit(learner, correct, time, quit)
        return self

    def _session_position(self, state: LearnerView) -> tuple[int, int]:
        """(answers so far in the current session, wrong answers in a row at its end): a pause of more than an
        hour before now starts a new session."""
        hist = state.history
        if not hist or self._now(state) - hist[-1].time > SESSION_GAP:
            return 0, 0
        n, run, counting = 0, 0, True
        t_next = hist[-1].time
        for o in reversed(hist):
            if t_next - o.time > SESSION_GAP:
                break
            n += 1
            t_next = o.time
            if counting and not o.correct:
                run += 1
            else:
                counting = False
        return n, run

    def p_right(self, candidates: Sequence[Candidate], state: LearnerView, k: int) -> np.ndarray:
        """P(a right answer) of each candidate under the belief, `k` answers into the session (NaN outside the
        model)."""
        model = self._joint()
        p, w = self._state_now(state)
        marg = w @ p @ model._bf
        n = len(candidates)
        js = np.fromiter((model.pos_.get(c.skills[0], -1) for c in candidates), dtype=np.int64, count=n)
        known = js >= 0
        j = js[known]
        difficulty = np.fromiter((c.difficulty for c in candidates), dtype=float, count=n)[known]
        guess, slip = model.guess_slip_many(j, difficulty, k)
        out = np.full(n, np.nan)
        out[known] = marg[j] * (1.0 - slip) + (1.0 - marg[j]) * guess
        return out

    def _override(self, candidates: Sequence[Candidate], state: LearnerView, probs: np.ndarray) -> np.ndarray:
        """`probs`, or the candidate likeliest to be answered right when serving the usual choice risks more than
        one exercise's worth of lost learners: `dropout_cost` x P(the session ends on this answer) x the rise of
        quitting after the longer run of failures x the difference in P(wrong)."""
        sessions = self.sessions_
        if sessions is None or self.dropout_cost <= 0.0 or len(candidates) < 2:
            return probs
        n, run = self._session_position(state)
        risk = sessions.p_end(n + 1, run + 1) * sessions.quit_rise(run + 1)
        if self.dropout_cost * risk <= 1.0:
            return probs
        right = self.p_right(candidates, state, n)
        if not np.isfinite(right).any():
            return probs
        usual = int(np.argmax(probs))
        safe = int(np.nanargmax(right))
        gap = right[safe] - (right[usual] if np.isfinite(right[usual]) else 0.0)
        if self.dropout_cost * risk * gap <= 1.0:
            return probs
        out = np.full(len(candidates), self.epsilon_all / len(candidates))
        out[safe] += 1.0 - self.epsilon_all
        return out

    def save(self, fp: IO[bytes]) -> None:
        doc = {"policy": self.name, "params": self._hyper(), "model": self._joint().to_dict()}
        if self.sessions_ is not None:
            doc["sessions"] = self.sessions_.to_dict()
        fp.write(json.dumps(doc).encode())

    @classmethod
    def load(cls, fp: IO[bytes]) -> Self:
        doc = json.loads(fp.read().decode())
        sessions = SessionModel.from_dict(doc["sessions"]) if doc.get("sessions") else None
        return cls(**doc["params"], model=JointModel.from_dict(doc["model"]), sessions=sessions)

    def _hyper(self) -> dict[str, Any]:
        return {
            "dropout_cost": self.dropout_cost,
            "lookahead": self.lookahead,
            "done": self.done,
            "unlock": self.unlock,
            "switch": self.switch,
            "epsilon_all": self.epsilon_all,
            "gate": self.gate,
        }
