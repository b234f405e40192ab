"""Rule-based misconception diagnosis from a wrong response.

Why rules and not the model: the diagnosis is part of the cache key and of the explanation's grounding, so it
must be deterministic, cheap, and right when it speaks. Each rule recomputes what a learner holding a known
misconception would have answered (from the numbers in the exercise, or from the template's own list of wrong
answers) and fires only on an exact value match; everything else is "unknown", which the explanation handles
without claiming a cause.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

# code -> (learner-facing sentence, guiding question for the Socratic style)
MISCONCEPTIONS: dict[str, tuple[str, str]] = {
    "add_across": (
        "It looks like you added the numerators together and the denominators together.",
        "Can you add two fractions before their denominators are the same?",
    ),
    "subtract_across": (
        "It looks like you subtracted the numerators and the denominators separately.",
        "What has to be the same about two fractions before you subtract them?",
    ),
    "division_not_inverted": (
        "It looks like you multiplied the fractions instead of dividing.",
        "What do you do with the second fraction when you divide by it?",
    ),
    "wrong_operation": (
        "It looks like you used a different operation from the one the exercise asks for.",
        "Which operation does the exercise ask for?",
    ),
    "inverse_operation": (
        "It looks like you moved a number across the equals sign without undoing its operation.",
        "What is the opposite of the operation next to x?",
    ),
    "forgot_coefficient": (
        "It looks like you stopped before dividing by the number in front of x.",
        "What is x multiplied by, and how do you undo that?",
    ),
    "sign_error": (
        "Your answer has the right size but the wrong sign.",
        "Should the result be positive or negative, and why?",
    ),
    "place_value": (
        "Your digits are right but the place value is off by a factor of ten.",
        "Which place does each digit belong in?",
    ),
    "digit_order": (
        "You have the right digits in the wrong order.",
        "Which digit is in the tens place, and which in the ones place?",
    ),
    "off_by_one": (
        "You are off by one: check the last step of counting or carrying.",
        "What happens at the last step when you carry or count?",
    ),
    "not_simplified": (
        "Your value is right, but the answer must be written in its simplest form.",
        "Can the top and bottom be divided by the same number?",
    ),
    "not_a_number": (
        "Your answer is not written as a number.",
        "What kind of answer does the exercise ask for?",
    ),
    "wrong_choice": (
        "That option is not the right one.",
        "Which option matches the result of each step?",
    ),
    "unknown": (
        "Let's go through the steps together.",
        "What is the first step of this exercise?",
    ),
}


@dataclass(frozen=True)
class Diagnosis:
    code: str
    text: str
    confidence: float
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def question(self) -> str:
        return MISCONCEPTIONS.get(self.code, MISCONCEPTIONS["unknown"])[1]


def diagnosis(code: str, confidence: float, description: str | None = None, **evidence: Any) -> Diagnosis:
    text = (
        MISCONCEPTIONS[code][0] if code in MISCONCEPTIONS else (description or MISCONCEPTIONS["unknown"][0])
    )
    return Diagnosis(code, text, confidence, dict(evidence))


_NUM = r"-?\d+(?:\.\d+)?(?:/\d+)?"
_MIXED_RE = re.compile(r"^\s*(-?\d+)\s+(\d+)/(\d+)\s*$")


def parse_number(text: str) -> Fraction | None:
    """An exact value for '3', '-0.25', '3/4', '1 1/2', '12,000' (None when the text is not one number)."""
    s = text.strip().replace("\u2212", "-").replace(",", "")
    if s.startswith("+"):
        s = s[1:]
    s = s.rstrip(".")
    m = _MIXED_RE.match(s)
    if m:
        whole, num, den = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if den == 0:
            return None
        sign = -1 if whole < 0 or s.startswith("-") else 1
        return sign * (abs(whole) + Fraction(num, den))
    if not re.fullmatch(r"-?\d+(?:\.\d+)?(?:\s*/\s*-?\d+(?:\.\d+)?)?", s):
        return None
    try:
        return Fraction(s.replace(" ", ""))
    except (ValueError, ZeroDivisionError):
        return None


_OPS: dict[str, Callable[[Fraction, Fraction], Fraction | None]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b if b != 0 else None,
}
_OP_ALIASES = {
    "+": "+",
    "-": "-",
    "−": "-",
    "*": "*",
    "×": "*",
    "x": "*",
    "·": "*",
    "÷": "/",
    ":": "/",
    "/": "/",
}
_BINARY_RE = re.compile(rf"({_NUM})\s*([+\-−*×x·÷:]|\s/\s)\s*({_NUM})")
_EQUATION_RE = re.compile(
    r"(?:(-?\d+)\s*\*?\s*)?([a-z])\s*([+\-−])\s*(\d+)\s*=\s*(-?\d+)|(-?\d+)\s*\*?\s*([a-z])\s*=\s*(-?\d+)"
)


def _binary(prompt: str) -> tuple[Fraction, str, Fraction] | None:
    m = _BINARY_RE.search(prompt)
    if not m:
        return None
    a, b = parse_number(m.group(1)), parse_number(m.group(3))
    op = _OP_ALIASES.get(m.group(2).strip() or "/")
    if a is None or b is None or op is None:
        return None
    return a, op, b


def _fraction_parts(text: str) -> tuple[int, int] | None:
    m = re.fullmatch(r"\s*(-?\d+)\s*/\s*(\d+)\s*", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _same(a: Fraction | None, b: Fraction | None) -> bool:
    return a is not None and b is not None and a == b


def _known_match(response: str, r: Fraction | None, known_wrong: Sequence[tuple[str, str]]) -> str | None:
    norm = " ".join(response.lower().split())
    for wrong, code in known_wrong:
        if _same(r, parse_number(wrong)) or norm == " ".join(str(wrong).lower().split()):
            return code
    return None


def diagnose(
    *,
    answer_type: str,
    key: str,
    response: str,
    prompt: str = "",
    known_wrong: Sequence[tuple[str, str]] = (),
    descriptions: dict[str, str] | None = None,
) -> Diagnosis:
    """The most specific misconception consistent with `response`; "unknown" when no rule recomputes it.

    `known_wrong` is the template's list of (wrong response, misconception code): the template knows its own
    parameters, so its list wins over the generic rules. `descriptions` gives learner-facing text for template
    codes this module does not know.
    """
    r = parse_number(response)
    code = _known_match(response, r, known_wrong)
    if code is not None:
        return diagnosis(code, 0.95, (descriptions or {}).get(code), source="template")
    if answer_type == "choice":
        return diagnosis("wrong_choice", 0.5)
    if answer_type not in {"number", "fraction", "integer", "decimal"}:
        return diagnosis("unknown", 0.0)
    k = parse_number(key)
    if r is None:
        return diagnosis("not_a_number", 0.9) if response.strip() else diagnosis("unknown", 0.0)
    if k is None:
        return diagnosis("unknown", 0.0)
    if r == k:
        return diagnosis("not_simplified", 0.8)

    eq = _EQUATION_RE.search(prompt.replace("−", "-"))
    if eq:
        if eq.group(2):
            coef = Fraction(int(eq.group(1))) if eq.group(1) else Fraction(1)
            sign = 1 if eq.group(3) == "+" else -1
            b, c = Fraction(int(eq.group(4))), Fraction(int(eq.group(5)))
            if coef != 0 and r == (c + sign * b) / coef:
                return diagnosis("inverse_operation", 0.9, equation=eq.group(0))
            if coef != 1 and r == c - sign * b:
                return diagnosis("forgot_coefficient", 0.9, equation=eq.group(0))
            if coef != 1 and r == (c - sign * b) * coef:
                return diagnosis("wrong_operation", 0.8, equation=eq.group(0))
        else:
            coef, c = Fraction(int(eq.group(6))), Fraction(int(eq.group(8)))
            if r == c * coef or r == c - coef:
                return diagnosis("inverse_operation", 0.85, equation=eq.group(0))

    binary = _binary(prompt)
    if binary is not None:
        a, op, b = binary
        m = _BINARY_RE.search(prompt)
        assert m is not None
        fa, fb = _fraction_parts(m.group(1)), _fraction_parts(m.group(3))
        if fa and fb and op in "+-":
            num = fa[0] + fb[0] if op == "+" else fa[0] - fb[0]
            den = fa[1] + fb[1] if op == "+" else fa[1] - fb[1]
            if den != 0 and r == Fraction(num, den):
                return diagnosis("add_across" if op == "+" else "subtract_across", 0.95, operands=m.group(0))
        if op == "/" and (fa or fb) and r == a * b:
            return diagnosis("division_not_inverted", 0.9, operands=m.group(0))
        for other, fn in _OPS.items():
            if other != op and _same(r, fn(a, b)) and not (other in "+-" and op in "+-" and b == 0):
                return diagnosis("wrong_operation", 0.85, used=other, operands=m.group(0))
        if op == "-" and r == b - a:
            return diagnosis("sign_error", 0.85, operands=m.group(0))
    if k != 0 and r == -k:
        return diagnosis("sign_error", 0.9)
    for power in (1, 2, 3):
        if r in (k * 10**power, k / 10**power):
            return diagnosis("place_value", 0.85, factor=10**power)
    if r.denominator == 1 and k.denominator == 1 and abs(r) >= 10:
        rd, kd = str(abs(r.numerator)), str(abs(k.numerator))
        if sorted(rd) == sorted(kd) and rd != kd:
            return diagnosis("digit_order", 0.8)
    if abs(r - k) == 1:
        return diagnosis("off_by_one", 0.6)
    return diagnosis("unknown", 0.0)
