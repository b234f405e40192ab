"""Courses the simulator runs on: a skill graph plus items (a Q-matrix with difficulties), as dense arrays.

Skills and items are re-indexed 0..S-1 and 0..I-1 so the simulator can vectorise; `skill_ids`/`item_ids` keep the
ids the policies see (database ids in the service, positions in a synthetic course). A synthetic generator exists
so experiments need neither the database nor the demo course; `course_from_document` reads the curriculum JSON
format of the service (and of `curriculum.generation.demo.demo_course`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from curriculum.graph import SkillGraph


@dataclass(frozen=True)
class Course:
    """A curriculum in array form. Items may carry several skills (a conjunctive Q-matrix row)."""

    graph: SkillGraph[int]
    skill_ids: tuple[int, ...]  # position -> id; the graph uses ids
    item_ids: tuple[int, ...]
    item_skills: tuple[tuple[int, ...], ...]  # item position -> skill positions
    difficulty: np.ndarray  # float64 (I,), roughly a logit scale: 0 is typical, +1 is hard
    skill_names: tuple[str, ...] = ()

    @property
    def n_skills(self) -> int:
        return len(self.skill_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def q_matrix(self) -> np.ndarray:
        """(I, S) boolean: which skills each item exercises."""
        q = np.zeros((self.n_items, self.n_skills), dtype=bool)
        for i, skills in enumerate(self.item_skills):
            q[i, list(skills)] = True
        return q

    @property
    def primary_skill(self) -> np.ndarray:
        """(I,) the first skill of each item: what a single-skill view of the item practises."""
        return np.array([s[0] for s in self.item_skills], dtype=np.int64)

    def prerequisite_matrix(self) -> np.ndarray:
        """(S, S) boolean P with P[s, p] true when p is a direct prerequisite of s (positions)."""
        pos = {sid: k for k, sid in enumerate(self.skill_ids)}
        p = np.zeros((self.n_skills, self.n_skills), dtype=bool)
        for pre, post in self.graph.edges():
            p[pos[post], pos[pre]] = True
        return p

    def depth(self) -> np.ndarray:
        """(S,) length of the longest prerequisite chain below each skill (0 for a root)."""
        pos = {sid: k for k, sid in enumerate(self.skill_ids)}
        depth = np.zeros(self.n_skills, dtype=np.int64)
        for sid in self.graph.order:
            pres = self.graph.prerequisites(sid)
            if pres:
                depth[pos[sid]] = 1 + max(depth[pos[p]] for p in pres)
        return depth

    def topological_positions(self) -> np.ndarray:
        """(S,) skill positions in the graph's fixed topological order."""
        pos = {sid: k for k, sid in enumerate(self.skill_ids)}
        return np.array([pos[s] for s in self.graph.order], dtype=np.int64)


def synthetic_course(
    n_skills: int = 12,
    items_per_skill: int = 6,
    *,
    max_prerequisites: int = 2,
    difficulty_spread: float = 1.0,
    random_state: int | np.random.Generator | None = 0,
) -> Course:
    """A random layered DAG of skills with single-skill items spread evenly over difficulty.

    Each skill after the first has one or two prerequisites among the few skills just before it in a fixed order,
    which gives chains of depth about n/2 like a school syllabus rather than a flat star. Item difficulties are
    evenly spaced in [-spread, +spread] per skill, shuffled, so every skill has easy and hard items.
    """
    rng = np.random.default_rng(random_state)
    edges: list[tuple[int, int]] = []
    for s in range(1, n_skills):
        window = list(range(max(0, s - 3), s))
        k = int(rng.integers(1, min(max_prerequisites, len(window)) + 1))
        for p in rng.choice(window, size=k, replace=False):
            edges.append((int(p), s))
    graph = SkillGraph(range(n_skills), edges)
    item_skills: list[tuple[int, ...]] = []
    difficulty: list[float] = []
    levels = np.linspace(-difficulty_spread, difficulty_spread, items_per_skill)
    for s in range(n_skills):
        for d in rng.permutation(levels):
            item_skills.append((s,))
            difficulty.append(float(d))
    return Course(
        graph=graph,
        skill_ids=tuple(range(n_skills)),
        item_ids=tuple(range(len(item_skills))),
        item_skills=tuple(item_skills),
        difficulty=np.asarray(difficulty, dtype=np.float64),
        skill_names=tuple(f"skill-{s}" for s in range(n_skills)),
    )


def course_from_document(doc: Mapping[str, Any], *, difficulty_scale: float | None = None) -> Course:
    """Build a course from the curriculum JSON format (`{"skills": [...], "items": [...]}`).

    Skill and item ids are positions in the document. Difficulties are centred and scaled to unit spread when the
    document's scale is unknown (`difficulty_scale=None`), since documents use their own ranges (1..5, 0..1, ...).
    """
    skills: Sequence[Mapping[str, Any]] = doc["skills"]
    items: Sequence[Mapping[str, Any]] = doc["items"]
    pos = {s["code"]: k for k, s in enumerate(skills)}
    edges = [(pos[p], pos[s["code"]]) for s in skills for p in s.get("prerequisites", [])]
    graph = SkillGraph(range(len(skills)), edges)
    raw = np.array([float(it.get("difficulty") or 0.0) for it in items], dtype=np.float64)
    if difficulty_scale is None:
        spread = float(np.max(np.abs(raw - raw.mean()))) if len(raw) else 0.0
        diff = (raw - raw.mean()) / spread if spread > 0 else np.zeros_like(raw)
    else:
        diff = (raw - raw.mean()) * difficulty_scale
    return Course(
        graph=graph,
        skill_ids=tuple(range(len(skills))),
        item_ids=tuple(range(len(items))),
        item_skills=tuple(tuple(pos[c] for c in it["skills"]) for it in items),
        difficulty=diff,
        skill_names=tuple(str(s["code"]) for s in skills),
    )


def course_document(course: Course) -> dict[str, Any]:
    """The course in the curriculum JSON format, for importing into the service (`course_from_document` reads it
    back): skill codes are the skill names, item codes `item-<id>`, every answer the number 1 (the simulator
    decides right or wrong, not the text). Difficulties are written as they are."""
    codes = course.skill_names or tuple(f"skill-{s}" for s in course.skill_ids)
    code_of = dict(zip(course.skill_ids, codes, strict=True))
    skills = [
        {
            "code": code_of[sid],
            "name": code_of[sid],
            "prerequisites": [code_of[p] for p in sorted(course.graph.prerequisites(sid))],
        }
        for sid in course.skill_ids
    ]
    items = [
        {
            "code": f"item-{iid}",
            "skills": [codes[s] for s in course.item_skills[k]],
            "prompt": f"Exercise {iid} on {', '.join(codes[s] for s in course.item_skills[k])}.",
            "answer": {"type": "number", "value": "1"},
            "difficulty": float(course.difficulty[k]),
        }
        for k, iid in enumerate(course.item_ids)
    ]
    return {"skills": skills, "items": items}
