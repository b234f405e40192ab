"""Parametric item templates: numbers drawn at random, the answer key computed, never read from text.

A template owns everything that must agree with its numbers: the prompt, the key (an `AnswerSpec`), a worked
solution, a difficulty on an IRT-like logit scale in [-3, 3], and the wrong answers that well-known
misconceptions produce. All of it is a pure function of the drawn parameters (`params`), so an item can be
re-rendered later, for example with a word-problem context written by a language model around the same numbers
(`render(params, context=...)`): the model writes words, the template keeps the arithmetic.

Templates are chosen from the `TEMPLATES` registry by code; `templates_for_skill` lists those of one skill.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from curriculum.generation.answers import AnswerSpec, MalformedResponse, canonical, check_answer

Params = dict[str, int | str]

__all__ = [
    "MISCONCEPTIONS",
    "TEMPLATES",
    "GeneratedItem",
    "ItemTemplate",
    "Params",
    "templates_for_skill",
]

# Misconception codes used by `ItemTemplate.wrong_answers`, with a learner-facing sentence. Codes shared with
# tutor.llm.diagnose (add_across, wrong_operation, inverse_operation, ...) mean the same thing there.
MISCONCEPTIONS: dict[str, str] = {
    "digit_not_value": "You gave the digit itself, not the value it has in its place.",
    "place_value": "Your digits are right but the place value is off by a factor of ten.",
    "place_from_left": "It looks like you counted the places from the left instead of from the ones place.",
    "zero_placeholder": "A place with nothing in it still needs a 0 to hold it.",
    "digit_order": "You have the right digits in the wrong order.",
    "compares_last_digit": "To compare whole numbers, start with the digit in the largest place, not the last one.",
    "no_carry": "It looks like you did not carry to the next column.",
    "carry_written": "You wrote a whole column total instead of carrying the tens to the next column.",
    "smaller_from_larger": "In a column you took the smaller digit from the larger one instead of regrouping.",
    "borrow_not_subtracted": "You regrouped, but did not take 1 away from the next column.",
    "wrong_operation": "It looks like you used a different operation from the one the exercise asks for.",
    "tens_partial_not_shifted": "The partial product for the tens digit is worth ten times as much: shift it one place.",
    "multiplied_columns": "You multiplied tens by tens and ones by ones, but missed the cross products.",
    "ignored_remainder": "The division does not come out exactly: there is a remainder to give.",
    "remainder_as_decimal": "A remainder is not the digits after a decimal point.",
    "remainder_too_big": "The remainder must be smaller than the number you divide by.",
    "dropped_zero": "A zero in the quotient was left out.",
    "shaded_over_unshaded": "A fraction compares the shaded parts with all the parts, not with the unshaded parts.",
    "complement_part": "You counted the other parts: read again which parts the question asks about.",
    "numerator_denominator_swapped": "The number of parts taken goes on top; the number of equal parts goes below.",
    "only_divided": "You found one part; now take as many parts as the numerator says.",
    "multiplied_by_denominator": "To find a fraction of an amount, divide by the denominator, don't multiply.",
    "additive_equivalence": "Equivalent fractions multiply top and bottom by the same number; adding changes the value.",
    "not_simplified": "Your value is right, but the answer must be written in its simplest form.",
    "partially_simplified": "You simplified, but top and bottom still share a factor.",
    "only_one_part_scaled": "You changed only one part of the fraction: both must be multiplied by the same number.",
    "reversed_comparison": "The sign points the wrong way: the open side faces the larger number.",
    "bigger_denominator_bigger": "A bigger denominator means smaller parts, so the fraction is smaller.",
    "bigger_numerator_bigger": "A bigger numerator alone does not make a bigger fraction: compare with a common denominator.",
    "chose_smaller": "That is the smaller of the two fractions.",
    "add_across": "It looks like you added the numerators together and the denominators together.",
    "subtract_across": "It looks like you subtracted the numerators and the denominators separately.",
    "numerators_added_denominators_multiplied": "You multiplied the denominators but did not rename the numerators.",
    "numerator_not_renamed": "You used the common denominator but did not rename the numerator to match it.",
    "decimal_not_aligned": "Line up the decimal points before adding.",
    "longer_is_larger": "A decimal with more digits is not necessarily larger: compare tenths first.",
    "appended_zero": "Multiplying by 10 moves every digit one place left; a zero added after the decimals changes nothing.",
    "sign_error": "Your answer has the right size but the wrong sign.",
    "inverse_operation": "It looks like you moved a number across the equals sign without undoing its operation.",
    "forgot_coefficient": "It looks like you stopped before dividing by the number in front of x.",
    "wrong_order": "Undo the addition or subtraction first, then the multiplication or division.",
    "reversed_order": "'5 less than n' starts from n and takes 5 away: the order matters for subtraction.",
    "combined_unlike_terms": "Only like terms can be combined: x-terms with x-terms, numbers with numbers.",
}

PLACES = ("ones", "tens", "hundreds", "thousands", "ten thousands", "hundred thousands")
PLACES_ONE = ("one", "ten", "hundred", "thousand", "ten thousand", "hundred thousand")


# --------------------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------------------


def _ri(rng: np.random.Generator, lo: int, hi: int) -> int:
    """An integer in [lo, hi], both ends included."""
    return int(rng.integers(lo, hi + 1))


def _pick(rng: np.random.Generator, options: tuple[Any, ...] | list[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


def _perm(rng: np.random.Generator, n: int) -> str:
    return "".join(str(int(i)) for i in rng.permutation(n))


def _i(p: Params, key: str) -> int:
    v = p[key]
    if not isinstance(v, int):
        raise TypeError(f"parameter {key} must be an int")
    return v


def _s(p: Params, key: str) -> str:
    return str(p[key])


def _n(x: int) -> str:
    """Whole numbers as printed in exercises: 4,732."""
    return f"{x:,}"


def _f(n: int, d: int) -> str:
    return f"{n}/{d}"


def _fs(x: Fraction) -> str:
    """A fraction value in lowest terms: 3/4, 5/2, 2, -1/3."""
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def _mixed(x: Fraction) -> str:
    if x.denominator == 1 or abs(x) < 1:
        return _fs(x)
    whole, rest = divmod(x.numerator, x.denominator)
    return f"{whole} {rest}/{x.denominator}"


def _dec(x: Fraction) -> str:
    """Exact decimal of a terminating fraction: 2.75, 0.07, 12."""
    if x.denominator == 1:
        return str(x.numerator)
    places = 0
    while (x * 10**places).denominator != 1:
        places += 1
        if places > 12:
            raise ValueError(f"{x} has no short decimal form")
    scaled = abs(x * 10**places).numerator
    digits = str(scaled).rjust(places + 1, "0")
    sign = "-" if x < 0 else ""
    return f"{sign}{digits[:-places]}.{digits[-places:]}".rstrip("0").rstrip(".")


def _digits(x: int) -> list[int]:
    """Digits from the ones place up."""
    return [int(c) for c in reversed(str(x))]


def _from_digits(ds: list[int]) -> int:
    return sum(d * 10**i for i, d in enumerate(ds))


def _column_sums(a: int, b: int) -> tuple[list[int], int]:
    """Column sums without carrying (ones first) and the number of carries column addition makes."""
    da, db = _digits(a), _digits(b)
    width = max(len(da), len(db))
    da += [0] * (width - len(da))
    db += [0] * (width - len(db))
    sums = [x + y for x, y in zip(da, db, strict=True)]
    carries, carry = 0, 0
    for s in sums:
        carry = 1 if s + carry >= 10 else 0
        carries += carry
    return sums, carries


def _borrows(a: int, b: int) -> int:
    da, db = _digits(a), _digits(b)
    db += [0] * (len(da) - len(db))
    borrows, borrow = 0, 0
    for x, y in zip(da, db, strict=True):
        borrow = 1 if x - borrow < y else 0
        borrows += borrow
    return borrows


def _difficulty(x: float) -> float:
    return round(float(np.clip(x, -3.0, 3.0)), 2)


def _slug(v: int | str) -> str:
    if isinstance(v, int):
        return f"m{-v}" if v < 0 else str(v)
    return re.sub(r"[^a-z0-9]+", "", str(v).lower()) or "x"


# --------------------------------------------------------------------------------------------------------------
# The template interface
# --------------------------------------------------------------------------------------------------------------


@dataclass
class GeneratedItem:
    code: str
    skills: tuple[str, ...]
    prompt: str
    answer: AnswerSpec
    solution: str
    difficulty: float
    params: Params = field(default_factory=dict)
    template: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The item in the curriculum import format (docs/curriculum-format.md)."""
        return {
            "code": self.code,
            "skills": list(self.skills),
            "prompt": self.prompt,
            "answer": self.answer.to_dict(),
            "difficulty": self.difficulty,
            "solution": self.solution,
        }


_FORMAT = {
    "number": "Write your answer as a number.",
    "fraction": "Write your answer as a fraction.",
    "expression": "Write your answer as an expression.",
    "choice": "Choose one of the options.",
    "text": "Write your answer in words.",
}


class ItemTemplate:
    """One kind of exercise. Subclasses draw parameters and derive everything else from them.

    The parameters are plain ints and short strings (JSON-safe), so an item can be stored as (template, params)
    and re-rendered; `slots` are the numbers as the prompt shows them, which a word-problem context must contain.
    """

    code: str = ""
    skill: str = ""
    description: str = ""
    answer_type: str = "number"
    extra_skills: tuple[str, ...] = ()

    # ---- to implement
    def draw(self, rng: np.random.Generator) -> Params:
        raise NotImplementedError

    def answer(self, p: Params) -> AnswerSpec:
        raise NotImplementedError

    def question(self, p: Params) -> str:
        raise NotImplementedError

    def steps(self, p: Params) -> list[str]:
        raise NotImplementedError

    def difficulty(self, p: Params) -> float:
        raise NotImplementedError

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        """(response, misconception code) candidates; `wrong_answers` keeps those really judged wrong."""
        return []

    def slots(self, p: Params) -> dict[str, str]:
        """The numbers a word problem around this item must mention, as displayed."""
        return {k: _n(v) for k, v in p.items() if isinstance(v, int)}

    def story_brief(self, p: Params) -> str | None:
        """What a word-problem context must make the learner compute (never the result); None: no story fits."""
        return None

    # ---- provided
    @property
    def skills(self) -> tuple[str, ...]:
        return (self.skill, *self.extra_skills)

    def answer_format(self, p: Params) -> str:
        """The instruction that follows a story context, so the expected form stays explicit."""
        spec = self.answer(p)
        if spec.type == "fraction" and not spec.equivalent:
            return "Write your answer as a fraction in lowest terms."
        return _FORMAT[spec.type]

    def item_code(self, p: Params, context: str | None = None) -> str:
        """Stable and unique per (template, params[, context]): importing twice upserts instead of duplicating."""
        body = "-".join(_slug(v) for v in p.values())
        code = f"{self.code}_{body}"
        if len(code) > 100:
            code = f"{self.code}_{hashlib.sha1(body.encode()).hexdigest()[:12]}"
        if context is not None:
            code += "_s" + hashlib.sha1(context.strip().encode()).hexdigest()[:10]
        return code

    def render(self, params: Params, context: str | None = None) -> GeneratedItem:
        spec = self.answer(params)
        if context is not None and context.strip():
            prompt = f"{context.strip()}\n\n{self.answer_format(params)}"
        else:
            context = None
            prompt = self.question(params)
        shown = spec.choices[_choice_index(spec)] if spec.type == "choice" else _answer_text(spec)
        lines = [f"{i}. {s}" for i, s in enumerate(self.steps(params), 1)]
        solution = "\n".join([*lines, f"Answer: {shown}"])
        return GeneratedItem(
            code=self.item_code(params, context),
            skills=self.skills,
            prompt=prompt,
            answer=spec,
            solution=solution,
            difficulty=_difficulty(self.difficulty(params)),
            params=dict(params),
            template=self.code,
        )

    def generate(self, rng: np.random.Generator) -> GeneratedItem:
        return self.render(self.draw(rng))

    def wrong_answers(self, params: Params) -> list[tuple[str, str]]:
        """(wrong response, misconception code): responses a learner with that misconception gives, each
        readable as the item's answer type and judged wrong by `check_answer`."""
        spec = self.answer(params)
        out: list[tuple[str, str]] = []
        seen: set[str] = set()
        for response, code in self.misconceptions(params):
            if response in seen:
                continue
            try:
                if check_answer(spec, response):
                    continue
            except MalformedResponse:
                continue
            seen.add(response)
            out.append((response, code))
        return out


def _choice_index(spec: AnswerSpec) -> int:
    from curriculum.generation.answers import choice_index

    return choice_index(spec)


def _answer_text(spec: AnswerSpec) -> str:
    if spec.type == "text":
        return spec.value.split("|")[0].strip()
    if spec.type in ("number", "fraction", "expression"):
        return spec.value
    return canonical(spec)


def _choices(correct: str, distractors: list[str], order: str) -> tuple[str, ...]:
    options = [correct, *distractors]
    return tuple(options[int(c)] for c in order)


# --------------------------------------------------------------------------------------------------------------
# Place value
# --------------------------------------------------------------------------------------------------------------


def _unique_digit_number(rng: np.random.Generator, nd: int, min_k: int = 0) -> tuple[int, int]:
    """A number with `nd` digits and a position whose digit is non-zero and occurs once (so 'the digit 7' is clear)."""
    while True:
        ds = [_ri(rng, 0, 9) for _ in range(nd - 1)] + [_ri(rng, 1, 9)]
        k = _ri(rng, min_k, nd - 1)
        if ds[k] != 0 and ds.count(ds[k]) == 1:
            return _from_digits(ds), k


class DigitValue(ItemTemplate):
    code = "pv-digit-value"
    skill = "place-value"
    description = "The value of one digit in a whole number."

    def draw(self, rng: np.random.Generator) -> Params:
        n, k = _unique_digit_number(rng, _ri(rng, 3, 6), min_k=1)
        return {"n": n, "k": k}

    def _digit(self, p: Params) -> int:
        return int(_i(p, "n") // 10 ** _i(p, "k")) % 10

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("number", str(self._digit(p) * 10 ** _i(p, "k")))

    def question(self, p: Params) -> str:
        return f"What is the value of the digit {self._digit(p)} in {_n(_i(p, 'n'))}?"

    def steps(self, p: Params) -> list[str]:
        d, k = self._digit(p), _i(p, "k")
        return [
            f"Name the places of {_n(_i(p, 'n'))} from the right: ones, tens, hundreds, thousands, ...",
            f"The digit {d} is in the {PLACES[k]} place, where one unit is worth {_n(10**k)}.",
            f"So its value is {d} × {_n(10**k)} = {_n(d * 10**k)}.",
        ]

    def difficulty(self, p: Params) -> float:
        return -2.6 + 0.35 * (len(str(_i(p, "n"))) - 3) + 0.25 * _i(p, "k")

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        d, k = self._digit(p), _i(p, "k")
        out = [(str(d), "digit_not_value"), (str(d * 10 ** (k + 1)), "place_value")]
        if k >= 1:
            out.append((str(d * 10 ** (k - 1)), "place_value"))
        return out


class PlaceName(ItemTemplate):
    code = "pv-place-name"
    skill = "place-value"
    description = "Name the place of a digit in a whole number."
    answer_type = "text"

    def draw(self, rng: np.random.Generator) -> Params:
        n, k = _unique_digit_number(rng, _ri(rng, 3, 6))
        return {"n": n, "k": k}

    def answer(self, p: Params) -> AnswerSpec:
        name = PLACES[_i(p, "k")]
        return AnswerSpec("text", f"{name}|{name} place|the {name} place|{PLACES_ONE[_i(p, 'k')]}")

    def question(self, p: Params) -> str:
        d = (_i(p, "n") // 10 ** _i(p, "k")) % 10
        return f"In the number {_n(_i(p, 'n'))}, which place is the digit {d} in? (ones, tens, hundreds, ...)"

    def steps(self, p: Params) -> list[str]:
        n, k = _i(p, "n"), _i(p, "k")
        d = (n // 10**k) % 10
        return [
            f"Start at the right-hand digit of {_n(n)}: that is the ones place.",
            "Moving left, the places are ones, tens, hundreds, thousands, ten thousands, hundred thousands.",
            f"The digit {d} is {k} place(s) left of the ones digit, so it is in the {PLACES[k]} place.",
        ]

    def difficulty(self, p: Params) -> float:
        return -2.4 + 0.3 * (len(str(_i(p, "n"))) - 3) + 0.2 * _i(p, "k")

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        n, k = _i(p, "n"), _i(p, "k")
        nd = len(str(n))
        out = []
        if nd - 1 - k != k:
            out.append((PLACES[nd - 1 - k], "place_from_left"))
        if k + 1 < nd:
            out.append((PLACES[k + 1], "place_value"))
        if k >= 1:
            out.append((PLACES[k - 1], "place_value"))
        return out


class ComposeNumber(ItemTemplate):
    code = "pv-compose"
    skill = "place-value"
    description = "Write the number made of so many thousands, hundreds, tens and ones."

    def draw(self, rng: np.random.Generator) -> Params:
        while True:
            nd = _ri(rng, 3, 5)
            ds = [0 if rng.random() < 0.3 else _ri(rng, 1, 9) for _ in range(nd - 1)] + [_ri(rng, 1, 9)]
            present = [i for i, d in enumerate(ds) if d]
            if len(present) >= 2:
                break
        order = [int(i) for i in rng.permutation(len(present))] if rng.random() < 0.3 else []
        shown = [present[::-1][i] for i in order] if order else present[::-1]
        return {"n": _from_digits(ds), "order": "".join(str(k) for k in shown)}

    def _parts(self, p: Params) -> list[tuple[int, int]]:
        """(digit, place) in the order the prompt lists them."""
        n = _i(p, "n")
        return [((n // 10 ** int(k)) % 10, int(k)) for k in _s(p, "order")]

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("number", str(_i(p, "n")))

    def question(self, p: Params) -> str:
        parts = [f"{d} {PLACES_ONE[k] if d == 1 else PLACES[k]}" for d, k in self._parts(p)]
        listed = ", ".join(parts[:-1]) + f" and {parts[-1]}"
        return f"What number is {listed}?"

    def steps(self, p: Params) -> list[str]:
        n = _i(p, "n")
        nd = len(str(n))
        values = " + ".join(_n(d * 10**k) for d, k in sorted(self._parts(p), key=lambda t: -t[1]))
        missing = [PLACES[k] for k in range(nd) if (n // 10**k) % 10 == 0]
        out = [f"Write each part as a value and put the largest place first: {values}."]
        if missing:
            out.append(f"No {', '.join(missing)} are given, so those places hold a 0.")
        out.append(f"Adding the values gives {_n(n)}.")
        return out

    def difficulty(self, p: Params) -> float:
        n = _i(p, "n")
        zeros = sum(1 for d in str(n) if d == "0")
        shuffled = _s(p, "order") != "".join(sorted(_s(p, "order"), reverse=True))
        return -2.2 + 0.3 * (len(str(n)) - 3) + 0.5 * zeros + 0.7 * shuffled

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        parts = self._parts(p)
        out = [("".join(str(d) for d, _ in sorted(parts, key=lambda t: -t[1])), "zero_placeholder")]
        out.append(("".join(str(d) for d, _ in parts), "digit_order"))
        return out


class GreatestNumber(ItemTemplate):
    code = "pv-order"
    skill = "place-value"
    description = "Pick the greatest or smallest of four numbers made of the same digits."
    answer_type = "choice"

    def draw(self, rng: np.random.Generator) -> Params:
        nd = _ri(rng, 3, 4)
        digits = [int(d) for d in rng.choice(np.arange(1, 10), size=nd, replace=False)]
        numbers: list[int] = []
        while len(numbers) < 4:
            x = int("".join(str(digits[int(i)]) for i in rng.permutation(nd)))
            if x not in numbers:
                numbers.append(x)
        return {"numbers": ",".join(map(str, numbers)), "which": _pick(rng, ("greatest", "smallest"))}

    def _numbers(self, p: Params) -> list[int]:
        return [int(x) for x in _s(p, "numbers").split(",")]

    def _target(self, p: Params) -> int:
        ns = self._numbers(p)
        return max(ns) if p["which"] == "greatest" else min(ns)

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("choice", str(self._target(p)), choices=tuple(str(x) for x in self._numbers(p)))

    def question(self, p: Params) -> str:
        return f"Which of these numbers is the {p['which']}?"

    def steps(self, p: Params) -> list[str]:
        ns = sorted(self._numbers(p), reverse=p["which"] == "greatest")
        return [
            "All the numbers have the same number of digits, so compare them place by place from the left.",
            f"The first digits decide first; where they are equal, the next digits decide: {', '.join(map(str, ns))}.",
            f"The {p['which']} is {self._target(p)}.",
        ]

    def difficulty(self, p: Params) -> float:
        return -1.9 + 0.4 * (len(str(self._target(p))) - 3) + 0.3 * (p["which"] == "smallest")

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        ns = self._numbers(p)
        by_last = max(ns, key=lambda x: x % 10) if p["which"] == "greatest" else min(ns, key=lambda x: x % 10)
        return [(str(by_last), "compares_last_digit")]


# --------------------------------------------------------------------------------------------------------------
# Addition and subtraction
# --------------------------------------------------------------------------------------------------------------


class _Binary(ItemTemplate):
    """Shared pieces of `a op b` templates over whole numbers."""

    symbol = "+"
    verb = "put together"

    def question(self, p: Params) -> str:
        return f"What is {_n(_i(p, 'a'))} {self.symbol} {_n(_i(p, 'b'))}?"

    def story_brief(self, p: Params) -> str | None:
        return f"{self.verb} {_n(_i(p, 'a'))} and {_n(_i(p, 'b'))}"


def _pair_without_carry(rng: np.random.Generator, nd: int) -> tuple[int, int]:
    da, db = [], []
    for i in range(nd):
        lo = 1 if i == nd - 1 else 0
        x = _ri(rng, lo, 8)
        da.append(x)
        db.append(_ri(rng, lo, 9 - x))
    return _from_digits(da), _from_digits(db)


class AddNoCarry(_Binary):
    code = "add-no-carry"
    skill = "add-whole"
    description = "Add two whole numbers without carrying."
    verb = "find the total of"

    def draw(self, rng: np.random.Generator) -> Params:
        a, b = _pair_without_carry(rng, _ri(rng, 2, 3))
        return {"a": a, "b": b}

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("number", str(_i(p, "a") + _i(p, "b")))

    def steps(self, p: Params) -> list[str]:
        a, b = _i(p, "a"), _i(p, "b")
        sums, _ = _column_sums(a, b)
        cols = ", ".join(f"{PLACES[i]}: {s}" for i, s in enumerate(sums))
        return [
            f"Line up {_n(a)} and {_n(b)} by place value.",
            f"Add each column: {cols}.",
            f"So the sum is {_n(a + b)}.",
        ]

    def difficulty(self, p: Params) -> float:
        return -2.8 + 0.4 * (len(str(_i(p, "a"))) - 2) + 0.002 * _i(p, "b")

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        a, b = _i(p, "a"), _i(p, "b")
        return [(str(abs(a - b)), "wrong_operation")]


class AddCarry(_Binary):
    code = "add-carry"
    skill = "add-whole"
    description = "Add two whole numbers with carrying."
    verb = "find the total of"

    def draw(self, rng: np.random.Generator) -> Params:
        while True:
            nd = _ri(rng, 2, 4)
            a = _ri(rng, 10 ** (nd - 1), 10**nd - 1)
            b = _ri(rng, 10, 10 ** _ri(rng, 2, nd) - 1)
            if _column_sums(a, b)[1] >= 1:
                return {"a": a, "b": b}

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("number", str(_i(p, "a") + _i(p, "b")))

    def steps(self, p: Params) -> list[str]:
        a, b = _i(p, "a"), _i(p, "b")
        da, db = _digits(a), _digits(b)
        out = [f"Line up {_n(a)} and {_n(b)} by place value and add from the ones column."]
        carry = 0
        for i in range(max(len(da), len(db))):
            x = (da[i] if i < len(da) else 0) + (db[i] if i < len(db) else 0) + carry
            note = " (with the carried 1)" if carry else ""
            if x >= 10:
                out.append(f"{PLACES[i].capitalize()}: {x}{note}; write {x % 10} and carry 1.")
            else:
                out.append(f"{PLACES[i].capitalize()}: {x}{note}; write {x}.")
            carry = x // 10
        if carry:
            out.append("Write the last carried 1 in front.")
        out.append(f"So the sum is {_n(a + b)}.")
        return out

    def difficulty(self, p: Params) -> float:
        a, b = _i(p, "a"), _i(p, "b")
        return -2.0 + 0.35 * (len(str(a)) - 2) + 0.3 * _column_sums(a, b)[1]

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        sums, _ = _column_sums(_i(p, "a"), _i(p, "b"))
        return [
            (str(_from_digits([s % 10 for s in sums])), "no_carry"),
            ("".join(str(s) for s in reversed(sums)).lstrip("0") or "0", "carry_written"),
        ]


class AddThree(ItemTemplate):
    code = "add-three"
    skill = "add-whole"
    description = "Add three two-digit numbers."

    def draw(self, rng: np.random.Generator) -> Params:
        return {"a": _ri(rng, 11, 99), "b": _ri(rng, 11, 99), "c": _ri(rng, 11, 99)}

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("number", str(_i(p, "a") + _i(p, "b") + _i(p, "c")))

    def question(self, p: Params) -> str:
        return f"What is {_i(p, 'a')} + {_i(p, 'b')} + {_i(p, 'c')}?"

    def steps(self, p: Params) -> list[str]:
        a, b, c = _i(p, "a"), _i(p, "b"), _i(p, "c")
        return [
            f"Add the first two numbers: {a} + {b} = {a + b}.",
            f"Add the third: {a + b} + {c} = {a + b + c}.",
        ]

    def difficulty(self, p: Params) -> float:
        a, b, c = _i(p, "a"), _i(p, "b"), _i(p, "c")
        return -1.6 + 0.35 * (_column_sums(a, b)[1] + _column_sums(a + b, c)[1])

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        a, b, c = _i(p, "a"), _i(p, "b"), _i(p, "c")
        ones = (a % 10 + b % 10 + c % 10) % 10
        tens = (a // 10 + b // 10 + c // 10) % 10
        return [(str(10 * tens + ones), "no_carry"), (str(a + b), "wrong_operation")]

    def story_brief(self, p: Params) -> str | None:
        return f"find the total of three amounts: {p['a']}, {p['b']} and {p['c']}"


def _pair_without_borrow(rng: np.random.Generator, nd: int) -> tuple[int, int]:
    da, db = [], []
    for i in range(nd):
        x = _ri(rng, 2 if i == nd - 1 else 0, 9)
        da.append(x)
        db.append(_ri(rng, 1 if i == nd - 1 else 0, x - 1 if i == nd - 1 else x))
    return _from_digits(da), _from_digits(db)


class SubNoBorrow(_Binary):
    code = "sub-no-borrow"
    skill = "sub-whole"
    description = "Subtract whole numbers without regrouping."
    symbol = "−"
    verb = "find the difference between"

    def draw(self, rng: np.random.Generator) -> Params:
        a, b = _pair_without_borrow(rng, _ri(rng, 2, 3))
        return {"a": a, "b": b}

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("number", str(_i(p, "a") - _i(p, "b")))

    def steps(self, p: Params) -> list[str]:
        a, b = _i(p, "a"), _i(p, "b")
        da, db = _digits(a), _digits(b)
        cols = ", ".join(f"{PLACES[i]}: {da[i]} − {db[i]} = {da[i] - db[i]}" for i in range(len(da)))
        return [
            f"Line up {_n(a)} and {_n(b)} by place value.",
            f"Subtract each column: {cols}.",
            f"So the difference is {_n(a - b)}.",
        ]

    def difficulty(self, p: Params) -> float:
        return -2.5 + 0.4 * (len(str(_i(p, "a"))) - 2)

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        return [(str(_i(p, "a") + _i(p, "b")), "wrong_operation")]


class SubBorrow(_Binary):
    code = "sub-borrow"
    skill = "sub-whole"
    description = "Subtract whole numbers with regrouping."
    symbol = "−"
    verb = "find the difference between"

    def draw(self, rng: np.random.Generator) -> Params:
        while True:
            nd = _ri(rng, 2, 4)
            a = _ri(rng, 10 ** (nd - 1) + 1, 10**nd - 1)
            b = _ri(rng, 10, a - 1)
            if _borrows(a, b) >= 1 and a - b >= 1:
                return {"a": a, "b": b}

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("number", str(_i(p, "a") - _i(p, "b")))

    def steps(self, p: Params) -> list[str]:
        a, b = _i(p, "a"), _i(p, "b")
        da, db = _digits(a), _digits(b)
        db += [0] * (len(da) - len(db))
        out = [f"Line up {_n(a)} and {_n(b)} by place value and subtract from the ones column."]
        borrow = 0
        for i, (x, y) in enumerate(zip(da, db, strict=True)):
            top = x - borrow
            if top < y:
                out.append(
                    f"{PLACES[i].capitalize()}: {top} is less than {y}, so regroup 1 from the next place: "
                    f"{top + 10} − {y} = {top + 10 - y}."
                )
                borrow = 1
            else:
                out.append(f"{PLACES[i].capitalize()}: {top} − {y} = {top - y}.")
                borrow = 0
        out.append(f"So the difference is {_n(a - b)}.")
        return out

    def difficulty(self, p: Params) -> float:
        a, b = _i(p, "a"), _i(p, "b")
        zero_regroup = any(d == 0 for d in _digits(a)[1:-1])
        return -1.7 + 0.35 * (len(str(a)) - 2) + 0.35 * _borrows(a, b) + 0.4 * zero_regroup

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        a, b = _i(p, "a"), _i(p, "b")
        da, db = _digits(a), _digits(b)
        db += [0] * (len(da) - len(db))
        smaller_from_larger = _from_digits([abs(x - y) for x, y in zip(da, db, strict=True)])
        no_decrement = _from_digits([x - y if x >= y else x + 10 - y for x, y in zip(da, db, strict=True)])
        return [
            (str(smaller_from_larger), "smaller_from_larger"),
            (str(no_decrement), "borrow_not_subtracted"),
        ]


class MissingAddend(ItemTemplate):
    code = "sub-missing-addend"
    skill = "sub-whole"
    description = "Find the missing number in an addition."

    def draw(self, rng: np.random.Generator) -> Params:
        nd = _ri(rng, 2, 3)
        c = _ri(rng, 10 ** (nd - 1) + 10, 10**nd - 1)
        return {"b": _ri(rng, 5, c - 5), "c": c}

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("number", str(_i(p, "c") - _i(p, "b")))

    def question(self, p: Params) -> str:
        return f"What number goes in the box? □ + {_n(_i(p, 'b'))} = {_n(_i(p, 'c'))}"

    def steps(self, p: Params) -> list[str]:
        b, c = _i(p, "b"), _i(p, "c")
        return [
            f"The box plus {_n(b)} makes {_n(c)}, so the box is what is left when {_n(b)} is taken from {_n(c)}.",
            f"{_n(c)} − {_n(b)} = {_n(c - b)}.",
            f"Check: {_n(c - b)} + {_n(b)} = {_n(c)}.",
        ]

    def difficulty(self, p: Params) -> float:
        b, c = _i(p, "b"), _i(p, "c")
        return -1.4 + 0.3 * (len(str(c)) - 2) + 0.3 * _borrows(c, b)

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        return [(str(_i(p, "c") + _i(p, "b")), "wrong_operation")]

    def story_brief(self, p: Params) -> str | None:
        return f"find how many more are needed to go from {_n(_i(p, 'b'))} to {_n(_i(p, 'c'))}"


# --------------------------------------------------------------------------------------------------------------
# Multiplication and division
# --------------------------------------------------------------------------------------------------------------


class MulFacts(_Binary):
    code = "mul-facts"
    skill = "mul-whole"
    description = "Multiplication facts up to 12 × 12."
    symbol = "×"
    verb = "find the total number in equal groups:"

    def draw(self, rng: np.random.Generator) -> Params:
        return {"a": _ri(rng, 2, 12), "b": _ri(rng, 2, 12)}

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("number", str(_i(p, "a") * _i(p, "b")))

    def steps(self, p: Params) -> list[str]:
        a, b = _i(p, "a"), _i(p, "b")
        return [
            f"{a} × {b} means {a} groups of {b}.",
            f"Count in {b}s {a} times, or use the fact you know: {a} × {b} = {a * b}.",
        ]

    def difficulty(self, p: Params) -> float:
        a, b = _i(p, "a"), _i(p, "b")
        return -2.7 + 0.13 * (a + b - 4) + 0.3 * (min(a, b) >= 6)

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        return [(str(_i(p, "a") + _i(p, "b")), "wrong_operation")]

    def story_brief(self, p: Params) -> str | None:
        return f"find the total of {p['a']} equal groups of {p['b']}"


class Mul2by1(_Binary):
    code = "mul-2by1"
    skill = "mul-whole"
    description = "Multiply a two- or three-digit number by a one-digit number."
    symbol = "×"

    def draw(self, rng: np.random.Generator) -> Params:
        while True:
            a, b = _ri(rng, 12, 10 ** _ri(rng, 2, 3) - 1), _ri(rng, 3, 9)
            if any(d * b >= 10 for d in _digits(a)):
                return {"a": a, "b": b}

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("number", str(_i(p, "a") * _i(p, "b")))

    def steps(self, p: Params) -> list[str]:
        a, b = _i(p, "a"), _i(p, "b")
        parts = [(d * 10**i) for i, d in enumerate(_digits(a)) if d][::-1]
        products = " + ".join(_n(x * b) for x in parts)
        return [
            f"Split {_n(a)} by place value: {' + '.join(_n(x) for x in parts)}.",
            f"Multiply each part by {b}: {products}.",
            f"Add the parts: {_n(a * b)}.",
        ]

    def difficulty(self, p: Params) -> float:
        a, b = _i(p, "a"), _i(p, "b")
        return -1.3 + 0.5 * (len(str(a)) - 2) + 0.08 * b

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        a, b = _i(p, "a"), _i(p, "b")
        ds = _digits(a)
        return [
            (str(_from_digits([(d * b) % 10 for d in ds])), "no_carry"),
            ("".join(str(d * b) for d in reversed(ds)), "carry_written"),
            (str(a + b), "wrong_operation"),
        ]

    def story_brief(self, p: Params) -> str | None:
        return f"find the total of {p['b']} equal groups of {_n(_i(p, 'a'))}"


class Mul2by2(_Binary):
    code = "mul-2by2"
    skill = "mul-whole"
    description = "Multiply two two-digit numbers."
    symbol = "×"

    def draw(self, rng: np.random.Generator) -> Params:
        return {"a": _ri(rng, 12, 99), "b": _pick(rng, [x for x in range(12, 100) if x % 10])}

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("number", str(_i(p, "a") * _i(p, "b")))

    def steps(self, p: Params) -> list[str]:
        a, b = _i(p, "a"), _i(p, "b")
        t, o = (b // 10) * 10, b % 10
        return [
            f"Split {b} into {t} + {o}.",
            f"Multiply by the ones: {a} × {o} = {_n(a * o)}.",
            f"Multiply by the tens: {a} × {t} = {_n(a * t)}.",
            f"Add the partial products: {_n(a * o)} + {_n(a * t)} = {_n(a * b)}.",
        ]

    def difficulty(self, p: Params) -> float:
        return -0.9 + 1.2 * (_i(p, "a") * _i(p, "b")) / 9801

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        a, b = _i(p, "a"), _i(p, "b")
        return [
            (str(a * (b % 10) + a * (b // 10)), "tens_partial_not_shifted"),
            (str((a // 10) * (b // 10) * 100 + (a % 10) * (b % 10)), "multiplied_columns"),
        ]

    def story_brief(self, p: Params) -> str | None:
        return f"find the total of {p['a']} rows of {p['b']}"


class DivFacts(ItemTemplate):
    code = "div-facts"
    skill = "div-whole"
    description = "Division facts that come out exactly."

    def draw(self, rng: np.random.Generator) -> Params:
        b, q = _ri(rng, 2, 12), _ri(rng, 2, 12)
        return {"n": b * q, "b": b}

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("number", str(_i(p, "n") // _i(p, "b")))

    def question(self, p: Params) -> str:
        return f"What is {_i(p, 'n')} ÷ {_i(p, 'b')}?"

    def steps(self, p: Params) -> list[str]:
        n, b = _i(p, "n"), _i(p, "b")
        return [
            f"{n} ÷ {b} asks: how many groups of {b} make {n}?",
            f"Use the multiplication fact {b} × {n // b} = {n}.",
            f"So {n} ÷ {b} = {n // b}.",
        ]

    def difficulty(self, p: Params) -> float:
        n, b = _i(p, "n"), _i(p, "b")
        return -2.3 + 0.12 * (b + n // b - 4)

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        n, b = _i(p, "n"), _i(p, "b")
        return [(str(n * b), "wrong_operation"), (str(n - b), "wrong_operation")]

    def story_brief(self, p: Params) -> str | None:
        return f"share {p['n']} equally into groups of {p['b']} and find how many groups"


class DivRemainder(ItemTemplate):
    code = "div-remainder"
    skill = "div-whole"
    description = "Division with a remainder, answered as quotient and remainder."
    answer_type = "text"

    def draw(self, rng: np.random.Generator) -> Params:
        d = _ri(rng, 3, 9)
        return {"n": d * _ri(rng, 3, 15) + _ri(rng, 1, d - 1), "d": d}

    def answer(self, p: Params) -> AnswerSpec:
        q, r = divmod(_i(p, "n"), _i(p, "d"))
        return AnswerSpec("text", f"{q} r {r}|{q} remainder {r}|{q} rem {r}|{q} R {r}")

    def question(self, p: Params) -> str:
        return f"Divide {_i(p, 'n')} by {_i(p, 'd')}. Write the quotient and the remainder, like 7 r 2."

    def steps(self, p: Params) -> list[str]:
        n, d = _i(p, "n"), _i(p, "d")
        q, r = divmod(n, d)
        return [
            f"Find the largest multiple of {d} that is not more than {n}: {d} × {q} = {d * q}.",
            f"The remainder is what is left: {n} − {d * q} = {r}, which is less than {d}.",
            f"So {n} ÷ {d} = {q} r {r}.",
        ]

    def difficulty(self, p: Params) -> float:
        n, d = _i(p, "n"), _i(p, "d")
        return -1.4 + 0.08 * (n // d) + 0.1 * d

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        n, d = _i(p, "n"), _i(p, "d")
        q, r = divmod(n, d)
        out = [(str(q), "ignored_remainder"), (f"{q}.{r}", "remainder_as_decimal")]
        if q > 1:
            out.append((f"{q - 1} r {r + d}", "remainder_too_big"))
        return out

    def story_brief(self, p: Params) -> str | None:
        return f"share {p['n']} things into groups of {p['d']}, finding how many full groups and how many are left over"


class DivLong(ItemTemplate):
    code = "div-long"
    skill = "div-whole"
    description = "Divide a three- or four-digit number by a one-digit number, exactly."

    def draw(self, rng: np.random.Generator) -> Params:
        d = _ri(rng, 2, 9)
        q = _ri(rng, 101, 299) if rng.random() < 0.7 else 100 * _ri(rng, 1, 2) + _ri(rng, 1, 9)
        return {"n": d * q, "d": d}

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("number", str(_i(p, "n") // _i(p, "d")))

    def question(self, p: Params) -> str:
        return f"What is {_n(_i(p, 'n'))} ÷ {_i(p, 'd')}?"

    def steps(self, p: Params) -> list[str]:
        n, d = _i(p, "n"), _i(p, "d")
        out = [f"Divide {_n(n)} by {d} one digit at a time, from the left."]
        rest = 0
        started = False
        for ch in str(n):
            cur = rest * 10 + int(ch)
            q, rest = divmod(cur, d)
            if q or started:
                out.append(f"{cur} ÷ {d} = {q}, remainder {rest}; write {q}.")
                started = True
            else:
                out.append(f"{cur} is less than {d}: bring down the next digit.")
        out.append(f"So {_n(n)} ÷ {d} = {_n(n // d)}.")
        return out

    def difficulty(self, p: Params) -> float:
        q = _i(p, "n") // _i(p, "d")
        return -0.6 + 0.1 * _i(p, "d") + 0.6 * ("0" in str(q))

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        q = _i(p, "n") // _i(p, "d")
        out = [(str(_i(p, "n") * _i(p, "d")), "wrong_operation")]
        if "0" in str(q):
            out.append((str(int(str(q).replace("0", ""))), "dropped_zero"))
        return out

    def story_brief(self, p: Params) -> str | None:
        return f"share {_n(_i(p, 'n'))} equally among {p['d']}"


# --------------------------------------------------------------------------------------------------------------
# Fractions: concept, equivalence, comparison
# --------------------------------------------------------------------------------------------------------------


class ShadedFraction(ItemTemplate):
    code = "frac-shaded"
    skill = "frac-concept"
    description = "The fraction of a shape that is shaded."
    answer_type = "fraction"

    def draw(self, rng: np.random.Generator) -> Params:
        d = _ri(rng, 2, 12)
        return {"d": d, "n": _ri(rng, 1, d - 1)}

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("fraction", _f(_i(p, "n"), _i(p, "d")))

    def question(self, p: Params) -> str:
        n, d = _i(p, "n"), _i(p, "d")
        part = "part is" if n == 1 else "parts are"
        return f"A bar is divided into {d} equal parts and {n} {part} shaded. What fraction of the bar is shaded?"

    def steps(self, p: Params) -> list[str]:
        n, d = _i(p, "n"), _i(p, "d")
        return [
            f"The whole bar has {d} equal parts: that is the denominator.",
            f"{n} of them are shaded: that is the numerator.",
            f"So {_f(n, d)} of the bar is shaded.",
        ]

    def difficulty(self, p: Params) -> float:
        return -2.7 + 0.1 * _i(p, "d")

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        n, d = _i(p, "n"), _i(p, "d")
        return [
            (_f(n, d - n), "shaded_over_unshaded"),
            (_f(d - n, d), "complement_part"),
            (_f(d, n), "numerator_denominator_swapped"),
        ]

    def story_brief(self, p: Params) -> str | None:
        return f"a whole cut into {p['d']} equal parts, of which {p['n']} are taken; ask what fraction of the whole is taken"


class FractionOfAmount(ItemTemplate):
    code = "frac-of-amount"
    skill = "frac-concept"
    description = "A fraction of a whole-number amount."

    def draw(self, rng: np.random.Generator) -> Params:
        d = _ri(rng, 2, 10)
        n = 1 if rng.random() < 0.4 else _ri(rng, 1, d - 1)
        return {"n": n, "d": d, "m": d * _ri(rng, 2, 12)}

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("number", str(_i(p, "m") // _i(p, "d") * _i(p, "n")))

    def question(self, p: Params) -> str:
        return f"What is {_f(_i(p, 'n'), _i(p, 'd'))} of {_i(p, 'm')}?"

    def steps(self, p: Params) -> list[str]:
        n, d, m = _i(p, "n"), _i(p, "d"), _i(p, "m")
        out = [f"Find one part first: {m} ÷ {d} = {m // d}, so 1/{d} of {m} is {m // d}."]
        if n > 1:
            out.append(f"Take {n} such parts: {n} × {m // d} = {n * (m // d)}.")
        return out

    def difficulty(self, p: Params) -> float:
        return -1.9 + 0.7 * (_i(p, "n") > 1) + 0.012 * _i(p, "m")

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        n, d, m = _i(p, "n"), _i(p, "d"), _i(p, "m")
        out = [(str(m * d), "multiplied_by_denominator")]
        if n > 1:
            out.append((str(m // d), "only_divided"))
        return out

    def story_brief(self, p: Params) -> str | None:
        return f"find {_f(_i(p, 'n'), _i(p, 'd'))} of a group of {p['m']} things"

    def slots(self, p: Params) -> dict[str, str]:
        return {"fraction": _f(_i(p, "n"), _i(p, "d")), "amount": str(p["m"])}


class NameFraction(ItemTemplate):
    code = "frac-name"
    skill = "frac-concept"
    description = "Pick the fraction for 'so many out of so many equal parts'."
    answer_type = "choice"

    def draw(self, rng: np.random.Generator) -> Params:
        while True:
            d = _ri(rng, 3, 12)
            n = _ri(rng, 1, d - 1)
            if 2 * n != d:
                return {"n": n, "d": d, "order": _perm(rng, 4)}

    def _options(self, p: Params) -> tuple[str, list[str]]:
        n, d = _i(p, "n"), _i(p, "d")
        return _f(n, d), [_f(d, n), _f(n, n + d), _f(d - n, d)]

    def answer(self, p: Params) -> AnswerSpec:
        correct, others = self._options(p)
        return AnswerSpec("choice", correct, choices=_choices(correct, others, _s(p, "order")))

    def question(self, p: Params) -> str:
        verb = "is" if p["n"] == 1 else "are"
        return f"A cake is cut into {p['d']} equal pieces and {p['n']} {verb} eaten. Which fraction of the cake is eaten?"

    def steps(self, p: Params) -> list[str]:
        n, d = _i(p, "n"), _i(p, "d")
        return [
            f"The denominator counts the equal pieces: {d}.",
            f"The numerator counts the pieces eaten: {n}.",
            f"So {_f(n, d)} is eaten.",
        ]

    def difficulty(self, p: Params) -> float:
        return -2.5 + 0.05 * _i(p, "d")

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        n, d = _i(p, "n"), _i(p, "d")
        return [
            (_f(d, n), "numerator_denominator_swapped"),
            (_f(n, n + d), "add_across"),
            (_f(d - n, d), "complement_part"),
        ]


def _lowest(rng: np.random.Generator, dmin: int, dmax: int) -> tuple[int, int]:
    while True:
        d = _ri(rng, dmin, dmax)
        n = _ri(rng, 1, d - 1)
        if math.gcd(n, d) == 1:
            return n, d


class EquivMissing(ItemTemplate):
    code = "equiv-missing"
    skill = "frac-equivalent"
    description = "Find the missing numerator of an equivalent fraction."

    def draw(self, rng: np.random.Generator) -> Params:
        n, d = _lowest(rng, 2, 10)
        return {"n": n, "d": d, "k": _ri(rng, 2, 6)}

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("number", str(_i(p, "n") * _i(p, "k")))

    def question(self, p: Params) -> str:
        return f"Fill in the missing numerator: {_f(_i(p, 'n'), _i(p, 'd'))} = ?/{_i(p, 'd') * _i(p, 'k')}"

    def steps(self, p: Params) -> list[str]:
        n, d, k = _i(p, "n"), _i(p, "d"), _i(p, "k")
        return [
            f"The denominator went from {d} to {d * k}: it was multiplied by {k}.",
            f"Multiply the numerator by the same number: {n} × {k} = {n * k}.",
            f"So {_f(n, d)} = {_f(n * k, d * k)}.",
        ]

    def difficulty(self, p: Params) -> float:
        return -1.7 + 0.15 * _i(p, "k") + 0.05 * _i(p, "d")

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        n, d, k = _i(p, "n"), _i(p, "d"), _i(p, "k")
        return [(str(n + d * k - d), "additive_equivalence"), (str(n), "only_one_part_scaled")]


def _smallest_prime_factor(k: int) -> int:
    return next(q for q in range(2, k + 1) if k % q == 0)


class EquivSimplify(ItemTemplate):
    code = "equiv-simplify"
    skill = "frac-equivalent"
    description = "Write a fraction in lowest terms."
    answer_type = "fraction"

    def draw(self, rng: np.random.Generator) -> Params:
        n, d = _lowest(rng, 2, 12)
        k = _ri(rng, 2, 9)
        return {"a": n * k, "b": d * k}

    def _reduced(self, p: Params) -> Fraction:
        return Fraction(_i(p, "a"), _i(p, "b"))

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("fraction", _fs(self._reduced(p)), equivalent=False)

    def question(self, p: Params) -> str:
        return f"Write {_f(_i(p, 'a'), _i(p, 'b'))} in lowest terms."

    def steps(self, p: Params) -> list[str]:
        a, b = _i(p, "a"), _i(p, "b")
        g = math.gcd(a, b)
        return [
            f"Find the greatest number that divides both {a} and {b}: it is {g}.",
            f"Divide top and bottom by {g}: {a} ÷ {g} = {a // g} and {b} ÷ {g} = {b // g}.",
            f"{a // g} and {b // g} share no factor other than 1, so {_f(a // g, b // g)} is in lowest terms.",
        ]

    def difficulty(self, p: Params) -> float:
        g = math.gcd(_i(p, "a"), _i(p, "b"))
        composite = _smallest_prime_factor(g) < g
        return -1.3 + 0.12 * g + 0.4 * composite

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        a, b = _i(p, "a"), _i(p, "b")
        g = math.gcd(a, b)
        out = [(_f(a, b), "not_simplified")]
        q = _smallest_prime_factor(g)
        if q < g:
            out.append((_f(a // q, b // q), "partially_simplified"))
        return out


class EquivChoose(ItemTemplate):
    code = "equiv-choose"
    skill = "frac-equivalent"
    description = "Pick the fraction equivalent to a given one."
    answer_type = "choice"

    def draw(self, rng: np.random.Generator) -> Params:
        while True:
            n, d = _lowest(rng, 2, 9)
            k = _ri(rng, 2, 5)
            p: Params = {"n": n, "d": d, "k": k, "order": _perm(rng, 4)}
            correct, others = self._options(p)
            values = {Fraction(x) for x in [correct, *others]}
            if len(values) == 4:
                return p

    def _options(self, p: Params) -> tuple[str, list[str]]:
        n, d, k = _i(p, "n"), _i(p, "d"), _i(p, "k")
        return _f(n * k, d * k), [_f(n + k, d + k), _f(n, d * k), _f(n * k, d + k)]

    def answer(self, p: Params) -> AnswerSpec:
        correct, others = self._options(p)
        return AnswerSpec("choice", correct, choices=_choices(correct, others, _s(p, "order")))

    def question(self, p: Params) -> str:
        return f"Which fraction is equivalent to {_f(_i(p, 'n'), _i(p, 'd'))}?"

    def steps(self, p: Params) -> list[str]:
        n, d, k = _i(p, "n"), _i(p, "d"), _i(p, "k")
        return [
            "Equivalent fractions come from multiplying the numerator and the denominator by the same number.",
            f"{_f(n, d)} = ({n} × {k})/({d} × {k}) = {_f(n * k, d * k)}.",
            "Adding the same number to top and bottom, or changing only one of them, changes the value.",
        ]

    def difficulty(self, p: Params) -> float:
        return -1.5 + 0.15 * _i(p, "k") + 0.04 * _i(p, "d")

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        n, d, k = _i(p, "n"), _i(p, "d"), _i(p, "k")
        return [(_f(n + k, d + k), "additive_equivalence"), (_f(n, d * k), "only_one_part_scaled")]


_SIGNS = ("<", ">", "=")


def _sign(x: Fraction, y: Fraction) -> str:
    return "<" if x < y else ">" if x > y else "="


class CompareSameDenominator(ItemTemplate):
    code = "cmp-same-denominator"
    skill = "frac-compare"
    description = "Compare two fractions with the same denominator."
    answer_type = "choice"

    def draw(self, rng: np.random.Generator) -> Params:
        d = _ri(rng, 3, 12)
        a, b = (int(x) for x in rng.choice(np.arange(1, d), size=2, replace=False))
        return {"a": a, "b": b, "d": d}

    def _sign(self, p: Params) -> str:
        return _sign(Fraction(_i(p, "a"), _i(p, "d")), Fraction(_i(p, "b"), _i(p, "d")))

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("choice", self._sign(p), choices=_SIGNS)

    def question(self, p: Params) -> str:
        return f"Which sign makes this true? {_f(_i(p, 'a'), _i(p, 'd'))} __ {_f(_i(p, 'b'), _i(p, 'd'))}"

    def steps(self, p: Params) -> list[str]:
        a, b, d = _i(p, "a"), _i(p, "b"), _i(p, "d")
        return [
            f"Both fractions are made of parts of the same size (1/{d} each).",
            f"{a} parts {'are fewer than' if a < b else 'are more than'} {b} parts.",
            f"So {_f(a, d)} {self._sign(p)} {_f(b, d)}.",
        ]

    def difficulty(self, p: Params) -> float:
        return -2.3 + 0.05 * _i(p, "d")

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        return [(">" if self._sign(p) == "<" else "<", "reversed_comparison")]


class CompareSameNumerator(ItemTemplate):
    code = "cmp-same-numerator"
    skill = "frac-compare"
    description = "Compare two fractions with the same numerator."
    answer_type = "choice"

    def draw(self, rng: np.random.Generator) -> Params:
        d1, d2 = (int(x) for x in rng.choice(np.arange(3, 13), size=2, replace=False))
        return {"n": _ri(rng, 1, min(d1, d2) - 1), "d1": d1, "d2": d2}

    def _sign(self, p: Params) -> str:
        return _sign(Fraction(_i(p, "n"), _i(p, "d1")), Fraction(_i(p, "n"), _i(p, "d2")))

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("choice", self._sign(p), choices=_SIGNS)

    def question(self, p: Params) -> str:
        return f"Which sign makes this true? {_f(_i(p, 'n'), _i(p, 'd1'))} __ {_f(_i(p, 'n'), _i(p, 'd2'))}"

    def steps(self, p: Params) -> list[str]:
        n, d1, d2 = _i(p, "n"), _i(p, "d1"), _i(p, "d2")
        small, big = min(d1, d2), max(d1, d2)
        return [
            f"Both fractions take {n} part(s), so compare the size of the parts.",
            f"Cutting a whole into {big} parts makes smaller parts than cutting it into {small}.",
            f"So {_f(n, d1)} {self._sign(p)} {_f(n, d2)}.",
        ]

    def difficulty(self, p: Params) -> float:
        return -1.4 + 0.05 * max(_i(p, "d1"), _i(p, "d2"))

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        return [(">" if self._sign(p) == "<" else "<", "bigger_denominator_bigger")]


class CompareUnlike(ItemTemplate):
    code = "cmp-unlike"
    skill = "frac-compare"
    description = "Write the greater of two fractions with different denominators."
    answer_type = "fraction"

    def draw(self, rng: np.random.Generator) -> Params:
        while True:
            a, b = _lowest(rng, 2, 10)
            c, d = _lowest(rng, 2, 10)
            if b != d and a != c and Fraction(a, b) != Fraction(c, d):
                return {"a": a, "b": b, "c": c, "d": d}

    def _pair(self, p: Params) -> tuple[Fraction, Fraction]:
        return Fraction(_i(p, "a"), _i(p, "b")), Fraction(_i(p, "c"), _i(p, "d"))

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("fraction", _fs(max(self._pair(p))))

    def question(self, p: Params) -> str:
        x, y = _f(_i(p, "a"), _i(p, "b")), _f(_i(p, "c"), _i(p, "d"))
        return f"Which is greater, {x} or {y}? Write the greater fraction."

    def steps(self, p: Params) -> list[str]:
        a, b, c, d = _i(p, "a"), _i(p, "b"), _i(p, "c"), _i(p, "d")
        m = math.lcm(b, d)
        return [
            f"Rename both fractions with the common denominator {m}.",
            f"{_f(a, b)} = {_f(a * m // b, m)} and {_f(c, d)} = {_f(c * m // d, m)}.",
            f"{max(a * m // b, c * m // d)} parts of {m} is more, so {_fs(max(self._pair(p)))} is greater.",
        ]

    def difficulty(self, p: Params) -> float:
        x, y = self._pair(p)
        closeness = 1 - min(1.0, 4 * float(abs(x - y)))
        return -0.9 + 1.3 * closeness + 0.04 * max(_i(p, "b"), _i(p, "d"))

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        a, b, c, d = _i(p, "a"), _i(p, "b"), _i(p, "c"), _i(p, "d")
        small = (a, b) if Fraction(a, b) < Fraction(c, d) else (c, d)
        big = (c, d) if small == (a, b) else (a, b)
        if small[1] > big[1]:
            code = "bigger_denominator_bigger"
        elif small[0] > big[0]:
            code = "bigger_numerator_bigger"
        else:
            code = "chose_smaller"
        return [(_f(*small), code)]


# --------------------------------------------------------------------------------------------------------------
# Fractions: adding and subtracting
# --------------------------------------------------------------------------------------------------------------


class _FracOp(ItemTemplate):
    answer_type = "fraction"
    sign = "+"

    def _operands(self, p: Params) -> tuple[Fraction, Fraction]:
        return Fraction(_i(p, "a"), _i(p, "b")), Fraction(_i(p, "c"), _i(p, "d"))

    def _result(self, p: Params) -> Fraction:
        x, y = self._operands(p)
        return x + y if self.sign == "+" else x - y

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("fraction", _fs(self._result(p)))

    def question(self, p: Params) -> str:
        sym = "+" if self.sign == "+" else "−"
        return f"What is {_f(_i(p, 'a'), _i(p, 'b'))} {sym} {_f(_i(p, 'c'), _i(p, 'd'))}?"

    def story_brief(self, p: Params) -> str | None:
        x, y = _f(_i(p, "a"), _i(p, "b")), _f(_i(p, "c"), _i(p, "d"))
        if self.sign == "+":
            return f"put together {x} and {y} of the same whole"
        return f"take {y} away from {x} of the same whole"

    def slots(self, p: Params) -> dict[str, str]:
        return {"first": _f(_i(p, "a"), _i(p, "b")), "second": _f(_i(p, "c"), _i(p, "d"))}

    def _finish(self, num: int, den: int) -> list[str]:
        r = Fraction(num, den)
        if r.denominator == den:
            return [f"{_f(num, den)} is already in lowest terms."]
        g = math.gcd(num, den)
        return [f"Simplify by dividing top and bottom by {g}: {_f(num, den)} = {_fs(r)}."]


class AddLike(_FracOp):
    code = "frac-add-like"
    skill = "frac-add-like"
    description = "Add fractions with the same denominator."

    def draw(self, rng: np.random.Generator) -> Params:
        d = _ri(rng, 3, 12)
        a, c = _ri(rng, 1, d - 1), _ri(rng, 1, d - 1)
        return {"a": a, "b": d, "c": c, "d": d}

    def steps(self, p: Params) -> list[str]:
        a, c, d = _i(p, "a"), _i(p, "c"), _i(p, "d")
        return [
            f"The denominators are the same ({d}), so the parts are the same size.",
            f"Add the numerators and keep the denominator: {a} + {c} = {a + c}, giving {_f(a + c, d)}.",
            *self._finish(a + c, d),
        ]

    def difficulty(self, p: Params) -> float:
        a, c, d = _i(p, "a"), _i(p, "c"), _i(p, "d")
        return -1.8 + 0.5 * (math.gcd(a + c, d) > 1) + 0.5 * (a + c > d) + 0.03 * d

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        a, c, d = _i(p, "a"), _i(p, "c"), _i(p, "d")
        return [(_f(a + c, 2 * d), "add_across"), (_f(a * c, d), "wrong_operation")]


class SubLike(_FracOp):
    code = "frac-sub-like"
    skill = "frac-add-like"
    description = "Subtract fractions with the same denominator."
    sign = "-"

    def draw(self, rng: np.random.Generator) -> Params:
        d = _ri(rng, 3, 12)
        c, a = sorted(int(x) for x in rng.choice(np.arange(1, d), size=2, replace=False))
        return {"a": a, "b": d, "c": c, "d": d}

    def steps(self, p: Params) -> list[str]:
        a, c, d = _i(p, "a"), _i(p, "c"), _i(p, "d")
        return [
            f"The denominators are the same ({d}), so subtract the numerators and keep the denominator.",
            f"{a} − {c} = {a - c}, giving {_f(a - c, d)}.",
            *self._finish(a - c, d),
        ]

    def difficulty(self, p: Params) -> float:
        a, c, d = _i(p, "a"), _i(p, "c"), _i(p, "d")
        return -1.6 + 0.5 * (math.gcd(a - c, d) > 1) + 0.03 * d

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        a, c, d = _i(p, "a"), _i(p, "c"), _i(p, "d")
        return [(_f(a + c, d), "wrong_operation"), (_f(c - a, d), "sign_error")]


class AddMixed(ItemTemplate):
    code = "frac-add-mixed"
    skill = "frac-add-like"
    description = "Add mixed numbers with the same denominator."
    answer_type = "fraction"

    def draw(self, rng: np.random.Generator) -> Params:
        d = _ri(rng, 3, 10)
        return {
            "w1": _ri(rng, 1, 5),
            "a": _ri(rng, 1, d - 1),
            "w2": _ri(rng, 1, 5),
            "c": _ri(rng, 1, d - 1),
            "d": d,
        }

    def _result(self, p: Params) -> Fraction:
        d = _i(p, "d")
        return _i(p, "w1") + Fraction(_i(p, "a"), d) + _i(p, "w2") + Fraction(_i(p, "c"), d)

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("fraction", _mixed(self._result(p)))

    def question(self, p: Params) -> str:
        d = _i(p, "d")
        return f"What is {p['w1']} {_f(_i(p, 'a'), d)} + {p['w2']} {_f(_i(p, 'c'), d)}? Write the answer as a mixed number."

    def steps(self, p: Params) -> list[str]:
        w1, a, w2, c, d = _i(p, "w1"), _i(p, "a"), _i(p, "w2"), _i(p, "c"), _i(p, "d")
        out = [
            f"Add the whole numbers: {w1} + {w2} = {w1 + w2}.",
            f"Add the fractions: {_f(a, d)} + {_f(c, d)} = {_f(a + c, d)}.",
        ]
        if a + c >= d:
            out.append(
                f"{_f(a + c, d)} is at least one whole: {_f(a + c, d)} = {_mixed(Fraction(a + c, d))}, so carry 1 whole."
            )
        part = Fraction((a + c) % d, d)
        if part and part.denominator != d:
            out.append(f"Simplify the fraction part: {_f((a + c) % d, d)} = {_fs(part)}.")
        out.append(f"Together: {_mixed(self._result(p))}.")
        return out

    def difficulty(self, p: Params) -> float:
        a, c, d = _i(p, "a"), _i(p, "c"), _i(p, "d")
        return -0.7 + 0.6 * (a + c >= d) + 0.3 * (math.gcd(a + c, d) > 1) + 0.03 * d

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        w1, a, w2, c, d = _i(p, "w1"), _i(p, "a"), _i(p, "w2"), _i(p, "c"), _i(p, "d")
        out = [(f"{w1 + w2} {a + c}/{2 * d}", "add_across")]
        if a + c >= d:
            out.append((f"{w1 + w2} {(a + c) - d}/{d}", "no_carry"))
        return out

    def story_brief(self, p: Params) -> str | None:
        d = _i(p, "d")
        return f"put together {p['w1']} {_f(_i(p, 'a'), d)} and {p['w2']} {_f(_i(p, 'c'), d)} (for example of a length or a recipe amount)"

    def slots(self, p: Params) -> dict[str, str]:
        d = _i(p, "d")
        return {"first": f"{p['w1']} {_f(_i(p, 'a'), d)}", "second": f"{p['w2']} {_f(_i(p, 'c'), d)}"}


class AddRelated(_FracOp):
    code = "frac-add-related"
    skill = "frac-add-unlike"
    description = "Add fractions when one denominator is a multiple of the other."

    def draw(self, rng: np.random.Generator) -> Params:
        a, b = _lowest(rng, 2, 6)
        d = b * _ri(rng, 2, 4)
        c = _pick(rng, [c for c in range(1, d) if math.gcd(c, d) == 1])
        return {"a": a, "b": b, "c": c, "d": d}

    def steps(self, p: Params) -> list[str]:
        a, b, c, d = _i(p, "a"), _i(p, "b"), _i(p, "c"), _i(p, "d")
        k = d // b
        return [
            f"{d} is a multiple of {b}, so use {d} as the common denominator.",
            f"{_f(a, b)} = {_f(a * k, d)} (multiply top and bottom by {k}).",
            f"Add: {_f(a * k, d)} + {_f(c, d)} = {_f(a * k + c, d)}.",
            *self._finish(a * k + c, d),
        ]

    def difficulty(self, p: Params) -> float:
        a, b, c, d = _i(p, "a"), _i(p, "b"), _i(p, "c"), _i(p, "d")
        return -1.1 + 0.2 * (d // b) + 0.05 * d + 0.4 * (Fraction(a * (d // b) + c, d).denominator != d)

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        a, b, c, d = _i(p, "a"), _i(p, "b"), _i(p, "c"), _i(p, "d")
        return [(_f(a + c, b + d), "add_across"), (_f(a + c, d), "numerator_not_renamed")]


class AddUnlike(_FracOp):
    code = "frac-add-unlike"
    skill = "frac-add-unlike"
    description = "Add fractions with unrelated denominators."

    def draw(self, rng: np.random.Generator) -> Params:
        while True:
            a, b = _lowest(rng, 2, 9)
            c, d = _lowest(rng, 2, 9)
            if b != d and b % d and d % b:
                return {"a": a, "b": b, "c": c, "d": d}

    def steps(self, p: Params) -> list[str]:
        a, b, c, d = _i(p, "a"), _i(p, "b"), _i(p, "c"), _i(p, "d")
        m = math.lcm(b, d)
        x, y = a * m // b, c * m // d
        return [
            f"Find a common denominator: the least common multiple of {b} and {d} is {m}.",
            f"Rename: {_f(a, b)} = {_f(x, m)} and {_f(c, d)} = {_f(y, m)}.",
            f"Add the numerators: {_f(x, m)} + {_f(y, m)} = {_f(x + y, m)}.",
            *self._finish(x + y, m),
        ]

    def difficulty(self, p: Params) -> float:
        b, d = _i(p, "b"), _i(p, "d")
        return -0.5 + 0.025 * math.lcm(b, d) + 0.3 * (_i(p, "a") > 1 or _i(p, "c") > 1)

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        a, b, c, d = _i(p, "a"), _i(p, "b"), _i(p, "c"), _i(p, "d")
        return [
            (_f(a + c, b + d), "add_across"),
            (_f(a + c, b * d), "numerators_added_denominators_multiplied"),
        ]


class SubUnlike(_FracOp):
    code = "frac-sub-unlike"
    skill = "frac-add-unlike"
    description = "Subtract fractions with different denominators."
    sign = "-"

    def draw(self, rng: np.random.Generator) -> Params:
        while True:
            a, b = _lowest(rng, 2, 9)
            c, d = _lowest(rng, 2, 9)
            if b != d and Fraction(a, b) > Fraction(c, d):
                return {"a": a, "b": b, "c": c, "d": d}

    def steps(self, p: Params) -> list[str]:
        a, b, c, d = _i(p, "a"), _i(p, "b"), _i(p, "c"), _i(p, "d")
        m = math.lcm(b, d)
        x, y = a * m // b, c * m // d
        return [
            f"Find a common denominator: the least common multiple of {b} and {d} is {m}.",
            f"Rename: {_f(a, b)} = {_f(x, m)} and {_f(c, d)} = {_f(y, m)}.",
            f"Subtract the numerators: {_f(x, m)} − {_f(y, m)} = {_f(x - y, m)}.",
            *self._finish(x - y, m),
        ]

    def difficulty(self, p: Params) -> float:
        b, d = _i(p, "b"), _i(p, "d")
        return -0.2 + 0.025 * math.lcm(b, d)

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        a, b, c, d = _i(p, "a"), _i(p, "b"), _i(p, "c"), _i(p, "d")
        out = [(_fs(Fraction(a - c, b - d)), "subtract_across")] if a != c else []
        out.append((_fs(Fraction(a, b) + Fraction(c, d)), "wrong_operation"))
        return out


# --------------------------------------------------------------------------------------------------------------
# Decimals
# --------------------------------------------------------------------------------------------------------------


class DecimalFromFraction(ItemTemplate):
    code = "dec-from-fraction"
    skill = "decimals"
    description = "Write a fraction with denominator 10, 100 or 1000 as a decimal."

    def draw(self, rng: np.random.Generator) -> Params:
        places = _ri(rng, 1, 3)
        den = 10**places
        n = _ri(rng, 1, 9) if places > 1 and rng.random() < 0.4 else _ri(rng, 1, 2 * den - 1)
        if n % 10 == 0:
            n += 1
        return {"n": n, "den": den}

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("number", _dec(Fraction(_i(p, "n"), _i(p, "den"))))

    def question(self, p: Params) -> str:
        return f"Write {_f(_i(p, 'n'), _i(p, 'den'))} as a decimal."

    def steps(self, p: Params) -> list[str]:
        n, den = _i(p, "n"), _i(p, "den")
        places = len(str(den)) - 1
        unit = {1: "tenths", 2: "hundredths", 3: "thousandths"}[places]
        return [
            f"{_f(n, den)} means {n} {unit}.",
            f"{unit.capitalize()} use {places} place(s) after the decimal point, so the last digit of {n} goes in the {unit} place.",
            f"So {_f(n, den)} = {_dec(Fraction(n, den))}.",
        ]

    def difficulty(self, p: Params) -> float:
        n, den = _i(p, "n"), _i(p, "den")
        placeholder = len(str(n)) < len(str(den)) - 1
        return -2.0 + 0.4 * (len(str(den)) - 2) + 0.8 * placeholder + 0.3 * (n > den)

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        n, den = _i(p, "n"), _i(p, "den")
        return [(f"0.{n}", "place_value"), (_dec(Fraction(n, den) * 10), "place_value")]


class DecimalAdd(ItemTemplate):
    code = "dec-add"
    skill = "decimals"
    description = "Add two decimals, possibly with different numbers of decimal places."

    def draw(self, rng: np.random.Generator) -> Params:
        p1, p2 = _ri(rng, 1, 2), _ri(rng, 1, 2)
        a = _ri(rng, 0, 20) * 10**p1 + _pick(rng, [x for x in range(1, 10**p1) if x % 10])
        b = _ri(rng, 0, 20) * 10**p2 + _pick(rng, [x for x in range(1, 10**p2) if x % 10])
        return {"a": a, "pa": p1, "b": b, "pb": p2}

    def _values(self, p: Params) -> tuple[Fraction, Fraction]:
        return Fraction(_i(p, "a"), 10 ** _i(p, "pa")), Fraction(_i(p, "b"), 10 ** _i(p, "pb"))

    def answer(self, p: Params) -> AnswerSpec:
        x, y = self._values(p)
        return AnswerSpec("number", _dec(x + y))

    def question(self, p: Params) -> str:
        x, y = self._values(p)
        return f"What is {_dec(x)} + {_dec(y)}?"

    def steps(self, p: Params) -> list[str]:
        x, y = self._values(p)
        places = max(_i(p, "pa"), _i(p, "pb"))
        fx, fy = f"{float(x):.{places}f}", f"{float(y):.{places}f}"
        return [
            "Line up the decimal points, so tenths are under tenths and hundredths under hundredths.",
            f"Fill empty places with zeros: {fx} + {fy}.",
            f"Add as with whole numbers, keeping the point in place: {_dec(x + y)}.",
        ]

    def difficulty(self, p: Params) -> float:
        return -1.2 + 0.7 * (_i(p, "pa") != _i(p, "pb")) + 0.2 * max(_i(p, "pa"), _i(p, "pb"))

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        places = max(_i(p, "pa"), _i(p, "pb"))
        return [(_dec(Fraction(_i(p, "a") + _i(p, "b"), 10**places)), "decimal_not_aligned")]

    def story_brief(self, p: Params) -> str | None:
        x, y = self._values(p)
        return f"put together two measured amounts, {_dec(x)} and {_dec(y)} (e.g. litres, metres or money)"

    def slots(self, p: Params) -> dict[str, str]:
        x, y = self._values(p)
        return {"first": _dec(x), "second": _dec(y)}


class DecimalCompare(ItemTemplate):
    code = "dec-compare"
    skill = "decimals"
    description = "Pick the greatest of four decimals with different numbers of digits."
    answer_type = "choice"

    def draw(self, rng: np.random.Generator) -> Params:
        t = _ri(rng, 2, 9)
        return {
            "t": t,
            "h": 10 * (t - 1) + _ri(rng, 1, 9),
            "th": 100 * (t - 1) + _pick(rng, [x for x in range(11, 100) if x % 10]),
            "small": _pick(rng, [x for x in range(11, 100) if x % 10]),
            "order": _perm(rng, 4),
        }

    def _options(self, p: Params) -> tuple[str, list[str]]:
        return (
            _dec(Fraction(_i(p, "t"), 10)),
            [
                _dec(Fraction(_i(p, "h"), 100)),
                _dec(Fraction(_i(p, "th"), 1000)),
                _dec(Fraction(_i(p, "small"), 1000)),
            ],
        )

    def answer(self, p: Params) -> AnswerSpec:
        correct, others = self._options(p)
        return AnswerSpec("choice", correct, choices=_choices(correct, others, _s(p, "order")))

    def question(self, p: Params) -> str:
        return "Which of these decimals is the greatest?"

    def steps(self, p: Params) -> list[str]:
        correct, others = self._options(p)
        return [
            "Compare the tenths digit first, then the hundredths, then the thousandths.",
            f"{correct} has {p['t']} tenths; the others have fewer tenths ({', '.join(others)}).",
            f"So {correct} is the greatest, even though it has fewer digits.",
        ]

    def difficulty(self, p: Params) -> float:
        return -1.0 + 0.1 * _i(p, "t")

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        _, others = self._options(p)
        return [(others[1], "longer_is_larger")]


class DecimalTimesPower(ItemTemplate):
    code = "dec-times-power"
    skill = "decimals"
    description = "Multiply a decimal by 10 or 100."

    def draw(self, rng: np.random.Generator) -> Params:
        places = _ri(rng, 1, 3)
        x = _ri(rng, 1, 9999)
        if x % 10 == 0:
            x += 3
        return {"x": x, "places": places, "power": _pick(rng, (10, 100))}

    def _value(self, p: Params) -> Fraction:
        return Fraction(_i(p, "x"), 10 ** _i(p, "places"))

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("number", _dec(self._value(p) * _i(p, "power")))

    def question(self, p: Params) -> str:
        return f"What is {_dec(self._value(p))} × {p['power']}?"

    def steps(self, p: Params) -> list[str]:
        shift = 1 if p["power"] == 10 else 2
        return [
            f"Multiplying by {p['power']} makes every digit {p['power']} times bigger: each moves {shift} place(s) to the left.",
            f"So {_dec(self._value(p))} × {p['power']} = {_dec(self._value(p) * _i(p, 'power'))}.",
        ]

    def difficulty(self, p: Params) -> float:
        return (
            -1.3
            + 0.4 * (p["power"] == 100)
            + 0.2 * _i(p, "places")
            + 0.4 * (_i(p, "places") < (2 if p["power"] == 100 else 1))
        )

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        shown = _dec(self._value(p))
        zeros = "0" if p["power"] == 10 else "00"
        out = [(shown + zeros, "appended_zero")] if "." in shown else []
        out.append((_dec(self._value(p) / _i(p, "power")), "wrong_operation"))
        return out

    def story_brief(self, p: Params) -> str | None:
        return f"find the total of {p['power']} items that each measure {_dec(self._value(p))}"

    def slots(self, p: Params) -> dict[str, str]:
        return {"value": _dec(self._value(p)), "times": str(p["power"])}


# --------------------------------------------------------------------------------------------------------------
# Expressions and equations
# --------------------------------------------------------------------------------------------------------------


class EqAdd(ItemTemplate):
    code = "eq-add"
    skill = "eq-one-step"
    description = "Solve x + a = b or x − a = b."

    def draw(self, rng: np.random.Generator) -> Params:
        return {"x": _ri(rng, 1, 60), "a": _ri(rng, 2, 40), "op": _pick(rng, ("plus", "minus"))}

    def _rhs(self, p: Params) -> int:
        return _i(p, "x") + _i(p, "a") if p["op"] == "plus" else _i(p, "x") - _i(p, "a")

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("number", str(_i(p, "x")))

    def question(self, p: Params) -> str:
        sym = "+" if p["op"] == "plus" else "-"
        return f"Solve for x: x {sym} {p['a']} = {self._rhs(p)}"

    def steps(self, p: Params) -> list[str]:
        a, c, x = _i(p, "a"), self._rhs(p), _i(p, "x")
        if p["op"] == "plus":
            return [
                f"x has {a} added to it; undo that by subtracting {a} from both sides.",
                f"x = {c} − {a} = {x}.",
                f"Check: {x} + {a} = {c}.",
            ]
        return [
            f"x has {a} taken away; undo that by adding {a} to both sides.",
            f"x = {c} + {a} = {x}.",
            f"Check: {x} − {a} = {c}.",
        ]

    def difficulty(self, p: Params) -> float:
        return (
            -1.7 + 0.3 * (p["op"] == "minus") + 0.8 * (self._rhs(p) < 0) + 0.008 * (_i(p, "x") + _i(p, "a"))
        )

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        a, c = _i(p, "a"), self._rhs(p)
        return [(str(c + a if p["op"] == "plus" else c - a), "inverse_operation")]

    def story_brief(self, p: Params) -> str | None:
        if p["op"] == "plus":
            return f"an unknown amount grows by {p['a']} to become {self._rhs(p)}; ask for the unknown amount"
        return f"an unknown amount loses {p['a']} and {self._rhs(p)} is left; ask for the unknown amount"

    def slots(self, p: Params) -> dict[str, str]:
        return {"a": str(p["a"]), "result": str(self._rhs(p))}


class EqMul(ItemTemplate):
    code = "eq-mul"
    skill = "eq-one-step"
    description = "Solve a·x = b."

    def draw(self, rng: np.random.Generator) -> Params:
        return {"a": _ri(rng, 2, 12), "x": _ri(rng, 2, 15)}

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("number", str(_i(p, "x")))

    def question(self, p: Params) -> str:
        return f"Solve for x: {p['a']}x = {_i(p, 'a') * _i(p, 'x')}"

    def steps(self, p: Params) -> list[str]:
        a, x = _i(p, "a"), _i(p, "x")
        return [
            f"x is multiplied by {a}; undo that by dividing both sides by {a}.",
            f"x = {a * x} ÷ {a} = {x}.",
            f"Check: {a} × {x} = {a * x}.",
        ]

    def difficulty(self, p: Params) -> float:
        return -1.3 + 0.06 * _i(p, "a") + 0.04 * _i(p, "x")

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        a, x = _i(p, "a"), _i(p, "x")
        return [(str(a * x - a), "inverse_operation"), (str(a * a * x), "inverse_operation")]

    def story_brief(self, p: Params) -> str | None:
        return (
            f"{p['a']} equal groups make {_i(p, 'a') * _i(p, 'x')} altogether; ask how many are in each group"
        )

    def slots(self, p: Params) -> dict[str, str]:
        return {"groups": str(p["a"]), "total": str(_i(p, "a") * _i(p, "x"))}


_PHRASES: dict[str, tuple[str, str]] = {
    # kind: (phrase with {k} and {v}, key expression)
    "more": ("{k} more than {v}", "{v} + {k}"),
    "less": ("{k} less than {v}", "{v} - {k}"),
    "times": ("the product of {k} and {v}", "{k}{v}"),
    "divided": ("{v} divided by {k}", "{v}/{k}"),
    "times_plus": ("{k} times {v}, plus {m}", "{k}{v} + {m}"),
    "sum_times": ("{k} times the sum of {v} and {m}", "{k}({v} + {m})"),
}


class WriteExpression(ItemTemplate):
    code = "expr-write"
    skill = "eq-one-step"
    description = "Write an expression for a phrase in words."
    answer_type = "expression"

    def draw(self, rng: np.random.Generator) -> Params:
        kind = _pick(rng, tuple(_PHRASES))
        k, m = _ri(rng, 2, 12), _ri(rng, 2, 9)
        return {
            "kind": kind,
            "k": k,
            "m": m if "{m}" in _PHRASES[kind][1] else 0,
            "v": _pick(rng, ("x", "n", "y", "a")),
        }

    def _fill(self, template: str, p: Params) -> str:
        return template.format(k=p["k"], v=p["v"], m=p["m"])

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("expression", self._fill(_PHRASES[_s(p, "kind")][1], p))

    def question(self, p: Params) -> str:
        return f"Write an expression for: {self._fill(_PHRASES[_s(p, 'kind')][0], p)}."

    def steps(self, p: Params) -> list[str]:
        phrase, expr = (self._fill(t, p) for t in _PHRASES[_s(p, "kind")])
        notes = {
            "more": f"'More than {p['v']}' starts from {p['v']} and adds.",
            "less": f"'Less than {p['v']}' starts from {p['v']} and takes away, so {p['v']} comes first.",
            "times": "'Product' means multiply; a number next to a letter means multiplication.",
            "divided": f"'{p['v']} divided by {p['k']}' puts {p['v']} on top of the fraction bar.",
            "times_plus": "Multiply first, then add.",
            "sum_times": "The sum is found first, so it goes in brackets, then it is multiplied.",
        }
        return [f"Read the phrase: '{phrase}'.", notes[_s(p, "kind")], f"The expression is {expr}."]

    def difficulty(self, p: Params) -> float:
        return {
            "more": -1.6,
            "less": -0.8,
            "times": -1.4,
            "divided": -1.0,
            "times_plus": -0.4,
            "sum_times": 0.3,
        }[_s(p, "kind")]

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        k, v, m = p["k"], p["v"], p["m"]
        wrong = {
            "more": [(f"{k}{v}", "wrong_operation")],
            "less": [(f"{k} - {v}", "reversed_order")],
            "times": [(f"{v} + {k}", "wrong_operation")],
            "divided": [(f"{k}/{v}", "reversed_order")],
            "times_plus": [(f"{k}({v} + {m})", "wrong_order")],
            "sum_times": [(f"{k}{v} + {m}", "wrong_order")],
        }
        return wrong[_s(p, "kind")]

    def slots(self, p: Params) -> dict[str, str]:
        return {"k": str(p["k"]), "m": str(p["m"]), "variable": str(p["v"])}


class EqTwoStep(ItemTemplate):
    code = "eq-two-step"
    skill = "eq-two-step"
    description = "Solve a·x + b = c or a·x − b = c."

    def draw(self, rng: np.random.Generator) -> Params:
        return {
            "a": _ri(rng, 2, 9),
            "x": _ri(rng, 1, 15),
            "b": _ri(rng, 1, 30),
            "op": _pick(rng, ("plus", "minus")),
        }

    def _rhs(self, p: Params) -> int:
        ax = _i(p, "a") * _i(p, "x")
        return ax + _i(p, "b") if p["op"] == "plus" else ax - _i(p, "b")

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("number", str(_i(p, "x")))

    def question(self, p: Params) -> str:
        sym = "+" if p["op"] == "plus" else "-"
        return f"Solve for x: {p['a']}x {sym} {p['b']} = {self._rhs(p)}"

    def steps(self, p: Params) -> list[str]:
        a, b, c, x = _i(p, "a"), _i(p, "b"), self._rhs(p), _i(p, "x")
        if p["op"] == "plus":
            first = f"Undo the + {b} first: subtract {b} from both sides, {a}x = {c} − {b} = {a * x}."
        else:
            first = f"Undo the − {b} first: add {b} to both sides, {a}x = {c} + {b} = {a * x}."
        return [
            first,
            f"Undo the multiplication: divide both sides by {a}, x = {a * x} ÷ {a} = {x}.",
            f"Check: {a} × {x} {'+' if p['op'] == 'plus' else '−'} {b} = {c}.",
        ]

    def difficulty(self, p: Params) -> float:
        return (
            -0.6
            + 0.05 * _i(p, "a")
            + 0.02 * _i(p, "b")
            + 0.3 * (p["op"] == "minus")
            + 0.6 * (self._rhs(p) < 0)
        )

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        a, b, c = _i(p, "a"), _i(p, "b"), self._rhs(p)
        undone = c - b if p["op"] == "plus" else c + b
        wrong_way = c + b if p["op"] == "plus" else c - b
        out = [(str(undone), "forgot_coefficient")]
        if wrong_way % a == 0:
            out.append((str(wrong_way // a), "inverse_operation"))
        if c % a == 0:
            out.append((str(c // a - b if p["op"] == "plus" else c // a + b), "wrong_order"))
        return out

    def story_brief(self, p: Params) -> str | None:
        if p["op"] == "plus":
            return f"{p['a']} equal unknown amounts plus {p['b']} more make {self._rhs(p)}; ask for one unknown amount"
        return (
            f"{p['a']} equal unknown amounts less {p['b']} leave {self._rhs(p)}; ask for one unknown amount"
        )

    def slots(self, p: Params) -> dict[str, str]:
        return {"a": str(p["a"]), "b": str(p["b"]), "result": str(self._rhs(p))}


class EqDivide(ItemTemplate):
    code = "eq-divide"
    skill = "eq-two-step"
    description = "Solve x/a + b = c."

    def draw(self, rng: np.random.Generator) -> Params:
        return {"a": _ri(rng, 2, 9), "q": _ri(rng, 1, 12), "b": _ri(rng, 1, 20)}

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("number", str(_i(p, "a") * _i(p, "q")))

    def question(self, p: Params) -> str:
        return f"Solve for x: x/{p['a']} + {p['b']} = {_i(p, 'q') + _i(p, 'b')}"

    def steps(self, p: Params) -> list[str]:
        a, q, b = _i(p, "a"), _i(p, "q"), _i(p, "b")
        return [
            f"Undo the + {b} first: x/{a} = {q + b} − {b} = {q}.",
            f"Undo the division: multiply both sides by {a}, x = {q} × {a} = {a * q}.",
            f"Check: {a * q} ÷ {a} + {b} = {q + b}.",
        ]

    def difficulty(self, p: Params) -> float:
        return -0.2 + 0.06 * _i(p, "a") + 0.03 * _i(p, "q")

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        a, q, b = _i(p, "a"), _i(p, "q"), _i(p, "b")
        out = [(str(q), "forgot_coefficient"), (str(a * (q + 2 * b)), "inverse_operation")]
        if q % a == 0:
            out.append((str(q // a), "wrong_operation"))
        return out

    def story_brief(self, p: Params) -> str | None:
        return f"an unknown amount shared equally among {p['a']}, plus {p['b']} more, gives {_i(p, 'q') + _i(p, 'b')}; ask for the unknown amount"

    def slots(self, p: Params) -> dict[str, str]:
        return {"a": str(p["a"]), "b": str(p["b"]), "result": str(_i(p, "q") + _i(p, "b"))}


def _term(coef: int, var: str) -> str:
    return var if coef == 1 else f"{coef}{var}"


class LikeTerms(ItemTemplate):
    code = "expr-like-terms"
    skill = "eq-two-step"
    description = "Simplify an expression by collecting like terms."
    answer_type = "expression"

    def draw(self, rng: np.random.Generator) -> Params:
        return {
            "a": _ri(rng, 1, 9),
            "b": _ri(rng, 1, 12),
            "c": _ri(rng, 1, 9),
            "d": _ri(rng, 1, 12),
            "op": _pick(rng, ("plus", "minus")),
        }

    def _constant(self, p: Params) -> int:
        return _i(p, "b") + _i(p, "d") if p["op"] == "plus" else _i(p, "b") - _i(p, "d")

    def _key(self, p: Params) -> str:
        coef, const = _i(p, "a") + _i(p, "c"), self._constant(p)
        if const == 0:
            return _term(coef, "x")
        return f"{_term(coef, 'x')} {'+' if const > 0 else '-'} {abs(const)}"

    def answer(self, p: Params) -> AnswerSpec:
        return AnswerSpec("expression", self._key(p), equivalent=False)

    def _shown(self, p: Params) -> str:
        sym = "+" if p["op"] == "plus" else "-"
        return f"{_term(_i(p, 'a'), 'x')} + {p['b']} + {_term(_i(p, 'c'), 'x')} {sym} {p['d']}"

    def question(self, p: Params) -> str:
        return f"Simplify: {self._shown(p)}"

    def steps(self, p: Params) -> list[str]:
        a, b, c, d = _i(p, "a"), _i(p, "b"), _i(p, "c"), _i(p, "d")
        sym = "+" if p["op"] == "plus" else "−"
        return [
            f"Group the x-terms and the numbers: ({_term(a, 'x')} + {_term(c, 'x')}) + ({b} {sym} {d}).",
            f"Collect the x-terms: {a} + {c} = {a + c}, so {_term(a + c, 'x')}.",
            f"Collect the numbers: {b} {sym} {d} = {self._constant(p)}.",
            f"So the expression simplifies to {self._key(p)}.",
        ]

    def difficulty(self, p: Params) -> float:
        return (
            -1.1
            + 0.4 * (p["op"] == "minus")
            + 0.6 * (self._constant(p) < 0)
            + 0.03 * (_i(p, "a") + _i(p, "c"))
        )

    def misconceptions(self, p: Params) -> list[tuple[str, str]]:
        total = _i(p, "a") + _i(p, "c") + self._constant(p)
        return [
            (_term(total, "x") if total > 0 else f"{total}x", "combined_unlike_terms"),
            (self._shown(p), "not_simplified"),
        ]


# --------------------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------------------

_ALL: tuple[type[ItemTemplate], ...] = (
    DigitValue,
    PlaceName,
    ComposeNumber,
    GreatestNumber,
    AddNoCarry,
    AddCarry,
    AddThree,
    SubNoBorrow,
    SubBorrow,
    MissingAddend,
    MulFacts,
    Mul2by1,
    Mul2by2,
    DivFacts,
    DivRemainder,
    DivLong,
    ShadedFraction,
    FractionOfAmount,
    NameFraction,
    EquivMissing,
    EquivSimplify,
    EquivChoose,
    CompareSameDenominator,
    CompareSameNumerator,
    CompareUnlike,
    AddLike,
    SubLike,
    AddMixed,
    AddRelated,
    AddUnlike,
    SubUnlike,
    DecimalFromFraction,
    DecimalAdd,
    DecimalCompare,
    DecimalTimesPower,
    EqAdd,
    EqMul,
    WriteExpression,
    EqTwoStep,
    EqDivide,
    LikeTerms,
)

TEMPLATES: dict[str, ItemTemplate] = {cls.code: cls() for cls in _ALL}


def templates_for_skill(skill_code: str) -> list[ItemTemplate]:
    return [t for t in TEMPLATES.values() if skill_code in t.skills]
