"""Tracer refits. Thin: arguments are names and cut-offs, the work is `learners.services.tracer_refit`."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task


@shared_task(bind=True, name="tasks.tracing.refit_tracer", acks_late=True)
def refit_tracer(self: Task, name: str | None = None, through_attempt_id: int | None = None) -> dict[str, Any]:
    """Fit a tracer on the attempt log up to a cut-off; safe to run twice (the version key makes it a no-op)."""
    from learners.services import tracer_refit

    def progress(stage: str, fraction: float) -> None:
        if not self.request.called_directly and self.request.id:
            self.update_state(state="PROGRESS", meta={"stage": stage, "fraction": fraction})

    outcome = tracer_refit(name=name, through_attempt_id=through_attempt_id, progress=progress)
    return {
        "version_id": outcome.version.pk,
        "name": outcome.version.name,
        "trained_through_attempt_id": outcome.version.trained_through_attempt_id,
        "activated": outcome.activated,
        "created": outcome.created,
        "reason": outcome.reason,
        "metrics": outcome.version.metrics,
    }
