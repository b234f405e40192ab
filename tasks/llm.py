"""LLM work on the `llm` queue (settings route `tasks.llm.*` there). Thin: arguments are ids and cut-offs, the work
is in `tutor.services`; every task is idempotent and bounded, returning (done, has_more) and queuing its own
continuation. Only a transport failure of the backend is retried (with backoff and jitter); a model output that
fails the checks is counted by the service, never retried."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from tutor.llm.backends import BackendUnavailable


@shared_task(
    bind=True,
    name="tasks.llm.pregenerate_explanations",
    acks_late=True,
    autoretry_for=(BackendUnavailable,),  # transport failures only: bad output is counted, never retried
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
)
def pregenerate_explanations(
    self: Task, after_item_id: int = 0, item_id: int | None = None, batch: int = 5
) -> dict[str, Any]:
    """Write ahead explanations of the common wrong answers and hints of `batch` approved items, then continue
    after the last one."""
    from tutor.services.explanations import explanations_pregenerate

    out = explanations_pregenerate(after_item_id=after_item_id, item_id=item_id, batch=batch)
    if out.has_more:
        pregenerate_explanations.delay(after_item_id=out.info["next_after"], batch=batch)
    return {"done": out.done, "has_more": out.has_more, **out.info}


@shared_task(
    bind=True,
    name="tasks.llm.generate_item_drafts",
    acks_late=True,
    autoretry_for=(BackendUnavailable,),  # transport failures only: bad output is counted, never retried
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
)
def generate_item_drafts(self: Task, request_id: int, batch: int = 2) -> dict[str, Any]:
    """Write the next drafts of a draft request; a request that is gone or complete is a no-op."""
    from tutor.services.items import draft_generate

    out = draft_generate(request_id=request_id, batch=batch)
    if out.has_more:
        generate_item_drafts.delay(request_id=request_id, batch=batch)
    return {"done": out.done, "has_more": out.has_more, **out.info}


@shared_task(bind=True, name="tasks.llm.train_reward_model", acks_late=True)
def train_reward_model(
    self: Task, through_feedback_id: int | None = None, through_attempt_id: int | None = None
) -> dict[str, Any]:
    """Train a reward model on the feedback and outcomes up to the cut-offs (a no-op when that version exists)."""
    from tutor.services.feedback import reward_model_train

    out = reward_model_train(through_feedback_id=through_feedback_id, through_attempt_id=through_attempt_id)
    version = out.version
    return {
        "version_id": version.pk if version else None,
        "auc": version.auc if version else None,
        "created": out.created,
        "activated": out.activated,
        "reason": out.reason,
    }


@shared_task(bind=True, name="tasks.llm.fold_style_outcomes", acks_late=True)
def fold_style_outcomes(self: Task, after_id: int = 0, batch: int = 500) -> dict[str, Any]:
    """Teach the style bandit the outcomes now known (each decision once), then continue after the batch."""
    from tutor.services.feedback import style_outcomes_fold

    done, has_more, cursor = style_outcomes_fold(after_id=after_id, batch=batch)
    if has_more:
        fold_style_outcomes.delay(after_id=cursor, batch=batch)
    return {"done": done, "has_more": has_more, "next_after": cursor}
