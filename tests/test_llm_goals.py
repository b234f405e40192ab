"""Goals in plain language: due dates by rule, skills by similarity, then the model's pick validated."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from tutor.llm.backends.base import Completion, LLMBackend, Messages
from tutor.llm.backends.template import TemplateBackend
from tutor.llm.goals import GoalMapper, parse_due, rank_skills

WED = date(2025, 3, 12)  # a Wednesday
SKILLS = {
    "place-value": "Place value. Read and write whole numbers; the value of a digit depends on its place.",
    "add-whole": "Adding whole numbers. Add in columns, carrying when a column adds up to ten or more.",
    "mul-whole": "Multiplying whole numbers. Multiplication facts and times tables to 12 x 12.",
    "frac-equivalent": "Equivalent fractions. Fractions that name the same amount; lowest terms.",
    "frac-add-unlike": "Adding fractions with unlike denominators. Rename with a common denominator.",
    "eq-one-step": "One-step equations. Solve x + a = b and a x = b by undoing one operation.",
}


@pytest.mark.parametrize(
    ("text", "due"),
    [
        ("be ready for fractions by Friday", date(2025, 3, 14)),
        ("by Wednesday", WED),
        ("next Friday", date(2025, 3, 21)),
        ("next Monday", date(2025, 3, 17)),
        ("in 3 days", date(2025, 3, 15)),
        ("within two weeks", date(2025, 3, 26)),
        ("in a month", date(2025, 4, 12)),
        ("by the end of the week", date(2025, 3, 14)),
        ("end of next week", date(2025, 3, 21)),
        ("end of the month", date(2025, 3, 31)),
        ("next week", date(2025, 3, 17)),
        ("tomorrow", date(2025, 3, 13)),
        ("by 14 March", date(2025, 3, 14)),
        ("by March 3rd", date(2026, 3, 3)),
        ("before 2025-04-01", date(2025, 4, 1)),
        ("by 1 February 2026", date(2026, 2, 1)),
    ],
)
def test_parse_due(text: str, due: date) -> None:
    got = parse_due(text, WED)
    assert got is not None and got.due == due


def test_no_date_is_none() -> None:
    assert parse_due("master the times tables", WED) is None
    assert parse_due("by 31 February", WED) is None


def test_similarity_mapping_without_a_model() -> None:
    mapper = GoalMapper(SKILLS)
    got = mapper.map("be ready for fractions by Friday", today=WED)
    assert got.targets == ("frac-equivalent", "frac-add-unlike")
    assert (got.due, got.due_text, got.method) == (date(2025, 3, 14), "friday", "embedding")
    assert list(got.scores)[:2] == ["frac-equivalent", "frac-add-unlike"]
    assert mapper.map("learn the times tables in two weeks", today=WED).targets == ("mul-whole",)
    assert rank_skills("solve equations", SKILLS)[0][0] == "eq-one-step"


class Naming(LLMBackend):
    name = "naming"
    model = "naming"

    def __init__(self, reply: dict[str, Any]) -> None:
        self.reply = reply
        self.schemas: list[Any] = []

    def generate(self, messages: Messages, **kw: Any) -> Completion:
        self.schemas.append(kw.get("json_schema"))
        return Completion(json.dumps(self.reply), 10, 5, 0.01, self.name, self.model)


def test_the_model_narrows_the_shortlist_and_unknown_codes_are_dropped() -> None:
    backend = Naming({"skills": ["frac-add-unlike", "fractions-101"]})
    got = GoalMapper(SKILLS, backend=backend).map("be ready for fractions by Friday", today=WED)
    assert got.targets == ("frac-add-unlike",)
    assert got.rejected_codes == ("fractions-101",)
    assert got.method == "model"
    enum = backend.schemas[0]["properties"]["skills"]["items"]["enum"]
    assert len(enum) == 5 and enum[0] in {"frac-equivalent", "frac-add-unlike"}
    # a pick outside the similarity targets cannot add a far-off skill
    far = GoalMapper(SKILLS, backend=Naming({"skills": ["place-value"]})).map(
        "ready for fractions", today=WED
    )
    assert (far.targets, far.method) == (("frac-equivalent", "frac-add-unlike"), "embedding")


def test_an_empty_model_answer_falls_back_to_similarity() -> None:
    got = GoalMapper(SKILLS, backend=Naming({"skills": []})).map("adding whole numbers", today=WED)
    assert (got.targets, got.method) == (("add-whole",), "embedding")
    tmpl = GoalMapper(SKILLS, backend=TemplateBackend()).map("equations in 3 days", today=WED)
    assert tmpl.targets == ("eq-one-step",)
    assert tmpl.as_dict()["due"] == "2025-03-15"


def test_no_skills_is_an_error() -> None:
    with pytest.raises(ValueError, match="no skills"):
        GoalMapper({})
