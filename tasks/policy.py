"""Offline policy updates. Thin: the work is `tutor.services.policy_training.policy_train`."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from tasks.faults import pause_at


@shared_task(bind=True, name="tasks.policy.train_policy", acks_late=True)
def train_policy(
    self: Task,
    kind: str = "bandit",
    hyperparameters: dict[str, Any] | None = None,
    through_decision_id: int | None = None,
    training: dict[str, Any] | None = None,
    estimator: str = "dr",
) -> dict[str, Any]:
    """Train a candidate (from the decision log, or in the simulator over this curriculum for planner, hierarchical
    and PPO) and activate it if off-policy evaluation on the decision log says it is better.
    Safe to run twice and to be killed: the version key makes a re-run a no-op, activation is one transaction."""
    from tutor.services.policy_training import policy_train

    def progress(stage: str, fraction: float) -> None:
        if not self.request.called_directly and self.request.id:
            self.update_state(state="PROGRESS", meta={"stage": stage, "fraction": fraction})
        pause_at(stage.split(":")[0])

    out = policy_train(
        kind=kind, hyperparameters=hyperparameters, through_decision_id=through_decision_id, progress=progress,
        training=training, estimator=estimator,
    )
    return {
        "version_id": out.version.pk if out.version else None,
        "created": out.created,
        "activated": out.activated,
        "report": out.report,
    }


@shared_task(bind=True, name="tasks.policy.calibrate_item_difficulty", acks_late=True)
def calibrate_item_difficulty(self: Task, batch: int = 2000) -> dict[str, Any]:
    """Fold new answers into item difficulties, one bounded batch per run; re-queues itself while more remain."""
    from tutor.services.calibration import item_difficulty_calibrate

    done, more = item_difficulty_calibrate(batch=batch)
    if more:
        calibrate_item_difficulty.delay(batch=batch)
    return {"done": done, "has_more": more}
