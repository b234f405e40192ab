"""Writes to the curriculum: import of a whole document, all or nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from curriculum.document import parse_document
from curriculum.models import Item, Skill
from curriculum.selectors import curriculum_changed


@dataclass(frozen=True)
class ImportReport:
    skills_created: int
    skills_updated: int
    items_created: int
    items_updated: int

    def as_dict(self) -> dict[str, int]:
        return {
            "skills_created": self.skills_created,
            "skills_updated": self.skills_updated,
            "items_created": self.items_created,
            "items_updated": self.items_updated,
        }


def _stored_prerequisites() -> dict[str, list[str]]:
    graph: dict[str, list[str]] = {s.code: [] for s in Skill.objects.only("code")}
    for skill_code, pre_code in Skill.prerequisites.through.objects.values_list(
        "from_skill__code", "to_skill__code"
    ):
        graph[skill_code].append(pre_code)
    return graph


@transaction.atomic
def curriculum_import(*, document: Any) -> ImportReport:
    """Upsert skills and items by code. Raises DocumentError (nothing written) when the document is invalid.

    Running it twice with the same document leaves the same rows: codes are the keys, prerequisites and item
    skills are replaced by the document's lists.
    """
    parsed = parse_document(document, known_skills=_stored_prerequisites())
    skills = {s.code: s for s in Skill.objects.prefetch_related("prerequisites")}
    changed: set[str] = set()
    created: set[str] = set()
    for sd in parsed.skills:
        skill = skills.get(sd.code)
        if skill is None:
            skills[sd.code] = Skill.objects.create(code=sd.code, name=sd.name, description=sd.description)
            created.add(sd.code)
        elif (skill.name, skill.description) != (sd.name, sd.description):
            skill.name, skill.description = sd.name, sd.description
            skill.save(update_fields=["name", "description", "updated_at"])
            changed.add(sd.code)
    for sd in parsed.skills:
        skill = skills[sd.code]
        wanted = {skills[p].pk for p in sd.prerequisites}
        current = set() if sd.code in created else {p.pk for p in skill.prerequisites.all()}
        if current != wanted:
            skill.prerequisites.set(wanted)
            if sd.code not in created:
                changed.add(sd.code)
    s_created, s_updated = len(created), len(changed)
    # M2M changes do not touch updated_at, which the scheduler's cached snapshot keys on.
    Skill.objects.filter(code__in=changed).update(updated_at=timezone.now())

    items = {
        i.code: i for i in Item.objects.filter(code__in=[d.code for d in parsed.items]).prefetch_related("skills")
    }
    i_created = i_updated = 0
    for d in parsed.items:
        fields = {
            "prompt": d.prompt,
            "answer": d.answer.to_dict(),
            "difficulty": d.difficulty,
            "solution": d.solution,
        }
        item = items.get(d.code)
        if item is None:
            item = Item.objects.create(code=d.code, **fields)
            item.skills.set({skills[s].pk for s in d.skills})
            i_created += 1
            continue
        dirty = False
        if any(getattr(item, k) != v for k, v in fields.items()):
            for k, v in fields.items():
                setattr(item, k, v)
            item.save()
            dirty = True
        wanted = {skills[s].pk for s in d.skills}
        if {s.pk for s in item.skills.all()} != wanted:
            item.skills.set(wanted)
            Item.objects.filter(pk=item.pk).update(updated_at=timezone.now())
            dirty = True
        i_updated += dirty
    curriculum_changed()
    return ImportReport(s_created, s_updated, i_created, i_updated)
