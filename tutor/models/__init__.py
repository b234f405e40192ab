"""Models of the tutoring core, one module per area: scheduling (policy versions, the decision log), llm."""

from tutor.models.scheduling import Decision, PolicyExperiment, PolicyVersion

__all__ = ["Decision", "PolicyExperiment", "PolicyVersion"]
