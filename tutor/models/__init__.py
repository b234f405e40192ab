"""Models of the tutoring core, one module per area: scheduling (policy versions, the decision log), llm."""

from tutor.models.llm import (
    Explanation,
    ExplanationFeedback,
    Goal,
    ItemDraftRequest,
    ItemOrigin,
    RewardModelVersion,
    StyleBanditState,
    StyleDecision,
)
from tutor.models.scheduling import BeliefCheckpoint, Decision, PolicyExperiment, PolicyVersion, Watermark

__all__ = [
    "BeliefCheckpoint",
    "Decision",
    "Explanation",
    "ExplanationFeedback",
    "Goal",
    "ItemDraftRequest",
    "ItemOrigin",
    "PolicyExperiment",
    "PolicyVersion",
    "Watermark",
    "RewardModelVersion",
    "StyleBanditState",
    "StyleDecision",
]
