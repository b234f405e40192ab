"""The curriculum document: validation of the import/export JSON format (docs/curriculum-format.md).

Pure code: the service calls `parse_document` and imports nothing unless it returns no problems, so a bad document
is refused whole, with every problem listed and named by its JSON path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from curriculum.generation.answers import AnswerSpec, SpecError
from curriculum.graph import CycleError, GraphError, SkillGraph

CODE_RE = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")
ITEM_CODE_RE = re.compile(r"^[-a-zA-Z0-9_]{1,120}$")


class DocumentError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        super().__init__(f"{len(problems)} problem(s) in curriculum document: {shown}")


@dataclass(frozen=True)
class SkillDoc:
    code: str
    name: str
    description: str
    prerequisites: tuple[str, ...]


@dataclass(frozen=True)
class ItemDoc:
    code: str
    skills: tuple[str, ...]
    prompt: str
    answer: AnswerSpec
    difficulty: float
    solution: str


@dataclass(frozen=True)
class CurriculumDoc:
    skills: tuple[SkillDoc, ...]
    items: tuple[ItemDoc, ...]


def _str(obj: dict[str, Any], key: str, path: str, problems: list[str], *, required: bool = True) -> str:
    value = obj.get(key)
    if value is None:
        if required:
            problems.append(f"{path}.{key}: required")
        return ""
    if not isinstance(value, str):
        problems.append(f"{path}.{key}: must be a string")
        return ""
    return value


def _codes(obj: dict[str, Any], key: str, path: str, problems: list[str]) -> tuple[str, ...]:
    value = obj.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{path}.{key}: must be a list of skill codes")
        return ()
    return tuple(value)


def parse_document(doc: Any, *, known_skills: Mapping[str, Sequence[str]] | None = None) -> CurriculumDoc:
    """Validate a whole document; raise DocumentError listing every problem.

    `known_skills` maps the codes of skills already stored to their stored prerequisites: the document may refer
    to them without repeating them, and the cycle check covers the graph as it will be after the import.
    """
    known_skills = dict(known_skills or {})
    problems: list[str] = []
    if not isinstance(doc, dict):
        raise DocumentError(["document: must be a JSON object with 'skills' and 'items'"])
    unknown_keys = set(doc) - {"skills", "items", "format", "version"}
    if unknown_keys:
        problems.append(f"document: unknown keys {sorted(unknown_keys)}")
    raw_skills = doc.get("skills", [])
    raw_items = doc.get("items", [])
    if not isinstance(raw_skills, list):
        problems.append("skills: must be a list")
        raw_skills = []
    if not isinstance(raw_items, list):
        problems.append("items: must be a list")
        raw_items = []

    skills: list[SkillDoc] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_skills):
        path = f"skills[{i}]"
        if not isinstance(raw, dict):
            problems.append(f"{path}: must be an object")
            continue
        code = _str(raw, "code", path, problems)
        if code and not CODE_RE.match(code):
            problems.append(f"{path}.code: {code!r} must be 1-64 letters, digits, '-' or '_'")
        if code in seen:
            problems.append(f"{path}.code: duplicate skill code {code!r}")
        seen.add(code)
        name = _str(raw, "name", path, problems)
        description = _str(raw, "description", path, problems, required=False)
        prereqs = _codes(raw, "prerequisites", path, problems)
        skills.append(SkillDoc(code, name, description, prereqs))

    all_skills = seen | set(known_skills)
    for i, s in enumerate(skills):
        for p in s.prerequisites:
            if p not in all_skills:
                problems.append(f"skills[{i}].prerequisites: unknown skill {p!r}")
    if not problems:
        try:
            kept = {code: prereqs for code, prereqs in known_skills.items() if code not in seen}
            SkillGraph(
                [s.code for s in skills] + sorted(kept),
                [(p, s.code) for s in skills for p in s.prerequisites]
                + [(p, code) for code, prereqs in kept.items() for p in prereqs],
            )
        except CycleError as exc:
            problems.append(f"skills: {exc}")
        except GraphError as exc:  # pragma: no cover - unknown skills are reported above
            problems.append(f"skills: {exc}")

    items: list[ItemDoc] = []
    seen_items: set[str] = set()
    for i, raw in enumerate(raw_items):
        path = f"items[{i}]"
        if not isinstance(raw, dict):
            problems.append(f"{path}: must be an object")
            continue
        code = _str(raw, "code", path, problems)
        if code and not ITEM_CODE_RE.match(code):
            problems.append(f"{path}.code: {code!r} must be 1-120 letters, digits, '-' or '_'")
        if code in seen_items:
            problems.append(f"{path}.code: duplicate item code {code!r}")
        seen_items.add(code)
        item_skills = _codes(raw, "skills", path, problems)
        if not item_skills and "skills" in raw:
            problems.append(f"{path}.skills: at least one skill is required")
        elif "skills" not in raw:
            problems.append(f"{path}.skills: required")
        for skill_code in item_skills:
            if skill_code not in all_skills:
                problems.append(f"{path}.skills: unknown skill {skill_code!r}")
        prompt = _str(raw, "prompt", path, problems)
        if "prompt" in raw and isinstance(raw["prompt"], str) and not prompt.strip():
            problems.append(f"{path}.prompt: must not be empty")
        answer: AnswerSpec | None = None
        if "answer" not in raw:
            problems.append(f"{path}.answer: required")
        else:
            try:
                answer = AnswerSpec.from_dict(raw["answer"])
            except SpecError as exc:
                problems.extend(f"{path}.{p}" if p.startswith("answer") else f"{path}.answer: {p}" for p in exc.problems)
        difficulty = raw.get("difficulty", 0.0)
        if not isinstance(difficulty, int | float) or isinstance(difficulty, bool):
            problems.append(f"{path}.difficulty: must be a number")
            difficulty = 0.0
        solution = _str(raw, "solution", path, problems, required=False)
        if answer is not None:
            items.append(ItemDoc(code, item_skills, prompt, answer, float(difficulty), solution))

    if problems:
        raise DocumentError(problems)
    return CurriculumDoc(tuple(skills), tuple(items))
