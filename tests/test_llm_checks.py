"""Checks on model text before it reaches a learner."""

from __future__ import annotations

import pytest

from curriculum.generation.answers import AnswerSpec
from tutor.llm.checks import (
    check_explanation,
    check_hint,
    content_problems,
    numbers_in,
    stated_result,
    states_answer,
)

FRAC = AnswerSpec("fraction", "5/6")
PROMPT = "What is 1/2 + 1/3?"
SOLUTION = "Use the common denominator 6.\n1/2 = 3/6 and 1/3 = 2/6.\n3/6 + 2/6 = 5/6."
GROUND = [PROMPT, SOLUTION, "5/6"]


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ("Add them.\nAnswer: 5/6", "5/6"),
        ("Add them.\n**Answer:** 10/12.", "10/12"),
        ("So the answer is 5/6. Well done.", "5/6"),
        ("Answer: 1/2\nsomething\nFinal answer: 5/6", "5/6"),
        ("No result here.", None),
    ],
)
def test_stated_result(text: str, result: str | None) -> None:
    assert stated_result(text) == result


def test_explanation_with_the_right_result_passes() -> None:
    text = "Make the denominators the same first.\n1/2 = 3/6 and 1/3 = 2/6, so 3/6 + 2/6 = 5/6.\nAnswer: 5/6"
    assert check_explanation(text, spec=FRAC, level="beginner", grounding=GROUND, response="2/5") == []
    # an equivalent value states the right result too
    assert (
        check_explanation(
            text.replace("Answer: 5/6", "Answer: 10/12"),
            spec=FRAC,
            level="beginner",
            grounding=[*GROUND, "10/12"],
        )
        == []
    )


def test_explanation_failures_are_named() -> None:
    def reasons(text: str) -> list[str]:
        return check_explanation(text, spec=FRAC, level="beginner", grounding=GROUND, response="2/5")

    pad = "Look at the bottoms of both fractions first. "
    assert reasons(pad + "Add the tops.\nAnswer: 2/5") == ["wrong_result"]
    assert reasons(pad + "The answer is 1/2, no wait.\nAnswer: 5/6") == ["conflicting_result"]
    assert reasons(pad + "So the answer is 5/6, well done.\nAnswer: 5/6") == []
    assert reasons(pad + "Add the tops and the bottoms, easy.") == ["no_result"]
    assert reasons("The correct answer is 5/6.\nAnswer: 5/6") == ["too_short"]
    assert reasons(pad + "We get 7/9 first, then simplify.\nAnswer: 5/6") == ["ungrounded_number"]
    assert reasons(pad + "Here 3/6 + 2/6 = 1/2 is wrong, sorry.\nAnswer: 5/6") == ["wrong_arithmetic"]
    assert reasons(" ".join(["word"] * 110) + "\nAnswer: 5/6") == ["too_long", "repetitive"]
    assert reasons(pad + "See https://example.com for more.\nAnswer: 5/6") == ["link"]
    assert reasons(pad + "<worked_solution> says so.\nAnswer: 5/6") == ["code", "prompt_leak"]
    recited = pad + "The learner is a beginner: use short sentences, everyday words.\nAnswer: 5/6"
    assert reasons(recited) == ["prompt_echo"]


def test_hints_never_state_the_key() -> None:
    ok = "Hint: start like this: Use the common denominator 6."
    assert check_hint(ok, spec=FRAC, prompt=PROMPT, grounding=GROUND) == []
    assert check_hint("Hint: it comes to 5/6 in the end.", spec=FRAC, prompt=PROMPT, grounding=GROUND) == [
        "states_answer"
    ]
    assert check_hint("Hint: it comes to 10/12 in the end.", spec=FRAC, prompt=PROMPT, grounding=GROUND) == [
        "states_answer",
        "ungrounded_number",
    ]
    for claim in [
        "Hint: the answer would be 6, think.",
        'The answer to the question "What is 1/2 + 1/3" is 6.',
    ]:
        assert check_hint(claim, spec=FRAC, prompt=PROMPT, grounding=GROUND) == ["claims_result"]
    assert check_hint("Hint: first 3/6 + 2/6 = 1/3, then.", spec=FRAC, prompt=PROMPT, grounding=GROUND) == [
        "wrong_arithmetic"
    ]


def test_a_key_that_is_also_an_operand_only_counts_when_claimed() -> None:
    spec = AnswerSpec("number", "5")
    prompt = "What is 5 + 0?"
    assert not states_answer("Adding 0 to 5 changes nothing.", spec, prompt)
    assert states_answer("The answer is 5.", spec, prompt)
    assert states_answer("5 + 0 = 5", spec, prompt)
    word = AnswerSpec("text", "triangle")
    assert states_answer("It is a triangle.", word, "Name the shape with three sides.")


def test_numbers_and_content() -> None:
    assert numbers_in("Take 1/2 and -3, then 4.5 and 12,000; x2 is not one") == ["1/2", "-3", "4.5", "12,000"]
    assert content_problems("As an AI language model I think") == ["self_reference"]
    assert content_problems("Du bist ein Ärger, ÄÖÜ ßßß ÄÖÜ") == ["non_ascii"]
    assert content_problems("You are stupid.") == ["rude"]
