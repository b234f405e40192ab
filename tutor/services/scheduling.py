"""The scheduler service: builds the candidate set for a learner, asks the active policy, logs the decision."""

from __future__ import annotations

import secrets
import time
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction

from curriculum.selectors import curriculum_snapshot
from learners.errors import InvalidInput, NotFound
from learners.models import Attempt, Learner, LearnerState, SkillMastery
from learners.services import tracer_active
from learners.tracing.base import Query
from tutor.models import Decision
from tutor.policy.base import Candidate, LearnerView, Outcome, Policy
from tutor.policy.base import Decision as Choice
from tutor.services.policies import explore_epsilon, policy_for_learner

# How many of the learner's latest answers a policy sees (ZPDES-style policies read recent success rates).
HISTORY = 200


def choose(
    policy: Policy, candidates: list[Candidate], view: LearnerView, rng: np.random.Generator, epsilon: float
) -> Choice:
    """Draw from (1 - epsilon) * policy + epsilon * uniform over all candidates: the distribution of
    `policies.served(policy, epsilon)`, drawn so that the policy's own decision details (focus skill, sub-goal)
    are kept for the log."""
    base = policy.select(candidates, view, rng)
    if epsilon <= 0:
        return base
    n = len(candidates)
    item = base.item if rng.random() >= epsilon else candidates[int(rng.integers(n))].item
    probs = {c.item: (1 - epsilon) * base.probabilities.get(c.item, 0.0) + epsilon / n for c in candidates}
    skill = base.skill if item == base.item else next((c.skills[0] for c in candidates if c.item == item and c.skills), None)
    return Choice(item, probs[item], probs, skill, {**base.info, "explore": epsilon})


def decision_next(*, learner_id: int, targets: frozenset[int] = frozenset()) -> Decision:
    """Choose and log the next item for a learner."""
    learner = Learner.objects.filter(pk=learner_id).first()
    if learner is None:
        raise NotFound("learner", f"no learner with id {learner_id}")
    snapshot = curriculum_snapshot()
    if not snapshot.items:
        raise InvalidInput("curriculum", "no approved items to serve; import a curriculum first")
    _, tracer = tracer_active()
    ls = LearnerState.objects.filter(learner=learner).first()
    state = ls.state if ls is not None else tracer.init_state()
    mastery = {s: tracer.mastery(state, s) for s in snapshot.graph.skills}
    counts = dict(SkillMastery.objects.filter(learner=learner).values_list("skill_id", "n_attempts"))
    rows = list(
        Attempt.objects.filter(learner=learner)
        .order_by("-id")
        .values_list("item_id", "correct", "created_at")[:HISTORY]
    )
    recent = [item_id for item_id, _, _ in rows[: settings.TUTOR_REPEAT_WINDOW]]
    history = []
    last_seen: dict[int, float] = {}
    for item_id, correct, created_at in reversed(rows):
        info = snapshot.items_by_id.get(item_id)
        skills = info.skills if info is not None else ()
        history.append(Outcome(item_id, skills, correct, created_at.timestamp(), info.difficulty if info else 0.0))
        for s in skills:
            last_seen[s] = created_at.timestamp()
    recent_set = set(recent)
    pool = [i for i in snapshot.items if i.id not in recent_set] or list(snapshot.items)
    predicted = tracer.predict_next_many(state, [Query(i.id, i.skills) for i in pool])
    candidates = [Candidate(i.id, i.skills, p, i.difficulty) for i, p in zip(pool, predicted, strict=True)]
    view = LearnerView(
        graph=snapshot.graph,
        mastery=mastery,
        attempts=counts,
        recent_items=recent,
        targets=targets,
        step=ls.n_attempts if ls else 0,
        last_seen=last_seen,
        now=time.time(),
        history=history,
    )
    version, policy, policy_name = policy_for_learner(learner_id=learner.pk)
    rng = np.random.default_rng(secrets.randbits(64))
    choice = choose(policy, candidates, view, rng, explore_epsilon())
    context: dict[str, Any] = {
        "mastery": {str(k): v for k, v in mastery.items()},
        "step": view.step,
        "info": {k: v for k, v in choice.info.items() if isinstance(v, int | float | str | None)},
    }
    with transaction.atomic():
        return Decision.objects.create(
            learner=learner,
            item_id=choice.item,
            policy_version=version,
            policy_name=policy_name,
            propensity=choice.propensity,
            candidates=[
                [c.item, choice.probabilities.get(c.item, 0.0), c.p_correct]
                for c in candidates
            ],
            context=context,
        )
