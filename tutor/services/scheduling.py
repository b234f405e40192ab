"""The scheduler service: builds the candidate set for a learner, asks the active policy, logs the decision."""

from __future__ import annotations

import secrets
import time
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction

from curriculum.selectors import CurriculumSnapshot, curriculum_snapshot
from learners.errors import InvalidInput, NotFound
from learners.models import Learner, LearnerState, SkillMastery
from learners.services import tracer_active
from learners.tracing.base import Query
from tutor.models import Decision
from tutor.policy.base import Candidate, LearnerView, Policy
from tutor.policy.base import Decision as Choice
from tutor.services import belief_checkpoints, learner_history
from tutor.services.policies import explore_epsilon, policy_for_learner


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


_query_memo: tuple[object, dict[int, Query]] | None = None


def _queries(snapshot: CurriculumSnapshot) -> dict[int, Query]:
    """The tracer's query for every item, made once per curriculum snapshot."""
    global _query_memo
    memo = _query_memo
    if memo is None or memo[0] is not snapshot:
        memo = (snapshot, {i.id: Query(i.id, i.skills) for i in snapshot.items})
        _query_memo = memo
    return memo[1]


def decision_next(
    *, learner_id: int, targets: frozenset[int] = frozenset(), learner: Learner | None = None
) -> Decision:
    """Choose and log the next item for a learner (`learner`, when the caller has already read it, saves a
    query)."""
    if learner is None or learner.pk != learner_id:
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
    history, ids = (
        learner_history.cache.outcomes_and_ids(
            learner_id=learner.pk, n_attempts=ls.n_attempts, last_attempt_id=ls.last_attempt_id, snapshot=snapshot
        )
        if ls is not None
        else ((), ())
    )
    n_attempts = ls.n_attempts if ls is not None else 0
    recent = [o.item for o in history[-1 : -settings.TUTOR_REPEAT_WINDOW - 1 : -1]]
    last_seen: dict[int, float] = {}
    for o in history:
        for s in o.skills:
            last_seen[s] = o.time
    recent_set = set(recent)
    queries = _queries(snapshot)
    pool = [i for i in snapshot.items if i.id not in recent_set] or list(snapshot.items)
    predicted = tracer.predict_next_many(state, [queries[i.id] for i in pool])
    candidates = [Candidate(i.id, i.skills, p, i.difficulty) for i, p in zip(pool, predicted, strict=True)]
    view = LearnerView(
        graph=snapshot.graph,
        mastery=mastery,
        attempts=counts,
        recent_items=recent,
        targets=targets,
        step=n_attempts,
        last_seen=last_seen,
        now=time.time(),
        history=history,
    )
    version, policy, policy_name = policy_for_learner(learner_id=learner.pk)
    belief_checkpoints.restore(
        policy=policy, version=version, learner_id=learner.pk, history=history, ids=ids, n_attempts=n_attempts
    )
    rng = np.random.default_rng(secrets.randbits(64))
    choice = choose(policy, candidates, view, rng, explore_epsilon())
    context: dict[str, Any] = {
        "mastery": {str(k): v for k, v in mastery.items()},
        "step": view.step,
        "info": {k: v for k, v in choice.info.items() if isinstance(v, int | float | str | None)},
    }
    with transaction.atomic():
        decision = Decision.objects.create(
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
    belief_checkpoints.save(
        policy=policy, version=version, learner_id=learner.pk, history=history, ids=ids, n_attempts=n_attempts
    )
    return decision
