import copy

import pytest

from curriculum.document import DocumentError, parse_document
from tests.factories import COURSE_DOC


def test_valid_document_parses():
    doc = parse_document(COURSE_DOC)
    assert [s.code for s in doc.skills] == ["count", "add", "sub", "frac"]
    assert len(doc.items) == 9
    assert doc.items[6].skills == ("sub", "add")
    assert doc.items[0].answer.type == "number"


def test_every_problem_is_listed_with_its_path():
    doc = copy.deepcopy(COURSE_DOC)
    doc["skills"][1]["prerequisites"] = ["nope"]
    doc["items"][0]["answer"] = {"type": "colour", "value": "red"}
    doc["items"][1]["skills"] = ["ghost"]
    doc["items"][2].pop("prompt")
    doc["items"][3]["difficulty"] = "hard"
    doc["items"][4]["code"] = "count-1"
    with pytest.raises(DocumentError) as exc:
        parse_document(doc)
    problems = exc.value.problems
    assert "skills[1].prerequisites: unknown skill 'nope'" in problems
    assert any(p.startswith("items[0].answer.type") for p in problems), problems
    assert "items[1].skills: unknown skill 'ghost'" in problems
    assert "items[2].prompt: required" in problems
    assert "items[3].difficulty: must be a number" in problems
    assert "items[4].code: duplicate item code 'count-1'" in problems


def test_cycle_through_stored_skills_is_found():
    doc = {"skills": [{"code": "count", "name": "Counting", "prerequisites": ["sub"]}], "items": []}
    stored = {"count": [], "add": ["count"], "sub": ["add"]}
    with pytest.raises(DocumentError) as exc:
        parse_document(doc, known_skills=stored)
    assert exc.value.problems == ["skills: prerequisite cycle: count -> add -> sub -> count"]


def test_not_an_object():
    with pytest.raises(DocumentError, match="must be a JSON object"):
        parse_document([1, 2])
