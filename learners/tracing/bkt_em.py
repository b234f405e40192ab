"""Vectorised forward filtering and Baum-Welch for the BKT family of two-state HMMs.

Every (learner, skill) sequence is one lane; lanes are sorted by decreasing length and laid out time-major, so the
lanes still running at step t are a contiguous prefix of the step's block and one numpy operation advances all of
them (all skills and all random restarts at once: arrays have a trailing restart axis). Python loops over time
steps only, never over learners or skills.

Each lane has one extra "virtual" slot after its last row. The forward pass writes the prediction for the next
step there and the backward pass reads the smoothed message of the next step from it, so lanes that end at step t
need no special case: the block of step t+1 has exactly as many slots as step t has rows.

Long sequences would make the number of time steps (and the Python overhead) large, so for fitting they are cut
into chunks of at most `chunk` rows that run side by side. A chunk's incoming filtered state and outgoing
smoothed state come from the neighbouring chunk's values of the previous EM iteration. The fixed points are those
of exact EM (at convergence the stale messages equal the exact ones); prediction never chunks and is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

EPS = 1e-6


@dataclass(frozen=True)
class Layout:
    """Where each row of a set of sequences lives in the time-major slot arrays.

    Lanes are numbered by rank (0 = longest). `offsets[t]` is the first slot of step t; step t has
    `offsets[t + 1] - offsets[t]` slots (lanes of length >= t) and `real_counts[t]` real rows (lanes longer than t,
    which are the first ones of the block).
    """

    n_rows: int
    n_lanes: int
    size: int
    offsets: np.ndarray
    real_counts: np.ndarray
    row_slot: np.ndarray  # slot of each input row
    lane_len: np.ndarray
    lane_end_slot: np.ndarray  # virtual slot after the lane's last row
    lane_seq: np.ndarray  # sequence of each lane
    lane_first: np.ndarray  # bool: first chunk of its sequence
    lane_prev: np.ndarray  # lane of the preceding chunk, -1 if none
    lane_next: np.ndarray  # lane of the following chunk, -1 if none
    lane_chunk: np.ndarray  # index of the chunk within its sequence
    row_has_next: np.ndarray  # bool per input row: not the last row of its sequence


def build_layout(seq_lengths: np.ndarray, chunk: int | None = None) -> Layout:
    """Layout of sequences whose rows are contiguous and in order (sequence 0's rows first, then 1's...)."""
    seq_lengths = np.asarray(seq_lengths, dtype=np.int64)
    n_seq = len(seq_lengths)
    n_rows = int(seq_lengths.sum())
    seq_starts = np.zeros(n_seq, dtype=np.int64)
    if n_seq:
        seq_starts[1:] = np.cumsum(seq_lengths)[:-1]
    if chunk is None or n_seq == 0 or int(seq_lengths.max()) <= chunk:
        n_chunks = np.ones(n_seq, dtype=np.int64)
        chunk_size = max(int(seq_lengths.max()) if n_seq else 1, 1)
    else:
        chunk_size = int(chunk)
        n_chunks = (seq_lengths + chunk_size - 1) // chunk_size
    n_lanes = int(n_chunks.sum())
    lane_seq = np.repeat(np.arange(n_seq, dtype=np.int64), n_chunks)
    first_lane_of_seq = np.zeros(n_seq, dtype=np.int64)
    if n_seq:
        first_lane_of_seq[1:] = np.cumsum(n_chunks)[:-1]
    chunk_idx = np.arange(n_lanes, dtype=np.int64) - first_lane_of_seq[lane_seq]
    lane_start = seq_starts[lane_seq] + chunk_idx * chunk_size
    lane_len_orig = np.minimum(chunk_size, seq_lengths[lane_seq] - chunk_idx * chunk_size)

    # rank lanes by decreasing length; ties keep sequence order so layouts are deterministic
    order = np.argsort(-lane_len_orig, kind="stable")
    rank = np.empty(n_lanes, dtype=np.int64)
    rank[order] = np.arange(n_lanes, dtype=np.int64)
    lane_len = lane_len_orig[order]

    max_len = int(lane_len[0]) if n_lanes else 0
    # slot_counts[t] = lanes with length >= t, t = 0..max_len
    hist = np.bincount(lane_len, minlength=max_len + 1)
    slot_counts = np.cumsum(hist[::-1])[::-1]
    offsets = np.zeros(max_len + 2, dtype=np.int64)
    offsets[1:] = np.cumsum(slot_counts)
    real_counts = slot_counts[1:].copy()

    lane_of_row = np.repeat(np.arange(n_lanes, dtype=np.int64), lane_len_orig)
    pos = np.arange(n_rows, dtype=np.int64) - lane_start[lane_of_row]
    row_slot = offsets[pos] + rank[lane_of_row]
    lane_end_slot = offsets[lane_len] + np.arange(n_lanes, dtype=np.int64)

    is_first_orig = chunk_idx == 0
    is_last_orig = chunk_idx == n_chunks[lane_seq] - 1
    prev_orig = np.where(is_first_orig, -1, np.arange(n_lanes) - 1)
    next_orig = np.where(is_last_orig, -1, np.arange(n_lanes) + 1)
    lane_prev = np.where(prev_orig[order] >= 0, rank[np.maximum(prev_orig[order], 0)], -1)
    lane_next = np.where(next_orig[order] >= 0, rank[np.maximum(next_orig[order], 0)], -1)

    row_has_next = np.ones(n_rows, dtype=bool)
    if n_seq:
        row_has_next[seq_starts + seq_lengths - 1] = False
    return Layout(
        n_rows=n_rows,
        n_lanes=n_lanes,
        size=n_rows + n_lanes,
        offsets=offsets,
        real_counts=real_counts,
        row_slot=row_slot,
        lane_len=lane_len,
        lane_end_slot=lane_end_slot,
        lane_seq=lane_seq[order],
        lane_first=is_first_orig[order],
        lane_prev=lane_prev,
        lane_next=lane_next,
        lane_chunk=chunk_idx[order],
        row_has_next=row_has_next,
    )


def forward_predict(
    layout: Layout,
    correct: np.ndarray,
    lane_init: np.ndarray,
    lane_learn: np.ndarray,
    lane_forget: np.ndarray,
    row_guess: np.ndarray,
    row_slip: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """P(not mastered) before each row and P(correct) of each row, exact, in input row order.

    `lane_init` is the initial P(not mastered). The arithmetic is `bkt_step`'s in the same order, so replaying the
    rows one by one through the online update gives bit-identical numbers. Requires an unchunked layout.
    """
    size = layout.size
    slot = layout.row_slot
    obs = np.zeros(size, dtype=bool)
    obs[slot] = correct.astype(bool)
    g = np.zeros(size)
    s = np.zeros(size)
    g[slot] = row_guess
    s[slot] = row_slip
    unk = np.zeros(size)
    pc_all = np.zeros(size)
    unk[: layout.n_lanes] = lane_init
    off = layout.offsets
    for t, k in enumerate(layout.real_counts.tolist()):
        a, b, c = int(off[t]), int(off[t + 1]), int(off[t]) + k
        q = unk[a:c]
        gt = g[a:c]
        st = s[a:c]
        p = 1.0 - q
        known = p * (1.0 - st)
        lucky = q * gt
        pc = known + lucky
        pc_all[a:c] = pc
        slipped = p * st
        missed = q * (1.0 - gt)
        post = np.where(obs[a:c], lucky / pc, missed / (slipped + missed))
        unk[b : b + k] = post * (1.0 - lane_learn[:k]) + (1.0 - post) * lane_forget[:k]
    return unk[slot], pc_all[slot]


def bkt_step(
    q: float, correct: bool, learn: float, forget: float, guess: float, slip: float
) -> tuple[float, float]:
    """One online BKT step on q = P(not mastered): (P(correct) before the answer, q at the next opportunity).

    The state is P(not mastered) rather than P(mastered) because it stays exact as mastery approaches 1: after a
    long run of correct answers P(mastered) rounds to 1.0, after which no wrong answer could lower it again.
    """
    p = 1.0 - q
    known = p * (1.0 - slip)
    lucky = q * guess
    pc = known + lucky
    if correct:
        post = lucky / pc
    else:
        slipped = p * slip
        missed = q * (1.0 - guess)
        post = missed / (slipped + missed)
    return pc, post * (1.0 - learn) + (1.0 - post) * forget


@dataclass
class Params:
    """BKT parameters, each of shape (n_groups, n_restarts)."""

    prior: np.ndarray
    learn: np.ndarray
    forget: np.ndarray
    guess: np.ndarray
    slip: np.ndarray

    def take(self, restart: np.ndarray, owner_prior: np.ndarray, owner_emit: np.ndarray) -> Params:
        """Keep, for every skill, the restarts `restart[skill]` (shape (n_skills, k)), as a k-restart Params."""

        def pick(a: np.ndarray, owner: np.ndarray) -> np.ndarray:
            out: np.ndarray = np.take_along_axis(a, restart[owner], axis=1).copy()
            return out

        skills = np.arange(self.learn.shape[0])
        return Params(
            prior=pick(self.prior, owner_prior),
            learn=pick(self.learn, skills),
            forget=pick(self.forget, skills),
            guess=pick(self.guess, owner_emit),
            slip=pick(self.slip, owner_emit),
        )


@dataclass(frozen=True)
class Bounds:
    """Box constraints applied in every M-step (the constrained maximiser of each separable term is the clip)."""

    prior: tuple[float, float] = (EPS, 1.0 - EPS)
    learn: tuple[float, float] = (EPS, 1.0 - EPS)
    forget: tuple[float, float] = (0.0, 0.0)
    guess: tuple[float, float] = (EPS, 0.45)
    slip: tuple[float, float] = (EPS, 0.45)


@dataclass(frozen=True)
class Groups:
    """How parameters are shared.

    Transition parameters (learn, forget) are per skill. The prior is per prior group (a skill, or a skill and a
    learner class) and guess/slip per emission group (a skill, or an item within a skill); each group belongs to
    one skill (`prior_owner`, `emit_owner`), which makes the log-likelihood separable by skill, so restarts are
    chosen and convergence is judged per skill. `prior_parent`/`emit_parent` give the skill that a sparse group
    is shrunk towards (-1: shrink towards the fixed anchor instead).
    """

    n_skills: int
    prior_owner: np.ndarray
    emit_owner: np.ndarray
    prior_parent: np.ndarray
    emit_parent: np.ndarray


@dataclass(frozen=True)
class Sequences:
    """(learner, skill) sequences, rows grouped by sequence in chronological order."""

    lengths: np.ndarray  # per sequence
    skill: np.ndarray  # per sequence
    prior_group: np.ndarray  # per sequence
    correct: np.ndarray  # per row, 0/1
    emit_group: np.ndarray  # per row
    ids: np.ndarray  # per sequence: its index in the full set (keys chunk messages across rebuilds)

    def subset(self, keep: np.ndarray) -> Sequences:
        mask = np.zeros(len(self.lengths), dtype=bool)
        mask[keep] = True
        rows = np.repeat(mask, self.lengths)
        return Sequences(
            lengths=self.lengths[keep],
            skill=self.skill[keep],
            prior_group=self.prior_group[keep],
            correct=self.correct[rows],
            emit_group=self.emit_group[rows],
            ids=self.ids[keep],
        )


def _csr(groups: np.ndarray, cols: np.ndarray, n_groups: int, size: int) -> sp.csr_matrix:
    """0/1 matrix summing slot values into groups, built directly in CSR form (no COO sort)."""
    order = np.argsort(groups, kind="stable")
    indptr = np.zeros(n_groups + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(np.bincount(groups, minlength=n_groups))
    return sp.csr_matrix((np.ones(len(cols)), cols[order], indptr), shape=(n_groups, size))


def _shrink(
    num: np.ndarray,
    den: np.ndarray,
    anchor: float,
    parent: np.ndarray,
    strength: float,
    parent_strength: float,
) -> np.ndarray:
    """num/den with `strength` pseudo-answers at `anchor`; for groups with a parent, `parent_strength`
    pseudo-answers at the parent's pooled ratio instead (backoff of sparse item or learner groups to their skill).
    A group with no evidence keeps its target."""
    target = np.full(num.shape, anchor)
    weight = np.full((num.shape[0], 1), strength)
    has_parent = parent >= 0
    if has_parent.any():
        n_parent = int(parent.max()) + 1
        idx = parent[has_parent]
        pn = np.zeros((n_parent, num.shape[1]))
        pd = np.zeros((n_parent, num.shape[1]))
        np.add.at(pn, idx, num[has_parent])
        np.add.at(pd, idx, den[has_parent])
        total = pd + strength
        pooled = np.where(total > 1e-9, (pn + strength * anchor) / np.maximum(total, 1e-12), anchor)
        target[has_parent] = pooled[idx]
        weight[has_parent] = parent_strength
    total = den + weight
    out: np.ndarray = np.where(total > 1e-9, (num + weight * target) / np.maximum(total, 1e-12), target)
    return out


@dataclass
class _Stats:
    loglik: np.ndarray  # (n_skills, R)
    emit: np.ndarray  # sum of P(not mastered) per emission group
    emit_correct: np.ndarray  # same over correct answers
    trans_unknown: np.ndarray  # sum of P(not mastered) over rows with a next row, per skill
    learned: np.ndarray  # expected not-mastered -> mastered transitions, per skill
    forgot: np.ndarray | None  # expected mastered -> not-mastered transitions, per skill
    first_unknown: np.ndarray  # sum of P(not mastered) at first rows, per prior group


class _Problem:
    """The slot layout, reduction matrices and work arrays for one set of sequences (rebuilt when skills
    converge, so that converged skills cost nothing)."""

    def __init__(
        self, seqs: Sequences, groups: Groups, n_prior: int, n_emit: int, n_rest: int, chunk: int | None,
        forgetting: bool,
    ) -> None:  # fmt: skip
        layout = build_layout(seqs.lengths, chunk=chunk)
        self.layout = layout
        self.forgetting = forgetting
        size = layout.size
        slot = layout.row_slot
        self.n_rows = layout.n_rows
        self.lane_skill = seqs.skill[layout.lane_seq]
        self.lane_prior = seqs.prior_group[layout.lane_seq]
        obs = np.zeros(size, dtype=np.int64)
        obs[slot] = seqs.correct
        emit_slot = np.zeros(size, dtype=np.int64)
        emit_slot[slot] = seqs.emit_group
        self.emit_index = emit_slot * 2 + obs

        correct = seqs.correct == 1
        row_skill = np.repeat(seqs.skill, seqs.lengths)
        has_next = layout.row_has_next
        first = np.flatnonzero(layout.lane_first)
        n_skills = groups.n_skills
        self.m_emit = _csr(seqs.emit_group, slot, n_emit, size)
        self.m_emit1 = _csr(seqs.emit_group[correct], slot[correct], n_emit, size)
        self.m_trans = _csr(row_skill[has_next], slot[has_next], n_skills, size)
        self.m_prior = _csr(self.lane_prior[first], first, n_prior, size)
        self.m_skill = _csr(row_skill, slot, n_skills, size)

        self.pred = np.zeros((size, n_rest))  # P(not mastered | answers before)
        self.filt = np.zeros((size, n_rest))  # P(not mastered | answers up to and including this one)
        self.norm = np.ones((size, n_rest))  # P(this answer | answers before)
        self.gam = np.zeros((size, n_rest))  # P(not mastered | all answers)
        self.x01 = np.zeros((size, n_rest))  # P(not mastered here, mastered next | all answers)
        self.x10 = np.zeros((size, n_rest)) if forgetting else None  # P(mastered here, not next | all)

        # chunk boundaries: messages of the previous iteration, keyed by (sequence, chunk) across rebuilds
        self.prev_lanes = np.flatnonzero(layout.lane_prev >= 0)
        self.prev_end = layout.lane_end_slot[layout.lane_prev[self.prev_lanes]]
        has_succ = layout.lane_next >= 0
        self.succ_end = layout.lane_end_slot[has_succ]
        self.succ_first = layout.lane_next[has_succ]  # the successor's first slot == its lane rank
        self.nosucc_end = layout.lane_end_slot[~has_succ]
        lane_ids = seqs.ids[layout.lane_seq]
        self.prev_keys = lane_ids[self.prev_lanes] * (1 << 20) + layout.lane_chunk[self.prev_lanes]
        self.succ_keys = lane_ids[has_succ] * (1 << 20) + layout.lane_chunk[has_succ]
        self.boundary_pred: np.ndarray | None = None
        self.boundary_gam: np.ndarray | None = None

    def inherit(self, old: _Problem) -> None:
        """Take over the chunk-boundary messages of the lanes that exist in both problems."""
        for mine, theirs, attr in (
            (self.prev_keys, old.prev_keys, "boundary_pred"),
            (self.succ_keys, old.succ_keys, "boundary_gam"),
        ):
            values = getattr(old, attr)
            if values is None or len(mine) == 0:
                continue
            order = np.argsort(theirs)
            pos = order[np.clip(np.searchsorted(theirs, mine, sorter=order), 0, len(theirs) - 1)]
            if not np.array_equal(theirs[pos], mine):
                continue
            setattr(self, attr, values[pos])

    def e_step(self, params: Params, *, with_loglik: bool = True) -> _Stats:
        layout = self.layout
        off = layout.offsets
        steps = list(enumerate(layout.real_counts.tolist()))
        n_rest = params.learn.shape[1]
        pred, filt, norm, gam, x01, x10 = self.pred, self.filt, self.norm, self.gam, self.x01, self.x10
        learn_l = params.learn[self.lane_skill]
        stay_l = 1.0 - learn_l
        forget_l = params.forget[self.lane_skill]
        drift_l = stay_l - forget_l
        # P(answer | mastered), P(answer | not mastered) per slot: one gather from a (group, answer) table
        tab1 = np.stack([params.slip, 1.0 - params.slip], axis=1).reshape(-1, n_rest)
        tab0 = np.stack([1.0 - params.guess, params.guess], axis=1).reshape(-1, n_rest)
        lik1 = np.take(tab1, self.emit_index, axis=0)
        lik0 = np.take(tab0, self.emit_index, axis=0)

        # ---- forward (filtering) ----
        pred[: layout.n_lanes] = 1.0 - params.prior[self.lane_prior]
        if self.boundary_pred is not None:
            pred[self.prev_lanes] = self.boundary_pred
        for t, k in steps:
            a, b = int(off[t]), int(off[t + 1])
            c = a + k
            q = pred[a:c]
            a0 = q * lik0[a:c]
            z = np.add((1.0 - q) * lik1[a:c], a0, out=norm[a:c])
            f = np.divide(a0, z, out=filt[a:c])
            if self.forgetting:
                np.add(forget_l[:k], f * drift_l[:k], out=pred[b : b + k])
            else:
                np.multiply(f, stay_l[:k], out=pred[b : b + k])
        self.boundary_pred = pred[self.prev_end]

        # ---- backward (smoothing) ----
        gam[self.nosucc_end] = pred[self.nosucc_end]
        gam[self.succ_end] = pred[self.succ_end] if self.boundary_gam is None else self.boundary_gam
        for t, k in reversed(steps):
            a, b = int(off[t]), int(off[t + 1])
            c = a + k
            f = filt[a:c]
            g0 = gam[b : b + k]
            q1 = pred[b : b + k]
            # P(mastered next | all) / P(mastered next | so far); P(mastered next) >= min(learn, 1 - forget) > 0
            r1 = (1.0 - g0) / (1.0 - q1)
            np.multiply(f * learn_l[:k], r1, out=x01[a:c])
            if self.forgetting and x10 is not None:
                # not mastered here and next, out of all the ways of not being mastered next
                stay = (f * stay_l[:k]) * (g0 / np.maximum(q1, 1e-300))
                np.subtract(g0, stay, out=x10[a:c])
                np.add(stay, x01[a:c], out=gam[a:c])
            else:
                # without forgetting, "not mastered next" implies "not mastered here"
                np.add(g0, x01[a:c], out=gam[a:c])
        self.boundary_gam = gam[self.succ_first]

        return _Stats(
            loglik=np.asarray(self.m_skill @ np.log(norm)) if with_loglik else np.zeros(0),
            emit=np.asarray(self.m_emit @ gam),
            emit_correct=np.asarray(self.m_emit1 @ gam),
            trans_unknown=np.asarray(self.m_trans @ gam),
            learned=np.asarray(self.m_trans @ x01),
            forgot=np.asarray(self.m_trans @ x10) if x10 is not None else None,
            first_unknown=np.asarray(self.m_prior @ gam),
        )


def baum_welch(
    seqs: Sequences,
    groups: Groups,
    init: Params,
    bounds: Bounds,
    anchor: dict[str, float],
    *,
    forgetting: bool,
    max_iter: int,
    tol: float,
    chunk: int | None = 128,
    strength: float = 0.0,
    parent_strength: float = 0.0,
    rebuild_below: float = 0.6,
    trace: list[np.ndarray] | None = None,
) -> tuple[Params, np.ndarray, int]:
    """EM from `init` (all restarts at once).

    A skill stops when its log-likelihood per answer moves by less than `tol` (for every restart) and keeps the
    parameters of that E-step; when the skills still running hold less than `rebuild_below` of the rows being
    processed, the problem is rebuilt without the others. Returns the parameters, the log-likelihood per
    (skill, restart) of each skill's last E-step, and the number of iterations run.
    """
    n_rest = init.learn.shape[1]
    n_prior = init.prior.shape[0]
    n_emit = init.guess.shape[0]
    n_skills = groups.n_skills
    skill_rows = np.bincount(np.repeat(seqs.skill, seqs.lengths), minlength=n_skills).astype(np.float64)
    per_answer = np.maximum(skill_rows, 1.0)[:, None]
    emit_rows = np.bincount(seqs.emit_group, minlength=n_emit).astype(np.float64)[:, None]
    emit_correct = np.bincount(seqs.emit_group, weights=seqs.correct, minlength=n_emit)[:, None]
    emit_wrong = emit_rows - emit_correct
    first_count = np.bincount(seqs.prior_group, minlength=n_prior).astype(np.float64)[:, None]
    has_next = np.ones(len(seqs.correct), dtype=bool)
    if len(seqs.lengths):
        has_next[np.cumsum(seqs.lengths) - 1] = False
    trans_count = np.bincount(np.repeat(seqs.skill, seqs.lengths)[has_next], minlength=n_skills)
    trans_rows = trans_count.astype(np.float64)[:, None]
    no_parent = np.full(n_skills, -1, dtype=np.int64)

    params = Params(
        prior=init.prior.copy(),
        learn=init.learn.copy(),
        forget=init.forget.copy(),
        guess=init.guess.copy(),
        slip=init.slip.copy(),
    )
    active = skill_rows > 0
    problem = _Problem(seqs, groups, n_prior, n_emit, n_rest, chunk, forgetting)
    problem_rows = problem.n_rows
    loglik = np.zeros((n_skills, n_rest))
    last: np.ndarray | None = None
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        # the log-likelihood (a log per answer and restart) is only needed to judge convergence and at the end
        need_ll = tol > 0 or it == max_iter or trace is not None
        st = problem.e_step(params, with_loglik=need_ll)
        if need_ll:
            loglik[active] = st.loglik[active]
        if trace is not None:
            trace.append(loglik.copy())
        done = np.zeros(n_skills, dtype=bool)
        if last is not None and tol > 0:
            done = active & np.all(np.abs(loglik - last) / per_answer < tol, axis=1)
        last = loglik.copy()
        update = active & ~done
        if not update.any() or it == max_iter:
            # the parameters returned are those of the last E-step, so they match its log-likelihood
            active = update
            break

        # ---- M-step (only the skills still running) ----
        guess = _shrink(
            st.emit_correct, st.emit, anchor["guess"], groups.emit_parent, strength, parent_strength
        )
        slip = _shrink(
            emit_wrong - (st.emit - st.emit_correct),
            emit_rows - st.emit,
            anchor["slip"],
            groups.emit_parent,
            strength,
            parent_strength,
        )
        learn = _shrink(st.learned, st.trans_unknown, anchor["learn"], no_parent, strength, 0.0)
        prior = _shrink(
            first_count - st.first_unknown,
            first_count,
            anchor["prior"],
            groups.prior_parent,
            strength,
            parent_strength,
        )
        upd_emit = update[groups.emit_owner]
        upd_prior = update[groups.prior_owner]
        params.guess[upd_emit] = np.clip(guess, *bounds.guess)[upd_emit]
        params.slip[upd_emit] = np.clip(slip, *bounds.slip)[upd_emit]
        params.learn[update] = np.clip(learn, *bounds.learn)[update]
        params.prior[upd_prior] = np.clip(prior, *bounds.prior)[upd_prior]
        if forgetting and st.forgot is not None:
            forget = _shrink(
                st.forgot, trans_rows - st.trans_unknown, anchor["forget"], no_parent, strength, 0.0
            )
            params.forget[update] = np.clip(forget, *bounds.forget)[update]

        active = update
        running_rows = float(skill_rows[active].sum())
        if running_rows < rebuild_below * problem_rows:
            keep = np.flatnonzero(active[seqs.skill])
            fresh = _Problem(seqs.subset(keep), groups, n_prior, n_emit, n_rest, chunk, forgetting)
            fresh.inherit(problem)
            problem = fresh
            problem_rows = problem.n_rows
    return params, loglik, it
