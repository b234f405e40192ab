"""Features of (candidate, learner view) pairs shared by the learned policies.

Everything here is computed from what the service gives a policy (the tracer's mastery, attempt counts, the
learner's recent answers, times) and the curriculum (graph, item difficulty); nothing reads a simulator. Skill-level
quantities are computed once per decision as arrays and then indexed by each candidate's primary skill, which
keeps a decision over ~100 candidates in the tens of microseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from curriculum.graph import SkillGraph
from tutor.policy.base import Candidate, LearnerView

DAY = 86400.0
MASTERED = 0.95


@dataclass(frozen=True)
class GraphIndex:
    """Positions of skills and their prerequisite/dependent structure, as arrays."""

    skills: tuple[int, ...]
    pos: dict[int, int]
    prereq: np.ndarray  # (S, S) bool: prereq[s, p]
    order_rank: np.ndarray  # (S,) topological rank
    n_dependents: np.ndarray  # (S,) direct dependents


@lru_cache(maxsize=16)
def graph_index(graph: SkillGraph[int]) -> GraphIndex:
    skills = tuple(graph.skills)
    pos = {s: k for k, s in enumerate(skills)}
    prereq = np.zeros((len(skills), len(skills)), dtype=bool)
    for pre, post in graph.edges():
        prereq[pos[post], pos[pre]] = True
    rank = np.array([graph.rank(s) for s in skills], dtype=np.int64)
    return GraphIndex(skills, pos, prereq, rank, prereq.sum(axis=0).astype(np.int64))


def ability_proxy(state: LearnerView, window: int = 20) -> float:
    """Logit of the smoothed accuracy of the last answers: a rough, tracer-independent ability signal that
    lets learned policies pick item difficulty per learner (BKT itself ignores difficulty)."""
    hist = state.history[-window:]
    n = len(hist)
    k = sum(1 for o in hist if o.correct)
    p = (k + 1.0) / (n + 2.0)
    return float(np.log(p / (1.0 - p)))


@dataclass(frozen=True)
class SkillContext:
    """Skill-level arrays for one decision (positions of `GraphIndex.skills`)."""

    index: GraphIndex
    mastery: np.ndarray
    attempts: np.ndarray
    ready: np.ndarray  # product of prerequisites' mastery (1 for roots)
    min_pre: np.ndarray
    days_since: np.ndarray  # days since last practice (large when never)
    target: np.ndarray  # bool: a teacher target or a prerequisite of one
    ability: float


def skill_context(state: LearnerView) -> SkillContext:
    gi = graph_index(state.graph)
    m = np.array([state.mastery.get(s, 0.0) for s in gi.skills], dtype=np.float64)
    att = np.array([state.attempts.get(s, 0) for s in gi.skills], dtype=np.float64)
    pre_m = np.where(gi.prereq, m[None, :], 1.0)
    ready = pre_m.prod(axis=1)
    min_pre = pre_m.min(axis=1)
    days = np.full(len(gi.skills), 30.0)
    for s, t in state.last_seen.items():
        k = gi.pos.get(s)
        if k is not None:
            days[k] = max(state.now - t, 0.0) / DAY
    target = np.zeros(len(gi.skills), dtype=bool)
    if state.targets:
        wanted = set(state.targets)
        for t in state.targets:
            if t in state.graph:
                wanted |= state.graph.ancestors(t)
        target[[gi.pos[s] for s in wanted if s in gi.pos]] = True
    return SkillContext(gi, m, att, ready, min_pre, days, target, ability_proxy(state))


FEATURE_NAMES = (
    "bias",
    "mastery",
    "mastery_sq",
    "ready",
    "ready_x_unmastered",
    "min_prereq",
    "mastered",
    "log_attempts",
    "difficulty",
    "difficulty_sq",
    "rel_difficulty",
    "rel_difficulty_sq",
    "rel_difficulty_x_unmastered",
    "rel_difficulty_sq_x_unmastered",
    "p_correct",
    "ability",
    "unlocks",
    "log_days_since",
)


def candidate_features(
    candidates: Sequence[Candidate], state: LearnerView, ctx: SkillContext | None = None
) -> np.ndarray:
    """(n_candidates, len(FEATURE_NAMES)) features of serving each candidate now."""
    ctx = ctx or skill_context(state)
    gi = ctx.index
    sk = np.array([gi.pos[c.skills[0]] for c in candidates], dtype=np.int64)
    d = np.array([c.difficulty for c in candidates], dtype=np.float64)
    pc = np.array([c.p_correct for c in candidates], dtype=np.float64)
    m = ctx.mastery[sk]
    un = 1.0 - m
    ready = ctx.ready[sk]
    rel = d - ctx.ability * 0.5
    unlocks = gi.n_dependents[sk] * un * ready / 3.0
    return np.column_stack(
        [
            np.ones(len(candidates)),
            m,
            m * m,
            ready,
            ready * un,
            ctx.min_pre[sk],
            (m >= MASTERED).astype(np.float64),
            np.log1p(ctx.attempts[sk]),
            d,
            d * d,
            rel,
            rel * rel,
            rel * un,
            rel * rel * un,
            pc,
            np.full(len(candidates), ctx.ability),
            unlocks,
            np.log1p(ctx.days_since[sk]),
        ]
    )


def at_difficulty(features: np.ndarray, difficulty: float) -> np.ndarray:
    """The same rows with the item's difficulty replaced: the counterfactual "a typical item of this skill"."""
    col = {n: k for k, n in enumerate(FEATURE_NAMES)}
    out = features.copy()
    ability = features[:, col["ability"]]
    un = 1.0 - features[:, col["mastery"]]
    rel = difficulty - ability * 0.5
    out[:, col["difficulty"]] = difficulty
    out[:, col["difficulty_sq"]] = difficulty * difficulty
    out[:, col["rel_difficulty"]] = rel
    out[:, col["rel_difficulty_sq"]] = rel * rel
    out[:, col["rel_difficulty_x_unmastered"]] = rel * un
    out[:, col["rel_difficulty_sq_x_unmastered"]] = rel * rel * un
    return out
