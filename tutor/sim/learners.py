"""Simulated learners over a course, vectorised over a population.

The model is BKT-shaped on purpose (a binary latent "knows the skill" per skill, guess and slip, a learning
transition per practice) so its parameters can be calibrated from BKT fits on real logs, and it adds what BKT
leaves out and a scheduler should care about:

* heterogeneous learners: an ability (logit shift of guess, slip and prior knowledge) and a learning-rate
  multiplier per learner;
* prerequisites: practice on a skill whose direct prerequisites are not known teaches `prereq_factor` times as
  much per missing prerequisite; initial knowledge also follows the graph;
* item difficulty: harder items are answered worse, and learning is best for items a little above the learner's
  level (a zone of proximal development of width `zpd_width`, normalised so the average item teaches at the
  calibrated rate);
* forgetting: a known skill is lost at rate 1/stability (days); stability starts at `stability_days` and grows
  with each practice, more when the practice is spaced (the retrievability that was at risk);
* fatigue and dropout: sessions of about `session_length` exercises separated by `gap_days`; slip rises within a
  session; a learner may quit for good at a session's end, more likely after a run of failures.

Everything random comes from `numpy.random.Generator`s derived from one seed: learner traits from one stream and
the per-step noise from another that draws a fixed block per step, so that two policies run on the same seed
meet the same learners and, as far as their choices allow, the same luck (common random numbers).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Self

import numpy as np

from tutor.sim.course import Course

DAY = 86400.0


def _logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.asarray(np.log(p / (1 - p)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def answer_probability(
    knows: np.ndarray,
    guess: np.ndarray,
    slip: np.ndarray,
    shift: np.ndarray,
    fatigue: np.ndarray | float = 0.0,
) -> np.ndarray:
    """P(correct): 1 - slip if the learner knows the skill(s), else guess; `shift` = effect x (difficulty -
    ability) moves both on the logit scale (hard items are guessed less and slipped more), fatigue adds slips."""
    s = _sigmoid(_logit(slip) + shift + fatigue)
    g = _sigmoid(_logit(guess) - shift)
    return np.asarray(np.where(knows, 1.0 - s, g))


def learning_probability(learn: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """P(learn) = 1 - (1 - T)^e: `e` multiplies the number of "effective practices" (learning rate, readiness,
    item fit), so e = 1 is the BKT transition and e = 0 teaches nothing."""
    return np.asarray(1.0 - (1.0 - learn) ** exponent)


@dataclass
class SimParams:
    """Population-level parameters; per-skill values are drawn around the means with a course-level seed.

    Defaults are the calibration on ASSISTments 2009 skill-builder data (see `tutor.sim.calibration`) for the
    BKT-shaped part; forgetting, fatigue and dropout cannot be identified from data without timestamps and keep
    literature-informed defaults.
    """

    # BKT-shaped per-skill means (calibrated) and their spread across the skills of one course (logit scale).
    prior: float = 0.68
    learn: float = 0.24
    guess: float = 0.2
    slip: float = 0.2
    skill_sd: float = 0.3
    # Learners (calibrated spreads).
    ability_sd: float = 0.4
    rate_sd: float = 0.8
    difficulty_effect: float = 0.5  # logit change of guess/slip per unit of item difficulty minus ability
    # Prerequisites: learning multiplier per unknown direct prerequisite; prior-knowledge multiplier likewise.
    prereq_factor: float = 0.15
    prior_prereq_factor: float = 0.3
    # Zone of proximal development: learning peaks at difficulty = ability + zpd_center.
    zpd_center: float = 0.5
    zpd_width: float = 0.8
    zpd_strength: float = 1.0  # 0 turns the difficulty dependence of learning off
    # Forgetting (days).
    stability_days: float = 30.0
    stability_gain: float = 1.5
    stability_min_gain: float = 0.15
    # Sessions, fatigue and dropout.
    exercise_seconds: float = 45.0
    session_length: float = 25.0
    gap_days: float = 1.0
    fatigue: float = 0.5  # slip logit increase at the end of a typical session
    dropout: float = 0.005  # chance to quit for good at a session end
    frustration: float = 0.03  # extra quit chance at a session end after a run of 5+ failures
    frustration_quit: int = 10  # consecutive failures that end a session early

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Self:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def with_(self, **changes: Any) -> SimParams:
        data = asdict(self)
        data.update(changes)
        return SimParams(**data)


def zpd_factor(params: SimParams, difficulty: np.ndarray, ability: np.ndarray) -> np.ndarray:
    """Unnormalised learning multiplier of an item for a learner: a bump around difficulty = ability + centre."""
    z = (difficulty - ability - params.zpd_center) / params.zpd_width
    return np.asarray(1.0 - params.zpd_strength + params.zpd_strength * np.exp(-0.5 * z * z))


@dataclass(frozen=True)
class SkillParams:
    """Per-skill values for one course, drawn from `SimParams` with the course seed."""

    prior: np.ndarray
    learn: np.ndarray
    guess: np.ndarray
    slip: np.ndarray

    @classmethod
    def draw(
        cls, params: SimParams, n_skills: int, random_state: int | np.random.Generator | None = 0
    ) -> Self:
        rng = np.random.default_rng(random_state)

        def around(mean: float, lo: float, hi: float) -> np.ndarray:
            x = _sigmoid(_logit(mean) + params.skill_sd * rng.standard_normal(n_skills))
            return np.asarray(np.clip(x, lo, hi))

        return cls(
            prior=around(params.prior, 0.01, 0.95),
            learn=around(params.learn, 0.01, 0.9),
            guess=around(params.guess, 0.01, 0.45),
            slip=around(params.slip, 0.01, 0.35),
        )


@dataclass
class PopulationState:
    """The true state: read by the harness for measurement only, never by policies."""

    known: np.ndarray  # bool (n, S)
    stability: np.ndarray  # float (n, S), days
    last_practice: np.ndarray  # float (n, S), seconds, -inf when never
    time: np.ndarray  # float (n,), seconds
    in_session: np.ndarray  # int (n,)
    session_len: np.ndarray  # int (n,)
    fails_in_row: np.ndarray  # int (n,)
    active: np.ndarray  # bool (n,)
    steps: np.ndarray  # int (n,)


class Population:
    """n simulated learners on one course. `step(items)` is one exercise for every active learner.

    Learner traits come from `seed`; the per-step noise from `seed + 1`, drawn as a fixed-size block per step.
    """

    def __init__(
        self,
        course: Course,
        params: SimParams,
        n_learners: int,
        seed: int,
        *,
        skill_params: SkillParams | None = None,
        course_seed: int = 0,
    ) -> None:
        self.course = course
        self.params = params
        self.n = n_learners
        self.skill = skill_params or SkillParams.draw(params, course.n_skills, course_seed)
        self.q = course.q_matrix  # (I, S)
        self.prereq = course.prerequisite_matrix()  # (S, S)
        self.difficulty = course.difficulty
        self._item_skills = [np.array(s, dtype=np.int64) for s in course.item_skills]
        self._single = all(len(s) == 1 for s in course.item_skills)
        self._primary = course.primary_skill
        traits = np.random.default_rng([seed, 0])
        self.noise = np.random.default_rng([seed, 1])
        p = params
        self.ability = p.ability_sd * traits.standard_normal(self.n)
        self.rate = np.exp(p.rate_sd * traits.standard_normal(self.n) - 0.5 * p.rate_sd**2)
        self.state = self._initial_state(traits)
        # Normalise the ZPD factor so that an item drawn uniformly from the course teaches at the calibrated rate
        # for a learner of average ability.
        self._zpd_norm = float(np.mean(self._zpd_raw(self.difficulty[None, :], np.zeros((1, 1)))))

    # -- construction ---------------------------------------------------------------------------------------
    def _initial_state(self, rng: np.random.Generator) -> PopulationState:
        n, s_count = self.n, self.course.n_skills
        known = np.zeros((n, s_count), dtype=bool)
        base = _logit(self.skill.prior)[None, :] + self.ability[:, None]
        u = rng.random((n, s_count))
        for s in self.course.topological_positions():
            pres = np.flatnonzero(self.prereq[s])
            missing = (~known[:, pres]).sum(axis=1) if len(pres) else np.zeros(n, dtype=np.int64)
            prob = _sigmoid(base[:, s]) * self.params.prior_prereq_factor**missing
            known[:, s] = u[:, s] < prob
        stability = np.full((n, s_count), self.params.stability_days) * np.exp(0.3 * self.ability)[:, None]
        session_len = self._draw_session_len(rng, n)
        return PopulationState(
            known=known,
            stability=stability,
            last_practice=np.full((n, s_count), -np.inf),
            time=np.zeros(n),
            in_session=np.zeros(n, dtype=np.int64),
            session_len=session_len,
            fails_in_row=np.zeros(n, dtype=np.int64),
            active=np.ones(n, dtype=bool),
            steps=np.zeros(n, dtype=np.int64),
        )

    def _draw_session_len(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.maximum(5, rng.poisson(self.params.session_length, size=n)).astype(np.int64)

    def _zpd_raw(self, difficulty: np.ndarray, ability: np.ndarray) -> np.ndarray:
        return zpd_factor(self.params, difficulty, ability)

    # -- observation-free quantities (measurement) ------------------------------------------------------------
    def p_correct(self, items: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """True probability that each learner answers `items[k]` correctly now (fatigue included)."""
        st = self.state
        rows = np.arange(self.n) if rows is None else rows
        prim = self._primary[items]
        if self._single:
            knows = st.known[rows, prim]
        else:
            knows = np.array(
                [st.known[r, self._item_skills[i]].all() for r, i in zip(rows, items, strict=True)]
            )
        shift = self.params.difficulty_effect * (self.difficulty[items] - self.ability[rows])
        fatigue = self.params.fatigue * st.in_session[rows] / self.params.session_length
        return answer_probability(knows, self.skill.guess[prim], self.skill.slip[prim], shift, fatigue)

    def post_test(self) -> np.ndarray:
        """(n,) expected correctness over all skills on an item of typical difficulty, rested: the score a
        post-test would measure from the true state."""
        shift = self.params.difficulty_effect * -self.ability[:, None]
        pc = answer_probability(self.state.known, self.skill.guess[None, :], self.skill.slip[None, :], shift)
        return np.asarray(pc.mean(axis=1))

    def all_known(self) -> np.ndarray:
        return np.asarray(self.state.known.all(axis=1))

    def learn_probability(self, items: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """(len(rows),) chance that practising `items[k]` teaches its (first) skill to a learner who lacks it."""
        st = self.state
        rows = np.arange(self.n) if rows is None else rows
        prim = self._primary[items]
        missing = (self.prereq[prim] & ~st.known[rows]).sum(axis=1)
        zpd = self._zpd_raw(self.difficulty[items], self.ability[rows]) / self._zpd_norm
        exponent = self.rate[rows] * zpd * self.params.prereq_factor**missing
        return learning_probability(self.skill.learn[prim], exponent)

    # -- dynamics -------------------------------------------------------------------------------------------
    def step(self, items: np.ndarray) -> np.ndarray:
        """Every active learner answers `items[k]` (item positions; ignored for inactive learners).

        Returns the correctness (False for inactive learners). Order within a step: answer with the current
        knowledge, learn from the practice and its feedback, then time passes (forgetting, session end, dropout).
        The noise is one (n, 5 + 2S) block per step whatever happens, for common random numbers across policies.
        """
        p = self.params
        st = self.state
        n_sk = self.course.n_skills
        items = np.asarray(items, dtype=np.int64)
        u = self.noise.random((self.n, 5 + 2 * n_sk))
        u_forget, u_learn = u[:, 5 : 5 + n_sk], u[:, 5 + n_sk :]
        rows = np.flatnonzero(st.active)
        it = items[rows]
        correct = np.zeros(self.n, dtype=bool)
        ok = u[rows, 0] < self.p_correct(it, rows)
        correct[rows] = ok

        # Learning from the practice and its feedback; already known skills get more stable instead.
        pairs_r: list[np.ndarray] = []
        pairs_s: list[np.ndarray] = []
        pairs_k: list[np.ndarray] = []
        if self._single:
            pairs_r, pairs_s, pairs_k = [rows], [self._primary[it]], [np.arange(len(rows))]
        else:
            for k, i in enumerate(it):
                sk = self._item_skills[i]
                pairs_r.append(np.full(len(sk), rows[k]))
                pairs_s.append(sk)
                pairs_k.append(np.full(len(sk), k))
        r_ = np.concatenate(pairs_r)
        s_ = np.concatenate(pairs_s)
        k_ = np.concatenate(pairs_k)
        was_known = st.known[r_, s_].copy()
        missing = (self.prereq[s_] & ~st.known[r_]).sum(axis=1)
        zpd = self._zpd_raw(self.difficulty[it[k_]], self.ability[r_]) / self._zpd_norm
        exponent = self.rate[r_] * zpd * p.prereq_factor**missing
        learn_p = learning_probability(self.skill.learn[s_], exponent)
        newly = (~was_known) & (u_learn[r_, s_] < learn_p)
        st.known[r_[newly], s_[newly]] = True
        st.stability[r_[newly], s_[newly]] = p.stability_days * np.exp(0.3 * self.ability[r_[newly]])
        rk, sk = r_[was_known], s_[was_known]
        elapsed = np.maximum(st.time[rk] - st.last_practice[rk, sk], 0.0) / DAY
        at_risk = 1.0 - np.exp(-elapsed / st.stability[rk, sk])
        st.stability[rk, sk] *= 1.0 + p.stability_min_gain + p.stability_gain * at_risk
        st.last_practice[r_, s_] = st.time[r_]

        # Time passes: one exercise, then maybe the end of a session (a gap of days) and a dropout.
        st.steps[rows] += 1
        st.fails_in_row[rows] = np.where(ok, 0, st.fails_in_row[rows] + 1)
        st.in_session[rows] += 1
        ends = (st.in_session[rows] >= st.session_len[rows]) | (st.fails_in_row[rows] >= p.frustration_quit)
        gap = p.gap_days * DAY * (0.5 + u[rows, 1])  # 0.5 .. 1.5 gaps
        dt = np.where(ends, p.exercise_seconds + gap, p.exercise_seconds)
        surv = np.exp(-(dt[:, None] / DAY) / st.stability[rows])
        st.known[rows] &= u_forget[rows] < surv
        st.time[rows] += dt
        ended = rows[ends]
        if len(ended):
            quit_p = p.dropout + p.frustration * np.minimum(st.fails_in_row[ended], 5) / 5.0
            st.active[ended[u[ended, 2] < quit_p]] = False
            st.in_session[ended] = 0
            st.session_len[ended] = np.maximum(5, np.round(p.session_length * (0.5 + u[ended, 3]))).astype(
                np.int64
            )
            st.fails_in_row[ended] = 0
        return correct
