"""Offline policy updates from the decision log, gated by off-policy evaluation.

For every answered decision the context the policy saw is rebuilt (candidate set with the tracer's predictions
as logged, mastery as logged, the learner's earlier answers from the attempt log), so a candidate policy's
probability of the logged item can be computed. The candidate's value is estimated with IPS, self-normalised
IPS, doubly robust and clustered doubly robust estimators (reward: the learning gain of the answer; clusters: the
served item's skill, see `tutor.policy.ope`), with bootstrap intervals clustered by learner; it is activated only
if its lower bound beats the active policy's estimate on the same log (by doubly robust unless told otherwise).
Activation happens in one transaction after everything else, so a worker killed mid-run activates nothing; the
version key (name, trained_through_decision_id) makes a re-run a no-op.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction

from curriculum.selectors import curriculum_snapshot
from learners.errors import InvalidInput
from learners.models import Attempt
from tutor.models import PolicyVersion
from tutor.policy import ope
from tutor.policy.bandit import ContextualBanditPolicy, RidgeModel
from tutor.policy.base import POLICIES, Candidate, LearnerView, Outcome, Policy, make_policy
from tutor.policy.features import candidate_features
from tutor.policy.registry import LEARNED
from tutor.services import learner_history
from tutor.services.evaluation import LoggedDecision, logged_decisions
from tutor.services.policies import (
    policy_activate,
    policy_active,
    policy_bytes,
    policy_version_create,
    served,
)
from tutor.services.policy_simulation import SIM_TRAINED, policy_train_simulated


@dataclass(frozen=True)
class Context:
    decision: LoggedDecision
    candidates: list[Candidate]
    view: LearnerView
    chosen: int  # index of the logged item in `candidates`


def decision_contexts(rows: list[LoggedDecision]) -> list[Context]:
    """Rebuild what the policy saw at each logged decision (decisions whose item left the curriculum are
    skipped)."""
    snapshot = curriculum_snapshot()
    learners = sorted({r.learner_id for r in rows})
    history: dict[int, list[Outcome]] = {lid: [] for lid in learners}
    for learner_id, item_id, correct, created_at in (
        Attempt.objects.filter(learner_id__in=learners)
        .order_by("learner_id", "id")
        .values_list("learner_id", "item_id", "correct", "created_at")
    ):
        info = snapshot.items_by_id.get(item_id)
        history[learner_id].append(
            Outcome(item_id, info.skills if info else (), correct, created_at.timestamp(), info.difficulty if info else 0.0)
        )
    out = []
    for r in rows:
        earlier = [h for h in history[r.learner_id] if h.time < r.created_at]
        past = earlier[-learner_history.WINDOW :]  # what the service shows a policy (tutor.services.learner_history)
        cands = []
        for item, _, p_correct in r.candidates:
            info = snapshot.items_by_id.get(item)
            if info is not None:
                cands.append(Candidate(item, info.skills, p_correct, info.difficulty))
        index = {c.item: k for k, c in enumerate(cands)}
        if r.item not in index:
            continue
        last_seen: dict[int, float] = {}
        for h in past:
            for s in h.skills:
                last_seen[s] = h.time
        view = LearnerView(
            graph=snapshot.graph,
            mastery={s: r.mastery_before.get(s, 0.0) for s in snapshot.graph.skills},
            attempts={},
            recent_items=[h.item for h in reversed(past[-settings.TUTOR_REPEAT_WINDOW :])],
            step=len(earlier),
            last_seen=last_seen,
            now=r.created_at,
            history=past,
        )
        out.append(Context(r, cands, view, index[r.item]))
    return out


def _features(contexts: list[Context]) -> list[np.ndarray]:
    return [candidate_features(c.candidates, c.view) for c in contexts]


def _same_skill(c: Context) -> np.ndarray:
    """Candidates whose first skill is the served item's: the cluster of the clustered estimator."""
    skills = c.candidates[c.chosen].skills
    first = skills[0] if skills else None
    return np.array([(cand.skills[0] if cand.skills else None) == first for cand in c.candidates])


def ope_dataset(policy: Policy, contexts: list[Context], feats: list[np.ndarray], q: RidgeModel) -> ope.LoggedDecisions:
    target_prob, q_chosen, q_target, cluster_prob, cluster_target = [], [], [], [], []
    for c, x in zip(contexts, feats, strict=True):
        probs = policy.distribution(c.candidates, c.view)
        qs = q.predict(x)
        same = _same_skill(c)
        logged = {item: p for item, p, _ in c.decision.candidates}
        target_prob.append(float(probs[c.chosen]))
        q_chosen.append(float(qs[c.chosen]))
        q_target.append(float(np.dot(probs, qs)))
        cluster_target.append(float(probs[same].sum()))
        # The logging probability of the skill; never below the served item's own, which the row carries.
        in_skill = sum(logged.get(cand.item, 0.0) for cand, s in zip(c.candidates, same, strict=True) if s)
        cluster_prob.append(max(in_skill, c.decision.propensity))
    return ope.LoggedDecisions(
        reward=np.array([c.decision.gain for c in contexts]),
        propensity=np.array([c.decision.propensity for c in contexts]),
        target_prob=np.array(target_prob),
        q_chosen=np.array(q_chosen),
        q_target=np.array(q_target),
        cluster_propensity=np.array(cluster_prob),
        cluster_target_prob=np.array(cluster_target),
    )


@dataclass(frozen=True)
class TrainOutcome:
    version: PolicyVersion | None
    created: bool
    activated: bool
    report: dict[str, Any]


def check_estimator(name: str) -> None:
    """`InvalidInput("estimator")` unless `name` is an estimator the gate knows."""
    if name not in ope.ESTIMATORS and name != "selected":
        known = ", ".join([*ope.ESTIMATORS, "selected"])
        raise InvalidInput("estimator", f"unknown estimator {name!r}; known: {known}")


def gate_estimator(asked: str, candidate: dict[str, Any], active: dict[str, Any]) -> str:
    """The estimator the gate compares both policies by. `selected`: the clustered one where the selection between
    clustered and plain doubly robust (`ope.select_estimator`) takes it for both the candidate and the active
    policy, plain doubly robust otherwise, so that both sides are always judged by the same estimator."""
    if asked != "selected":
        return asked
    picks = {side.get("selected", {}).get("estimator") for side in (candidate, active)}
    return "cdr" if picks == {"cdr"} else "dr"


def policy_train(
    *,
    kind: str,
    hyperparameters: dict[str, Any] | None = None,
    through_decision_id: int | None = None,
    min_decisions: int = 50,
    max_decisions: int = 20000,
    estimator: str = "dr",
    n_boot: int = 200,
    progress: Callable[[str, float], None] | None = None,
    training: dict[str, Any] | None = None,
) -> TrainOutcome:
    """Train (learned kinds) or configure (others) a candidate, estimate its value off-policy, record a version
    and activate it when its lower confidence bound beats the active policy's estimate.

    The bandit learns from the decision log; planner, hierarchical and PPO are trained in the simulator over this
    curriculum (`training` overrides the simulator's sizes, see `policy_simulation.SERVICE_TRAINING`)."""
    if kind not in POLICIES:
        raise InvalidInput("kind", f"unknown policy {kind!r}; known: {', '.join(sorted(POLICIES))}")
    check_estimator(estimator)
    report_progress = progress or (lambda stage, fraction: None)
    hyper = dict(hyperparameters or {})
    if kind in SIM_TRAINED and hyper:
        raise InvalidInput(
            "hyperparameters",
            f"{kind} sets its own in the simulator (tuned on training learners); pass simulator sizes as training",
        )
    rows = logged_decisions(through_decision_id=through_decision_id)[-max_decisions:]
    if len(rows) < min_decisions:
        return TrainOutcome(None, False, False, {"reason": f"{len(rows)} answered decisions, need {min_decisions}"})
    last = rows[-1].decision_id
    name = f"{kind}-auto"
    existing = PolicyVersion.objects.filter(name=name, trained_through_decision_id=last).first()
    if existing is not None:
        return TrainOutcome(existing, False, existing.active, existing.ope_report)
    report_progress("contexts", 0.1)
    contexts = decision_contexts(rows)
    feats = _features(contexts)
    rewards = np.array([c.decision.gain for c in contexts])
    chosen_x = np.array([x[c.chosen] for c, x in zip(contexts, feats, strict=True)])
    # Reward model for doubly robust estimates: ridge on the features of the served item.
    q = RidgeModel(10.0).fit(chosen_x, rewards)

    report_progress("train", 0.3)
    sim_report: dict[str, Any] | None = None
    candidate: Policy = make_policy(kind, **hyper)
    if isinstance(candidate, ContextualBanditPolicy):
        props = np.array([c.decision.propensity for c in contexts])
        candidate.fit(chosen_x, rewards, props)
    elif kind in SIM_TRAINED:
        # Planner, hierarchical, PPO: trained on simulated learners over this curriculum, judged on the real log.
        candidate, sim_report = policy_train_simulated(
            kind, training=training, progress=lambda message: report_progress(f"train: {message}", 0.4)
        )
        recorded = getattr(candidate, "_hyper", None)
        hyper = recorded() if recorded is not None else {}  # what training chose, recorded with the version

    report_progress("evaluate", 0.6)
    groups = np.array([c.decision.learner_id for c in contexts])
    # Both policies are evaluated as they would serve: mixed with the service's uniform exploration.
    cand_data = ope_dataset(served(candidate), contexts, feats, q)
    cand_eval = ope.evaluate(cand_data, n_boot=n_boot, groups=groups)
    _, active_policy, active_name = policy_active()
    act_eval = ope.evaluate(ope_dataset(served(active_policy), contexts, feats, q), n_boot=n_boot, groups=groups)
    used = gate_estimator(estimator, cand_eval, act_eval)
    lower = float(cand_eval[used]["ci95"][0])  # type: ignore[index]
    baseline = float(act_eval[used]["value"])  # type: ignore[arg-type]
    better = lower > baseline
    report = {
        "decisions": len(contexts),
        "through_decision_id": last,
        "estimator": used,
        "asked_estimator": estimator,
        "candidate": cand_eval,
        "active": {"name": active_name, **act_eval},
        "logged_mean_reward": float(rewards.mean()),
        "activated": better,
        "rule": f"activate when the candidate's {used} lower 95% bound > the active policy's {used}",
    }
    if sim_report is not None:
        report["simulator_training"] = sim_report
    report_progress("record", 0.9)
    params = policy_bytes(candidate) if kind in LEARNED else b""
    with transaction.atomic():
        version, created = policy_version_create(
            name=name,
            kind=kind,
            hyperparameters=hyper,
            params=params,
            trained_through_decision_id=last,
            ope_report=report,
        )
        if created and better:
            version = policy_activate(version_id=version.pk)
    report_progress("done", 1.0)
    return TrainOutcome(version, created, version.active, version.ope_report)
