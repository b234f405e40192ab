"""Reads of the curriculum: the export document and a cached in-memory snapshot for scheduling."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Count, Max

from curriculum.graph import SkillGraph
from curriculum.models import Item, Skill
from tutor.caching import TTLCache


def curriculum_export() -> dict[str, Any]:
    """The whole curriculum in the import format; importing it back changes nothing."""
    skills = [
        {
            "code": s.code,
            "name": s.name,
            "description": s.description,
            "prerequisites": sorted(p.code for p in s.prerequisites.all()),
        }
        for s in Skill.objects.prefetch_related("prerequisites").order_by("id")
    ]
    items = []
    for i in Item.objects.prefetch_related("skills").order_by("id"):
        entry: dict[str, Any] = {
            "code": i.code,
            "skills": sorted(s.code for s in i.skills.all()),
            "prompt": i.prompt,
            "answer": i.answer,
            "difficulty": i.difficulty,
        }
        if i.solution:
            entry["solution"] = i.solution
        if i.status != Item.Status.APPROVED:
            continue  # drafts and rejected items are not part of the published curriculum
        items.append(entry)
    return {"format": "tutor-curriculum", "version": 1, "skills": skills, "items": items}


@dataclass(frozen=True)
class ItemInfo:
    id: int
    code: str
    skills: tuple[int, ...]
    difficulty: float
    prompt: str = ""  # what `/next` shows, so that serving an item needs no query for it
    answer_type: str = ""
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class CurriculumSnapshot:
    """What the scheduler needs, built once per curriculum change instead of once per request."""

    key: tuple[Any, ...]
    graph: SkillGraph[int]
    skill_codes: dict[int, str]
    items: tuple[ItemInfo, ...]  # approved items only
    items_by_id: dict[int, ItemInfo]


_lock = threading.Lock()
_cached: CurriculumSnapshot | None = None


def _snapshot_key() -> tuple[Any, ...]:
    s = Skill.objects.aggregate(n=Count("id"), t=Max("updated_at"))
    i = Item.objects.aggregate(n=Count("id"), t=Max("updated_at"))
    return (s["n"], s["t"], i["n"], i["t"])


_key_cache = TTLCache(_snapshot_key, ttl=1.0)


def curriculum_snapshot() -> CurriculumSnapshot:
    """The scheduler's view of the curriculum; rebuilt when the curriculum changed (checked at most once a second
    per process; an import in this process is seen at once)."""
    global _cached
    key = _key_cache.get()
    cached = _cached
    if cached is not None and cached.key == key:
        return cached
    with _lock:
        skills = list(Skill.objects.order_by("id").values_list("id", "code"))
        edges = list(Skill.prerequisites.through.objects.values_list("to_skill_id", "from_skill_id"))
        graph = SkillGraph([s for s, _ in skills], edges)
        item_skills: dict[int, list[int]] = {}
        for item_id, skill_id in Item.skills.through.objects.filter(
            item__status=Item.Status.APPROVED
        ).values_list("item_id", "skill_id"):
            item_skills.setdefault(item_id, []).append(skill_id)
        items = tuple(
            ItemInfo(
                pk,
                code,
                tuple(sorted(item_skills.get(pk, []))),
                difficulty,
                prompt,
                answer.get("type", ""),
                tuple(answer.get("choices", ())),
            )
            for pk, code, difficulty, prompt, answer in Item.objects.filter(status=Item.Status.APPROVED)
            .order_by("id")
            .values_list("id", "code", "difficulty", "prompt", "answer")
            if pk in item_skills
        )
        _cached = CurriculumSnapshot(key, graph, dict(skills), items, {i.id: i for i in items})
        return _cached


def curriculum_changed() -> None:
    """Call after writing skills or items: the next snapshot re-reads the key."""
    _key_cache.clear()
    transaction.on_commit(_key_cache.clear)
