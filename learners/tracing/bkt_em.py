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
        """Keep, for every skill, the restart `restart[skill]` (shape (n_skills,)), as a single-restart Params."""

        def pick(a: np.ndarray, owner: np.ndarray) -> np.ndarray:
            out: np.ndarray = a[np.arange(a.shape[0]), restart[owner]][:, None].copy()
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
    chosen and convergence is judged per skill. `prior_parent`/`emit_parent` give the skill-level group that a
    sparse group is shrunk towards (-1: shrink towards the fixed anchor instead).
    """

    n_skills: int
    lane_skill: np.ndarray  # per lane (rank order)
    lane_prior: np.ndarray  # per lane; only first chunks are used
    row_emit: np.ndarray  # per input row
    prior_owner: np.ndarray
    emit_owner: np.ndarray
    prior_parent: np.ndarray
    emit_parent: np.ndarray


@dataclass
class FitResult:
    params: Params  # single restart
    loglik: np.ndarray  # per skill
    n_iter: int


def _csr(groups: np.ndarray, slots: np.ndarray, n_groups: int, size: int) -> sp.csr_matrix:
    data = np.ones(len(slots))
    return sp.csr_matrix((data, (groups, slots)), shape=(n_groups, size))


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


def baum_welch(
    layout: Layout,
    correct: np.ndarray,
    groups: Groups,
    init: Params,
    bounds: Bounds,
    anchor: dict[str, float],
    *,
    forgetting: bool,
    max_iter: int,
    tol: float,
    strength: float = 0.0,
    parent_strength: float = 0.0,
    trace: list[np.ndarray] | None = None,
) -> tuple[Params, np.ndarray, int]:
    """EM from `init` (all restarts at once). Returns the parameters, the log-likelihood per (skill, restart) of
    the last E-step, and the number of iterations run. Stops when no skill's log-likelihood per answer moved by
    more than `tol` in an iteration."""
    n_rest = init.learn.shape[1]
    size, n_lanes = layout.size, layout.n_lanes
    off = layout.offsets
    steps = list(enumerate(layout.real_counts.tolist()))
    slot = layout.row_slot
    obs = np.zeros(size)
    obs[slot] = correct

    emit_slot = np.zeros(size, dtype=np.int64)
    emit_slot[slot] = groups.row_emit
    n_prior = init.prior.shape[0]
    n_emit = init.guess.shape[0]
    n_skills = groups.n_skills

    # reductions from slots to groups as sparse matrices (one C loop each)
    row_skill = groups.lane_skill[_lane_of_slot(layout)[slot]]
    m_emit = _csr(groups.row_emit, slot, n_emit, size)
    m_emit1 = _csr(groups.row_emit[correct == 1], slot[correct == 1], n_emit, size)
    has_next = layout.row_has_next
    m_trans = _csr(row_skill[has_next], slot[has_next], n_skills, size)
    first = np.flatnonzero(layout.lane_first)
    m_prior = _csr(groups.lane_prior[first], first, n_prior, size)
    m_skill = _csr(row_skill, slot, n_skills, size)
    n_emit_rows = np.asarray(m_emit.sum(axis=1))
    n_emit_correct = np.asarray(m_emit1.sum(axis=1))
    n_trans_rows = np.asarray(m_trans.sum(axis=1))
    n_prior_lanes = np.asarray(m_prior.sum(axis=1))
    n_skill_rows = np.maximum(np.asarray(m_skill.sum(axis=1)), 1.0)
    no_parent = np.full(n_skills, -1, dtype=np.int64)

    # time-major slot arrays; "unmastered" probabilities throughout (see `bkt_step` for why)
    pred = np.zeros((size, n_rest))  # P(not mastered | answers before)
    filt = np.zeros((size, n_rest))  # P(not mastered | answers up to and including this one)
    norm = np.ones((size, n_rest))  # P(this answer | answers before)
    stats = np.zeros((size, 3 if forgetting else 2, n_rest))
    gam = stats[:, 0, :]  # P(not mastered | all answers)
    x01 = stats[:, 1, :]  # P(not mastered here, mastered at the next step | all answers)
    x10 = stats[:, 2, :] if forgetting else None  # P(mastered here, not at the next step | all answers)
    flat_stats = stats.reshape(size, -1)

    has_prev = layout.lane_prev >= 0
    has_succ = layout.lane_next >= 0
    succ_end = layout.lane_end_slot[has_succ]
    succ_first = layout.lane_next[has_succ]  # slot of the successor's first row == its lane rank
    nosucc_end = layout.lane_end_slot[~has_succ]
    prev_lanes = np.flatnonzero(has_prev)
    prev_end = layout.lane_end_slot[layout.lane_prev[has_prev]]
    boundary_gam: np.ndarray | None = None
    boundary_pred: np.ndarray | None = None
    emit_index = emit_slot * 2 + (obs > 0.5)

    params = Params(
        prior=init.prior.copy(),
        learn=init.learn.copy(),
        forget=init.forget.copy(),
        guess=init.guess.copy(),
        slip=init.slip.copy(),
    )
    last_ll: np.ndarray | None = None
    ll = np.zeros((n_skills, n_rest))
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        learn_l = params.learn[groups.lane_skill]
        stay_l = 1.0 - learn_l
        forget_l = params.forget[groups.lane_skill]
        # P(answer | mastered) and P(answer | not mastered) per slot: one gather from a (group, answer) table
        lik1 = np.take(
            np.stack([params.slip, 1.0 - params.slip], axis=1).reshape(-1, n_rest), emit_index, axis=0
        )
        lik0 = np.take(
            np.stack([1.0 - params.guess, params.guess], axis=1).reshape(-1, n_rest), emit_index, axis=0
        )

        # ---- forward (filtering) ----
        pred[:n_lanes] = 1.0 - params.prior[groups.lane_prior]
        if boundary_pred is not None:
            pred[prev_lanes] = boundary_pred
        for t, k in steps:
            a, b = int(off[t]), int(off[t + 1])
            c = a + k
            q = pred[a:c]
            a0 = q * lik0[a:c]
            z = np.add((1.0 - q) * lik1[a:c], a0, out=norm[a:c])
            f = np.divide(a0, z, out=filt[a:c])
            if forgetting:
                pred[b : b + k] = f * stay_l[:k] + (1.0 - f) * forget_l[:k]
            else:
                np.multiply(f, stay_l[:k], out=pred[b : b + k])
        boundary_pred = pred[prev_end]

        # ---- backward (smoothing) ----
        gam[nosucc_end] = pred[nosucc_end]
        gam[succ_end] = pred[succ_end] if boundary_gam is None else boundary_gam
        for t, k in reversed(steps):
            a, b = int(off[t]), int(off[t + 1])
            c = a + k
            f = filt[a:c]
            g0 = gam[b : b + k]
            q1 = pred[b : b + k]
            # smoothed / predicted, per state of the next step (P(mastered) >= min(learn, 1 - forget) > 0)
            r0 = g0 / np.maximum(q1, 1e-300)
            r1 = (1.0 - g0) / (1.0 - q1)
            np.multiply(f * learn_l[:k], r1, out=x01[a:c])
            np.add(f * stay_l[:k] * r0, x01[a:c], out=gam[a:c])
            if forgetting and x10 is not None:
                np.multiply((1.0 - f) * forget_l[:k], r0, out=x10[a:c])
        boundary_gam = gam[succ_first]

        # ---- log-likelihood, convergence ----
        ll = np.asarray(m_skill @ np.log(norm))
        if trace is not None:
            trace.append(ll.copy())
        if last_ll is not None and float(np.max(np.abs(ll - last_ll) / n_skill_rows)) < tol:
            break
        last_ll = ll

        # ---- M-step ----
        eg = m_emit @ gam
        eg1 = m_emit1 @ gam
        # guess = P(correct | not mastered); slip = P(wrong | mastered)
        guess = _shrink(eg1, eg, anchor["guess"], groups.emit_parent, strength, parent_strength)
        n_wrong = n_emit_rows - n_emit_correct
        slip = _shrink(
            n_wrong - (eg - eg1),
            n_emit_rows - eg,
            anchor["slip"],
            groups.emit_parent,
            strength,
            parent_strength,
        )
        tr = (m_trans @ flat_stats).reshape(n_skills, -1, n_rest)
        learn = _shrink(tr[:, 1], tr[:, 0], anchor["learn"], no_parent, strength, 0.0)
        prior = _shrink(
            n_prior_lanes - m_prior @ gam,
            n_prior_lanes,
            anchor["prior"],
            groups.prior_parent,
            strength,
            parent_strength,
        )
        params.guess = np.clip(guess, *bounds.guess)
        params.slip = np.clip(slip, *bounds.slip)
        params.learn = np.clip(learn, *bounds.learn)
        params.prior = np.clip(prior, *bounds.prior)
        if forgetting:
            forget = _shrink(tr[:, 2], n_trans_rows - tr[:, 0], anchor["forget"], no_parent, strength, 0.0)
            params.forget = np.clip(forget, *bounds.forget)
    return params, ll, it


def _lane_of_slot(layout: Layout) -> np.ndarray:
    """Lane rank of every slot."""
    counts = np.diff(layout.offsets)
    starts = np.repeat(layout.offsets[:-1], counts)
    out: np.ndarray = np.arange(layout.size, dtype=np.int64) - starts
    return out
