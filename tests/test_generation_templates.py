"""Every template's key is recomputed here from the prompt text alone (not from the template's parameters), so a
prompt that says one thing while the key says another fails, whatever the template code does internally."""

import math
import re
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

from curriculum.generation.answers import AnswerSpec, canonical, check_answer, same_value
from curriculum.generation.templates import MISCONCEPTIONS, TEMPLATES, GeneratedItem, templates_for_skill

DRAWS = 200
PLACE_VALUES = {
    "one": 1,
    "ten": 10,
    "hundred": 100,
    "thousand": 1000,
    "ten thousand": 10000,
    "hundred thousand": 100000,
}
PLACE_NAMES = ["ones", "tens", "hundreds", "thousands", "ten thousands", "hundred thousands"]


def _int(s: str) -> int:
    return int(s.replace(",", ""))


def _m(pattern: str, prompt: str) -> re.Match[str]:
    m = re.search(pattern, prompt)
    assert m is not None, f"{pattern!r} not in {prompt!r}"
    return m


def _frac(s: str) -> Fraction:
    return Fraction(s)


def _choice(spec: AnswerSpec, pred: Callable[[str], bool]) -> str:
    hits = [c for c in spec.choices if pred(c)]
    assert len(hits) == 1, (spec.choices, hits)
    return hits[0]


# ------------------------------------------------------------------------------------------------ oracles
# Each oracle reads the prompt (and the choices, for choice items) and returns a response that must be correct.


def o_digit_value(prompt: str, spec: AnswerSpec) -> str:
    m = _m(r"value of the digit (\d) in ([\d,]+)\?", prompt)
    digits = m.group(2).replace(",", "")
    assert digits.count(m.group(1)) == 1
    return str(int(m.group(1)) * 10 ** (len(digits) - 1 - digits.index(m.group(1))))


def o_place_name(prompt: str, spec: AnswerSpec) -> str:
    m = _m(r"number ([\d,]+), which place is the digit (\d) in", prompt)
    digits = m.group(1).replace(",", "")
    assert digits.count(m.group(2)) == 1
    return PLACE_NAMES[len(digits) - 1 - digits.index(m.group(2))]


def o_compose(prompt: str, spec: AnswerSpec) -> str:
    parts = re.findall(r"(\d) (hundred thousand|ten thousand|thousand|hundred|ten|one)s?\b", prompt)
    assert parts
    return str(sum(int(d) * PLACE_VALUES[name] for d, name in parts))


def o_order(prompt: str, spec: AnswerSpec) -> str:
    numbers = [int(c) for c in spec.choices]
    target = max(numbers) if "greatest" in prompt else min(numbers)
    assert "greatest" in prompt or "smallest" in prompt
    return str(target)


def o_add(prompt: str, spec: AnswerSpec) -> str:
    m = _m(r"What is ([\d,]+) \+ ([\d,]+)(?: \+ ([\d,]+))?\?", prompt)
    return str(sum(_int(g) for g in m.groups() if g))


def o_sub(prompt: str, spec: AnswerSpec) -> str:
    m = _m(r"What is ([\d,]+) − ([\d,]+)\?", prompt)
    return str(_int(m.group(1)) - _int(m.group(2)))


def o_missing(prompt: str, spec: AnswerSpec) -> str:
    m = _m(r"□ \+ ([\d,]+) = ([\d,]+)", prompt)
    return str(_int(m.group(2)) - _int(m.group(1)))


def o_mul(prompt: str, spec: AnswerSpec) -> str:
    m = _m(r"What is ([\d,]+) × ([\d,]+)\?", prompt)
    return str(_int(m.group(1)) * _int(m.group(2)))


def o_div(prompt: str, spec: AnswerSpec) -> str:
    m = _m(r"What is ([\d,]+) ÷ (\d+)\?", prompt)
    q, r = divmod(_int(m.group(1)), int(m.group(2)))
    assert r == 0
    return str(q)


def o_div_remainder(prompt: str, spec: AnswerSpec) -> str:
    m = _m(r"Divide (\d+) by (\d+)\.", prompt)
    q, r = divmod(int(m.group(1)), int(m.group(2)))
    assert r > 0
    return f"{q} r {r}"


def o_shaded(prompt: str, spec: AnswerSpec) -> str:
    m = _m(r"into (\d+) equal parts and (\d+) parts? (?:is|are) shaded", prompt)
    return f"{m.group(2)}/{m.group(1)}"


def o_of_amount(prompt: str, spec: AnswerSpec) -> str:
    m = _m(r"What is (\d+)/(\d+) of (\d+)\?", prompt)
    value = Fraction(int(m.group(1)), int(m.group(2))) * int(m.group(3))
    assert value.denominator == 1
    return str(value)


def o_name(prompt: str, spec: AnswerSpec) -> str:
    m = _m(r"cut into (\d+) equal pieces and (\d+) (?:is|are) eaten", prompt)
    return _choice(spec, lambda c: c == f"{m.group(2)}/{m.group(1)}")


def o_equiv_missing(prompt: str, spec: AnswerSpec) -> str:
    m = _m(r"(\d+)/(\d+) = \?/(\d+)", prompt)
    value = Fraction(int(m.group(1)), int(m.group(2))) * int(m.group(3))
    assert value.denominator == 1
    return str(value)


def o_simplify(prompt: str, spec: AnswerSpec) -> str:
    m = _m(r"Write (\d+)/(\d+) in lowest terms", prompt)
    a, b = int(m.group(1)), int(m.group(2))
    g = math.gcd(a, b)
    assert g > 1
    return f"{a // g}/{b // g}" if b // g != 1 else str(a // g)


def o_equiv_choose(prompt: str, spec: AnswerSpec) -> str:
    m = _m(r"equivalent to (\d+)/(\d+)\?", prompt)
    target = Fraction(int(m.group(1)), int(m.group(2)))
    return _choice(spec, lambda c: _frac(c) == target)


def o_sign(prompt: str, spec: AnswerSpec) -> str:
    m = _m(r"(\d+)/(\d+) __ (\d+)/(\d+)", prompt)
    x = Fraction(int(m.group(1)), int(m.group(2)))
    y = Fraction(int(m.group(3)), int(m.group(4)))
    return "<" if x < y else ">" if x > y else "="


def o_greater(prompt: str, spec: AnswerSpec) -> str:
    m = _m(r"Which is greater, (\d+/\d+) or (\d+/\d+)\?", prompt)
    x, y = _frac(m.group(1)), _frac(m.group(2))
    assert x != y
    return m.group(1) if x > y else m.group(2)


def o_frac_op(prompt: str, spec: AnswerSpec) -> str:
    m = _m(r"What is (\d+)/(\d+) ([+−]) (\d+)/(\d+)\?", prompt)
    x = Fraction(int(m.group(1)), int(m.group(2)))
    y = Fraction(int(m.group(4)), int(m.group(5)))
    r = x + y if m.group(3) == "+" else x - y
    return f"{r.numerator}/{r.denominator}"


def o_mixed(prompt: str, spec: AnswerSpec) -> str:
    m = _m(r"What is (\d+) (\d+)/(\d+) \+ (\d+) (\d+)/(\d+)\?", prompt)
    g = [int(x) for x in m.groups()]
    r = g[0] + Fraction(g[1], g[2]) + g[3] + Fraction(g[4], g[5])
    return f"{r.numerator}/{r.denominator}"


def o_dec_from_fraction(prompt: str, spec: AnswerSpec) -> str:
    m = _m(r"Write (\d+)/(10+) as a decimal", prompt)
    return str(Decimal(m.group(1)) / Decimal(m.group(2)))


def o_dec_add(prompt: str, spec: AnswerSpec) -> str:
    m = _m(r"What is ([\d.]+) \+ ([\d.]+)\?", prompt)
    return str(Decimal(m.group(1)) + Decimal(m.group(2)))


def o_dec_compare(prompt: str, spec: AnswerSpec) -> str:
    best = max(spec.choices, key=Decimal)
    return _choice(spec, lambda c: Decimal(c) == Decimal(best))


def o_dec_times(prompt: str, spec: AnswerSpec) -> str:
    m = _m(r"What is ([\d.]+) × (10|100)\?", prompt)
    return str(Decimal(m.group(1)) * int(m.group(2)))


def _solve_linear(a: Fraction, b: Fraction, c: Fraction) -> str:
    """x with a*x + b = c."""
    x = (c - b) / a
    assert x.denominator == 1
    return str(x)


def o_eq(prompt: str, spec: AnswerSpec) -> str:
    m = re.search(r"Solve for x: (\d*)x ([+-]) (\d+) = (-?\d+)$", prompt)
    if m:
        sign = 1 if m.group(2) == "+" else -1
        a = Fraction(int(m.group(1) or 1))
        return _solve_linear(a, Fraction(sign * int(m.group(3))), Fraction(int(m.group(4))))
    m = re.search(r"Solve for x: (\d+)x = (-?\d+)$", prompt)
    if m:
        return _solve_linear(Fraction(int(m.group(1))), Fraction(0), Fraction(int(m.group(2))))
    m = _m(r"Solve for x: x/(\d+) \+ (\d+) = (-?\d+)$", prompt)
    return _solve_linear(Fraction(1, int(m.group(1))), Fraction(int(m.group(2))), Fraction(int(m.group(3))))


def o_expr_write(prompt: str, spec: AnswerSpec) -> str:
    phrase = _m(r"Write an expression for: (.+)\.$", prompt).group(1)
    rules = [
        (r"^(\d+) more than ([a-z])$", "{1}+{0}"),
        (r"^(\d+) less than ([a-z])$", "{1}-{0}"),
        (r"^the product of (\d+) and ([a-z])$", "{0}*{1}"),
        (r"^([a-z]) divided by (\d+)$", "{0}/{1}"),
        (r"^(\d+) times ([a-z]), plus (\d+)$", "{0}*{1}+{2}"),
        (r"^(\d+) times the sum of ([a-z]) and (\d+)$", "{0}*{1}+{0}*{2}"),
    ]
    for pattern, out in rules:
        m = re.match(pattern, phrase)
        if m:
            return out.format(*m.groups())
    raise AssertionError(phrase)


def o_like_terms(prompt: str, spec: AnswerSpec) -> str:
    body = _m(r"Simplify: (.+)$", prompt).group(1)
    coef = const = 0
    for sign, num, var in re.findall(r"([+-]?)\s*(\d*)(x?)", body.replace(" ", "")):
        if not num and not var:
            continue
        value = (int(num) if num else 1) * (-1 if sign == "-" else 1)
        if var:
            coef += value
        else:
            const += value
    return f"{coef}x + {const}" if const else f"{coef}x"


ORACLES: dict[str, Callable[[str, AnswerSpec], str]] = {
    "pv-digit-value": o_digit_value,
    "pv-place-name": o_place_name,
    "pv-compose": o_compose,
    "pv-order": o_order,
    "add-no-carry": o_add,
    "add-carry": o_add,
    "add-three": o_add,
    "sub-no-borrow": o_sub,
    "sub-borrow": o_sub,
    "sub-missing-addend": o_missing,
    "mul-facts": o_mul,
    "mul-2by1": o_mul,
    "mul-2by2": o_mul,
    "div-facts": o_div,
    "div-remainder": o_div_remainder,
    "div-long": o_div,
    "frac-shaded": o_shaded,
    "frac-of-amount": o_of_amount,
    "frac-name": o_name,
    "equiv-missing": o_equiv_missing,
    "equiv-simplify": o_simplify,
    "equiv-choose": o_equiv_choose,
    "cmp-same-denominator": o_sign,
    "cmp-same-numerator": o_sign,
    "cmp-unlike": o_greater,
    "frac-add-like": o_frac_op,
    "frac-sub-like": o_frac_op,
    "frac-add-mixed": o_mixed,
    "frac-add-related": o_frac_op,
    "frac-add-unlike": o_frac_op,
    "frac-sub-unlike": o_frac_op,
    "dec-from-fraction": o_dec_from_fraction,
    "dec-add": o_dec_add,
    "dec-compare": o_dec_compare,
    "dec-times-power": o_dec_times,
    "eq-add": o_eq,
    "eq-mul": o_eq,
    "expr-write": o_expr_write,
    "eq-two-step": o_eq,
    "eq-divide": o_eq,
    "expr-like-terms": o_like_terms,
}


def _draws(code: str, seed: int = 7) -> list[GeneratedItem]:
    rng = np.random.default_rng([seed, len(code)])
    return [TEMPLATES[code].generate(rng) for _ in range(DRAWS)]


@pytest.fixture(scope="module", params=sorted(TEMPLATES))
def drawn(request: pytest.FixtureRequest) -> tuple[str, list[GeneratedItem]]:
    return request.param, _draws(request.param)


def test_every_template_has_an_oracle() -> None:
    assert sorted(ORACLES) == sorted(TEMPLATES)


def test_keys_match_an_independent_computation_from_the_prompt(
    drawn: tuple[str, list[GeneratedItem]],
) -> None:
    code, items = drawn
    for item in items:
        expected = ORACLES[code](item.prompt, item.answer)
        assert check_answer(item.answer, expected), (item.prompt, item.answer, expected)
        assert same_value(item.answer, expected), (item.prompt, item.answer, expected)
        if "lowest terms" in item.prompt or item.prompt.startswith("Simplify"):
            # the form is the exercise: an unsimplified response must not pass
            assert not item.answer.equivalent
            if item.answer.type == "fraction":
                assert item.answer.value == expected


def test_keys_are_correct_in_their_own_forms(drawn: tuple[str, list[GeneratedItem]]) -> None:
    _, items = drawn
    for item in items:
        spec = item.answer
        assert check_answer(spec, canonical(spec))
        if spec.type != "text":  # a text key lists alternatives separated by '|'
            assert check_answer(spec, spec.value)
        assert AnswerSpec.from_dict(spec.to_dict()) == spec


def test_worked_solution_ends_with_a_correct_answer(drawn: tuple[str, list[GeneratedItem]]) -> None:
    _, items = drawn
    for item in items:
        lines = item.solution.splitlines()
        assert len(lines) >= 2
        assert lines[0].startswith("1. ")
        assert lines[-1].startswith("Answer: ")
        assert check_answer(item.answer, lines[-1].removeprefix("Answer: ")), item.solution


def test_listed_wrong_answers_are_judged_wrong(drawn: tuple[str, list[GeneratedItem]]) -> None:
    code, items = drawn
    template = TEMPLATES[code]
    for item in items:
        wrong = template.wrong_answers(item.params)
        assert len({w for w, _ in wrong}) == len(wrong)
        for response, misconception in wrong:
            assert misconception in MISCONCEPTIONS
            assert check_answer(item.answer, response) is False, (item.prompt, response)


def test_difficulty_and_codes(drawn: tuple[str, list[GeneratedItem]]) -> None:
    code, items = drawn
    template = TEMPLATES[code]
    by_code: dict[str, GeneratedItem] = {}
    for item in items:
        assert -3.0 <= item.difficulty <= 3.0
        assert item.skills == template.skills
        assert re.fullmatch(r"[-a-zA-Z0-9_]{1,120}", item.code)
        if item.code in by_code:  # the same code means the same exercise
            assert by_code[item.code] == item
        by_code[item.code] = item
    exercises = {(i.prompt, i.answer.choices) for i in items}
    assert len(exercises) == len(by_code), "distinct exercises must have distinct codes"
    assert len(by_code) >= 20, "the parameter space is too small for a demo course"
    assert len({i.difficulty for i in items}) >= 2


def test_render_reproduces_and_takes_a_story_context(drawn: tuple[str, list[GeneratedItem]]) -> None:
    code, items = drawn
    template = TEMPLATES[code]
    for item in items[:20]:
        again = template.render(item.params)
        assert again == item
        story = "Maya has a ribbon. How long is it now?"
        told = template.render(item.params, context=story)
        assert told.answer == item.answer
        assert told.prompt.startswith(story)
        assert told.prompt.endswith(template.answer_format(item.params))
        assert told.code != item.code
        assert told.code == template.render(item.params, context=story + " ").code
        assert told.solution == item.solution


def test_story_slots_are_shown_in_the_prompt(drawn: tuple[str, list[GeneratedItem]]) -> None:
    code, items = drawn
    template = TEMPLATES[code]
    for item in items[:50]:
        brief = template.story_brief(item.params)
        if brief is None:
            continue
        slots = template.slots(item.params)
        assert slots
        for value in slots.values():
            assert value in item.prompt, (value, item.prompt)
            assert value in brief, (value, brief)
        assert canonical(item.answer) not in brief.split() or canonical(item.answer) in slots.values()


def test_same_generator_state_gives_the_same_items() -> None:
    for code in TEMPLATES:
        a = [i.to_dict() for i in _draws(code, seed=3)[:10]]
        b = [i.to_dict() for i in _draws(code, seed=3)[:10]]
        assert a == b


def test_templates_for_skill_and_registry() -> None:
    assert [t.code for t in templates_for_skill("frac-add-like")] == [
        "frac-add-like",
        "frac-sub-like",
        "frac-add-mixed",
    ]
    assert templates_for_skill("no-such-skill") == []
    assert all(code == t.code for code, t in TEMPLATES.items())
    assert {t.answer_type for t in TEMPLATES.values()} == {
        "number",
        "fraction",
        "expression",
        "choice",
        "text",
    }
    for t in TEMPLATES.values():
        assert t.answer(t.draw(np.random.default_rng(0))).type == t.answer_type


def test_known_misconceptions_of_fraction_addition_and_place_value() -> None:
    add = TEMPLATES["frac-add-unlike"]
    params = {"a": 1, "b": 3, "c": 1, "d": 4}
    assert add.render(params).answer.value == "7/12"
    assert ("2/7", "add_across") in add.wrong_answers(params)
    assert ("2/12", "numerators_added_denominators_multiplied") in add.wrong_answers(params)
    pv = TEMPLATES["pv-digit-value"]
    params = {"n": 4732, "k": 2}
    assert pv.render(params).prompt == "What is the value of the digit 7 in 4,732?"
    assert pv.render(params).answer.value == "700"
    assert pv.wrong_answers(params) == [
        ("7", "digit_not_value"),
        ("7000", "place_value"),
        ("70", "place_value"),
    ]
    simplify = TEMPLATES["equiv-simplify"]
    params = {"a": 12, "b": 16}
    assert simplify.render(params).answer.to_dict() == {
        "type": "fraction",
        "value": "3/4",
        "equivalent": False,
    }
    assert simplify.wrong_answers(params) == [("12/16", "not_simplified"), ("6/8", "partially_simplified")]
