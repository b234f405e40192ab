"""Calibrate the simulator's learner model on real logs and report how well simulated answers match them.

Procedure (docs/decisions/0004-scheduler.md):

1. Fit the project's BKT tracer (`learners.tracing.bkt.BKT`) per skill on the log.
2. Replay every real (learner, skill) practice sequence in the simulator's single-skill model with that skill's
   fitted BKT parameters, learners drawn with the candidate ability and learning-rate spreads, items of random
   difficulty, and the data's own stopping behaviour: the empirical chance that a sequence ends after an answer,
   by attempt number and current run of correct answers (learners leave after successes far more often, which
   is what shapes the real accuracy curve; a fixed "three in a row" rule explains only a fifth of the endings).
3. Choose the learner spreads (and a shift of the prior knowledge, which spreads bias) that make the simulated
   accuracy-by-attempt-number curve closest to the real one (RMSE over attempts 1..`max_attempt`).

Only the BKT-shaped part is identifiable this way. The data has no timestamps and no prerequisite graph, so
forgetting, fatigue, dropout and the prerequisite effect keep their defaults, and the report says so.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from learners.tracing.base import AttemptLog
from tutor.sim.learners import (
    SimParams,
    _logit,
    _sigmoid,
    answer_probability,
    learning_probability,
    zpd_factor,
)


@dataclass(frozen=True)
class PracticeSequences:
    """One row per (learner, skill) sequence of a log, answers in order."""

    skill: np.ndarray  # (n,) index into the fitted skill arrays
    length: np.ndarray  # (n,)
    correct: np.ndarray  # (n, max_len) int8, -1 padding


def practice_sequences(log: AttemptLog, skills: np.ndarray, *, max_len: int = 200) -> PracticeSequences:
    """Split a log into per-(learner, skill) answer sequences (first `max_len` answers of each)."""
    order = np.lexsort((np.arange(len(log)), log.skill, log.learner))
    learner, skill, correct = log.learner[order], log.skill[order], log.correct[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (learner[1:] != learner[:-1]) | (skill[1:] != skill[:-1])
    starts = np.flatnonzero(new)
    lengths = np.diff(np.append(starts, len(order)))
    idx = np.arange(len(order))
    pos = idx - np.repeat(starts, lengths)
    seq = np.repeat(np.arange(len(starts)), lengths)
    keep = pos < max_len
    mat = np.full((len(starts), min(max_len, int(lengths.max()))), -1, dtype=np.int8)
    mat[seq[keep], pos[keep]] = correct[keep]
    return PracticeSequences(
        skill=np.searchsorted(skills, skill[starts]),
        length=np.minimum(lengths, max_len),
        correct=mat,
    )


def accuracy_curve(correct: np.ndarray, max_attempt: int) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy at attempt 1..max_attempt over the sequences that reach it, and how many do."""
    c = correct[:, :max_attempt]
    seen = c >= 0
    counts = seen.sum(axis=0)
    acc = np.where(counts > 0, (c == 1).sum(axis=0) / np.maximum(counts, 1), np.nan)
    return acc, counts


T_BUCKETS = 6  # attempt numbers 1, 2, 3, 4, 5, 6+
RUN_BUCKETS = 4  # current run of correct answers 0, 1, 2, 3+


def stopping_hazard(seqs: PracticeSequences) -> np.ndarray:
    """(T_BUCKETS, RUN_BUCKETS): P(the sequence ends after this answer | attempt number, run of correct)."""
    c, length = seqs.correct, seqs.length
    stops = np.zeros((T_BUCKETS, RUN_BUCKETS))
    seen = np.zeros((T_BUCKETS, RUN_BUCKETS))
    run = np.zeros(len(length), dtype=np.int64)
    for t in range(c.shape[1]):
        alive = length > t
        run = np.where(c[:, t] == 1, run + 1, 0)
        rb = np.minimum(run[alive], RUN_BUCKETS - 1)
        tb = min(t, T_BUCKETS - 1)
        np.add.at(stops[tb], rb, (length[alive] == t + 1).astype(np.float64))
        np.add.at(seen[tb], rb, 1.0)
    return np.asarray((stops + 0.5) / (seen + 1.0))


def _ends_in_run(correct: np.ndarray, length: np.ndarray, run: int) -> np.ndarray:
    rows = np.arange(len(length))
    ok = length >= run
    for j in range(1, run + 1):
        col = np.maximum(length - j, 0)
        ok &= correct[rows, col] == 1
    return ok


def simulate_practice(
    params: SimParams,
    seqs: PracticeSequences,
    prior: np.ndarray,
    learn: np.ndarray,
    guess: np.ndarray,
    slip: np.ndarray,
    hazard: np.ndarray,
    *,
    prior_shift: float = 0.0,
    learn_scale: float = 1.0,
    difficulty_levels: Sequence[float] = (-1.0, -0.6, -0.2, 0.2, 0.6, 1.0),
    random_state: int | np.random.Generator | None = 0,
) -> np.ndarray:
    """Simulated answers, one sequence per real one (same skill), ending by the `hazard` table, padded with -1.

    Uses the simulator's own answer and learning equations with the prerequisites taken as known (the data has
    no graph) and no forgetting or fatigue (no timestamps).
    """
    rng = np.random.default_rng(random_state)
    n = len(seqs.length)
    k = seqs.skill
    ability = params.ability_sd * rng.standard_normal(n)
    rate = np.exp(params.rate_sd * rng.standard_normal(n) - 0.5 * params.rate_sd**2)
    levels = np.asarray(difficulty_levels, dtype=np.float64)
    norm = float(np.mean(zpd_factor(params, levels, np.zeros(1))))
    known = rng.random(n) < _sigmoid(_logit(prior[k]) + prior_shift + ability)
    out = np.full((n, seqs.correct.shape[1]), -1, dtype=np.int8)
    running = np.ones(n, dtype=bool)
    streak = np.zeros(n, dtype=np.int64)
    for t in range(out.shape[1]):
        rows = np.flatnonzero(running)
        if len(rows) == 0:
            break
        d = levels[rng.integers(0, len(levels), size=len(rows))]
        shift = params.difficulty_effect * (d - ability[rows])
        pc = answer_probability(known[rows], guess[k[rows]], slip[k[rows]], shift)
        ok = rng.random(len(rows)) < pc
        out[rows, t] = ok
        zpd = zpd_factor(params, d, ability[rows]) / norm
        learned = rng.random(len(rows)) < learning_probability(learn[k[rows]], learn_scale * rate[rows] * zpd)
        known[rows] |= learned
        streak[rows] = np.where(ok, streak[rows] + 1, 0)
        h = hazard[min(t, T_BUCKETS - 1), np.minimum(streak[rows], RUN_BUCKETS - 1)]
        running[rows[rng.random(len(rows)) < h]] = False
    return out


def _weighted_logit_summary(values: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """Weighted median (as a probability) and weighted sd on the logit scale."""
    z = _logit(values)
    order = np.argsort(z)
    cw = np.cumsum(weights[order]) / weights.sum()
    med = float(z[order][np.searchsorted(cw, 0.5)])
    mean = float(np.average(z, weights=weights))
    sd = float(np.sqrt(np.average((z - mean) ** 2, weights=weights)))
    return float(_sigmoid(np.array(med))), sd


@dataclass
class Calibration:
    """The calibrated parameters and the evidence of fit."""

    params: SimParams
    prior_shift: float
    learn_scale: float
    real_curve: np.ndarray
    sim_curve: np.ndarray
    baseline_curve: np.ndarray  # the BKT-only simulator (no learner heterogeneity, no item effects)
    rmse: float
    baseline_rmse: float
    real_lengths: dict[str, float]
    sim_lengths: dict[str, float]
    bkt_summary: dict[str, dict[str, float]]
    grid: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": dict(vars(self.params)),
            "prior_shift": self.prior_shift,
            "learn_scale": self.learn_scale,
            "attempt": list(range(1, len(self.real_curve) + 1)),
            "real_curve": [round(float(x), 4) for x in self.real_curve],
            "sim_curve": [round(float(x), 4) for x in self.sim_curve],
            "bkt_only_curve": [round(float(x), 4) for x in self.baseline_curve],
            "rmse": round(self.rmse, 4),
            "bkt_only_rmse": round(self.baseline_rmse, 4),
            "real_lengths": self.real_lengths,
            "sim_lengths": self.sim_lengths,
            "bkt_summary": self.bkt_summary,
            "not_identified": [
                "stability_days",
                "stability_gain",
                "fatigue",
                "dropout",
                "prereq_factor",
                "zpd_*",
            ],
        }


def _length_stats(correct: np.ndarray, run: int) -> dict[str, float]:
    length = (correct >= 0).sum(axis=1)
    return {
        "median": float(np.median(length)),
        "p90": float(np.percentile(length, 90)),
        "share_len1": float((length == 1).mean()),
        "ends_in_run3": float(_ends_in_run(correct, length, run).mean()),
    }


def calibrate(
    log: AttemptLog,
    *,
    base: SimParams | None = None,
    ability_sds: Sequence[float] = (0.0, 0.4, 0.8, 1.2),
    rate_sds: Sequence[float] = (0.0, 0.4, 0.8),
    prior_shifts: Sequence[float] = (-0.5, -0.25, 0.0, 0.25, 0.5),
    learn_scales: Sequence[float] = (1.0, 1.5, 2.0, 2.5, 3.0),
    max_attempt: int = 10,
    tracer_params: dict[str, Any] | None = None,
    random_state: int = 0,
) -> Calibration:
    """Fit BKT on `log`, then grid-search the learner spreads that best reproduce its accuracy curve."""
    from learners.tracing.bkt import BKT

    base = base or SimParams()
    tracer = BKT(**(tracer_params or {})).fit(log)
    skills = tracer.skills_
    prior, learn, guess, slip = tracer.prior_, tracer.learn_, tracer.guess_, tracer.slip_
    seqs = practice_sequences(log, skills)
    real_curve, _ = accuracy_curve(seqs.correct, max_attempt)
    hazard = stopping_hazard(seqs)
    weights = np.bincount(seqs.skill, minlength=len(skills)).astype(np.float64) + 1e-9
    summary: dict[str, dict[str, float]] = {}
    for name, v in (("prior", prior), ("learn", learn), ("guess", guess), ("slip", slip)):
        med, sd = _weighted_logit_summary(np.clip(v, 1e-4, 1 - 1e-4), weights)
        summary[name] = {"median": round(med, 4), "logit_sd": round(sd, 4)}

    def run(p: SimParams, shift: float, scale: float) -> tuple[np.ndarray, float, np.ndarray]:
        sim = simulate_practice(
            p,
            seqs,
            prior,
            learn,
            guess,
            slip,
            hazard,
            prior_shift=shift,
            learn_scale=scale,
            random_state=random_state,
        )
        curve, _ = accuracy_curve(sim, max_attempt)
        return curve, float(np.sqrt(np.nanmean((curve - real_curve) ** 2))), sim

    bkt_only = base.with_(ability_sd=0.0, rate_sd=0.0, difficulty_effect=0.0, zpd_strength=0.0)
    base_curve, base_rmse, _ = run(bkt_only, 0.0, 1.0)
    best: tuple[float, SimParams, float, float, np.ndarray, np.ndarray] | None = None
    grid: list[dict[str, float]] = []
    for a_sd, r_sd, shift, scale in itertools.product(ability_sds, rate_sds, prior_shifts, learn_scales):
        p = base.with_(ability_sd=a_sd, rate_sd=r_sd)
        curve, rmse, sim = run(p, shift, scale)
        grid.append(
            {
                "ability_sd": a_sd,
                "rate_sd": r_sd,
                "prior_shift": shift,
                "learn_scale": scale,
                "rmse": round(rmse, 5),
            }
        )
        if best is None or rmse < best[0]:
            best = (rmse, p, shift, scale, curve, sim)
    assert best is not None
    rmse, p, shift, scale, curve, sim = best
    calibrated = p.with_(
        prior=float(_sigmoid(np.array(_logit(summary["prior"]["median"]) + shift))),
        learn=float(1.0 - (1.0 - summary["learn"]["median"]) ** scale),
        guess=summary["guess"]["median"],
        slip=summary["slip"]["median"],
    )
    return Calibration(
        params=calibrated,
        prior_shift=shift,
        learn_scale=scale,
        real_curve=real_curve,
        sim_curve=curve,
        baseline_curve=base_curve,
        rmse=rmse,
        baseline_rmse=base_rmse,
        real_lengths=_length_stats(seqs.correct, 3),
        sim_lengths=_length_stats(sim, 3),
        bkt_summary=summary,
        grid=grid,
    )
