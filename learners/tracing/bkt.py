"""Bayesian Knowledge Tracing and its variants (forgetting, item-level guess/slip, per-learner prior).

All variants are one model with switches, fitted by the same vectorised Baum-Welch (`bkt_em`): every skill and
every random restart advance together, one numpy operation per time step. See docs/decisions/0002-bkt-em.md.

A problem tagged with several skills is one observation in each of its skills' sequences; its P(correct) combines
the skills' predictions (`combine`), all computed before any of them is updated on the answer.
"""

from __future__ import annotations

import bisect
import inspect
import json
from collections.abc import Sequence
from typing import IO, Any, ClassVar, Self

import numpy as np

from learners.tracing import bkt_em
from learners.tracing.base import Attempt, AttemptLog, Query, State, Tracer

_COMBINE = ("mean", "product", "min")


class BKT(Tracer):
    """Standard BKT per skill (Corbett & Anderson 1995) fitted by EM with random restarts and bounded parameters.

    Bounds rather than post-hoc checks keep parameters meaningful: guess and slip at most `max_guess`/`max_slip`
    (so a correct answer always raises mastery), forgetting at most `max_forget`. Restarts run together for
    `warmup_iter` iterations, the `survivors` best per skill (by log-likelihood) for as many again, then only the
    best runs on until its log-likelihood per answer moves less than `tol` (at most `max_iter` iterations in all).

    Other hyperparameters: `chunk` (longest piece of a sequence the fit processes at once; speed only),
    `smoothing` (pseudo-answers pulling every parameter towards `DEFAULTS`; 0 is plain maximum likelihood),
    `item_level`/`item_min_answers`/`item_smoothing` (KT-IDEM, see `BKTIdem`), `learner_prior`/
    `prior_min_history`/`prior_edges`/`prior_smoothing` (see `BKTPrior`), `combine` ("mean", "product" or "min"
    of the skills' P(correct) for a multi-skill problem).

    The online state is `{"q": {"<skill>": P(not mastered)}}` (plus the learner's answer counts `"n"`, `"c"` with
    `learner_prior`); read mastery through `mastery()`.
    """

    name: ClassVar[str] = "bkt"
    DEFAULTS: ClassVar[dict[str, float]] = {
        "prior": 0.3,
        "learn": 0.1,
        "forget": 0.0,
        "guess": 0.2,
        "slip": 0.1,
    }

    def __init__(
        self,
        *,
        n_restarts: int = 5,
        max_iter: int = 100,
        warmup_iter: int = 5,
        survivors: int = 2,
        tol: float = 1e-6,
        chunk: int = 128,
        max_guess: float = 0.45,
        max_slip: float = 0.45,
        min_learn: float = 1e-4,
        max_learn: float = 0.5,
        forgetting: bool = False,
        max_forget: float = 0.0,
        smoothing: float = 0.0,
        item_level: bool = False,
        item_min_answers: int = 3,
        item_smoothing: float = 5.0,
        learner_prior: bool = False,
        prior_min_history: int = 5,
        prior_edges: tuple[float, ...] = (0.5, 0.7, 0.85),
        prior_smoothing: float = 5.0,
        combine: str = "mean",
        random_state: int | None = 0,
    ) -> None:
        self.n_restarts = n_restarts
        self.max_iter = max_iter
        self.warmup_iter = warmup_iter
        self.survivors = survivors
        self.tol = tol
        self.chunk = chunk
        self.max_guess = max_guess
        self.max_slip = max_slip
        self.min_learn = min_learn
        self.max_learn = max_learn
        self.forgetting = forgetting
        self.max_forget = max_forget
        self.smoothing = smoothing
        self.item_level = item_level
        self.item_min_answers = item_min_answers
        self.item_smoothing = item_smoothing
        self.learner_prior = learner_prior
        self.prior_min_history = prior_min_history
        self.prior_edges = prior_edges
        self.prior_smoothing = prior_smoothing
        self.combine = combine
        self.random_state = random_state

    # ------------------------------------------------------------------ hyperparameters

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters as passed to __init__ (scikit-learn convention)."""
        names = [p for p in inspect.signature(BKT.__init__).parameters if p != "self"]
        return {n: getattr(self, n) for n in names}

    def _bounds(self) -> bkt_em.Bounds:
        eps = bkt_em.EPS
        return bkt_em.Bounds(
            prior=(eps, 1.0 - eps),
            learn=(self.min_learn, self.max_learn),
            forget=(eps, max(self.max_forget, eps)) if self.forgetting else (0.0, 0.0),
            guess=(eps, self.max_guess),
            slip=(eps, self.max_slip),
        )

    def _check(self) -> None:
        if self.combine not in _COMBINE:
            raise ValueError(f"combine must be one of {_COMBINE}, not {self.combine!r}")
        if not 0.0 < self.max_guess < 0.5 or not 0.0 < self.max_slip < 0.5:
            raise ValueError(
                "max_guess and max_slip must lie in (0, 0.5) so that a correct answer raises mastery"
            )
        if self.n_restarts < 1 or self.max_iter < 1:
            raise ValueError("n_restarts and max_iter must be at least 1")

    def _default_params(self) -> dict[str, float]:
        b = self._bounds()
        d = self.DEFAULTS
        return {
            "prior": float(np.clip(d["prior"], *b.prior)),
            "learn": float(np.clip(d["learn"], *b.learn)),
            "forget": float(np.clip(d["forget"], *b.forget)),
            "guess": float(np.clip(d["guess"], *b.guess)),
            "slip": float(np.clip(d["slip"], *b.slip)),
        }

    # ------------------------------------------------------------------ fitting

    def fit(self, log: AttemptLog) -> Self:
        self._check()
        if len(log) == 0:
            # Nothing to learn from: every skill serves the (bounded) defaults. The service starts this way.
            empty = np.zeros(0)
            self.skills_ = np.zeros(0, dtype=np.int64)
            self.n_iter_, self.loglik_ = 0, 0.0
            self.learn_, self.forget_, self.guess_, self.slip_, self.prior_ = (empty.copy() for _ in range(5))
            self.prior_table_ = np.zeros((0, len(self.prior_edges) + 2 if self.learner_prior else 1))
            self.item_keys_ = np.zeros((0, 2), dtype=np.int64)
            self.item_guess_, self.item_slip_ = empty.copy(), empty.copy()
            self._index()
            return self
        rows = _unique_rows(log)
        skills = np.unique(log.skill[rows])
        self.skills_ = skills
        n_skills = len(skills)
        skill_idx = np.searchsorted(skills, log.skill[rows])
        order = np.lexsort((np.arange(len(rows)), log.learner[rows], skill_idx))
        srows = rows[order]
        sskill = skill_idx[order]
        seq_lengths = _run_lengths(sskill, log.learner[srows])
        seq_first = (np.cumsum(seq_lengths) - seq_lengths).astype(np.int64)
        seq_skill = sskill[seq_first]

        # prior groups: one per skill, or one per (skill, learner class)
        n_classes = len(self.prior_edges) + 2 if self.learner_prior else 1
        if self.learner_prior:
            cls_rows = self._learner_class(_history_counts(log))[srows]
            seq_prior = seq_skill * n_classes + cls_rows[seq_first]
            prior_owner = np.repeat(np.arange(n_skills), n_classes)
            prior_parent = prior_owner.copy()
        else:
            seq_prior = seq_skill
            prior_owner = np.arange(n_skills)
            prior_parent = np.full(n_skills, -1, dtype=np.int64)

        # emission groups: one per skill, plus one per (item, skill) pair with enough answers
        row_emit = sskill.copy()
        emit_owner = np.arange(n_skills)
        emit_parent = np.full(n_skills, -1, dtype=np.int64)
        item_keys = np.zeros((0, 2), dtype=np.int64)
        if self.item_level:
            pairs = np.stack([log.item[srows], sskill], axis=1)
            keys, inverse, counts = np.unique(pairs, axis=0, return_inverse=True, return_counts=True)
            inverse = inverse.ravel()
            dense = (counts >= self.item_min_answers) & (keys[:, 0] >= 0)
            dense_id = np.cumsum(dense) - 1
            row_emit = np.where(dense[inverse], n_skills + dense_id[inverse], sskill)
            item_keys = keys[dense]
            emit_owner = np.concatenate([np.arange(n_skills), item_keys[:, 1]])
            emit_parent = emit_owner.copy()
        n_prior = len(prior_owner)
        n_emit = len(emit_owner)
        groups = bkt_em.Groups(
            n_skills=n_skills,
            prior_owner=prior_owner,
            emit_owner=emit_owner,
            prior_parent=prior_parent,
            emit_parent=emit_parent,
        )
        seqs = bkt_em.Sequences(
            lengths=seq_lengths,
            skill=seq_skill,
            prior_group=seq_prior,
            correct=log.correct[srows].astype(np.int64),
            emit_group=row_emit,
            ids=np.arange(len(seq_lengths), dtype=np.int64),
        )

        bounds = self._bounds()
        defaults = self._default_params()
        init = self._initial_params(n_skills, n_prior, n_emit, bounds, defaults)
        parent_strength = self.prior_smoothing if self.learner_prior else 0.0
        if self.item_level:
            parent_strength = self.item_smoothing
        common: dict[str, Any] = {
            "bounds": bounds,
            "anchor": defaults,
            "forgetting": self.forgetting,
            "chunk": self.chunk,
            "strength": self.smoothing,
            "parent_strength": parent_strength,
        }
        n_iter = 0
        # Short runs (emEM): all restarts together for `warmup_iter` iterations, the best `survivors` per skill
        # for as many again, then the best one runs on alone to convergence.
        for keep in (self.survivors, 1):
            if init.learn.shape[1] <= keep or n_iter >= self.max_iter:
                continue
            warm = min(self.warmup_iter, self.max_iter - n_iter)
            params, ll, more = bkt_em.baum_welch(seqs, groups, init, max_iter=warm, tol=0.0, **common)
            n_iter += more
            best = np.argsort(-ll, axis=1, kind="stable")[:, :keep]
            init = params.take(best, prior_owner, emit_owner)
        remaining = self.max_iter - n_iter
        if remaining > 0:
            params, ll, more = bkt_em.baum_welch(
                seqs, groups, init, max_iter=remaining, tol=self.tol, **common
            )
            n_iter += more
        self.n_iter_ = n_iter
        self.loglik_ = float(ll.max(axis=1).sum())

        self.learn_ = params.learn[:, 0].copy()
        self.forget_ = params.forget[:, 0].copy()
        self.guess_ = params.guess[:n_skills, 0].copy()
        self.slip_ = params.slip[:n_skills, 0].copy()
        if self.learner_prior:
            table = params.prior[:, 0].reshape(n_skills, n_classes)
            self.prior_table_ = table.copy()
            # the skill-level prior shown to users: the pooled value over classes, weighted by sequence counts
            weights = np.bincount(seq_prior, minlength=n_prior).reshape(n_skills, n_classes)
            self.prior_ = (table * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1)
        else:
            self.prior_ = params.prior[:, 0].copy()
            self.prior_table_ = self.prior_[:, None].copy()
        self.item_keys_ = item_keys
        self.item_guess_ = params.guess[n_skills:, 0].copy()
        self.item_slip_ = params.slip[n_skills:, 0].copy()
        self._index()
        return self

    def _initial_params(
        self, n_skills: int, n_prior: int, n_emit: int, bounds: bkt_em.Bounds, defaults: dict[str, float]
    ) -> bkt_em.Params:
        rng = np.random.default_rng(self.random_state)
        r = self.n_restarts

        def draw(n: int, lo: float, hi: float, default: float, bound: tuple[float, float]) -> np.ndarray:
            lo, hi = max(lo, bound[0]), min(hi, bound[1])
            out = rng.uniform(lo, max(lo, hi), size=(n, r))
            out[:, 0] = default  # the first restart starts from the documented defaults
            return out

        return bkt_em.Params(
            prior=draw(n_prior, 0.05, 0.95, defaults["prior"], bounds.prior),
            learn=draw(n_skills, 0.01, 0.4, defaults["learn"], bounds.learn),
            forget=draw(n_skills, 0.0, 0.2, defaults["forget"], bounds.forget),
            guess=draw(n_emit, 0.05, 0.3, defaults["guess"], bounds.guess),
            slip=draw(n_emit, 0.05, 0.3, defaults["slip"], bounds.slip),
        )

    def _learner_class(self, counts: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """Learner class from answers strictly before now: 0 = too little history, then accuracy bins."""
        n, c = counts
        acc = (c + 1.0) / (n + 2.0)
        cls = 1 + np.searchsorted(np.asarray(self.prior_edges, dtype=np.float64), acc, side="right")
        out: np.ndarray = np.where(n < self.prior_min_history, 0, cls).astype(np.int64)
        return out

    def _index(self) -> None:
        """Lookup tables for serving (plain dicts: the online update must be O(1) without numpy overhead)."""
        self._skill_pos = {int(s): i for i, s in enumerate(self.skills_.tolist())}
        self._item_pos = {(int(i), int(s)): j for j, (i, s) in enumerate(self.item_keys_.tolist())}
        self._rows: list[tuple[float, float, float, float]] = [
            (float(a), float(b), float(c), float(d))
            for a, b, c, d in zip(
                self.learn_.tolist(),
                self.forget_.tolist(),
                self.guess_.tolist(),
                self.slip_.tolist(),
                strict=True,
            )
        ]
        self._priors: list[list[float]] = [[float(x) for x in row] for row in self.prior_table_.tolist()]
        self._item_gs = list(zip(self.item_guess_.tolist(), self.item_slip_.tolist(), strict=True))
        d = self._default_params()
        self._default_row = (d["learn"], d["forget"], d["guess"], d["slip"])
        self._default_prior = d["prior"]

    # ------------------------------------------------------------------ parameters for one skill

    def params_for(self, skill: int) -> dict[str, float]:
        """The skill's fitted parameters (the defaults for a skill unseen at fit time)."""
        pos = self._skill_pos.get(int(skill))
        if pos is None:
            return self._default_params()
        return {
            "prior": float(self.prior_[pos]),
            "learn": float(self.learn_[pos]),
            "forget": float(self.forget_[pos]),
            "guess": float(self.guess_[pos]),
            "slip": float(self.slip_[pos]),
        }

    # ------------------------------------------------------------------ batch prediction

    def predict(self, log: AttemptLog) -> np.ndarray:
        rows = _unique_rows(log)
        n_skills = len(self.skills_)
        sk = log.skill[rows]
        pos = np.clip(np.searchsorted(self.skills_, sk), 0, max(n_skills - 1, 0))
        known = (self.skills_[pos] == sk) if n_skills else np.zeros(len(rows), dtype=bool)
        skill_idx = np.where(known, pos, n_skills)  # n_skills = the defaults row
        d = self._default_params()
        learn = np.append(self.learn_, d["learn"])
        forget = np.append(self.forget_, d["forget"])
        guess = np.append(self.guess_, d["guess"])
        slip = np.append(self.slip_, d["slip"])

        # sequences by raw skill id: skills unseen at fit time share the defaults row but not a sequence
        order = np.lexsort((np.arange(len(rows)), log.learner[rows], sk))
        srows = rows[order]
        sskill = skill_idx[order]
        seq_lengths = _run_lengths(sk[order], log.learner[srows])
        layout = bkt_em.build_layout(seq_lengths, chunk=None)
        seq_first = (np.cumsum(seq_lengths) - seq_lengths).astype(np.int64)
        lane_skill = sskill[seq_first][layout.lane_seq]

        if self.learner_prior:
            cls_rows = self._learner_class(_history_counts(log))[srows]
            lane_class = cls_rows[seq_first][layout.lane_seq]
            table = np.vstack([self.prior_table_, np.full((1, self.prior_table_.shape[1]), d["prior"])])
            lane_init = 1.0 - table[lane_skill, lane_class]
        else:
            lane_init = 1.0 - np.append(self.prior_, d["prior"])[lane_skill]

        row_guess = guess[sskill]
        row_slip = slip[sskill]
        if self.item_level and len(self.item_keys_):
            it = self._item_rows(log.item[srows], sskill, n_skills)
            hit = it >= 0
            row_guess = np.where(hit, self.item_guess_[np.maximum(it, 0)], row_guess)
            row_slip = np.where(hit, self.item_slip_[np.maximum(it, 0)], row_slip)

        _, pc_sorted = bkt_em.forward_predict(
            layout,
            log.correct[srows],
            lane_init,
            learn[lane_skill],
            forget[lane_skill],
            row_guess,
            row_slip,
        )
        pc_rows = np.empty(len(rows))
        pc_rows[order] = pc_sorted
        return self._combine_rows(log, rows, pc_rows)

    def _item_rows(self, items: np.ndarray, skill_idx: np.ndarray, n_skills: int) -> np.ndarray:
        """Index into the item tables of each (item, skill index) pair, -1 where it has no own parameters."""
        keys = self.item_keys_
        span = int(max(keys[:, 1].max(), n_skills)) + 1
        flat_keys = keys[:, 0] * span + keys[:, 1]  # sorted, as np.unique sorted keys lexicographically
        flat = items * span + skill_idx
        pos = np.clip(np.searchsorted(flat_keys, flat), 0, len(flat_keys) - 1)
        out: np.ndarray = np.where((flat_keys[pos] == flat) & (items >= 0) & (skill_idx < n_skills), pos, -1)
        return out

    def _combine_rows(self, log: AttemptLog, rows: np.ndarray, pc_rows: np.ndarray) -> np.ndarray:
        """One P(correct) per problem attempt from its rows' predictions, in row order, as `update` does."""
        starts = log.attempt_starts()
        attempt_of_row = np.searchsorted(starts, rows, side="right") - 1
        first = np.ones(len(rows), dtype=bool)
        first[1:] = attempt_of_row[1:] != attempt_of_row[:-1]
        rank = np.arange(len(rows)) - np.maximum.accumulate(np.where(first, np.arange(len(rows)), 0))
        out = np.zeros(len(starts))
        n = np.zeros(len(starts))
        for j in range(int(rank.max()) + 1 if len(rows) else 0):
            sel = rank == j
            a = attempt_of_row[sel]
            v = pc_rows[sel]
            if j == 0:
                out[a] = v
            elif self.combine == "mean":
                out[a] = out[a] + v
            elif self.combine == "product":
                out[a] = out[a] * v
            else:
                out[a] = np.minimum(out[a], v)
            n[a] += 1
        if self.combine == "mean":
            out = out / np.maximum(n, 1)
        return out

    # ------------------------------------------------------------------ online serving

    def init_state(self) -> State:
        state: State = {"q": {}}
        if self.learner_prior:
            state["n"] = 0
            state["c"] = 0
        return state

    def _skill_params(self, skill: int, item: int) -> tuple[float, float, float, float]:
        pos = self._skill_pos.get(skill)
        if pos is None:
            return self._default_row
        learn, forget, guess, slip = self._rows[pos]
        if self.item_level:
            j = self._item_pos.get((item, pos))
            if j is not None:
                guess, slip = self._item_gs[j]
        return learn, forget, guess, slip

    def _initial(self, state: State, skill: int) -> float:
        pos = self._skill_pos.get(skill)
        if not self.learner_prior:
            return self._priors[pos][0] if pos is not None else self._default_prior
        if pos is None:
            return self._default_prior
        n = int(state.get("n", 0))
        c = int(state.get("c", 0))
        # scalar twin of `_learner_class` (same arithmetic; bisect_right == searchsorted side="right")
        cls = (
            0
            if n < self.prior_min_history
            else 1 + bisect.bisect_right(self.prior_edges, (c + 1.0) / (n + 2.0))
        )
        return self._priors[pos][cls]

    def update(self, state: State, attempt: Attempt) -> State:
        qs: dict[str, float] = state.setdefault("q", {})
        for skill in dict.fromkeys(attempt.skills):
            key = str(skill)
            q = qs.get(key)
            if q is None:
                q = 1.0 - self._initial(state, skill)
            learn, forget, guess, slip = self._skill_params(skill, attempt.item)
            _, qs[key] = bkt_em.bkt_step(q, attempt.correct, learn, forget, guess, slip)
        if self.learner_prior:
            state["n"] = int(state.get("n", 0)) + 1
            state["c"] = int(state.get("c", 0)) + int(attempt.correct)
        return state

    def predict_next(self, state: State, query: Query) -> float:
        qs: dict[str, float] = state.get("q", {})
        out = 0.0
        for j, skill in enumerate(dict.fromkeys(query.skills)):
            q = qs.get(str(skill))
            if q is None:
                q = 1.0 - self._initial(state, skill)
            _, _, guess, slip = self._skill_params(skill, query.item)
            pc = (1.0 - q) * (1.0 - slip) + q * guess
            if j == 0:
                out = pc
            elif self.combine == "mean":
                out = out + pc
            elif self.combine == "product":
                out = out * pc
            else:
                out = min(out, pc)
        if self.combine == "mean" and len(query.skills) > 1:
            out = out / len(dict.fromkeys(query.skills))
        return float(out)

    def predict_next_many(self, state: State, queries: Sequence[Query]) -> list[float]:
        if self.item_level:
            return super().predict_next_many(state, queries)
        # Without item-level guess/slip the prediction depends on the skills only: once per skill set.
        by_skills: dict[tuple[int, ...], float] = {}
        out = []
        for q in queries:
            p = by_skills.get(q.skills)
            if p is None:
                p = by_skills[q.skills] = self.predict_next(state, q)
            out.append(p)
        return out

    def mastery(self, state: State, skill: int) -> float:
        q = state.get("q", {}).get(str(skill))
        return 1.0 - float(q) if q is not None else float(self._initial(state, skill))

    # ------------------------------------------------------------------ persistence

    def save(self, fp: IO[bytes]) -> None:
        params = self.get_params()
        params["prior_edges"] = list(params["prior_edges"])
        np.savez(
            fp,
            config=np.array(json.dumps({"name": self.name, "params": params})),
            skills=self.skills_,
            prior=self.prior_,
            prior_table=self.prior_table_,
            learn=self.learn_,
            forget=self.forget_,
            guess=self.guess_,
            slip=self.slip_,
            item_keys=self.item_keys_,
            item_guess=self.item_guess_,
            item_slip=self.item_slip_,
        )

    @classmethod
    def load(cls, fp: IO[bytes]) -> Self:
        with np.load(fp, allow_pickle=False) as z:
            config = json.loads(str(z["config"]))
            params = config["params"]
            params["prior_edges"] = tuple(params["prior_edges"])
            allowed = set(inspect.signature(BKT.__init__).parameters) - {"self"}
            obj = cls(**{k: v for k, v in params.items() if k in allowed})
            obj.skills_ = z["skills"].astype(np.int64)
            obj.prior_ = z["prior"].astype(np.float64)
            obj.prior_table_ = z["prior_table"].astype(np.float64)
            obj.learn_ = z["learn"].astype(np.float64)
            obj.forget_ = z["forget"].astype(np.float64)
            obj.guess_ = z["guess"].astype(np.float64)
            obj.slip_ = z["slip"].astype(np.float64)
            obj.item_keys_ = z["item_keys"].astype(np.int64).reshape(-1, 2)
            obj.item_guess_ = z["item_guess"].astype(np.float64)
            obj.item_slip_ = z["item_slip"].astype(np.float64)
        obj._index()
        return obj


class BKTForget(BKT):
    """BKT whose mastered state can be lost (learned forgetting per skill, at most `max_forget` per step).

    A correct answer still raises the posterior; mastery at the next opportunity then includes the chance of
    forgetting in between, so a learner near mastery drifts down towards learn / (learn + forget) between answers.
    """

    name: ClassVar[str] = "bkt_forget"

    def __init__(self, *, forgetting: bool = True, max_forget: float = 0.5, **kwargs: Any) -> None:
        super().__init__(forgetting=forgetting, max_forget=max_forget, **kwargs)


class BKTIdem(BKT):
    """KT-IDEM (Pardos & Heffernan 2011): guess and slip per (item, skill) pair.

    An item with fewer than `item_min_answers` answers in the training log shares its skill's guess/slip; the
    others are shrunk towards it with `item_smoothing` pseudo-answers, so rare items back off smoothly.
    """

    name: ClassVar[str] = "bkt_idem"

    def __init__(self, *, item_level: bool = True, **kwargs: Any) -> None:
        super().__init__(item_level=item_level, **kwargs)


class BKTPrior(BKT):
    """BKT whose prior depends on the learner's record before the skill's first opportunity.

    pyBKT's "multiprior" picks the prior class from the first answer of the sequence being predicted, which
    leaks that answer's label. Here the class is the learner's smoothed accuracy over problem attempts strictly
    before the first one on the skill (or "new learner" with fewer than `prior_min_history`), so it is known
    before any answer on the skill is seen, offline and online alike.
    """

    name: ClassVar[str] = "bkt_prior"

    def __init__(self, *, learner_prior: bool = True, **kwargs: Any) -> None:
        super().__init__(learner_prior=learner_prior, **kwargs)


class BKTIdemForget(BKT):
    """KT-IDEM with forgetting."""

    name: ClassVar[str] = "bkt_idem_forget"

    def __init__(
        self, *, item_level: bool = True, forgetting: bool = True, max_forget: float = 0.5, **kwargs: Any
    ) -> None:
        super().__init__(item_level=item_level, forgetting=forgetting, max_forget=max_forget, **kwargs)


class BKTFull(BKT):
    """KT-IDEM with forgetting and the leak-free per-learner prior: every switch of the family on."""

    name: ClassVar[str] = "bkt_full"

    def __init__(
        self,
        *,
        item_level: bool = True,
        forgetting: bool = True,
        max_forget: float = 0.5,
        learner_prior: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            item_level=item_level,
            forgetting=forgetting,
            max_forget=max_forget,
            learner_prior=learner_prior,
            **kwargs,
        )


# ---------------------------------------------------------------------- helpers


def _unique_rows(log: AttemptLog) -> np.ndarray:
    """Rows in log order, without a repeated skill inside one problem attempt (it would see its own answer)."""
    n = len(log)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = log.attempt_starts()
    attempt_no = np.cumsum(np.isin(np.arange(n), starts)) - 1
    _, first = np.unique(np.stack([attempt_no, log.skill], axis=1), axis=0, return_index=True)
    if len(first) == n:
        return np.arange(n, dtype=np.int64)
    return np.sort(first).astype(np.int64)


def _run_lengths(*keys: np.ndarray) -> np.ndarray:
    """Lengths of runs of equal consecutive key tuples."""
    n = len(keys[0])
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for k in keys:
        change[1:] |= k[1:] != k[:-1]
    starts = np.flatnonzero(change)
    out: np.ndarray = np.diff(np.append(starts, n))
    return out


def _history_counts(log: AttemptLog) -> tuple[np.ndarray, np.ndarray]:
    """For every row: how many problem attempts the learner answered before this row's attempt, and how many of
    them correctly. Rows of the same attempt share the counts, so its own answer never enters them."""
    n = len(log)
    starts = log.attempt_starts()
    attempt_no = np.cumsum(np.isin(np.arange(n), starts)) - 1
    a_learner = log.learner[starts]
    a_correct = log.correct[starts].astype(np.int64)
    order = np.argsort(a_learner, kind="stable")
    lrn = a_learner[order]
    cor = a_correct[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = lrn[1:] != lrn[:-1]
    idx = np.arange(len(order))
    group_start = np.maximum.accumulate(np.where(new, idx, 0))
    csum = np.cumsum(cor) - cor
    n_before = np.empty(len(order), dtype=np.int64)
    c_before = np.empty(len(order), dtype=np.int64)
    n_before[order] = idx - group_start
    c_before[order] = csum - (np.cumsum(cor) - cor)[group_start]
    return n_before[attempt_no], c_before[attempt_no]
