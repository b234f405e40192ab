"""Every scheduling policy by name, in the registry of `tutor.policy.base` (`POLICIES`, `make_policy`).

Importing `tutor.policy` (any of its modules) fills the registry, so `from tutor.policy.base import make_policy`
sees all policies. Learned policies are created unfitted by `make_policy`; `load_policy` reads saved parameters.
"""

from __future__ import annotations

from typing import IO

from tutor.policy.bandit import ContextualBanditPolicy
from tutor.policy.base import POLICIES, MasteryLearningPolicy, Policy
from tutor.policy.baselines import ExpertOrderPolicy, ExploringPolicy, RandomPolicy
from tutor.policy.belief import BeliefPolicy
from tutor.policy.deeprl import PPOPolicy
from tutor.policy.hierarchical import HierarchicalPolicy
from tutor.policy.joint import JointBeliefPolicy
from tutor.policy.planner import PlannerPolicy
from tutor.policy.pomdp import PlanningPolicy
from tutor.policy.spaced import SpacedReviewPolicy
from tutor.policy.zpdes import ZPDESPolicy

POLICIES.update(
    {
        cls.name: cls
        for cls in (
            RandomPolicy,
            ExpertOrderPolicy,
            ExploringPolicy,
            MasteryLearningPolicy,
            ZPDESPolicy,
            SpacedReviewPolicy,
            ContextualBanditPolicy,
            PlannerPolicy,
            PPOPolicy,
            HierarchicalPolicy,
            BeliefPolicy,
            JointBeliefPolicy,
            PlanningPolicy,
        )
    }
)

LEARNED: frozenset[str] = frozenset(
    {
        ContextualBanditPolicy.name,
        PlannerPolicy.name,
        PPOPolicy.name,
        HierarchicalPolicy.name,
        BeliefPolicy.name,
        JointBeliefPolicy.name,
        PlanningPolicy.name,
    }
)


def load_policy(name: str, fp: IO[bytes]) -> Policy:
    """A learned policy from what its `save` wrote (JSON, or a JSON header and a torch state_dict)."""
    if name not in LEARNED:
        raise ValueError(f"{name!r} has no saved parameters; learned policies: {sorted(LEARNED)}")
    cls = POLICIES[name]
    loaded: Policy = cls.load(fp)  # type: ignore[attr-defined]
    return loaded
