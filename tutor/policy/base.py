"""The scheduling-policy interface.

A policy picks the next item from a candidate set. It always returns the full probability it gave each candidate,
so that the decision log supports off-policy evaluation of any later policy (IPS needs the logging propensity of
the chosen item; doubly robust estimators need the whole distribution).
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import numpy as np

from curriculum.graph import SkillGraph


@dataclass(frozen=True, slots=True)
class Candidate:
    """An item the learner may be shown, with the tracer's prediction for this learner."""

    item: int
    skills: tuple[int, ...]
    p_correct: float
    difficulty: float = 0.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """One earlier answer of the learner, as policies that learn from recent successes (ZPDES) need it."""

    item: int
    skills: tuple[int, ...]
    correct: bool
    time: float = 0.0  # seconds, same clock as `LearnerView.now`
    difficulty: float = 0.0  # the item's difficulty, as in `Candidate.difficulty`


@dataclass(frozen=True)
class LearnerView:
    """What a policy may know about the learner when it decides.

    `history` holds the learner's latest answers, oldest first (the service passes its last few hundred; empty
    means unknown, and policies that use it fall back to their cold-start rule). `recent_items` is newest first.
    """

    graph: SkillGraph[int]
    mastery: Mapping[int, float]
    attempts: Mapping[int, int] = field(default_factory=dict)
    recent_items: Sequence[int] = ()
    targets: frozenset[int] = frozenset()
    step: int = 0
    last_seen: Mapping[int, float] = field(default_factory=dict)  # skill -> time of last practice (seconds)
    now: float = 0.0
    history: Sequence[Outcome] = ()


@dataclass(frozen=True)
class Decision:
    item: int
    propensity: float
    probabilities: Mapping[int, float]
    skill: int | None = None
    info: Mapping[str, Any] = field(default_factory=dict)


class Policy(ABC):
    name: ClassVar[str]

    @abstractmethod
    def distribution(self, candidates: Sequence[Candidate], state: LearnerView) -> np.ndarray:
        """Probability of choosing each candidate (sums to 1); deterministic given its inputs."""

    def select(self, candidates: Sequence[Candidate], state: LearnerView, rng: np.random.Generator) -> Decision:
        if not candidates:
            raise ValueError("no candidate items to choose from")
        probs = self.distribution(candidates, state)
        idx = int(rng.choice(len(candidates), p=probs))
        chosen = candidates[idx]
        return Decision(
            item=chosen.item,
            propensity=float(probs[idx]),
            probabilities={c.item: float(p) for c, p in zip(candidates, probs, strict=True) if p > 0},
            skill=chosen.skills[0] if chosen.skills else None,
        )


def epsilon_mix(best: np.ndarray, eligible: np.ndarray, epsilon: float) -> np.ndarray:
    """Mix a greedy choice with uniform exploration over eligible candidates, so every eligible item has a
    propensity of at least epsilon/|eligible| (what off-policy evaluation needs)."""
    eligible = eligible.astype(float)
    if eligible.sum() == 0:
        eligible = np.ones_like(eligible)
    best = best.astype(float) * eligible
    if best.sum() == 0:
        best = eligible
    probs = (1 - epsilon) * best / best.sum() + epsilon * eligible / eligible.sum()
    return np.asarray(probs / probs.sum())


class MasteryLearningPolicy(Policy):
    """Scheduler v0: prerequisites first, practise an unlocked skill until P(mastery) >= threshold, and within it
    serve the item whose predicted success is nearest `target` (a zone of proximal development heuristic).

    Teacher goals (`state.targets`) are preferred: an unlocked target, or an unlocked missing prerequisite of one,
    comes before other skills.
    """

    name = "mastery"

    def __init__(self, threshold: float = 0.95, target: float = 0.7, epsilon: float = 0.1) -> None:
        self.threshold = threshold
        self.target = target
        self.epsilon = epsilon

    def focus_skill(self, state: LearnerView, available: set[int]) -> int | None:
        graph = state.graph
        unlocked = [s for s in graph.unlocked(state.mastery, self.threshold) if s in available]
        open_skills = [s for s in unlocked if state.mastery.get(s, 0.0) < self.threshold]
        if not open_skills:
            return None
        if state.targets:
            wanted = set(state.targets)
            for t in state.targets:
                if t in graph:
                    wanted |= graph.ancestors(t)
            preferred = [s for s in open_skills if s in wanted]
            if preferred:
                open_skills = preferred
        return min(open_skills, key=graph.rank)

    def distribution(self, candidates: Sequence[Candidate], state: LearnerView) -> np.ndarray:
        available = {s for c in candidates for s in c.skills}
        focus = self.focus_skill(state, available)
        if focus is None:
            # Everything reachable is mastered: review the weakest skill's items.
            weakest = min(available, key=lambda s: state.mastery.get(s, 0.0))
            focus = weakest
        eligible = np.array([focus in c.skills for c in candidates])
        gaps = np.array([abs(c.p_correct - self.target) for c in candidates])
        gaps[~eligible] = np.inf
        best = gaps == gaps.min()
        return epsilon_mix(best, eligible, self.epsilon)

    def select(self, candidates: Sequence[Candidate], state: LearnerView, rng: np.random.Generator) -> Decision:
        decision = super().select(candidates, state, rng)
        available = {s for c in candidates for s in c.skills}
        focus = self.focus_skill(state, available)
        return Decision(
            item=decision.item,
            propensity=decision.propensity,
            probabilities=decision.probabilities,
            skill=focus if focus is not None else decision.skill,
            info={"focus_skill": focus},
        )


PolicyT = TypeVar("PolicyT", bound=Policy)


def grid_search(
    grid: Mapping[str, Sequence[Any]],
    trial: Callable[[dict[str, Any]], PolicyT],
    score: Callable[[PolicyT], float | np.ndarray],
    complete: Callable[[dict[str, Any]], dict[str, Any] | None] = lambda params: params,
    *,
    paired_z: float = 0.0,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Hyperparameter search for learned policies: every combination of `grid`, completed (derived values filled
    in, or None to skip an inadmissible one) and scored as `score(trial(params))`, higher better. Returns the
    chosen combination and every scored one.

    `score` returns one number, or one per unit (learner) when every combination meets the same units with the
    same luck (common random numbers); the combination's score is then their mean. With such scores and
    `paired_z` > 0, the first admissible combination (list the simplest or the default first) is kept unless
    another beats it by more than `paired_z` standard errors of their paired difference; among those that do,
    the best mean wins. Without it the best mean wins, and a near-tie can go either way on a change as small as a
    last-digit rounding of another machine's arithmetic."""
    tried: list[dict[str, Any]] = []
    scored: list[dict[str, Any]] = []
    units: list[np.ndarray] = []
    keys = list(grid)
    for combo in itertools.product(*(grid[k] for k in keys)):
        params = complete(dict(zip(keys, combo, strict=True)))
        if params is None:
            continue
        s = np.asarray(score(trial(params)), dtype=np.float64).ravel()
        if not len(s):
            raise ValueError("score returned no values")
        tried.append(params)
        scored.append({**params, "score": float(s.mean())})
        units.append(s)
    if not scored:
        raise ValueError("no admissible combination in the grid")
    means = np.array([e["score"] for e in scored])
    if paired_z <= 0.0:
        best = int(np.argmax(means))  # the first of equal scores, as a strict > over the grid's order
    else:
        if len({len(u) for u in units}) != 1 or len(units[0]) < 2:
            raise ValueError("paired_z needs one score per unit, as many units (at least 2) for every combination")
        best = 0
        for i in range(1, len(scored)):
            d = units[i] - units[0]
            se = float(d.std(ddof=1)) / np.sqrt(len(d))
            scored[i]["vs_first"] = float(d.mean())
            scored[i]["vs_first_se"] = se
            if d.mean() > paired_z * se and means[i] > means[best]:
                best = i
    return tried[best], scored


POLICIES: dict[str, type[Policy]] = {MasteryLearningPolicy.name: MasteryLearningPolicy}


def make_policy(name: str, **params: Any) -> Policy:
    try:
        cls = POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; known: {sorted(POLICIES)}") from None
    return cls(**params)
