"""Best-LR+: Best-LR with the richer count features of Schmucker et al. (2022) and difficulty-adjusted residuals.

Best-LR (Gervet et al. 2020, `logistic.BestLRTracer`) counts earlier successes and failures. This tracer keeps
those columns and adds, still as counters that one answer updates in O(1):

- the last three answers overall and the last three and last five on each skill of the item, as pattern one-hots
  (15 patterns: none, 0, 1, 00, ..., 111; 63 for five), and the current run of correct and of wrong answers on
  the skill;
- the attempt number on the skill (binned), how many answers ago the skill was last practised, and whether the
  learner just switched skills;
- the logit of the item's expected success rate (its smoothed training mean), with one weight overall and one per
  skill (how much item difficulty matters differs between skills: +.0014 AUC on ASSISTments 2009);
- residuals: each answer minus the expected success rate of its item (the smoothed training mean). Their sum,
  mean and exponentially decayed sums (time constants 1 to 30 answers), overall and per skill, say "better or worse
  than the average learner on the same items", which plain counts cannot (a success on a hard item counts like
  one on an easy item there). During `fit` the item means (here and above) leave out the learner's own
  answers: otherwise a rare item's mean carries the label it is later compared with, and the model learns to
  trust it more than it should (about -.005 AUC held out on ASSISTments 2009). The overall mean residual (an
  ability) also gets one weight per skill of the item;
- a skill-by-skill block: for each skill of the item, the mean residual on every skill practised before, with a
  weight per (skill, earlier skill) pair. This is the transfer between skills that DKT learns and Best-LR lacks.

Features are computed by replaying `update`, so `predict` equals serving by construction: each attempt is scored
from the state before it, then folded in (all skill rows of a problem attempt together).
On assist2009_pid_akt (5-fold by learner, `bench/tracing.py`) AUC goes from Best-LR's .7820 to .7907, at about
53 s per fit instead of 5 (most of it the Python replay and the skill-by-skill block); `update` stays a few list
operations (p99 0.007 ms). `predict_next` walks the skills the learner has practised (at most the number of
skills).
"""

from __future__ import annotations

import io
import math
from array import array
from typing import IO, Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

from learners.tracing.base import Attempt, AttemptLog, Query, State, Tracer
from learners.tracing.logistic import _header_array, _Layout, _lookup, _read_header, _sigmoid

N_PATTERNS = 15  # answer histories of length 0..3: 1 + 2 + 4 + 8
N_LONG_PATTERNS = 63  # of length 0..5, on a skill
STREAK_CAP = 6
N_COUNT_BINS = 13  # 0..10 answers on the skill, 11-20, more
RESIDUAL_DECAY = (1.0, 2.0, 5.0, 10.0, 30.0)  # answers

# Shared (not per skill) columns after the item and skill blocks.
_A_COUNTS = 0  # log1p overall successes, failures; log1p decayed ones (recency)
_A_PATTERN = 4
_A_SWITCH = _A_PATTERN + N_PATTERNS
_A_RES = _A_SWITCH + 1  # sum, mean, decayed per RESIDUAL_DECAY
_A_ITEM_P = _A_RES + 2 + len(RESIDUAL_DECAY)  # logit of the item's expected success rate
_K_PATTERN = _A_ITEM_P + 1
_K_LONG_PATTERN = _K_PATTERN + N_PATTERNS
_K_STREAK = _K_LONG_PATTERN + N_LONG_PATTERNS  # STREAK_CAP + 1 for successes, as many for failures
_K_GAP = _K_STREAK + 2 * (STREAK_CAP + 1)  # log1p(answers since last practised), never-practised flag
_K_BIN = _K_GAP + 2
_K_RES = _K_BIN + N_COUNT_BINS  # sum, mean, decayed
N_SHARED = _K_RES + 2 + len(RESIDUAL_DECAY)

# A learner's overall counter: [answers, successes, decayed successes, decayed failures, last answers (<= 3),
# skills of the previous attempt, residual sum, decayed residuals...].
# A skill counter: [answers, successes, decayed successes, decayed failures, last answers (<= 5), correct run, wrong run,
# overall answer index when last practised, residual sum, decayed residuals...].


def _pattern(last: list[int]) -> int:
    code = (1 << len(last)) - 1
    for b, x in enumerate(last):
        code += x << b
    return code


def _count_bin(n: int) -> int:
    return n if n <= 10 else (11 if n <= 20 else 12)


def _item_means(
    learner: np.ndarray, item_ix: np.ndarray, y: np.ndarray, n_items: int, prior: float, base: float
) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed success rate of each item, (successes + prior * base) / (answers + prior), and for each answer
    the same rate without that learner's answers on the item (`base` where the item is unknown, -1)."""
    known = item_ix >= 0
    n_i = np.bincount(item_ix[known], minlength=n_items).astype(np.float64)
    s_i = np.bincount(item_ix[known], weights=y[known], minlength=n_items)
    item_p = (s_i + prior * base) / (n_i + prior)
    loo = np.full(y.shape[0], base)
    if known.any():
        _, inv = np.unique(np.stack([learner[known], item_ix[known]]), axis=1, return_inverse=True)
        inv = inv.ravel()
        own_n = np.bincount(inv).astype(np.float64)
        own_s = np.bincount(inv, weights=y[known])
        ik = item_ix[known]
        loo[known] = (s_i[ik] - own_s[inv] + prior * base) / (n_i[ik] - own_n[inv] + prior)
    return item_p, loo


class BestLRPlusTracer(Tracer):
    """Best-LR plus answer patterns, streaks, practice gaps, difficulty-adjusted residuals and skill transfer."""

    name: ClassVar[str] = "best_lr_plus"

    def __init__(
        self,
        C: float = 0.15,  # noqa: N803 - scikit-learn's name for the inverse regularisation strength
        recency: float = 2.0,
        item_prior: float = 5.0,
        cross_skills: bool = True,
        solver: str = "liblinear",
        max_iter: int = 1000,
    ) -> None:
        self.C = C
        self.recency = recency
        self.item_prior = item_prior
        self.cross_skills = cross_skills
        self.solver = solver
        self.max_iter = max_iter

    # -- layout --------------------------------------------------------------------------------------------

    def _offsets(self) -> dict[str, int]:
        ni, ns = len(self.items_), len(self.skills_)
        off = {"item": 0, "skill": ni, "kcount": ni + ns, "shared": ni + 7 * ns}
        off["cross"] = off["shared"] + N_SHARED
        off["end"] = off["cross"] + (ns * ns if self.cross_skills else 0)
        return off

    def _index(self) -> None:
        """Dicts and plain lists for the Python feature path (numpy scalar access costs more than the update)."""
        off = self._offsets()
        self._off = off
        self._w = [float(v) for v in self.coef_]
        self._item_col = {int(i): off["item"] + j for j, i in enumerate(self.items_)}
        self._skill_ix = {int(s): j for j, s in enumerate(self.skills_)}
        self._item_p = {int(i): float(p) for i, p in zip(self.items_, self.item_p_, strict=True)}
        self._rec_decay = math.exp(-1.0 / self.recency)
        self._res_decay = [math.exp(-1.0 / t) for t in RESIDUAL_DECAY]

    def _expected(self, item: int | None) -> float:
        if item is None:
            return self.global_p_
        return self._item_p.get(item, self.global_p_)

    # -- features ------------------------------------------------------------------------------------------

    def _features(
        self, state: State, item: int | None, skills: tuple[int, ...], p_item: float | None = None
    ) -> list[tuple[int, float]]:
        """(column, value) pairs for answering `item` (tagged `skills`) from `state`; `p_item` overrides the
        item's expected success rate (mastery uses the skill's average)."""
        off = self._off
        sh = off["shared"]
        out: list[tuple[int, float]] = []
        col = self._item_col.get(item) if item is not None else None
        if col is not None:
            out.append((col, 1.0))
        a = state["all"]
        n, s = a[0], a[1]
        ability = a[6] / (n + 3.0)  # mean residual, shrunk towards 0
        out += [
            (sh + _A_COUNTS, math.log1p(s)),
            (sh + _A_COUNTS + 1, math.log1p(n - s)),
            (sh + _A_COUNTS + 2, math.log1p(a[2])),
            (sh + _A_COUNTS + 3, math.log1p(a[3])),
            (sh + _A_PATTERN + _pattern(a[4]), 1.0),
            (sh + _A_RES, a[6]),
            (sh + _A_RES + 1, ability),
        ]
        out += [(sh + _A_RES + 2 + j, v) for j, v in enumerate(a[7])]
        p = self._expected(item) if p_item is None else p_item
        item_logit = math.log(p / (1.0 - p))
        out.append((sh + _A_ITEM_P, item_logit))
        prev = a[5]
        if not any(k in prev for k in skills):
            out.append((sh + _A_SWITCH, 1.0))
        kst = state["k"]
        ns = len(self.skills_)
        for k in skills:
            j = self._skill_ix.get(k)
            if j is None:
                continue
            out.append((off["skill"] + j, 1.0))
            out.append((off["kcount"] + 4 * ns + j, item_logit))
            out.append((off["kcount"] + 5 * ns + j, ability))
            c = kst.get(str(k))
            if c is None:
                out += [
                    (sh + _K_PATTERN, 1.0),
                    (sh + _K_LONG_PATTERN, 1.0),
                    (sh + _K_STREAK, 1.0),
                    (sh + _K_STREAK + STREAK_CAP + 1, 1.0),
                    (sh + _K_GAP + 1, 1.0),
                    (sh + _K_BIN, 1.0),
                ]
            else:
                kc = off["kcount"] + j
                kn, ks = c[0], c[1]
                out += [
                    (kc, math.log1p(ks)),
                    (kc + ns, math.log1p(kn - ks)),
                    (kc + 2 * ns, math.log1p(c[2])),
                    (kc + 3 * ns, math.log1p(c[3])),
                    (sh + _K_PATTERN + _pattern(c[4][-3:]), 1.0),
                    (sh + _K_LONG_PATTERN + _pattern(c[4]), 1.0),
                    (sh + _K_STREAK + min(c[5], STREAK_CAP), 1.0),
                    (sh + _K_STREAK + STREAK_CAP + 1 + min(c[6], STREAK_CAP), 1.0),
                    (sh + _K_GAP, math.log1p(n - c[7])),
                    (sh + _K_BIN + _count_bin(kn), 1.0),
                    (sh + _K_RES, c[8]),
                    (sh + _K_RES + 1, c[8] / (kn + 3.0)),
                ]
                out += [(sh + _K_RES + 2 + i, v) for i, v in enumerate(c[9])]
            if self.cross_skills:
                base = off["cross"] + j * ns
                for k2, c2 in kst.items():
                    j2 = self._skill_ix.get(int(k2))
                    if j2 is not None:
                        out.append((base + j2, c2[8] / (c2[0] + 3.0)))
        return out

    def _logit(self, feats: list[tuple[int, float]]) -> float:
        w = self._w
        z = self.intercept_
        for c, v in feats:
            z += w[c] * v
        return z

    # -- state ---------------------------------------------------------------------------------------------

    def init_state(self) -> State:
        return {"all": [0, 0, 0.0, 0.0, [], [], 0.0, [0.0] * len(RESIDUAL_DECAY)], "k": {}}

    def _absorb(self, state: State, skills: tuple[int, ...], correct: bool, expected: float) -> None:
        c = 1 if correct else 0
        r = c - expected
        g = self._rec_decay
        a = state["all"]
        idx = a[0]
        a[0] += 1
        a[1] += c
        a[2] = (a[2] + c) * g
        a[3] = (a[3] + 1 - c) * g
        a[4] = (a[4] + [c])[-3:]
        a[5] = list(skills)
        a[6] += r
        a[7] = [(v + r) * d for v, d in zip(a[7], self._res_decay, strict=True)]
        kst = state["k"]
        for k in skills:
            cnt = kst.get(str(k))
            if cnt is None:
                cnt = kst[str(k)] = [0, 0, 0.0, 0.0, [], 0, 0, 0, 0.0, [0.0] * len(RESIDUAL_DECAY)]
            cnt[0] += 1
            cnt[1] += c
            cnt[2] = (cnt[2] + c) * g
            cnt[3] = (cnt[3] + 1 - c) * g
            cnt[4] = (cnt[4] + [c])[-5:]
            cnt[5] = cnt[5] + 1 if c else 0
            cnt[6] = 0 if c else cnt[6] + 1
            cnt[7] = idx
            cnt[8] += r
            cnt[9] = [(v + r) * d for v, d in zip(cnt[9], self._res_decay, strict=True)]

    def update(self, state: State, attempt: Attempt) -> State:
        item = attempt.item if attempt.item >= 0 else None
        self._absorb(state, tuple(dict.fromkeys(attempt.skills)), attempt.correct, self._expected(item))
        return state

    def predict_next(self, state: State, query: Query) -> float:
        item = query.item if query.item >= 0 else None
        return _sigmoid(self._logit(self._features(state, item, tuple(dict.fromkeys(query.skills)))))

    def mastery(self, state: State, skill: int) -> float:
        """P(correct) on an average item of `skill`: its mean item weight and mean expected success rate."""
        j = self._skill_ix.get(skill)
        if j is None:
            return _sigmoid(self._logit(self._features(state, None, (skill,))))
        feats = self._features(state, None, (skill,), p_item=float(self.skill_p_[j]))
        return _sigmoid(self._logit(feats) + float(self.skill_item_bias_[j]))

    # -- fitting and batch prediction ----------------------------------------------------------------------

    def _replay(self, log: AttemptLog, expected: np.ndarray | None) -> sp.csr_matrix:
        """Design matrix of `log` (one row per problem attempt), scoring each attempt before folding it in.
        `expected[a]` is the expected success rate of attempt a's item, as a feature and in the residual it adds
        (default: the fitted item means)."""
        lay = _Layout.of(log)
        bounds = np.searchsorted(lay.row_attempt, np.arange(lay.n_attempts + 1)).tolist()
        row_skill = lay.row_skill.tolist()
        learners = lay.learner.tolist()
        items = lay.item.tolist()
        correct = lay.correct.tolist()
        exp = expected.tolist() if expected is not None else None
        # Typed arrays, not lists: the skill-by-skill block makes tens of millions of entries on a large log.
        indptr = array("q", [0])
        cols = array("q")
        vals = array("d")
        states: dict[int, State] = {}
        for a in range(lay.n_attempts):
            st = states.get(learners[a])
            if st is None:
                st = states[learners[a]] = self.init_state()
            item = items[a] if items[a] >= 0 else None
            skills = tuple(dict.fromkeys(row_skill[bounds[a] : bounds[a + 1]]))
            e = exp[a] if exp is not None else self._expected(item)
            for c, v in self._features(st, item, skills, p_item=e):
                cols.append(c)
                vals.append(v)
            indptr.append(len(cols))
            self._absorb(st, skills, correct[a] > 0.5, e)
        return sp.csr_matrix(
            (
                np.array(vals, dtype=np.float64),
                np.array(cols, dtype=np.int64),
                np.array(indptr, dtype=np.int64),
            ),
            shape=(lay.n_attempts, self._off["end"]),
        )

    def fit(self, log: AttemptLog) -> Self:
        lay = _Layout.of(log)
        y = lay.correct
        known = lay.item >= 0
        self.items_ = np.unique(lay.item[known])
        self.skills_ = np.unique(lay.row_skill)
        self.global_p_ = float(np.clip(y.mean(), 0.01, 0.99)) if len(y) else 0.5
        it = _lookup(self.items_, lay.item)
        item_p, expected = _item_means(lay.learner, it, y, len(self.items_), self.item_prior, self.global_p_)
        self.item_p_ = np.clip(item_p, 1e-3, 1 - 1e-3)
        expected = np.clip(expected, 1e-3, 1 - 1e-3)
        self.coef_ = np.zeros(0)
        self.intercept_ = 0.0
        self._index()
        x = self._replay(log, expected)
        model = LogisticRegression(C=self.C, solver=self.solver, max_iter=self.max_iter)
        model.fit(x, y.astype(np.int64))
        self.coef_ = np.asarray(model.coef_[0], dtype=np.float64)
        self.intercept_ = float(model.intercept_[0])
        # Per skill: mean item weight and mean expected success rate of its items, for `mastery`.
        ns = len(self.skills_)
        bias = np.zeros(ns)
        skill_p = np.full(ns, self.global_p_)
        rit = it[lay.row_attempt]
        rsk = _lookup(self.skills_, lay.row_skill)
        mk = rit >= 0
        if mk.any():
            cnt = np.bincount(rsk[mk], minlength=ns)
            w_sum = np.bincount(rsk[mk], weights=self.coef_[rit[mk]], minlength=ns)
            p_sum = np.bincount(rsk[mk], weights=self.item_p_[rit[mk]], minlength=ns)
            bias = np.divide(w_sum, cnt, out=bias, where=cnt > 0)
            skill_p = np.divide(p_sum, cnt, out=skill_p, where=cnt > 0)
        self.skill_item_bias_ = bias
        self.skill_p_ = skill_p
        self._index()
        return self

    def predict(self, log: AttemptLog) -> np.ndarray:
        z = self._replay(log, None) @ self.coef_ + self.intercept_
        return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)

    # -- persistence ---------------------------------------------------------------------------------------

    def _params(self) -> dict[str, Any]:
        return {
            "C": self.C,
            "recency": self.recency,
            "item_prior": self.item_prior,
            "cross_skills": self.cross_skills,
            "solver": self.solver,
            "max_iter": self.max_iter,
        }

    def save(self, fp: IO[bytes]) -> None:
        header = {
            "tracer": self.name,
            **self._params(),
            "intercept_": self.intercept_,
            "global_p_": self.global_p_,
        }
        buf = io.BytesIO()
        np.savez(
            buf,
            header=_header_array(header),
            items=self.items_,
            skills=self.skills_,
            coef=self.coef_,
            item_p=self.item_p_,
            skill_item_bias=self.skill_item_bias_,
            skill_p=self.skill_p_,
        )
        fp.write(buf.getvalue())

    @classmethod
    def load(cls, fp: IO[bytes]) -> Self:
        with np.load(io.BytesIO(fp.read()), allow_pickle=False) as z:
            h = _read_header(z["header"])
            if h["tracer"] != cls.name:
                raise ValueError(f"file holds a {h['tracer']!r} tracer, not {cls.name!r}")
            self = cls(
                C=h["C"],
                recency=h["recency"],
                item_prior=h["item_prior"],
                cross_skills=h["cross_skills"],
                solver=h["solver"],
                max_iter=h["max_iter"],
            )
            self.intercept_ = float(h["intercept_"])
            self.global_p_ = float(h["global_p_"])
            self.items_ = z["items"]
            self.skills_ = z["skills"]
            self.coef_ = z["coef"]
            self.item_p_ = z["item_p"]
            self.skill_item_bias_ = z["skill_item_bias"]
            self.skill_p_ = z["skill_p"]
        self._index()
        return self
