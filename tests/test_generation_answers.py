from fractions import Fraction

import pytest

from curriculum.generation.answers import (
    ANSWER_TYPES,
    AnswerSpec,
    MalformedResponse,
    SpecError,
    canonical,
    check_answer,
    choice_index,
    parse_response,
    same_value,
)

# ---------------------------------------------------------------------------------------------------- numbers

NUMBER = AnswerSpec("number", "3400")


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("3400", True),
        (" 3400 ", True),
        ("3,400", True),
        ("3 400", True),
        ("3400.0", True),
        ("3400.", True),
        ("+3400", True),
        ("x = 3400", True),
        ("3401", False),
        ("340", False),
        ("-3400", False),
        ("34,000", False),
    ],
)
def test_number(response: str, expected: bool) -> None:
    assert check_answer(NUMBER, response) is expected


@pytest.mark.parametrize(
    ("response", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("abc", "expected a number"),
        ("34,00", "decimal point"),
        ("0,5", "decimal point"),
        ("3400/1", "whole number or decimal"),
        ("1e3", "expected a number"),
        ("3400 apples", "expected a number"),
        ("1" * 50, "too long"),
    ],
)
def test_number_malformed(response: str, message: str) -> None:
    with pytest.raises(MalformedResponse, match=message):
        check_answer(NUMBER, response)


def test_number_decimals_are_exact_and_tolerance_is_absolute() -> None:
    spec = AnswerSpec("number", "0.3")
    assert check_answer(spec, ".3")
    assert check_answer(spec, "0.30")
    assert not check_answer(spec, "0.30000000000000004")
    assert check_answer(AnswerSpec("number", "-2.5"), "\u22122.5")  # unicode minus
    tol = AnswerSpec("number", "3.14", tolerance=0.01)
    assert check_answer(tol, "3.15")
    assert check_answer(tol, "3.13")
    assert not check_answer(tol, "3.151")
    assert not check_answer(tol, "3.12")


# ---------------------------------------------------------------------------------------------------- fractions

HALF = AnswerSpec("fraction", "1/2")


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("1/2", True),
        ("2/4", True),
        ("0.5", True),
        (".5", True),
        ("50/100", True),
        (" 1 / 2 ", True),
        ("1\u20442", True),  # fraction slash
        ("x = 1/2", True),
        ("1 1/2", False),
        ("-1/2", False),
        ("2/1", False),
        ("0.55", False),
        ("1", False),
    ],
)
def test_fraction_equivalent(response: str, expected: bool) -> None:
    assert check_answer(HALF, response) is expected


def test_fraction_mixed_numbers_and_signs() -> None:
    spec = AnswerSpec("fraction", "3/2")
    assert check_answer(spec, "1 1/2")
    assert check_answer(spec, "1.5")
    assert check_answer(spec, "6/4")
    assert not check_answer(spec, "1 1/3")
    neg = AnswerSpec("fraction", "-1 1/2")
    assert check_answer(neg, "-3/2")
    assert check_answer(neg, "-1.5")
    assert not check_answer(neg, "3/2")
    assert check_answer(AnswerSpec("fraction", "3"), "6/2")


@pytest.mark.parametrize(
    ("key", "response", "expected"),
    [
        ("1/2", "1/2", True),
        ("1/2", "2/4", False),
        ("1/2", "0.5", False),
        ("3/2", "3/2", True),
        ("3/2", "1 1/2", True),  # improper and mixed are both in lowest terms
        ("1 1/2", "3/2", True),
        ("3/2", "1 2/4", False),
        ("3/2", "6/4", False),
        ("2", "2", True),
        ("2", "4/2", False),
        ("2", "2/1", False),
    ],
)
def test_fraction_lowest_terms(key: str, response: str, expected: bool) -> None:
    assert check_answer(AnswerSpec("fraction", key, equivalent=False), response) is expected


@pytest.mark.parametrize(
    ("response", "message"),
    [
        ("", "empty"),
        ("abc", "expected a fraction"),
        ("1/0", "denominator cannot be 0"),
        ("1/-2", "expected"),
        ("1//2", "expected"),
    ],
)
def test_fraction_malformed(response: str, message: str) -> None:
    with pytest.raises(MalformedResponse, match=message):
        check_answer(HALF, response)


def test_parse_response_reads_values() -> None:
    assert parse_response(HALF, "1 1/2") == Fraction(3, 2)
    assert parse_response(NUMBER, "3,400") == Fraction(3400)
    assert parse_response(AnswerSpec("text", "tens"), " The Tens! ") == "thetens"


# ---------------------------------------------------------------------------------------------------- expressions

LINEAR = AnswerSpec("expression", "2x + 2")


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("2x+2", True),
        ("2(x+1)", True),
        ("2 (x + 1)", True),
        ("2*x + 2", True),
        ("x*2+2", True),
        ("2 + 2x", True),
        ("x + x + 2", True),
        ("(2x^2 + 2x)/x", True),
        ("2X + 2", True),  # the key has no capitals: case does not matter
        ("4(x+1)/2", True),
        ("2x + 2.0", True),
        ("(x+1)^60 - (x+1)^60 + 2x + 2", True),
        ("2x + 1", False),
        ("2x + 2.000000001", False),
        ("2y + 2", False),
        ("x + 2", False),
        ("2x^2 + 2", False),
        ("2 x 2", False),
    ],
)
def test_expression_equivalence(response: str, expected: bool) -> None:
    assert check_answer(LINEAR, response) is expected


def test_expression_powers_products_and_roots() -> None:
    square = AnswerSpec("expression", "x^2 - 1")
    assert check_answer(square, "(x+1)(x-1)")
    assert check_answer(square, "(x-1)(x+1)")
    assert check_answer(square, "x**2 - 1")
    assert check_answer(square, "x\u00b2 - 1")
    assert not check_answer(square, "(x-1)^2")
    two = AnswerSpec("expression", "3ab + b")
    assert check_answer(two, "b(3a + 1)")
    assert check_answer(two, "3ba+b")
    assert not check_answer(two, "3a + b")
    assert check_answer(AnswerSpec("expression", "2sqrt(2)"), "sqrt(8)")
    assert check_answer(AnswerSpec("expression", "1/3"), "2/6")
    assert not check_answer(AnswerSpec("expression", "1/3"), "0.333333333333333")
    assert check_answer(AnswerSpec("expression", "x/2"), "0.5x")


@pytest.mark.parametrize(
    ("key", "response", "expected"),
    [
        ("2x + 2", "2 + 2x", True),
        ("2x + 2", "x*2 + 2", True),
        ("2x + 2", "2(x+1)", False),
        ("2x + 2", "x + x + 2", False),
        ("2x - 2", "-2 + 2x", True),
        ("5x", "3x + 2x", False),
        ("5x", "5x", True),
        ("x/2 + 1", "0.5x + 1", True),
        ("x/2 + 1", "(1/2)x + 1", True),
        ("x^2 + 3x - 4", "(x+4)(x-1)", False),
        ("x^2 + 3x - 4", "-4 + 3x + x^2", True),
    ],
)
def test_expression_form_when_not_equivalent(key: str, response: str, expected: bool) -> None:
    assert check_answer(AnswerSpec("expression", key, equivalent=False), response) is expected


@pytest.mark.parametrize(
    ("response", "message"),
    [
        ("", "empty"),
        ("__import__('os')", "cannot read the character"),
        ("x.real", "followed by a digit"),
        ("foo(x)", "unknown name 'foo'"),
        ("lambda", "unknown name 'lambda'"),
        ("x = 3", "not an equation"),
        ("2x +", "cannot read"),
        ("(2x", "cannot read"),
        ("9^9^9^9", "exponents are at most"),
        ("x^(2^10)", "exponents are at most"),
        ("x^(2^(1/2))", "must be a whole number or fraction"),
        ("((10^15)^60)^2", "too large"),
        ("1234567890123456789 x", "at most 15 digits"),
        ("x/0", "divides by zero"),
        ("x" * 201, "at most 200 characters"),
        ("2x; 3", "cannot read the character"),
    ],
)
def test_expression_malformed_and_unsafe(response: str, message: str) -> None:
    with pytest.raises(MalformedResponse, match=message):
        check_answer(LINEAR, response)


def test_expression_single_unknown_letters_are_wrong_not_malformed() -> None:
    assert check_answer(AnswerSpec("expression", "3xy"), "3yx")
    assert not check_answer(AnswerSpec("expression", "3x"), "3z")
    assert check_answer(AnswerSpec("expression", "abs(x) + 1"), "1 + abs(x)")


# ---------------------------------------------------------------------------------------------------- choice

CHOICE = AnswerSpec("choice", "3/4", choices=("1/2", "3/4", "5/6", "2/3"))


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("B", True),
        ("b", True),
        ("(b)", True),
        ("B)", True),
        ("3/4", True),
        ("  3/4 ", True),
        ("A", False),
        ("d", False),
        ("5/6", False),
    ],
)
def test_choice(response: str, expected: bool) -> None:
    assert check_answer(CHOICE, response) is expected


def test_choice_text_is_case_and_space_insensitive_and_beats_letters() -> None:
    spec = AnswerSpec("choice", "Greater  than", choices=("less than", "greater than", "equal to"))
    assert choice_index(spec) == 1
    assert check_answer(spec, "GREATER THAN")
    assert not check_answer(spec, "equal to")
    # a choice whose text is a letter is matched as text first
    letters = AnswerSpec("choice", "A", choices=("C", "A", "B"))
    assert choice_index(letters) == 1
    assert check_answer(letters, "a")
    assert not check_answer(letters, "c")
    # the key may be given as a letter
    assert choice_index(AnswerSpec("choice", "C", choices=("1", "2", "3"))) == 2


@pytest.mark.parametrize(
    ("response", "message"), [("", "empty"), ("  ", "empty"), ("E", "A-D"), ("7/8", "A-D"), ("BB", "A-D")]
)
def test_choice_malformed(response: str, message: str) -> None:
    with pytest.raises(MalformedResponse, match=message):
        check_answer(CHOICE, response)


# ---------------------------------------------------------------------------------------------------- text


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("tens", True),
        ("Tens.", True),
        ("  TENS ", True),
        ("ten", True),
        ("the tens place", True),
        ("the tens-place!", True),
        ("hundreds", False),
        ("tenths", False),
    ],
)
def test_text(response: str, expected: bool) -> None:
    spec = AnswerSpec("text", "tens|ten|the tens place")
    assert check_answer(spec, response) is expected


def test_text_malformed() -> None:
    spec = AnswerSpec("text", "tens")
    with pytest.raises(MalformedResponse, match="empty"):
        check_answer(spec, " ?! ")
    with pytest.raises(MalformedResponse, match="at most 500"):
        check_answer(spec, "a" * 501)


# ---------------------------------------------------------------------------------------------------- spec


def test_from_dict_round_trip_omits_defaults() -> None:
    d = {"type": "fraction", "value": "1/2"}
    spec = AnswerSpec.from_dict(d)
    assert spec == HALF
    assert spec.to_dict() == d
    full = {"type": "number", "value": "3.14", "tolerance": 0.01}
    assert AnswerSpec.from_dict(full).to_dict() == full
    ch = {"type": "choice", "value": "b", "choices": ["a", "b"]}
    assert AnswerSpec.from_dict(ch).to_dict() == ch
    ne = {"type": "expression", "value": "2x + 2", "equivalent": False}
    assert AnswerSpec.from_dict(ne).to_dict() == ne
    assert AnswerSpec.from_dict({"type": "number", "value": 12}).value == "12"
    assert set(ANSWER_TYPES) == {"number", "fraction", "expression", "choice", "text"}


@pytest.mark.parametrize(
    ("d", "problems"),
    [
        ([1], ["answer: must be an object with 'type' and 'value'"]),
        ({}, ["answer.type: required", "answer.value: required"]),
        (
            {"type": "decimal", "value": "1"},
            ["answer.type: must be one of number, fraction, expression, choice, text, not 'decimal'"],
        ),
        (
            {"type": "choice", "value": "a"},
            ["answer.choices: required for type choice, with at least 2 choices"],
        ),
        ({"type": "fraction", "value": "1/0"}, ["answer.value: '1/0' is not a valid fraction"]),
        ({"type": "number", "value": "ten"}, ["answer.value: 'ten' is not a valid number"]),
        ({"type": "number", "value": " "}, ["answer.value: must not be empty"]),
        ({"type": "number", "value": True}, ["answer.value: must be a string"]),
        (
            {"type": "fraction", "value": "2/4", "equivalent": False},
            ["answer.value: '2/4' is not in lowest terms, which is required when equivalent is false"],
        ),
        (
            {"type": "number", "value": "1", "tolerance": "0.1", "equivalent": "yes", "hint": "x"},
            [
                "answer.hint: unknown field",
                "answer.tolerance: must be a number",
                "answer.equivalent: must be true or false",
            ],
        ),
        (
            {"type": "number", "value": "1", "tolerance": -1},
            ["answer.tolerance: must be a finite number >= 0"],
        ),
        ({"type": "text", "value": "1", "tolerance": 1}, ["answer.tolerance: only allowed for type number"]),
        (
            {"type": "text", "value": "a", "choices": ["a", "b"]},
            ["answer.choices: only allowed for type choice"],
        ),
        (
            {"type": "text", "value": "a||b"},
            ["answer.value: 'a||b' has an empty alternative (alternatives are separated by '|')"],
        ),
        (
            {"type": "choice", "value": "z", "choices": ["a", "b"]},
            ["answer.value: 'z' is neither one of the choices nor a choice letter"],
        ),
        (
            {"type": "choice", "value": "a", "choices": ["a", " A "]},
            ["answer.choices: choices must differ (ignoring case and spacing)"],
        ),
        ({"type": "choice", "value": "a", "choices": "ab"}, ["answer.choices: must be a list of strings"]),
    ],
)
def test_from_dict_problems_name_the_field(d: object, problems: list[str]) -> None:
    with pytest.raises(SpecError) as info:
        AnswerSpec.from_dict(d)
    assert info.value.problems == problems


def test_bad_expression_key_is_a_spec_error() -> None:
    with pytest.raises(SpecError) as info:
        AnswerSpec("expression", "2x +")
    assert info.value.problems[0].startswith("answer.value: '2x +' is not a valid expression")


def test_direct_construction_validates_and_keeps_choices_hashable() -> None:
    spec = AnswerSpec("choice", "b", choices=["a", "b"])  # type: ignore[arg-type]
    assert spec.choices == ("a", "b")
    assert hash(spec) == hash(AnswerSpec("choice", "b", choices=("a", "b")))
    with pytest.raises(SpecError):
        AnswerSpec("number", "1/2")


# ---------------------------------------------------------------------------------------------------- canonical, same_value


@pytest.mark.parametrize(
    ("spec", "shown"),
    [
        (AnswerSpec("number", "3400.50"), "3400.5"),
        (AnswerSpec("number", "-0.0"), "0"),
        (AnswerSpec("number", "007"), "7"),
        (AnswerSpec("number", "0.125"), "0.125"),
        (AnswerSpec("fraction", "2/4"), "1/2"),
        (AnswerSpec("fraction", "0.75"), "3/4"),
        (AnswerSpec("fraction", "1 2/4"), "1 1/2"),
        (AnswerSpec("fraction", "6/3"), "2"),
        (AnswerSpec("expression", "2(x+1)"), "2x + 2"),
        (AnswerSpec("expression", "x^2+2x"), "x^2 + 2x"),
        (CHOICE, "3/4"),
        (AnswerSpec("choice", "C", choices=("1", "2", "3")), "3"),
        (AnswerSpec("text", " tens | ten"), "tens"),
    ],
)
def test_canonical(spec: AnswerSpec, shown: str) -> None:
    assert canonical(spec) == shown


@pytest.mark.parametrize(
    ("spec", "claim", "expected"),
    [
        (AnswerSpec("fraction", "1/2", equivalent=False), "The answer is **2/4**.", True),
        (AnswerSpec("fraction", "1/2"), "So the result is 0.5", True),
        (AnswerSpec("fraction", "1/2"), "1/4 + 1/4 = 1/2", True),
        (AnswerSpec("fraction", "1/2"), "1/4 + 1/4 = 2/8", False),
        (AnswerSpec("number", "0.5"), "1/2", True),
        (AnswerSpec("number", "3400"), "Answer: 3,400!", True),
        (AnswerSpec("number", "7"), "x = 7", True),
        (AnswerSpec("number", "7"), "x = 8", False),
        (AnswerSpec("number", "7"), "seven", False),
        (AnswerSpec("number", "7"), "", False),
        (AnswerSpec("expression", "2x+2", equivalent=False), "2(x+1)", True),
        (AnswerSpec("expression", "2x+2"), "2(x + 1) = 2x + 3", False),
        (CHOICE, "b", True),
        (CHOICE, "The answer is 3/4.", True),
        (CHOICE, "zzz", False),
        (AnswerSpec("text", "tens"), "Tens.", True),
    ],
)
def test_same_value(spec: AnswerSpec, claim: str, expected: bool) -> None:
    assert same_value(spec, claim) is expected
