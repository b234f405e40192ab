"""Models of the tutoring core, one module per area: scheduling (policy versions, the decision log), llm."""

from tutor.models.scheduling import Decision, PolicyVersion

__all__ = ["Decision", "PolicyVersion"]
