"""A policy with its own belief: a richer knowledge model than BKT, filtered from the learner's answers.

Every policy of the comparison gets the same BKT view; BKT fitted on logs of this kind of learner is misspecified
(it ignores item difficulty, fatigue, forgetting and prerequisites, so it fits slips near 0.3 and slow learning)
and a policy reading it spends many exercises confirming skills the learner already knows. This policy computes
its own per-skill posterior from `LearnerView.history` (the answers with item difficulty and time) under a model
whose parameters are fitted by maximum likelihood on a decision log (`BeliefModel.fit`):

* per skill s: prior p_s, learning rate T_s, guess g_s, slip l_s (logit scale);
* item difficulty d shifts both, as in KT-IDEM with one slope: P(right | knows) = 1 - sig(logit l_s + a d + f k/25),
  P(right | not) = sig(logit g_s - a d), where k is the answer's position in its session (fatigue; a session ends
  at a pause of more than an hour);
* learning on practice of s: T = 1 - (1 - T_s)^E with E = exp(b1 d + b2 d^2) (item fit) times the readiness
  prod_p (v_p + (1 - v_p) rho) over the direct prerequisites p (expected over the belief v_p);
* initial knowledge follows the graph: when s is first seen its prior is p_s prod_p (v_p + (1 - v_p) rho0), v_p
  being the current belief in p if p was seen, else p_p (a mean-field approximation of a joint prior);
* forgetting: a known skill is lost at rate phi per day between answers;
* optionally (`n_classes` > 1) learner classes: a mixture of classes with their own learning-rate multiplier and
  prior shift, filtered in parallel and weighted by their likelihood (learners differ a lot in learning rate).

The parameters are estimated, never read from a simulator: in the benchmark they come from the pilot decision
log of training seeds. The filter is a forward pass per skill (a two-state HMM per skill, coupled through the prerequisite terms), O(1)
per answer. Multi-skill items count for their first skill.

`BeliefPolicy` decides on that belief. A skill is open when it is not yet believed known (belief < `done`) and
its direct prerequisites are believed known (>= `unlock`); teacher targets and their prerequisites come first. Two
high-level rules (`mode`):

* `"gain"` (the default, tuned and benchmarked): among the open skills' candidates, the one with the largest expected
  rise of P(known) under the model, (1 - b_s) (1 - (1 - T_s)^E) with E the item fit times the readiness. The
  prerequisite gate is needed: the mean-field readiness cannot see that a learner who lacks a skill often lacks
  its prerequisites too, and without the gate the greedy choice spends half its exercises on unready skills;
* `"goal"`: stay on the skill of the last answer while it is open (at most `max_stint` answers), else the
  earliest open skill of the syllabus (the hierarchical policy's high level on this belief).

Within the chosen skill: while its belief is below `switch` the item the model says teaches most (largest E);
above it, the item whose right answer is the strongest evidence of knowing (largest likelihood ratio: with a > 0,
the hardest). When every skill looks known, the least certain one is reviewed. Exploration: `epsilon` of the mass
uniform over the chosen skill's items and `epsilon_all` uniform over all candidates, so every candidate has a
positive propensity (off-policy evaluation stays valid).

Decisions are O(history + candidates) in pure Python; `filter_state` memoises the filter per answer object so
that a caller passing the same growing history (the harness) pays O(1) per decision.

Service use (simple signatures):

    model = BeliefModel().fit(graph, learner, skill, difficulty, correct, time)  # rows chronological per learner
    policy = BeliefPolicy(done=0.95, unlock=0.95).fit(model)                     # or .tune(score, grid)
    policy.save(fp); BeliefPolicy.load(fp)                                       # explicit JSON parameters

`skill` holds skill ids of `graph`; `time` is the time of each answer in seconds (any origin).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any, Self

import numpy as np

from curriculum.graph import SkillGraph
from tutor.policy.base import Candidate, Decision, LearnerView, Outcome, Policy, grid_search

DAY = 86400.0
SESSION_GAP = 3600.0  # a pause longer than this starts a new session
FATIGUE_SCALE = 25.0  # fatigue is per 25 answers into a session
# The item-fit exponent's bound: far beyond any fitted value (|fit| is about 1 over the difficulty range), so a
# model fitted on too little data to pin its item fit down cannot overflow the filter.
FIT_CAP = 30.0
#: the largest forgetting rate a fit may give (per day: a known skill kept overnight with probability e^-5, i.e.
#: forgotten). A log where every pause ends in wrong answers has its likelihood's supremum at an infinite rate;
#: bounded, the model stays finite (and its reports valid JSON).
FORGET_MAX = 5.0
# Bounds of the other fitted parameters (logits, and the difficulty, fatigue and item-fit coefficients). On a log of
# a few dozen answers the model is not identified and L-BFGS can walk a parameter far enough for a probability to
# be exactly 0 or 1 and the likelihood NaN (a service test's log did). Fits on real-sized logs stay far inside
# (the benchmark's: every logit within 2.5, every coefficient within 0.6).
LOGIT_MAX = 20.0
COEF_MAX = 10.0


def item_fit(g: Mapping[str, float], d: float) -> float:
    """exp(fit_linear d + fit_quadratic d^2), the learning multiplier of an item of difficulty d, bounded."""
    return math.exp(max(-FIT_CAP, min(FIT_CAP, g["fit_linear"] * d + g["fit_quadratic"] * d * d)))


def item_fit_many(g: Mapping[str, float], d: np.ndarray) -> np.ndarray:
    """`item_fit` over an array of difficulties."""
    return np.asarray(np.exp(np.clip(g["fit_linear"] * d + g["fit_quadratic"] * d * d, -FIT_CAP, FIT_CAP)))
GLOBAL_KEYS = (
    "difficulty_effect",
    "fatigue",
    "fit_linear",
    "fit_quadratic",
    "prereq",
    "prior_prereq",
    "forget",
)


def _sig(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _logit(p: np.ndarray | float) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.asarray(np.log(q / (1 - q)))


class FilterState:
    """The belief of one learner after some answers under one learner class (positions of
    `BeliefModel.skills_`)."""

    __slots__ = ("c", "m", "t_m", "seen", "t_last", "k", "loglik")

    def __init__(self, n_skills: int, c: int = 0) -> None:
        self.c = c  # learner class
        self.m = [0.0] * n_skills  # belief at time t_m[s] (seen skills only)
        self.t_m = [0.0] * n_skills
        self.seen = [False] * n_skills
        self.t_last: float | None = None
        self.k = 0  # answers earlier in the current session
        self.loglik = 0.0

    def copy(self) -> FilterState:
        c = FilterState(0, self.c)
        c.m, c.t_m, c.seen = self.m[:], self.t_m[:], self.seen[:]
        c.t_last, c.k, c.loglik = self.t_last, self.k, self.loglik
        return c


Belief = list[FilterState]  # one filter per learner class


class BeliefModel:
    """The knowledge model, its maximum-likelihood fit and its filter. Parameters (after `fit` or `from_dict`):
    `skills_` (ids), `prereq_` (S x S bool, [s, p] = p is a direct prerequisite of s), `prior_`, `learn_`,
    `guess_`, `slip_` (per skill, probabilities), `globals_` (`GLOBAL_KEYS`) and the learner classes
    `classes_` (a list of {"weight", "rate", "shift"}: a share of learners whose learning rates are multiplied by
    `rate` and whose prior knowledge is shifted by `shift` on the logit scale). Learners differ a lot in how fast
    they learn; a mixture of `n_classes` classes filtered in parallel and weighted by their likelihood lets the
    belief of a learner who keeps failing stop assuming the average learning rate."""

    def __init__(self, n_classes: int = 1, max_iter: int = 150, ridge: float = 0.01) -> None:
        self.n_classes = n_classes
        self.max_iter = max_iter
        self.ridge = ridge  # L2 pull of per-skill logits towards their mean across skills

    # -- parameters -----------------------------------------------------------------------------------------
    def set_params(
        self,
        skills: Sequence[int],
        prereq: np.ndarray,
        prior: Sequence[float] | np.ndarray,
        learn: Sequence[float] | np.ndarray,
        guess: Sequence[float] | np.ndarray,
        slip: Sequence[float] | np.ndarray,
        globals_: dict[str, float],
        classes: Sequence[dict[str, float]] | None = None,
    ) -> Self:
        self.skills_ = [int(s) for s in skills]
        self.prereq_ = np.asarray(prereq, dtype=bool)
        self.prior_ = np.asarray(prior, dtype=np.float64)
        self.learn_ = np.asarray(learn, dtype=np.float64)
        self.guess_ = np.asarray(guess, dtype=np.float64)
        self.slip_ = np.asarray(slip, dtype=np.float64)
        self.globals_ = {k: float(globals_[k]) for k in GLOBAL_KEYS}
        classes = classes or [{"weight": 1.0, "rate": 1.0, "shift": 0.0}]
        self.classes_ = [{k: float(c[k]) for k in ("weight", "rate", "shift")} for c in classes]
        self._compile()
        return self

    def _compile(self) -> None:
        self.pos_ = {s: k for k, s in enumerate(self.skills_)}
        self._pre = [np.flatnonzero(row).tolist() for row in self.prereq_]
        lp = _logit(self.prior_)
        self._lp = [(1.0 / (1.0 + np.exp(-(lp + c["shift"])))).tolist() for c in self.classes_]
        self._rate = [c["rate"] for c in self.classes_]
        self._logw = [math.log(max(c["weight"], 1e-300)) for c in self.classes_]
        self._lt = np.log1p(-np.clip(self.learn_, 0.0, 1 - 1e-9)).tolist()  # log(1 - T_s)
        self._lg = _logit(self.guess_).tolist()
        self._ls = _logit(self.slip_).tolist()

    def to_dict(self) -> dict[str, Any]:
        return {
            "skills": self.skills_,
            "prereq": self.prereq_.astype(int).tolist(),
            "prior": self.prior_.tolist(),
            "learn": self.learn_.tolist(),
            "guess": self.guess_.tolist(),
            "slip": self.slip_.tolist(),
            "globals": self.globals_,
            "classes": self.classes_,
            "hyper": {"n_classes": self.n_classes, "max_iter": self.max_iter, "ridge": self.ridge},
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> BeliefModel:
        m = cls(**doc.get("hyper", {}))
        return m.set_params(
            doc["skills"],
            np.asarray(doc["prereq"]),
            doc["prior"],
            doc["learn"],
            doc["guess"],
            doc["slip"],
            doc["globals"],
            doc.get("classes"),
        )

    # -- filtering ------------------------------------------------------------------------------------------
    def new_belief(self) -> Belief:
        return [FilterState(len(self.skills_), c) for c in range(len(self.classes_))]

    def _value(self, st: FilterState, j: int, now: float) -> float:
        """Belief in skill j at time `now` (unseen skills: the prior, not conditioned on the graph)."""
        if st.seen[j]:
            return st.m[j] * math.exp(-self.globals_["forget"] * (now - st.t_m[j]) / DAY)
        return float(self._lp[st.c][j])

    def belief_of(self, st: FilterState, j: int, now: float) -> float:
        """Belief in skill j at `now` within one class, with the graph-conditioned prior for an unseen skill."""
        if st.seen[j]:
            return self._value(st, j, now)
        r0 = self.globals_["prior_prereq"]
        v = self._lp[st.c][j]
        for p in self._pre[j]:
            vp = self._value(st, p, now)
            v *= vp + (1.0 - vp) * r0
        return float(v)

    def update(self, st: FilterState, j: int, difficulty: float, correct: bool, time: float) -> None:
        """One answer on skill position j (in place): session bookkeeping, posterior, learning transition."""
        g = self.globals_
        if st.t_last is None or time - st.t_last > SESSION_GAP:
            st.k = 0
        else:
            st.k += 1
        st.t_last = time
        m = self.belief_of(st, j, time)
        a = g["difficulty_effect"] * difficulty
        guess = _sig(self._lg[j] - a)
        slip = _sig(self._ls[j] + a + g["fatigue"] * st.k / FATIGUE_SCALE)
        lk = 1.0 - slip if correct else slip
        lu = guess if correct else 1.0 - guess
        p = m * lk + (1.0 - m) * lu
        st.loglik += math.log(max(p, 1e-300))
        post = m * lk / max(p, 1e-300)
        expo = self._rate[st.c] * item_fit(g, difficulty)
        rho = g["prereq"]
        for q in self._pre[j]:
            vq = self._value(st, q, time)
            expo *= vq + (1.0 - vq) * rho
        learn = 1.0 - math.exp(self._lt[j] * expo)
        st.m[j] = post + (1.0 - post) * learn
        st.t_m[j] = time
        st.seen[j] = True

    def filter(self, history: Sequence[Outcome], belief: Belief | None = None) -> Belief:
        states = self.new_belief() if belief is None else belief
        pos = self.pos_
        for o in history:
            if not o.skills:
                continue
            j = pos.get(o.skills[0])
            if j is not None:
                for st in states:
                    self.update(st, j, o.difficulty, o.correct, o.time)
        return states

    def dump_belief(self, belief: Belief) -> bytes:
        """The filter state as bytes (a checkpoint: `load_belief` gives back a state that filters on exactly as
        this one would)."""
        states = [
            {"c": st.c, "m": st.m, "t_m": st.t_m, "seen": st.seen, "t_last": st.t_last, "k": st.k, "loglik": st.loglik}
            for st in belief
        ]
        return json.dumps({"belief": "mean-field", "skills": len(self.skills_), "states": states}).encode()

    def load_belief(self, data: bytes) -> Belief:
        """The state `dump_belief` wrote; ValueError when it was written for another shape of model."""
        try:
            doc = json.loads(data.decode())
        except ValueError:  # bytes of another format (a joint model's array)
            raise ValueError("the belief was written for another model") from None
        n = len(self.skills_)
        if doc.get("belief") != "mean-field" or doc.get("skills") != n or len(doc["states"]) != len(self.classes_):
            raise ValueError("the belief was written for another model")
        out = []
        for d in doc["states"]:
            st = FilterState(0, int(d["c"]))
            st.m, st.t_m, st.seen = [float(x) for x in d["m"]], [float(x) for x in d["t_m"]], [bool(x) for x in d["seen"]]
            if not len(st.m) == len(st.t_m) == len(st.seen) == n:
                raise ValueError("the belief was written for another model")
            st.t_last = None if d["t_last"] is None else float(d["t_last"])
            st.k, st.loglik = int(d["k"]), float(d["loglik"])
            out.append(st)
        return out

    def weights(self, belief: Belief) -> list[float]:
        """Posterior probability of each learner class given the answers filtered so far."""
        logs = [lw + st.loglik for lw, st in zip(self._logw, belief, strict=True)]
        top = max(logs)
        w = [math.exp(x - top) for x in logs]
        total = sum(w)
        return [x / total for x in w]

    def beliefs(self, belief: Belief, now: float) -> list[float]:
        """P(known) per skill at `now`, mixed over the learner classes."""
        w = self.weights(belief)
        out = [0.0] * len(self.skills_)
        for wk, st in zip(w, belief, strict=True):
            for j in range(len(out)):
                out[j] += wk * self.belief_of(st, j, now)
        return out

    def loglik_of(self, belief: Belief) -> float:
        logs = [lw + st.loglik for lw, st in zip(self._logw, belief, strict=True)]
        top = max(logs)
        return top + math.log(sum(math.exp(x - top) for x in logs))

    # -- maximum likelihood ---------------------------------------------------------------------------------
    def fit(
        self,
        graph: SkillGraph[int],
        learner: np.ndarray,
        skill: np.ndarray,
        difficulty: np.ndarray,
        correct: np.ndarray,
        time: np.ndarray,
    ) -> Self:
        """Maximum likelihood on logged answers (rows chronological per learner; `skill` holds skill ids of
        `graph`, `time` seconds). The forward pass is vectorised over learners and classes in torch and the
        likelihood maximised with L-BFGS; `loglik_` is the fitted log-likelihood (sum over learners)."""
        import torch

        skills = list(graph.order)
        pos = {s: k for k, s in enumerate(skills)}
        n_sk = len(skills)
        prereq = np.zeros((n_sk, n_sk), dtype=bool)
        for pre, post in graph.edges():
            prereq[pos[post], pos[pre]] = True
        correct = np.asarray(correct).astype(bool)  # 0/1 ints (an AttemptLog) as well as booleans
        data = _pad(learner, np.array([pos[int(s)] for s in skill]), difficulty, correct, time)
        dd = torch.float64
        tens = {k: torch.as_tensor(v) for k, v in data.items()}
        pre_t = torch.as_tensor(prereq, dtype=dd)
        kc = self.n_classes
        spread = torch.linspace(-1.0, 1.0, kc, dtype=dd) if kc > 1 else torch.zeros(1, dtype=dd)

        def start() -> dict[str, Any]:
            th = {
                "prior": torch.full((n_sk,), float(_logit(0.6)), dtype=dd),
                "learn": torch.full((n_sk,), float(_logit(0.2)), dtype=dd),
                "guess": torch.full((n_sk,), float(_logit(0.2)), dtype=dd),
                "slip": torch.full((n_sk,), float(_logit(0.15)), dtype=dd),
                "difficulty_effect": torch.tensor(0.3, dtype=dd),
                "fatigue": torch.tensor(0.2, dtype=dd),
                "fit_linear": torch.tensor(0.0, dtype=dd),
                "fit_quadratic": torch.tensor(0.0, dtype=dd),
                "prereq": torch.tensor(float(_logit(0.5)), dtype=dd),
                "prior_prereq": torch.tensor(float(_logit(0.5)), dtype=dd),
                "forget": torch.tensor(math.log(0.02), dtype=dd),
                "class_rate": 1.0 * spread,
                "class_shift": 0.3 * spread,
                "class_weight": torch.zeros(kc, dtype=dd),
            }
            for k in th:
                if not (kc == 1 and k.startswith("class_")):
                    th[k].requires_grad_(True)
            return th

        n_obs = float(data["mask"].sum())

        def optimise(bounded: bool) -> tuple[dict[str, Any], float]:
            th = start()
            opt = torch.optim.LBFGS(
                [v for v in th.values() if v.requires_grad], lr=1.0, max_iter=self.max_iter,
                line_search_fn="strong_wolfe",
            )  # fmt: skip

            def objective() -> torch.Tensor:
                opt.zero_grad()
                ll = _torch_loglik(th, tens, pre_t, bounded)
                reg = sum(((th[k] - th[k].mean()) ** 2).sum() for k in ("prior", "learn", "guess", "slip")) / n_sk
                reg = reg + (th["class_rate"].mean() ** 2 + th["class_shift"].mean() ** 2)
                loss: torch.Tensor = -ll / n_obs + self.ridge * reg
                loss.backward()  # type: ignore[no-untyped-call]
                return loss

            opt.step(objective)  # type: ignore[no-untyped-call]
            with torch.no_grad():
                return th, float(_torch_loglik(th, tens, pre_t, bounded))

        # Unbounded first (a fit on a real-sized log stays far inside the bounds, and this keeps its optimiser's
        # path as it was); when that ends outside the bounds or not finite (a log of a few dozen answers), again
        # within them.
        th, self.loglik_ = optimise(bounded=False)
        if not math.isfinite(self.loglik_) or not _within_bounds(th):
            th, self.loglik_ = optimise(bounded=True)
        with torch.no_grad():
            fitted = _bounded(th)
            sig = torch.sigmoid
            w = torch.softmax(fitted["class_weight"], dim=0)
            classes = [
                {
                    "weight": float(w[k]),
                    "rate": float(torch.exp(fitted["class_rate"][k])),
                    "shift": float(fitted["class_shift"][k]),
                }
                for k in range(kc)
            ]
            self.set_params(
                skills,
                prereq,
                sig(fitted["prior"]).numpy(),
                sig(fitted["learn"]).numpy(),
                sig(fitted["guess"]).numpy(),
                sig(fitted["slip"]).numpy(),
                {
                    "difficulty_effect": float(fitted["difficulty_effect"]),
                    "fatigue": float(fitted["fatigue"]),
                    "fit_linear": float(fitted["fit_linear"]),
                    "fit_quadratic": float(fitted["fit_quadratic"]),
                    "prereq": float(sig(fitted["prereq"])),
                    "prior_prereq": float(sig(fitted["prior_prereq"])),
                    "forget": float(_forget_rate(fitted)),
                },
                classes,
            )
        return self

    def loglik(
        self,
        learner: np.ndarray,
        skill: np.ndarray,
        difficulty: np.ndarray,
        correct: np.ndarray,
        time: np.ndarray,
    ) -> float:
        """Log-likelihood of a log under the current parameters (the per-learner filter, answer by answer)."""
        total = 0.0
        order = np.argsort(learner, kind="stable")
        for _, rows in itertools.groupby(order.tolist(), key=lambda r: int(learner[r])):
            belief = self.new_belief()
            for r in rows:
                for st in belief:
                    self.update(
                        st, self.pos_[int(skill[r])], float(difficulty[r]), bool(correct[r]), float(time[r])
                    )
            total += self.loglik_of(belief)
        return total


def _pad(
    learner: np.ndarray, skill_pos: np.ndarray, difficulty: np.ndarray, correct: np.ndarray, time: np.ndarray
) -> dict[str, np.ndarray]:
    """(T, n) arrays, learners as columns in their own chronological order; `mask` marks real answers."""
    learners, idx = np.unique(learner, return_inverse=True)
    n = len(learners)
    counts = np.bincount(idx, minlength=n)
    t_max = int(counts.max())
    order = np.argsort(idx, kind="stable")
    col = idx[order]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    row = np.arange(len(order)) - starts[col]
    out: dict[str, np.ndarray] = {}
    for key, values, fill in (
        ("skill", skill_pos, 0),
        ("difficulty", difficulty, 0.0),
        ("correct", correct, False),
        ("time", time, 0.0),
    ):
        arr = np.full((t_max, n), fill, dtype=np.asarray(values).dtype)
        arr[row, col] = np.asarray(values)[order]
        out[key] = arr
    mask = np.zeros((t_max, n), dtype=bool)
    mask[row, col] = True
    # Carry time forward over the padding so forgetting is zero there.
    t = out["time"].astype(np.float64)
    for r in range(1, t_max):
        t[r] = np.where(mask[r], t[r], t[r - 1])
    out["time"] = t
    out["mask"] = mask
    out["difficulty"] = out["difficulty"].astype(np.float64)
    out["skill"] = out["skill"].astype(np.int64)
    return out


def _forget_rate(th: dict[str, Any]) -> Any:
    """The forgetting rate (per day) of the unconstrained parameters `th`, bounded at FORGET_MAX: the likelihood
    and the fitted model read it here, so they agree."""
    import torch

    return torch.exp(th["forget"].clamp(max=math.log(FORGET_MAX)))


def _bounded(th: dict[str, Any]) -> dict[str, Any]:
    """The unconstrained parameters `th` within their bounds (LOGIT_MAX, COEF_MAX; the forgetting rate is
    bounded by `_forget_rate`): the likelihood and the fitted model read them here, so they agree."""
    out = dict(th)
    for k in ("prior", "learn", "guess", "slip", "prereq", "prior_prereq", "class_shift"):
        out[k] = th[k].clamp(-LOGIT_MAX, LOGIT_MAX)
    for k in ("difficulty_effect", "fatigue", "fit_linear", "fit_quadratic"):
        out[k] = th[k].clamp(-COEF_MAX, COEF_MAX)
    out["class_rate"] = th["class_rate"].clamp(-math.log(COEF_MAX), math.log(COEF_MAX))
    return out


def _within_bounds(th: dict[str, Any]) -> bool:
    """Whether every parameter of `th` is finite and within its bounds (`_bounded` would leave it as it is)."""
    import torch

    return all(bool(torch.equal(v, th[k])) and bool(torch.isfinite(v).all()) for k, v in _bounded(th).items())


def _torch_loglik(th: dict[str, Any], d: dict[str, Any], pre: Any, bounded: bool = True) -> Any:
    """The filter of `BeliefModel.update`, vectorised over classes and learners (same arithmetic), mixed over
    the classes per learner. `th` holds unconstrained parameters (logits, logs; `class_*` of length K), read
    within their bounds (`_bounded`) unless `bounded` is false (the forgetting rate is bounded either way)."""
    import torch

    if bounded:
        th = _bounded(th)
    sig = torch.sigmoid
    t_max, n = d["mask"].shape
    n_sk = pre.shape[0]
    rate = torch.exp(th["class_rate"])[:, None]  # (K, 1)
    kc = rate.shape[0]
    prior = sig(th["prior"][None, :] + th["class_shift"][:, None])  # (K, S)
    log1m_t = torch.nn.functional.logsigmoid(-th["learn"])  # log(1 - T_s)
    a, f = th["difficulty_effect"], th["fatigue"]
    rho, rho0 = sig(th["prereq"]), sig(th["prior_prereq"])
    phi = _forget_rate(th)
    prior_b = prior[:, None, :].expand(kc, n, n_sk)
    m = prior_b.clone()
    seen = torch.zeros(n, n_sk, dtype=torch.bool)
    k = torch.zeros(n, dtype=torch.float64)
    t_last = torch.full((n,), -1e18, dtype=torch.float64)
    started = torch.zeros(n, dtype=torch.bool)
    ll = torch.zeros(kc, n, dtype=torch.float64)
    cols = torch.arange(n)
    for t in range(t_max):
        mask = d["mask"][t]
        now = d["time"][t]
        j = d["skill"][t]
        dif = d["difficulty"][t]
        c = d["correct"][t]
        gap = now - t_last
        k = torch.where(mask, torch.where(started & (gap <= SESSION_GAP), k + 1, torch.zeros_like(k)), k)
        dt = torch.where(started & mask, gap, torch.zeros_like(gap))
        m = torch.where(seen[None], m * torch.exp(-phi * dt / DAY)[None, :, None], m)
        started = started | mask
        t_last = torch.where(mask, now, t_last)
        v = torch.where(seen[None], m, prior_b)  # value of each skill (unseen: plain prior)
        pre_j = pre[j][None]  # (1, n, S)
        log_r0 = (pre_j * torch.log(v + (1 - v) * rho0)).sum(dim=2)  # (K, n)
        log_r = (pre_j * torch.log(v + (1 - v) * rho)).sum(dim=2)
        m_j = torch.where(seen[cols, j][None], m[:, cols, j], prior[:, j] * torch.exp(log_r0))
        guess = sig(th["guess"][j] - a * dif)
        slip = sig(th["slip"][j] + a * dif + f * k / FATIGUE_SCALE)
        lk = torch.where(c, 1 - slip, slip)[None]
        lu = torch.where(c, guess, 1 - guess)[None]
        p = m_j * lk + (1 - m_j) * lu
        ll = ll + torch.where(mask[None], torch.log(p.clamp_min(1e-300)), torch.zeros_like(p))
        post = m_j * lk / p.clamp_min(1e-300)
        expo = (
            rate
            * torch.exp(th["fit_linear"] * dif + th["fit_quadratic"] * dif * dif)[None]
            * torch.exp(log_r)
        )
        learn = 1 - torch.exp(log1m_t[j][None] * expo)
        new = post + (1 - post) * learn
        upd = torch.zeros(n, n_sk, dtype=torch.bool)
        upd[cols, j] = mask
        m = torch.where(upd[None], new[:, :, None].expand(kc, n, n_sk), m)
        seen = seen | upd
    logw = torch.log_softmax(th["class_weight"], dim=0)[:, None]
    return torch.logsumexp(logw + ll, dim=0).sum()


class BeliefPolicy(Policy):
    """Decides on `BeliefModel`'s belief (see the module docstring). Hyperparameters: `done`, `unlock`,
    `switch`, `max_stint`, `epsilon`, `epsilon_all`; fitted: `model_`."""

    name = "belief"
    model_class: type[BeliefModel] = BeliefModel  # what `load` reads the saved model as
    content_memo = 1024  # learners' histories remembered by value (see `filter_state`)
    id_memo = 4096  # histories remembered by the identity of their answer objects
    id_memo_back = 256  # how many newest answers `filter_state` looks through for a remembered one

    def __init__(
        self,
        done: float = 0.95,
        unlock: float = 0.95,
        switch: float = 0.7,
        max_stint: int = 12,
        epsilon: float = 0.0,
        epsilon_all: float = 0.01,
        mode: str = "gain",
        done_leaf: float | None = None,
        model: BeliefModel | None = None,
    ) -> None:
        self.mode = mode
        self.done = done
        self.done_leaf = done if done_leaf is None else done_leaf
        self.unlock = unlock
        self.switch = switch
        self.max_stint = max_stint
        self.epsilon = epsilon
        self.epsilon_all = epsilon_all
        self.model_ = model
        # id(last answer) -> (history, last, length, belief) of the history that ended with it (held: positions
        # up to `length` stay valid, the harness's lists only grow)
        self._cache: dict[int, tuple[Sequence[Outcome], Outcome, int, Belief]] = {}
        self._by_content: OrderedDict[tuple[Outcome, ...], Belief] = OrderedDict()
        self._lock = threading.Lock()
        self._digest: tuple[BeliefModel, str] | None = None
        self._now_memo: Any = None  # subclasses' memo of the last view's state (JointBeliefPolicy)

    def fit(self, model: BeliefModel) -> Self:
        self.model_ = model
        return self

    def _model(self) -> BeliefModel:
        if self.model_ is None:
            raise ValueError("the belief policy needs a fitted BeliefModel (fit or load it)")
        return self.model_

    # -- belief -----------------------------------------------------------------------------------------------
    def filter_state(self, history: Sequence[Outcome]) -> Belief:
        """The filter after `history`, memoised two ways.

        * By identity (the answer objects are held, so their ids stay valid). Answer objects are taken to form a
          stream: an object is always preceded by the same answers. A call whose history ends with answers after
          one the memo holds a state for (up to `id_memo_back` of them) extends that state by those answers: the
          previous call's history plus one answer costs one update. The history may also be a window whose oldest
          answers were dropped: the state then keeps what they said, i.e. it is the filter over every answer of
          the stream since the memo first saw it, not over the window alone. The harness passes each learner's
          growing list; the service (`learner_history`) the same objects across requests in a window of the
          latest answers, so a decision costs one update, or a few when other processes served the learner
          in between. The two histories must line up at the start of the shorter one as well as at the remembered
          answer.
        * By content (a bounded LRU of `content_memo` histories), for callers that build new answer objects per
          call: a history equal to an earlier one plus one answer pays one update instead of the whole history.

        Without a memo hit the result is the filter of `history` from the prior.
        """
        model = self._model()
        n = len(history)
        if n == 0:
            return model.new_belief()
        last = history[-1]
        with self._lock:
            base, after = self._remembered(history)
            if base is not None and after < n:
                del self._cache[id(history[after - 1])]  # superseded by the state this call leaves
        if base is not None and after == n:
            return base
        st: Belief | None = None
        if base is not None:
            st = model.filter(history[after:], [x.copy() for x in base])
        if st is None:
            content = tuple(history)
            with self._lock:
                found = self._by_content.get(content)
                earlier = self._by_content.get(content[:-1]) if found is None else None
            if found is not None:
                st = found
            elif earlier is not None:
                st = model.filter([last], [x.copy() for x in earlier])
            else:
                st = model.filter(history)
            with self._lock:
                self._by_content[content] = st
                self._by_content.move_to_end(content)
                while len(self._by_content) > self.content_memo:
                    self._by_content.popitem(last=False)
        self._memorise(history, st)
        return st

    def _memorise(self, history: Sequence[Outcome], st: Belief) -> None:
        """Remember `st` as the state after `history` (non-empty) in the identity memo."""
        last = history[-1]
        with self._lock:
            self._cache.pop(id(last), None)
            self._cache[id(last)] = (history, last, len(history), st)
            while len(self._cache) > self.id_memo:  # the oldest first: a learner needs only their latest entry
                del self._cache[next(iter(self._cache))]

    def _remembered(self, history: Sequence[Outcome]) -> tuple[Belief | None, int]:
        """(the identity memo's state after the first `after` answers of `history`, `after`), the latest such
        state within the last `id_memo_back` answers; (None, 0) without one. Call with the lock held."""
        n = len(history)
        first = history[0]
        for i in range(n - 1, max(n - 1 - self.id_memo_back, -1), -1):
            e = self._cache.get(id(history[i]))
            if e is None or e[1] is not history[i]:
                continue
            seq, _, m, st_i = e
            # Align the remembered history (which ended at position i here) with this one at its start.
            start = i + 1 - m
            if not (seq[-start] is first if start <= 0 else seq[0] is history[start]):
                continue  # the same object after other answers: not this stream
            return st_i, i + 1
        return None, 0

    def clear_memo(self) -> None:
        """Forget every remembered filter state (what a process that never served these learners holds)."""
        with self._lock:
            self._cache.clear()
            self._by_content.clear()
        self._now_memo = None

    def known_through(self, history: Sequence[Outcome]) -> int:
        """How many of `history`'s answers the identity memo already holds a state for: `filter_state` on it
        costs the other len(history) - known_through(history) updates (all of them when the memo is cold)."""
        if not history:
            return 0
        with self._lock:
            return self._remembered(history)[1]

    def resume(self, history: Sequence[Outcome], start: int, belief: Belief) -> Belief:
        """The filter after `history` given `belief`, the state after its first `start` answers (a checkpoint
        kept elsewhere: a process that has not seen the learner pays len(history) - start updates instead of
        the whole history). Remembered like `filter_state`'s own results; `belief` is not modified."""
        if not 0 <= start <= len(history):
            raise ValueError(f"start {start} outside a history of {len(history)} answers")
        st = self._model().filter(history[start:], [x.copy() for x in belief])
        if history:
            self._memorise(history, st)
        return st

    def model_digest(self) -> str:
        """A fingerprint of the model's parameters: a checkpointed belief is only valid under the same ones."""
        model = self._model()
        memo = self._digest
        if memo is None or memo[0] is not model:
            doc = json.dumps(model.to_dict(), sort_keys=True, default=float)
            memo = self._digest = (model, hashlib.sha256(doc.encode()).hexdigest())
        return memo[1]

    def belief(self, state: LearnerView) -> dict[int, float]:
        model = self._model()
        st = self.filter_state(state.history)
        now = state.now if state.history else 0.0
        if state.history and now < state.history[-1].time:
            now = state.history[-1].time
        return dict(zip(model.skills_, model.beliefs(st, now), strict=True))

    # -- decisions --------------------------------------------------------------------------------------------
    def _done_of(self, graph: SkillGraph[int], s: int) -> float:
        """`done`, or `done_leaf` for a skill nothing depends on (closing it too early blocks nothing)."""
        return self.done_leaf if not graph.dependents(s) else self.done

    def open_skills(self, available: Sequence[int], state: LearnerView, b: dict[int, float]) -> list[int]:
        """Skills not believed known whose prerequisites are, the teacher's targets (and what they need) first."""
        graph = state.graph

        def val(s: int) -> float:
            return b.get(s, state.mastery.get(s, 0.0))

        def held(s: int) -> bool:
            return val(s) >= self.unlock

        open_ = [
            s
            for s in available
            if val(s) < self._done_of(graph, s) and all(held(p) for p in graph.prerequisites(s))
        ]
        if state.targets:
            wanted = set(state.targets)
            for t in state.targets:
                if t in graph:
                    wanted |= graph.ancestors(t)
            preferred = [s for s in open_ if s in wanted]
            if preferred:
                open_ = preferred
        return open_

    def sub_goal(self, candidates: Sequence[Candidate], state: LearnerView, b: dict[int, float]) -> int:
        graph = state.graph
        available = list(dict.fromkeys(c.skills[0] for c in candidates))
        open_skills = self.open_skills(available, state, b)
        if not open_skills:
            # Everything reachable looks known: review the least certain skill.
            return min(available, key=lambda s: (b.get(s, state.mastery.get(s, 0.0)), graph.rank(s)))
        if state.history and state.history[-1].skills:
            last = state.history[-1].skills[0]
            stint = 0
            for o in reversed(state.history):
                if not o.skills or o.skills[0] != last:
                    break
                stint += 1
            if last in open_skills and stint < self.max_stint:
                return last
        return min(open_skills, key=graph.rank)

    def _scores(self, candidates: Sequence[Candidate], goal: int, belief: float) -> np.ndarray:
        model = self._model()
        g = model.globals_
        d = np.array([c.difficulty for c in candidates], dtype=np.float64)
        if belief < self.switch:
            return np.asarray(g["fit_linear"] * d + g["fit_quadratic"] * d * d)
        j = model.pos_.get(goal)
        if j is None:
            return d
        a = g["difficulty_effect"] * d
        right_known = 1.0 - 1.0 / (1.0 + np.exp(-(model._ls[j] + a)))
        right_unknown = 1.0 / (1.0 + np.exp(-(model._lg[j] - a)))
        return np.asarray(np.log(right_known) - np.log(right_unknown))

    def gains(self, candidates: Sequence[Candidate], b: dict[int, float], rate: float = 1.0) -> np.ndarray:
        """Expected rise of P(known) of each candidate's skill if served now, under the model (`rate`: the
        learner's expected learning-rate multiplier, from the class posterior)."""
        model = self._model()
        g = model.globals_
        rho = g["prereq"]
        pos = model.pos_
        bl = [b[s] for s in model.skills_]
        ready = []
        for j in range(len(bl)):
            r = 1.0
            for q in model._pre[j]:
                r *= bl[q] + (1.0 - bl[q]) * rho
            ready.append(r)
        out = np.zeros(len(candidates))
        for k, c in enumerate(candidates):
            jc = pos.get(c.skills[0])
            if jc is None:
                continue
            d = c.difficulty
            expo = rate * ready[jc] * item_fit(g, d)
            out[k] = (1.0 - bl[jc]) * (1.0 - math.exp(model._lt[jc] * expo))
        return out

    def choose_goal(self, candidates: Sequence[Candidate], state: LearnerView, b: dict[int, float]) -> int:
        if self.mode == "goal":
            return self.sub_goal(candidates, state, b)
        model = self._model()
        w = model.weights(self.filter_state(state.history))
        rate = sum(wk * rk for wk, rk in zip(w, model._rate, strict=True))
        v = self.gains(candidates, b, rate)
        open_ = set(self.open_skills(list(dict.fromkeys(c.skills[0] for c in candidates)), state, b))
        ok = np.array([c.skills[0] in open_ for c in candidates])
        if not ok.any():
            return self.sub_goal(candidates, state, b)
        v = np.where(ok, v, -np.inf)
        return candidates[int(np.argmax(v))].skills[0]

    def distribution(self, candidates: Sequence[Candidate], state: LearnerView) -> np.ndarray:
        b = self.belief(state)
        goal = self.choose_goal(candidates, state, b)
        return self._override(candidates, state, self._mix(candidates, goal, b.get(goal, 0.0)))

    def _override(self, candidates: Sequence[Candidate], state: LearnerView, probs: np.ndarray) -> np.ndarray:
        """The final distribution from the chosen skill's (`probs` itself unless a subclass overrides the choice,
        as the joint policy's guard against losing a learner does)."""
        return probs

    def _mix(self, candidates: Sequence[Candidate], goal: int, belief: float) -> np.ndarray:
        n = len(candidates)
        eligible = np.array([c.skills[0] == goal for c in candidates])
        scores = np.where(eligible, self._scores(candidates, goal, belief), -np.inf)
        best = (scores >= scores.max() - 1e-12) & eligible
        probs = (1.0 - self.epsilon - self.epsilon_all) * best / best.sum()
        probs = probs + self.epsilon * eligible / eligible.sum() + self.epsilon_all / n
        return np.asarray(probs / probs.sum())

    def select(
        self, candidates: Sequence[Candidate], state: LearnerView, rng: np.random.Generator
    ) -> Decision:
        if not candidates:
            raise ValueError("no candidate items to choose from")
        b = self.belief(state)
        goal = self.choose_goal(candidates, state, b)
        belief = b.get(goal, 0.0)
        return self._decide(candidates, state, rng, goal, belief, self._mix(candidates, goal, belief))

    def _decide(
        self,
        candidates: Sequence[Candidate],
        state: LearnerView,
        rng: np.random.Generator,
        goal: int,
        belief: float,
        usual: np.ndarray,
    ) -> Decision:
        """Draw from `usual` (the distribution for skill `goal`, believed known with `belief`), or from what the
        guard against losing the learner (`_override`) puts in its place."""
        probs = self._override(candidates, state, usual)
        idx = int(rng.choice(len(candidates), p=probs))
        info: dict[str, Any] = {"sub_goal": goal, "belief": belief}
        if probs is not usual:
            info["guard"] = True
        return Decision(
            item=candidates[idx].item,
            propensity=float(probs[idx]),
            probabilities={c.item: float(p) for c, p in zip(candidates, probs, strict=True)},
            skill=goal if probs is usual else candidates[idx].skills[0],
            info=info,
        )

    # -- learning -----------------------------------------------------------------------------------------
    def tune(self, score: Callable[[BeliefPolicy], float], grid: Mapping[str, Sequence[Any]]) -> Self:
        """Pick the hyperparameters maximising `score(policy)` over `grid` (training learners only); the scores
        stay in `tuning_`."""

        def complete(params: dict[str, Any]) -> dict[str, Any] | None:
            if params.get("unlock", self.unlock) > params.get("done", self.done):
                return None
            params.setdefault("done_leaf", params.get("done", self.done))
            return params

        best, self.tuning_ = grid_search(
            grid, lambda p: BeliefPolicy(**{**self._hyper(), **p}, model=self.model_), score, complete
        )
        for k, v in best.items():
            setattr(self, k, v)
        return self

    def _hyper(self) -> dict[str, Any]:
        return {
            "done": self.done,
            "unlock": self.unlock,
            "switch": self.switch,
            "max_stint": self.max_stint,
            "epsilon": self.epsilon,
            "epsilon_all": self.epsilon_all,
            "mode": self.mode,
            "done_leaf": self.done_leaf,
        }

    def save(self, fp: IO[bytes]) -> None:
        doc = {"policy": self.name, "params": self._hyper(), "model": self._model().to_dict()}
        fp.write(json.dumps(doc).encode())

    @classmethod
    def load(cls, fp: IO[bytes]) -> Self:
        doc = json.loads(fp.read().decode())
        return cls(**doc["params"], model=cls.model_class.from_dict(doc["model"]))
