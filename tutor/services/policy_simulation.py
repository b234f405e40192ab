"""Policies trained in the simulator, for the service's own curriculum.

The planner, the hierarchical policy and PPO cannot learn from the decision log alone: they are trained on
simulated learners (`tutor.sim`). Here the simulator runs over the curriculum in the database, with database skill
and item ids and the items' calibrated difficulties, so the trained policy serves the same ids and difficulty scale
it was trained on. The simulated learners are calibrated on the service's own attempt log when it holds enough
answers (`tutor.sim.calibration.calibrate`), otherwise they keep the defaults calibrated on ASSISTments 2009. The
training itself is the benchmark's (`tutor.sim.experiment.prepare`): the tracer the policies read is BKT fitted on
a pilot log of the exploring v0 policy, learned policies are fitted on training seeds; the belief policy's knowledge
model is refitted on the real attempt log when it is big enough to calibrate on, and so is the joint policy's
session model (a learner silent for `TUTOR_QUIT_AFTER_DAYS` before the log's newest answer has quit). Whether the
result may serve is decided elsewhere, on the real decision log (`policy_training.policy_train` gates it by
off-policy evaluation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any

import numpy as np
from django.conf import settings

from curriculum.selectors import CurriculumSnapshot, curriculum_snapshot
from learners.errors import InvalidInput
from learners.models import Attempt
from learners.services import attempt_log
from learners.tracing.base import AttemptLog
from tutor.policy.base import Policy
from tutor.sim.course import Course
from tutor.sim.experiment import LEARNED, ExperimentConfig, make_setting, prepare
from tutor.sim.learners import SimParams

# Learned kinds whose training needs the simulator (the bandit learns from the decision log).
SIM_TRAINED: frozenset[str] = frozenset(LEARNED) - {"bandit"}

# Smaller than the benchmark's protocol: a service course has hundreds of items, and a refit should take minutes.
SERVICE_TRAINING: dict[str, Any] = {
    "horizon": 200,
    "pilot_learners": 200,
    "pilot_horizon": 150,
    "tune_learners": 100,
    "ppo_iterations": 150,
    "ppo_envs": 128,
}
MIN_CALIBRATION_ATTEMPTS = 2000


def course_from_snapshot(snapshot: CurriculumSnapshot) -> Course:
    """The database curriculum as a simulator course: ids are database ids, difficulties the items' own logits."""
    if not snapshot.items:
        raise InvalidInput("curriculum", "no approved items to train on; import a curriculum first")
    skill_ids = tuple(snapshot.graph.order)
    pos = {s: k for k, s in enumerate(skill_ids)}
    return Course(
        graph=snapshot.graph,
        skill_ids=skill_ids,
        item_ids=tuple(i.id for i in snapshot.items),
        item_skills=tuple(tuple(pos[s] for s in i.skills) for i in snapshot.items),
        difficulty=np.array([i.difficulty for i in snapshot.items], dtype=np.float64),
        skill_names=tuple(snapshot.skill_codes[s] for s in skill_ids),
    )


def simulator_params(*, min_attempts: int | None = None) -> tuple[SimParams, dict[str, Any], AttemptLog | None]:
    """Simulated learners calibrated on the service's attempt log, or the stored defaults when it is too small;
    also returns the log it calibrated on (None with the defaults)."""
    if min_attempts is None:
        min_attempts = MIN_CALIBRATION_ATTEMPTS
    n = Attempt.objects.count()
    if n < min_attempts:
        return SimParams(), {
            "source": "defaults (calibrated on ASSISTments 2009 skill-builder)",
            "attempts": n,
            "reason": f"{n} attempts in the log, calibration needs {min_attempts}",
        }, None
    from tutor.sim.calibration import calibrate

    log, _ = attempt_log()
    cal = calibrate(log)
    return cal.params, {
        "source": "the service's attempt log",
        "attempts": n,
        "accuracy_curve_rmse": round(cal.rmse, 4),
        "bkt_only_rmse": round(cal.baseline_rmse, 4),
    }, log


def _first_rows(log: AttemptLog) -> np.ndarray:
    """One row per answer: a multi-skill answer's first skill, as the policies count."""
    first = np.ones(len(log.attempt), dtype=bool)
    first[1:] = log.attempt[1:] != log.attempt[:-1]
    return first


def belief_model_from_log(
    snapshot: CurriculumSnapshot, log: AttemptLog, *, joint: bool = False
) -> tuple[Any, dict[str, Any]]:
    """The belief policy's knowledge model fitted by maximum likelihood on the service's own attempt log (one row
    per answer, its item's first skill, the item's current difficulty, the answer's time); with `joint`, the
    joint policy's model: that fit refined on the joint likelihood."""
    from tutor.policy.belief import BeliefModel

    first = _first_rows(log)
    known = np.array([int(i) in snapshot.items_by_id for i in log.item], dtype=bool)
    rows = np.flatnonzero(first & known & np.isin(log.skill, list(snapshot.graph.skills)))
    difficulty = np.array([snapshot.items_by_id[int(i)].difficulty for i in log.item[rows]], dtype=np.float64)
    answers = (snapshot.graph, log.learner[rows], log.skill[rows], difficulty, log.correct[rows], log.timestamp[rows])
    model = BeliefModel().fit(*answers)
    report: dict[str, Any] = {"answers": int(len(rows)), "loglik": round(float(model.loglik_), 2)}
    if joint:
        from tutor.policy.joint import JointModel

        model = JointModel.from_model(model, rate_sd=ExperimentConfig().joint_rate_sd).refine(*answers)
        report["refine"] = model.refine_
    return model, report


def sessions_from_log(log: AttemptLog, *, quit_after_days: float) -> tuple[tuple[np.ndarray, ...], dict[int, bool]]:
    """The session model's inputs from the service's attempt log: (learner, correct, time) of each answer, and
    who quit: a learner whose last answer is more than `quit_after_days` older than the log's newest answer.
    The others' last sessions are cut by the end of the log and say nothing about quitting."""
    rows = np.flatnonzero(_first_rows(log) & np.isfinite(log.timestamp))
    learner, correct, time = log.learner[rows], log.correct[rows].astype(bool), log.timestamp[rows]
    if len(rows) == 0:
        return (learner, correct, time), {}
    last: dict[int, float] = {}
    for who, t in zip(learner.tolist(), time.tolist(), strict=True):
        last[who] = max(t, last.get(who, t))
    end = float(time.max())
    return (learner, correct, time), {who: end - t > quit_after_days * 86400.0 for who, t in last.items()}


def training_config(kind: str, training: dict[str, Any] | None = None) -> ExperimentConfig:
    """The benchmark's configuration for one kind, with the service's sizes and the caller's overrides."""
    allowed = {f.name for f in fields(ExperimentConfig)} - {"policies", "n_skills", "items_per_skill", "course_seed"}
    options = {**SERVICE_TRAINING, **(training or {})}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise InvalidInput("training", f"unknown training options {unknown}; known: {sorted(allowed)}")
    try:
        config = replace(ExperimentConfig(), **options, policies=(kind,))
    except TypeError as exc:
        raise InvalidInput("training", str(exc)) from None
    return config


def policy_train_simulated(
    kind: str,
    *,
    training: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[Policy, dict[str, Any]]:
    """Train a simulator-trained kind for the curriculum in the database; returns the policy and a report."""
    if kind not in SIM_TRAINED:
        raise InvalidInput("kind", f"{kind!r} is not trained in the simulator; those are {sorted(SIM_TRAINED)}")
    config = training_config(kind, training)
    snapshot = curriculum_snapshot()
    course = course_from_snapshot(snapshot)
    sim, sim_report, log = simulator_params()
    say = progress or (lambda message: None)
    say(f"simulator: {sim_report['source']}")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        prepared = prepare(config, make_setting(config, sim, course), say)
    finally:
        torch.set_num_threads(threads)
    policy = prepared.policies[kind]
    if kind in ("belief", "joint") and log is not None:
        # Enough real answers: the knowledge model the policy filters with is fitted on real learners; the
        # decision thresholds stay those tuned on simulated ones.
        say(f"{kind} model: fitting on the service's attempt log")
        model, fit_report = belief_model_from_log(snapshot, log, joint=kind == "joint")
        policy.fit(model)  # type: ignore[attr-defined]
        prepared.report[f"{kind}_model"] = {**model.to_dict(), **fit_report, "source": "the service's attempt log"}
        if kind == "joint":
            # When sessions end and who quits, from the real log too; a log without both quitters and learners
            # who came back keeps the simulator pilot's session model.
            days = float(settings.TUTOR_QUIT_AFTER_DAYS)
            answers, quit = sessions_from_log(log, quit_after_days=days)
            about = {"source": "the service's attempt log", "quit_after_days": days, "learners": len(quit),
                     "quit": sum(quit.values())}  # fmt: skip
            try:
                policy.fit_sessions(*answers, quit)  # type: ignore[attr-defined]
                prepared.report["joint_sessions"] = {**policy.sessions_.to_dict(), **about}  # type: ignore[attr-defined]
            except ValueError as exc:
                prepared.report["joint_sessions_log"] = {**about, "skipped": str(exc)}
    if kind == "pomdp" and log is not None:
        prepared.report["pomdp_model"] = {
            "source": "the simulator's pilot log",
            "why": "the plan is made for one model; re-planning on a model fitted to the service's log is not built",
        }
    report = {
        "simulator": sim_report,
        "course": {"skills": course.n_skills, "items": course.n_items},
        "config": {k: v for k, v in vars(config).items() if k in SERVICE_TRAINING or k in (training or {})},
        **{k: v for k, v in prepared.report.items() if k != "ppo_returns"},
    }
    if "ppo_returns" in prepared.report:
        returns = prepared.report["ppo_returns"]
        report["ppo_returns"] = {"first": returns[:3], "last": returns[-3:]}
    return policy, report
