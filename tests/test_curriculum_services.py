import copy

import pytest

from curriculum.document import DocumentError
from curriculum.models import Item, Skill
from curriculum.selectors import curriculum_export, curriculum_snapshot
from curriculum.services import curriculum_import
from tests.factories import COURSE_DOC

pytestmark = pytest.mark.django_db


def test_import_is_an_idempotent_upsert():
    first = curriculum_import(document=COURSE_DOC)
    assert first.as_dict() == {"skills_created": 4, "skills_updated": 0, "items_created": 9, "items_updated": 0}
    second = curriculum_import(document=COURSE_DOC)
    assert second.as_dict() == {"skills_created": 0, "skills_updated": 0, "items_created": 0, "items_updated": 0}
    doc = copy.deepcopy(COURSE_DOC)
    doc["items"][0]["prompt"] = "Count the stars: * * *"
    doc["skills"][3]["prerequisites"] = ["count"]
    third = curriculum_import(document=doc)
    assert third.as_dict() == {"skills_created": 0, "skills_updated": 1, "items_created": 0, "items_updated": 1}
    assert list(Skill.objects.get(code="frac").prerequisites.values_list("code", flat=True)) == ["count"]
    assert Item.objects.get(code="count-1").prompt == "Count the stars: * * *"


def test_bad_document_is_refused_whole():
    curriculum_import(document=COURSE_DOC)
    before = curriculum_export()
    doc = copy.deepcopy(COURSE_DOC)
    doc["items"].append({"code": "new-1", "skills": ["add"], "prompt": "1+1", "answer": {"type": "number", "value": "2"}})
    doc["items"][0]["prompt"] = "changed"
    doc["skills"][0]["prerequisites"] = ["frac"]  # count <- frac <- add <- count: a cycle
    with pytest.raises(DocumentError) as exc:
        curriculum_import(document=doc)
    assert exc.value.problems == ["skills: prerequisite cycle: count -> add -> frac -> count"]
    assert curriculum_export() == before
    assert not Item.objects.filter(code="new-1").exists()


def test_export_round_trips():
    curriculum_import(document=COURSE_DOC)
    exported = curriculum_export()
    assert [s["code"] for s in exported["skills"]] == ["count", "add", "sub", "frac"]
    assert exported["items"][0] == {
        "code": "count-1", "skills": ["count"], "prompt": "Count: * * *",
        "answer": {"type": "number", "value": "3"}, "difficulty": -1.0, "solution": "There are three stars.",
    }
    assert curriculum_import(document=exported).as_dict()["items_updated"] == 0


def test_snapshot_is_cached_until_the_curriculum_changes():
    curriculum_import(document=COURSE_DOC)
    a = curriculum_snapshot()
    assert curriculum_snapshot() is a
    assert len(a.items) == 9 and len(a.graph) == 4
    doc = copy.deepcopy(COURSE_DOC)
    doc["skills"][3]["prerequisites"] = ["count"]
    curriculum_import(document=doc)
    b = curriculum_snapshot()
    assert b is not a
    frac = Skill.objects.get(code="frac").pk
    assert b.graph.prerequisites(frac) == (Skill.objects.get(code="count").pk,)
