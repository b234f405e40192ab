"""Evaluation harness: run policies on simulated learners through the service's policy interface and measure.

Every policy meets the same learners (same seeds, common random numbers), the same candidate sets (all items not
served in the last `window` exercises, as the service does) and the same BKT view. Measurement reads the
simulator's true state; policies never do.

Measured per learner: the post-test score after each number of exercises (expected correctness over all skills,
from the true state), the number of exercises after which every skill was known for the first time (censored at
the horizon), and how many exercises before that went to skills the learner already knew (and how many of those to
skills known from the start rather than learned, or relearned, during the run).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from scipy import stats

from learners.tracing.base import AttemptLog
from tutor.policy.base import Candidate, LearnerView, Policy
from tutor.sim.env import SchedulingEnv, Setting
from tutor.sim.tracking import bkt_posterior, bkt_transition

FeatureFn = Callable[[Sequence[Candidate], LearnerView], np.ndarray]


@dataclass
class DecisionLog:
    """Per decision, as the service's decision log would hold it, plus the simulator's ground truth.

    `reward` is the measured learning gain: the change of the tracer's mastery of the item's skills caused by the
    answer (posterior and learning transition). `truth` holds, per shadow policy, the expected reward of that
    policy at this context computed from the true state (what running it here would earn on average), and
    `target_prob`/`target_q` hold its probability of the logged item and its expected q-hat for doubly robust;
    `skill_propensity` and `target_skill_prob` are the logging and shadow probabilities of the logged item's
    primary skill (every candidate of that skill together), the clusters of the clustered estimator.
    """

    learner: np.ndarray
    step: np.ndarray
    item: np.ndarray
    propensity: np.ndarray
    reward: np.ndarray
    correct: np.ndarray
    skill: np.ndarray  # primary skill position of the chosen item
    p_hat: np.ndarray  # tracer's P(correct) of the chosen item before the answer
    features: np.ndarray  # (N, F) of the chosen candidate, if a feature function was given
    skill_features: np.ndarray | None = None  # (N, S, F) float32: one candidate per skill (NaN if none)
    target_prob: dict[str, np.ndarray] = field(default_factory=dict)
    target_q: dict[str, np.ndarray] = field(default_factory=dict)
    truth: dict[str, np.ndarray] = field(default_factory=dict)
    q_chosen: np.ndarray | None = None
    time: np.ndarray | None = None  # seconds, the learner's clock when the item was served (as logged)
    skill_propensity: np.ndarray | None = None  # logging probability of the served item's primary skill
    target_skill_prob: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def concat(cls, logs: Sequence[DecisionLog], sizes: Sequence[int]) -> DecisionLog:
        """One log from logs of disjoint groups of learners (`sizes[k]` learners in `logs[k]`, numbered from 0):
        learners are renumbered after those of the logs before them."""
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        out: dict[str, Any] = {}
        for f in fields(cls):
            parts = [getattr(lg, f.name) for lg in logs]
            if f.name == "learner":
                out[f.name] = np.concatenate([p + o for p, o in zip(parts, offsets, strict=True)])
            elif isinstance(parts[0], dict):
                out[f.name] = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            elif any(p is None for p in parts):
                out[f.name] = None
            else:
                nonempty = [p for p in parts if len(p)] or parts[:1]
                out[f.name] = np.concatenate(nonempty)
        return cls(**out)

    def later_success(self, n_learners: int) -> np.ndarray:
        """Per decision: correctness of the learner's next attempt on the same skill minus the tracer's
        prediction at this decision (NaN where there is none): a learning gain that does not reward easy items."""
        out = np.full(len(self.item), np.nan)
        nxt: dict[tuple[int, int], int] = {}
        for k in range(len(self.item) - 1, -1, -1):
            key = (int(self.learner[k]), int(self.skill[k]))
            j = nxt.get(key)
            if j is not None:
                out[k] = float(self.correct[j]) - float(self.p_hat[k])
            nxt[key] = k
        return out


@dataclass
class RunResult:
    policy: str
    seed: int
    post_test: np.ndarray  # (n, H + 1): after 0..H exercises
    mastery_step: np.ndarray  # (n,) exercises until all skills known for the first time, -1 if never
    on_known: np.ndarray  # (n,) exercises on already-known skills before mastering all (or the horizon)
    on_known_start: np.ndarray  # (n,) of those, on skills the learner knew before the first exercise
    on_unready: np.ndarray  # (n,) exercises on unknown skills with an unknown direct prerequisite, likewise
    before_mastery: np.ndarray  # (n,) exercises before mastering all (or the horizon)
    exercises: np.ndarray  # (n,) exercises done (dropout ends early)
    log: DecisionLog | None = None
    seconds: float = 0.0

    @property
    def horizon(self) -> int:
        return int(self.post_test.shape[1]) - 1

    def to_mastery(self) -> np.ndarray:
        """Exercises to mastery of all skills, censored at the horizon for learners who never got there."""
        return np.where(self.mastery_step >= 0, self.mastery_step, self.horizon).astype(np.float64)


def tracer_gains(
    tracker_m: np.ndarray, items_skill: np.ndarray, setting: Setting
) -> tuple[np.ndarray, np.ndarray]:
    """The tracer's gain of serving each item if the answer is right and if it is wrong: the reward is one of the
    two, known before the answer."""
    b = setting.bkt
    m = tracker_m[items_skill]
    g, s, lr, f = b.guess[items_skill], b.slip[items_skill], b.learn[items_skill], b.forget[items_skill]
    up = bkt_transition(bkt_posterior(m, np.ones_like(m, dtype=bool), g, s), lr, f) - m
    down = bkt_transition(bkt_posterior(m, np.zeros_like(m, dtype=bool), g, s), lr, f) - m
    return up, down


def mixed_gain(p_right: np.ndarray, up: np.ndarray, down: np.ndarray) -> np.ndarray:
    """The expected tracer gain from the gains if right and if wrong (`tracer_gains`) and P(right)."""
    return np.asarray(p_right * up + (1.0 - p_right) * down)


def expected_gain(
    tracker_m: np.ndarray, items_skill: np.ndarray, p_true: np.ndarray, setting: Setting
) -> np.ndarray:
    """Expected immediate tracer gain of serving each item, under the true P(correct): ground truth for OPE."""
    return mixed_gain(p_true, *tracer_gains(tracker_m, items_skill, setting))


def run_policy(
    policy: Policy,
    setting: Setting,
    n_learners: int,
    seed: int,
    *,
    name: str | None = None,
    log: bool = False,
    shadows: Mapping[str, Policy] | None = None,
    features: FeatureFn | None = None,
    q_model: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
    skill_features: bool = False,
) -> RunResult:
    """Run `policy` for `setting.horizon` exercises on `n_learners` learners of `seed`.

    With `log`, decisions are recorded (and, per shadow policy, its probabilities and the ground-truth expected
    reward at each logged context, for off-policy evaluation; `q_model` maps candidate features and the tracer's
    gain if right and if wrong (`tracer_gains`) to a reward estimate for the doubly robust estimators).
    """
    import time

    t0 = time.perf_counter()
    env = SchedulingEnv(setting, n_learners, seed)
    rng = np.random.default_rng([seed, 2])
    h = setting.horizon
    course = setting.course
    n = n_learners
    post = np.zeros((n, h + 1), dtype=np.float32)
    post[:, 0] = env.sim.post_test()
    mastery_step = np.where(env.sim.all_known(), 0, -1)
    on_known = np.zeros(n, dtype=np.int64)
    on_known_start = np.zeros(n, dtype=np.int64)
    known_at_start = env.sim.state.known.copy()
    on_unready = np.zeros(n, dtype=np.int64)
    prereq = course.prerequisite_matrix()
    before = np.zeros(n, dtype=np.int64)
    primary = course.primary_skill
    shadows = dict(shadows or {})
    rec: dict[str, list[float] | list[int] | list[np.ndarray]] = {
        k: []
        for k in ("learner", "step", "item", "propensity", "reward", "correct", "skill", "p_hat", "features")
    }
    rec_qc: list[float] = []
    rec_time: list[float] = []
    rec_sf: list[np.ndarray] = []
    rec_sp: list[float] = []
    t_skill: dict[str, list[float]] = {k: [] for k in shadows}
    t_prob: dict[str, list[float]] = {k: [] for k in shadows}
    t_q: dict[str, list[float]] = {k: [] for k in shadows}
    truth: dict[str, list[float]] = {k: [] for k in shadows}
    items = np.zeros(n, dtype=np.int64)
    for t in range(h):
        rows = np.flatnonzero(env.active)
        if len(rows) == 0:
            post[:, t + 1 :] = post[:, t : t + 1]
            break
        pc = env.tracker.p_correct(rows)
        mask = env.tracker.candidate_mask(rows)
        m_before = env.tracker.mastery[rows].copy()
        if log:
            n_i = course.n_items
            p_true_all = env.sim.p_correct(np.tile(np.arange(n_i), len(rows)), np.repeat(rows, n_i))
            p_true_all = p_true_all.reshape(len(rows), n_i)
        for k, r in enumerate(rows.tolist()):
            cands = env.candidates(r, pc[k], mask[k])
            view = env.view(r)
            decision = policy.select(cands, view, rng)
            pos = env.item_position(decision.item)
            items[r] = pos
            if log:
                rec["learner"].append(r)  # type: ignore[arg-type]
                rec["step"].append(t)  # type: ignore[arg-type]
                rec_time.append(view.now)
                rec["item"].append(pos)  # type: ignore[arg-type]
                rec["propensity"].append(decision.propensity)  # type: ignore[arg-type]
                rec["p_hat"].append(float(pc[k, pos]))  # type: ignore[arg-type]
                cand_pos = np.array([env.item_position(c.item) for c in cands])
                if shadows or q_model is not None:
                    up, down = tracer_gains(m_before[k], primary[cand_pos], setting)
                same_skill = primary[cand_pos] == primary[pos]
                logged = decision.probabilities
                rec_sp.append(sum(logged.get(c.item, 0.0) for c, s in zip(cands, same_skill, strict=True) if s))
                feats = features(cands, view) if features is not None else None
                if feats is not None:
                    chosen_idx = int(np.flatnonzero(cand_pos == pos)[0])
                    rec["features"].append(feats[chosen_idx])  # type: ignore[arg-type]
                    if skill_features:
                        block = np.full((course.n_skills, feats.shape[1]), np.nan, dtype=np.float32)
                        cs = primary[cand_pos]
                        first = np.unique(cs, return_index=True)
                        block[first[0]] = feats[first[1]]
                        rec_sf.append(block)
                    qs = q_model(feats, up, down) if q_model is not None else None
                    if qs is not None:
                        rec_qc.append(float(qs[chosen_idx]))
                else:
                    qs = None
                if shadows:
                    gains = mixed_gain(p_true_all[k, cand_pos], up, down)  # expected_gain, sharing up and down
                    for sname, sp in shadows.items():
                        probs = sp.distribution(cands, view)
                        t_prob[sname].append(float(probs[cand_pos == pos].sum()))
                        t_skill[sname].append(float(probs[same_skill].sum()))
                        truth[sname].append(float(probs @ gains))
                        t_q[sname].append(float(probs @ qs) if qs is not None else 0.0)
        known_now = env.sim.state.known[rows]
        chosen = primary[items[rows]]
        known_before = known_now[np.arange(len(rows)), chosen]
        unready = ~known_before & (prereq[chosen] & ~known_now).any(axis=1)
        correct = env.step(items)
        not_yet = mastery_step[rows] < 0
        on_known[rows] += known_before & not_yet
        on_known_start[rows] += known_before & known_at_start[rows, chosen] & not_yet
        on_unready[rows] += unready & not_yet
        before[rows] += not_yet
        now_all = env.sim.all_known()
        newly = (mastery_step < 0) & now_all
        mastery_step[newly] = t + 1
        post[:, t + 1] = env.sim.post_test()
        if log:
            s_chosen = primary[items[rows]]
            rec["correct"].extend(correct[rows].tolist())  # type: ignore[arg-type]
            rec["skill"].extend(s_chosen.tolist())  # type: ignore[arg-type]
            gain = env.tracker.mastery[rows, s_chosen] - m_before[np.arange(len(rows)), s_chosen]
            rec["reward"].extend(gain.tolist())  # type: ignore[arg-type]
    decision_log = None
    if log:
        feats_arr = np.asarray(rec["features"], dtype=np.float64) if rec["features"] else np.zeros((0, 0))
        decision_log = DecisionLog(
            learner=np.asarray(rec["learner"], dtype=np.int64),
            step=np.asarray(rec["step"], dtype=np.int64),
            item=np.asarray(rec["item"], dtype=np.int64),
            propensity=np.asarray(rec["propensity"], dtype=np.float64),
            reward=np.asarray(rec["reward"], dtype=np.float64),
            correct=np.asarray(rec["correct"], dtype=bool),
            skill=np.asarray(rec["skill"], dtype=np.int64),
            p_hat=np.asarray(rec["p_hat"], dtype=np.float64),
            features=feats_arr,
            target_prob={k: np.asarray(v) for k, v in t_prob.items()},
            target_q={k: np.asarray(v) for k, v in t_q.items()},
            truth={k: np.asarray(v) for k, v in truth.items()},
            q_chosen=np.asarray(rec_qc) if rec_qc else None,
            skill_features=np.stack(rec_sf) if rec_sf else None,
            time=np.asarray(rec_time, dtype=np.float64),
            skill_propensity=np.asarray(rec_sp, dtype=np.float64),
            target_skill_prob={k: np.asarray(v) for k, v in t_skill.items()},
        )
    return RunResult(
        policy=str(name or getattr(policy, "name", type(policy).__name__)),
        seed=seed,
        post_test=post,
        mastery_step=mastery_step,
        on_known=on_known,
        on_known_start=on_known_start,
        on_unready=on_unready,
        before_mastery=before,
        exercises=env.sim.state.steps.copy(),
        log=decision_log,
        seconds=time.perf_counter() - t0,
    )


# -- summaries ---------------------------------------------------------------------------------------------------
def mean_ci(values: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and a Student-t confidence interval across seeds (a zero-width interval for one seed)."""
    v = np.asarray(values, dtype=np.float64)
    m = float(v.mean())
    if len(v) < 2:
        return m, m, m
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return m, m - half, m + half


def summarize(results: Sequence[RunResult], ks: Sequence[int] = (20, 50, 100, 200)) -> dict[str, object]:
    """Per-seed means, then mean and 95% CI across seeds, for one policy's runs."""
    per_seed: dict[str, list[float]] = {"to_mastery": [], "share_mastered": [], "to_mastery_reached": []}
    per_seed.update({f"post_test@{k}": [] for k in ks})
    per_seed["on_known_share"] = []
    per_seed["on_known_start_share"] = []
    per_seed["on_unready_share"] = []
    per_seed["dropout_share"] = []
    for r in results:
        reached = r.mastery_step >= 0
        per_seed["to_mastery"].append(float(r.to_mastery().mean()))
        per_seed["share_mastered"].append(float(reached.mean()))
        per_seed["to_mastery_reached"].append(
            float(r.mastery_step[reached].mean()) if reached.any() else np.nan
        )
        for k in ks:
            per_seed[f"post_test@{k}"].append(float(r.post_test[:, min(k, r.horizon)].mean()))
        per_seed["on_known_share"].append(float(r.on_known.sum() / max(r.before_mastery.sum(), 1)))
        per_seed["on_known_start_share"].append(float(r.on_known_start.sum() / max(r.before_mastery.sum(), 1)))
        per_seed["on_unready_share"].append(float(r.on_unready.sum() / max(r.before_mastery.sum(), 1)))
        per_seed["dropout_share"].append(float((r.exercises < r.horizon).mean()))
    out: dict[str, object] = {}
    for key, vals in per_seed.items():
        m, lo, hi = mean_ci(vals)
        out[key] = {"mean": m, "ci95": [lo, hi], "per_seed": vals}
    out["curve"] = np.mean([r.post_test.mean(axis=0) for r in results], axis=0).tolist()
    return out


def attempt_log(log: DecisionLog, setting: Setting) -> AttemptLog:
    """The answers of a run as the tracer's `AttemptLog` (skill ids of the course), learner by learner."""
    order = np.lexsort((log.step, log.learner))
    course = setting.course
    skills = np.array(course.skill_ids, dtype=np.int64)[log.skill[order]]
    items = np.array(course.item_ids, dtype=np.int64)[log.item[order]]
    return AttemptLog.from_rows(
        learner=log.learner[order],
        item=items,
        skill=skills,
        correct=log.correct[order].astype(np.int8),
    )
