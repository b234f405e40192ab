import json
import re
from collections import Counter
from pathlib import Path

import pytest

from curriculum.document import parse_document
from curriculum.generation.answers import AnswerSpec, canonical, check_answer
from curriculum.generation.demo import SKILLS, demo_course
from curriculum.generation.templates import TEMPLATES
from curriculum.graph import SkillGraph


@pytest.fixture(scope="module")
def course() -> dict:
    return demo_course(seed=0)


def test_deterministic_for_a_seed(course: dict) -> None:
    again = demo_course(seed=0)
    assert json.dumps(again, sort_keys=True) == json.dumps(course, sort_keys=True)
    other = demo_course(seed=1)
    assert [i["code"] for i in other["items"]] != [i["code"] for i in course["items"]]
    assert [s["code"] for s in other["skills"]] == [s["code"] for s in course["skills"]]


def test_shape_and_counts(course: dict) -> None:
    assert set(course) == {"skills", "items"}
    assert len(course["skills"]) == 13
    assert len(course["items"]) == 41 * 14 == 574
    assert 400 <= len(course["items"]) <= 700
    for skill in course["skills"]:
        assert set(skill) == {"code", "name", "description", "prerequisites"}
        assert skill["name"] and skill["description"]
    for item in course["items"]:
        assert set(item) == {"code", "skills", "prompt", "answer", "difficulty", "solution"}
        assert item["prompt"].strip()
        assert item["solution"].startswith("1. ")
        assert "\nAnswer: " in item["solution"]
        assert -3.0 <= item["difficulty"] <= 3.0
    json.dumps(course)  # plain JSON types only


def test_skill_graph_is_an_acyclic_chain_from_place_value_to_equations(course: dict) -> None:
    codes = [s["code"] for s in course["skills"]]
    graph = SkillGraph(codes, [(p, s["code"]) for s in course["skills"] for p in s["prerequisites"]])
    order = list(graph.order)
    assert order[0] == "place-value"
    # the prerequisites come first in the listed order as well
    for i, s in enumerate(course["skills"]):
        assert all(codes.index(p) < i for p in s["prerequisites"])
    roots = [s["code"] for s in course["skills"] if not s["prerequisites"]]
    assert roots == ["place-value"]
    chain = ["place-value", "add-whole", "sub-whole", "div-whole", "frac-concept", "frac-equivalent"]
    for pre, post in zip(chain, chain[1:], strict=False):
        assert order.index(pre) < order.index(post)
    assert order.index("frac-add-like") < order.index("frac-add-unlike")
    assert order.index("eq-one-step") < order.index("eq-two-step")


def test_codes_unique_and_skills_known(course: dict) -> None:
    codes = [i["code"] for i in course["items"]]
    assert len(set(codes)) == len(codes)
    known = {s["code"] for s in course["skills"]}
    per_skill = Counter(s for i in course["items"] for s in i["skills"])
    assert set(per_skill) == known
    assert min(per_skill.values()) >= 28  # at least two templates of 14 items per skill
    exercises = {(i["prompt"], tuple(i["answer"].get("choices", ()))) for i in course["items"]}
    assert len(exercises) == len(codes)


def test_every_answer_type_and_varied_difficulty(course: dict) -> None:
    types = Counter(i["answer"]["type"] for i in course["items"])
    assert set(types) == {"number", "fraction", "expression", "choice", "text"}
    assert min(types.values()) >= 28
    assert any(i["answer"].get("equivalent") is False for i in course["items"])
    for skill in SKILLS:
        diffs = [i["difficulty"] for i in course["items"] if skill[0] in i["skills"]]
        assert max(diffs) - min(diffs) >= 0.8, skill[0]
    all_diffs = [i["difficulty"] for i in course["items"]]
    assert min(all_diffs) <= -2.0
    assert max(all_diffs) >= 0.5


def test_every_key_checks_as_correct(course: dict) -> None:
    for item in course["items"]:
        spec = AnswerSpec.from_dict(item["answer"])
        assert check_answer(spec, canonical(spec)), item
        assert check_answer(spec, item["solution"].rsplit("Answer: ", 1)[1]), item


def test_document_passes_the_import_validation(course: dict) -> None:
    doc = parse_document(course)
    assert len(doc.items) == 574
    assert len(doc.skills) == 13


def test_items_per_template() -> None:
    small = demo_course(seed=0, items_per_template=2)
    assert len(small["items"]) == 2 * len(TEMPLATES)
    big = demo_course(seed=0)
    # the first items of a template do not depend on how many are asked for
    assert small["items"][:2] == big["items"][:2]
    with pytest.raises(ValueError, match="at least 1"):
        demo_course(items_per_template=0)


def test_format_documentation_example_is_a_valid_document() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "curriculum-format.md").read_text()
    example = json.loads(re.search(r"```json\n(.*?)\n```", text, re.S).group(1))
    doc = parse_document(example)
    assert [s.code for s in doc.skills] == ["place-value", "frac-equivalent", "frac-add-like"]
    assert {i.answer.type for i in doc.items} == {"number", "fraction", "expression", "choice", "text"}
    # the generated item shown in full is exactly what its template produces
    assert (
        example["items"][0] == TEMPLATES["frac-add-like"].render({"a": 3, "b": 8, "c": 1, "d": 8}).to_dict()
    )
