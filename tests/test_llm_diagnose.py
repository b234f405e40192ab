"""Rule-based misconception diagnosis: each rule fires on exactly the value its misconception produces."""

from __future__ import annotations

from fractions import Fraction

import pytest

from tutor.llm.diagnose import MISCONCEPTIONS, diagnose, parse_number


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3", Fraction(3)),
        ("-0.25", Fraction(-1, 4)),
        ("3/4", Fraction(3, 4)),
        ("1 1/2", Fraction(3, 2)),
        ("12,000", Fraction(12000)),
        ("−2", Fraction(-2)),
        ("x", None),
        ("1/0", None),
        ("", None),
    ],
)
def test_parse_number(text: str, value: Fraction | None) -> None:
    assert parse_number(text) == value


@pytest.mark.parametrize(
    ("prompt", "key", "response", "code"),
    [
        ("What is 1/2 + 1/3?", "5/6", "2/5", "add_across"),
        ("What is 3/4 - 1/2?", "1/4", "2/2", "subtract_across"),
        ("What is 1/2 ÷ 1/4?", "2", "1/8", "division_not_inverted"),
        ("What is 52 - 17?", "35", "69", "wrong_operation"),
        ("What is 6 × 7?", "42", "13", "wrong_operation"),
        ("What is 17 - 52?", "-35", "35", "sign_error"),
        ("What is 3.5 × 10?", "35", "350", "place_value"),
        ("What is 40 + 33?", "73", "37", "digit_order"),
        ("What is 29 + 15?", "44", "45", "off_by_one"),
        ("Solve for x: x + 7 = 12", "5", "19", "inverse_operation"),
        ("Solve for x: 3x + 4 = 19", "5", "15", "forgot_coefficient"),
        ("Solve for x: 4x = 20", "5", "80", "inverse_operation"),
        ("What is 1/2 + 1/4?", "3/4", "6/8", "not_simplified"),
        ("What is 29 + 15?", "44", "fourty four", "not_a_number"),
        ("What is 29 + 15?", "44", "91", "unknown"),
    ],
)
def test_rules(prompt: str, key: str, response: str, code: str) -> None:
    got = diagnose(
        answer_type="fraction" if "/" in key else "number", key=key, response=response, prompt=prompt
    )
    assert got.code == code
    assert got.text == MISCONCEPTIONS[code][0]
    assert (got.confidence > 0) == (code != "unknown")


def test_template_list_wins_and_brings_its_own_words() -> None:
    got = diagnose(
        answer_type="number",
        key="44",
        response="45",
        prompt="What is 29 + 15?",
        known_wrong=[("45", "carry_twice")],
        descriptions={"carry_twice": "You carried the one twice."},
    )
    assert (got.code, got.text, got.evidence) == (
        "carry_twice",
        "You carried the one twice.",
        {"source": "template"},
    )


def test_choice_and_free_text_items() -> None:
    assert diagnose(answer_type="choice", key="B", response="A").code == "wrong_choice"
    assert diagnose(answer_type="text", key="seven", response="six").code == "unknown"
