"""Reads of the decision log for policy evaluation: logged decisions joined with their answers, the learning gain
they produced, and per-version comparisons for A/B experiments."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from learners.models import Attempt
from tutor.models import Decision


@dataclass(frozen=True)
class LoggedDecision:
    decision_id: int
    learner_id: int
    policy: str
    item: int
    propensity: float
    candidates: list[tuple[int, float, float]]  # (item, logging probability, predicted P(correct))
    mastery_before: dict[int, float]
    mastery_after: dict[int, float]
    correct: bool
    created_at: float

    @property
    def gain(self) -> float:
        """Learning gain: mean change of the tracer's mastery of the item's skills caused by the answer."""
        if not self.mastery_after:
            return 0.0
        return float(
            np.mean([after - self.mastery_before.get(s, after) for s, after in self.mastery_after.items()])
        )


def logged_decisions(*, since_decision_id: int = 0, through_decision_id: int | None = None) -> list[LoggedDecision]:
    """Answered decisions in log order (a decision never answered carries no reward and is left out)."""
    attempts = Attempt.objects.filter(decision__isnull=False, decision_id__gt=since_decision_id)
    if through_decision_id is not None:
        attempts = attempts.filter(decision_id__lte=through_decision_id)
    out = []
    for a in attempts.select_related("decision").order_by("decision_id").iterator():
        d: Decision = a.decision  # type: ignore[assignment]
        before = {int(k): float(v) for k, v in d.context.get("mastery", {}).items()}
        after = {int(m["skill_id"]): float(m["p_mastery"]) for m in a.result.get("mastery", [])}
        out.append(
            LoggedDecision(
                decision_id=d.pk,
                learner_id=d.learner_id,
                policy=d.policy_name,
                item=d.item_id,
                propensity=d.propensity,
                candidates=[(int(c[0]), float(c[1]), float(c[2]) if len(c) > 2 else float("nan")) for c in d.candidates],
                mastery_before=before,
                mastery_after=after,
                correct=a.correct,
                created_at=d.created_at.timestamp(),
            )
        )
    return out


def _ci(values: np.ndarray, rng: np.random.Generator, n_boot: int = 1000) -> tuple[float, float]:
    if len(values) < 2:
        return (float("nan"), float("nan"))
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    means = values[idx].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def policy_report(*, since_decision_id: int = 0) -> dict[str, Any]:
    """Per policy version: decisions answered, accuracy and mean learning gain with bootstrap 95% intervals."""
    rng = np.random.default_rng(0)
    groups: dict[str, list[LoggedDecision]] = defaultdict(list)
    for d in logged_decisions(since_decision_id=since_decision_id):
        groups[d.policy].append(d)
    report: dict[str, Any] = {}
    for name, rows in sorted(groups.items()):
        gains = np.array([r.gain for r in rows])
        correct = np.array([float(r.correct) for r in rows])
        report[name] = {
            "decisions": len(rows),
            "learners": len({r.learner_id for r in rows}),
            "accuracy": float(correct.mean()),
            "accuracy_ci95": _ci(correct, rng),
            "mean_gain": float(gains.mean()),
            "mean_gain_ci95": _ci(gains, rng),
            "mean_propensity": float(np.mean([r.propensity for r in rows])),
        }
    return report
