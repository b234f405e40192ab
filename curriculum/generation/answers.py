"""Answer specifications and answer checking.

An item's answer is a small JSON object (`AnswerSpec.to_dict`) that says how a learner's free response is read
and compared with the key. The checker must be generous about *notation* (``2/4``, ``0.5`` and ``1/2`` are one
value; ``2(x+1)`` is ``2x + 2``; ``b`` is choice B) and strict about *value*, because a wrong "correct" is worse
for mastery estimates than a rejected odd spelling. A response that cannot be read at all raises
`MalformedResponse` so the service can ask again instead of recording a wrong answer.

Numbers and fractions use exact `fractions.Fraction` arithmetic (no sympy, well under a millisecond). Expressions
use sympy's parser, but only after the response has passed a whitelist of characters and names, with builtins
removed from the evaluation namespace and numeric powers bounded, so a response can neither run code nor ask
sympy to build a number with millions of digits.
"""

from __future__ import annotations

import keyword
import math
import random
import re
import unicodedata
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # sympy is imported lazily: only expression items need it and it takes a second to import.
    import sympy

ANSWER_TYPES = ("number", "fraction", "expression", "choice", "text")

MAX_RESPONSE_CHARS = 200
MAX_TEXT_CHARS = 500
MAX_CHOICES = 26
MAX_DIGITS = 15  # longest run of digits accepted in an expression
MAX_EXPONENT = 64  # largest numeric exponent accepted in an expression
MAX_MAGNITUDE_DIGITS = 1000  # largest number (in decimal digits) an expression may evaluate to

__all__ = [
    "ANSWER_TYPES",
    "AnswerSpec",
    "MalformedResponse",
    "SpecError",
    "canonical",
    "check_answer",
    "choice_index",
    "parse_response",
    "same_value",
]


class SpecError(ValueError):
    """An answer specification that cannot be used; `problems` name the offending field each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class MalformedResponse(ValueError):
    """A response that cannot be read as the item's answer type; the message says what was expected."""


# --------------------------------------------------------------------------------------------------------------
# Reading numbers and fractions
# --------------------------------------------------------------------------------------------------------------

_UNICODE_MAP = str.maketrans(
    {
        "\u2212": "-",  # minus sign
        "\u2013": "-",  # en dash
        "\u00d7": "*",  # multiplication sign
        "\u22c5": "*",  # dot operator
        "\u00b7": "*",  # middle dot
        "\u00f7": "/",  # division sign
        "\u2044": "/",  # fraction slash
        "\u2215": "/",  # division slash
        "\u00b2": "^2",
        "\u00b3": "^3",
        "\u00a0": " ",  # no-break space
        "\u202f": " ",  # narrow no-break space
        "\u2009": " ",  # thin space
        "[": "(",
        "]": ")",
        "{": "(",
        "}": ")",
    }
)

_DECIMAL_RE = re.compile(r"^([+-]?)(\d+\.?\d*|\.\d+)$")
_GROUPED_RE = re.compile(r"^([+-]?)(\d{1,3}(?:([, ])\d{3})(?:\3\d{3})*)(\.\d+)?$")
_FRACTION_RE = re.compile(r"^([+-]?)(?:(\d+)\s+)?(\d+)\s*/\s*(\d+)$")
_ASSIGN_RE = re.compile(r"^[A-Za-z]\s*=\s*")
_MAX_NUMBER_CHARS = 40


def _clean(response: str) -> str:
    text = (
        unicodedata.normalize("NFKC", response.translate(_UNICODE_MAP))
        if not response.isascii()
        else response
    )
    return text.strip()


def _strip_assignment(text: str) -> str:
    """``x = 3`` answers an equation item as well as ``3`` does."""
    return _ASSIGN_RE.sub("", text, count=1)


def _read_decimal(text: str) -> Fraction | None:
    m = _DECIMAL_RE.match(text)
    if m is None:
        m = _GROUPED_RE.match(text)
        if m is None:
            return None
        sign, body, sep, frac = m.group(1), m.group(2), m.group(3), m.group(4) or ""
        text = sign + body.replace(sep, "") + frac
    return Fraction(text.rstrip(".") if text.endswith(".") else text)


@dataclass(frozen=True)
class _FractionReading:
    value: Fraction
    form: str  # "integer", "decimal", "fraction" or "mixed"
    simplest: bool  # written in lowest terms, as a fraction/mixed number/integer (not a decimal)


def _read_fraction(text: str) -> _FractionReading | None:
    m = _FRACTION_RE.match(text)
    if m is not None:
        sign, whole, num, den = m.group(1), m.group(2), int(m.group(3)), int(m.group(4))
        if den == 0:
            return None
        negative = sign == "-"
        if whole is None:
            value = Fraction(num, den)
            simplest = den > 1 and math.gcd(num, den) == 1 and num != 0
            form = "fraction"
        else:
            w = int(whole)
            value = w + Fraction(num, den)
            simplest = w > 0 and 0 < num < den and math.gcd(num, den) == 1
            form = "mixed"
        return _FractionReading(-value if negative else value, form, simplest)
    value_d = _read_decimal(text)
    if value_d is None:
        return None
    is_integer = re.fullmatch(r"[+-]?\d+", text) is not None
    return _FractionReading(value_d, "integer" if is_integer else "decimal", is_integer)


def _format_fraction(value: Fraction, *, mixed: bool = False) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    if mixed and abs(value) > 1:
        sign = "-" if value < 0 else ""
        whole, rest = divmod(abs(value.numerator), value.denominator)
        return f"{sign}{whole} {rest}/{value.denominator}"
    return f"{value.numerator}/{value.denominator}"


def _format_decimal(value: Fraction) -> str:
    """Exact decimal form of a terminating fraction (keys of number items always are)."""
    if value.denominator == 1:
        return str(value.numerator)
    den = value.denominator
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    if den != 1:  # not terminating: a fixed precision is the best display there is
        return f"{float(value):.10g}"
    places = max(twos, fives)
    scaled = abs(value) * 10**places
    digits = str(scaled.numerator).rjust(places + 1, "0")
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[:-places]}.{digits[-places:]}".rstrip("0").rstrip(".")


# --------------------------------------------------------------------------------------------------------------
# Reading expressions (sympy, lazily)
# --------------------------------------------------------------------------------------------------------------

_EXPR_CHARS_RE = re.compile(r"^[0-9A-Za-z+\-*/^().\s]*$")
_WORD_RE = re.compile(r"[A-Za-z]+")
_DIGITS_RE = re.compile(r"\d+")
_FUNCTIONS = ("sqrt", "abs")


@lru_cache(maxsize=1)
def _sympy_env() -> tuple[Any, dict[str, Any]]:
    import sympy
    from sympy.parsing.sympy_parser import (
        convert_xor,
        implicit_multiplication_application,
        rationalize,
        standard_transformations,
    )

    transformations = (
        *standard_transformations,
        implicit_multiplication_application,
        convert_xor,
        rationalize,
    )
    # Only what the parser's generated code needs: no builtins, no sympy namespace (S, E, I, N... stay letters).
    global_dict: dict[str, Any] = {
        "__builtins__": {},
        "Integer": sympy.Integer,
        "Float": sympy.Float,
        "Rational": sympy.Rational,
        "Symbol": sympy.Symbol,
        "Add": sympy.Add,
        "Mul": sympy.Mul,
        "Pow": sympy.Pow,
        "sqrt": sympy.sqrt,
        "abs": sympy.Abs,
    }
    return transformations, global_dict


def _expression_text(response: str, *, lower: bool, allowed_words: frozenset[str] | None) -> str:
    """Whitelist a response before sympy sees it; raise MalformedResponse naming what is wrong."""
    text = _clean(response)
    if not text:
        raise MalformedResponse("expected an expression, got an empty response")
    if len(text) > MAX_RESPONSE_CHARS:
        raise MalformedResponse(f"expected an expression of at most {MAX_RESPONSE_CHARS} characters")
    if lower:
        text = text.lower()
    if "=" in text:
        raise MalformedResponse("expected an expression, not an equation: leave out the '='")
    if not _EXPR_CHARS_RE.match(text):
        bad = sorted({c for c in text if not _EXPR_CHARS_RE.match(c)})
        raise MalformedResponse(f"expected an expression; cannot read the character(s) {' '.join(bad)}")
    if re.search(r"\.(?!\d)", text):
        raise MalformedResponse("expected an expression; a '.' must be followed by a digit")
    if any(len(d) > MAX_DIGITS for d in _DIGITS_RE.findall(text)):
        raise MalformedResponse(f"expected an expression; numbers have at most {MAX_DIGITS} digits")
    for word in _WORD_RE.findall(text):
        if word in _FUNCTIONS or len(word) == 1:
            continue
        if keyword.iskeyword(word) or allowed_words is None or not set(word) <= allowed_words:
            raise MalformedResponse(f"expected an expression; unknown name {word!r}")
    return text


def _check_size(expr: sympy.Basic) -> None:
    """Refuse numeric powers that would make sympy build astronomically large numbers on evaluation."""
    import sympy

    def visit(node: sympy.Basic) -> None:
        for arg in node.args:
            visit(arg)
        if isinstance(node, sympy.Pow):
            base, exp = node.args
            if exp.free_symbols:
                return
            e = exp.doit()
            if not e.is_Rational:
                raise MalformedResponse(
                    "expected an expression; a numeric exponent must be a whole number or fraction"
                )
            if abs(e) > MAX_EXPONENT:
                raise MalformedResponse(f"expected an expression; exponents are at most {MAX_EXPONENT}")
            if not base.free_symbols:
                b = base.doit()
                if b != 0 and b.is_finite:
                    digits = abs(float(sympy.log(abs(b), 10).evalf(8)))
                    if digits * abs(float(e)) > MAX_MAGNITUDE_DIGITS:
                        raise MalformedResponse("expected an expression; that number is too large")

    visit(expr)


def _written_form(node: sympy.Basic) -> sympy.Basic:
    """The expression as written, up to order of terms and factors and arithmetic on bare numbers.

    ``2x + 2``, ``2 + 2x`` and ``x*2 + 2`` share a form; ``2(x+1)`` and ``x + x + 2`` do not. This is what an
    item that asks to expand or simplify (``equivalent`` false) must compare, since sympy's automatic evaluation
    already turns ``2(x+1)`` into ``2x + 2``.
    """
    import sympy

    if node.is_Atom:
        return node
    args = [_written_form(a) for a in node.args]
    if isinstance(node, sympy.Add | sympy.Mul):
        flat: list[sympy.Basic] = []
        for a in args:
            flat.extend(a.args if type(a) is type(node) else (a,))
        if isinstance(node, sympy.Mul):
            numbers = [a for a in flat if a.is_Number]
            rest = [a for a in flat if not a.is_Number]
            coefficient = sympy.Mul(*numbers)
            if not rest:
                return coefficient
            flat = rest if coefficient == 1 else [coefficient, *rest]
            if len(flat) == 1:
                return flat[0]
        flat.sort(key=sympy.default_sort_key)
        return node.func(*flat, evaluate=False)
    if isinstance(node, sympy.Pow) and all(a.is_Number for a in args):
        return sympy.Pow(*args)
    return node.func(*args, evaluate=False)


@dataclass(frozen=True)
class _Parsed:
    expr: Any  # sympy.Expr, evaluated
    form: Any  # sympy.Basic, see _written_form


def _parse_expression(text: str, letters: frozenset[str]) -> _Parsed:
    import sympy
    from sympy.parsing.sympy_parser import parse_expr

    transformations, global_dict = _sympy_env()
    local_dict: dict[str, Any] = {c: sympy.Symbol(c) for c in letters}
    try:
        raw = parse_expr(
            text,
            local_dict=dict(local_dict),
            global_dict=dict(global_dict),
            transformations=transformations,
            evaluate=False,
        )
        _check_size(raw)
        expr = parse_expr(
            text, local_dict=local_dict, global_dict=dict(global_dict), transformations=transformations
        )
        form = _written_form(raw)
    except MalformedResponse:
        raise
    except Exception as exc:  # the parser raises many types (SyntaxError, TokenError, TypeError, ...)
        raise MalformedResponse(f"expected an expression; cannot read {text!r}") from exc
    if not isinstance(expr, sympy.Expr):
        raise MalformedResponse(f"expected an expression; cannot read {text!r}")
    if expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        raise MalformedResponse("expected an expression; it divides by zero")
    return _Parsed(expr, form)


@dataclass(frozen=True)
class _ExpressionKey:
    parsed: _Parsed
    letters: frozenset[str]
    lower: bool


def _key_letters(value: str) -> frozenset[str]:
    return frozenset("".join(w for w in _WORD_RE.findall(value) if w not in _FUNCTIONS))


@lru_cache(maxsize=4096)
def _expression_key(value: str) -> _ExpressionKey:
    letters = _key_letters(_clean(value))
    lower = not any(c.isupper() for c in letters)
    text = _expression_text(value, lower=False, allowed_words=letters)
    return _ExpressionKey(_parse_expression(text, letters), letters, lower)


def _read_expression(key: _ExpressionKey, response: str) -> _Parsed:
    text = _expression_text(response, lower=key.lower, allowed_words=key.letters)
    letters = key.letters | frozenset(w for w in _WORD_RE.findall(text) if len(w) == 1)
    return _parse_expression(text, letters)


def _numeric_value(expr: sympy.Expr, subs: dict[Any, Any]) -> Any:
    """A real value to 40 digits (a sympy Float), or None where the expression is undefined or not real there."""
    try:
        value = expr.evalf(40, subs=subs)
        real, imag = value.as_real_imag()
        if not (value.is_number and real.is_finite and imag.is_finite):
            return None
        if bool(abs(imag) > 1e-30 * (1 + abs(real))):
            return None
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, AttributeError):
        return None
    return real


def _close(va: Any, vb: Any) -> bool:
    return bool(abs(va - vb) <= 1e-25 * max(1, abs(va), abs(vb)))


def _expressions_equal(a: sympy.Expr, b: sympy.Expr) -> bool:
    """Equivalence by identity, then by evaluation at fixed random points, then by simplification.

    Evaluation at points is what computer-algebra quiz systems use: it decides polynomial and rational identities
    (the school-algebra cases) reliably and, unlike `expand`, costs nothing for (x+1)^60. Points are rational and
    evaluation runs at 40 digits, so 0.333333 is not mistaken for 1/3.
    """
    import sympy

    if a == b:
        return True
    symbols = sorted(a.free_symbols | b.free_symbols, key=str)
    if not symbols:
        va, vb = _numeric_value(a, {}), _numeric_value(b, {})
        if va is None or vb is None:
            return bool(sympy.simplify(a - b) == 0)
        return _close(va, vb)
    rng = random.Random(20240601)
    agreed = 0
    for _ in range(12):
        subs = {s: sympy.Rational(rng.randint(61, 239), 100) for s in symbols}
        va, vb = _numeric_value(a, subs), _numeric_value(b, subs)
        if va is None or vb is None:
            continue
        if not _close(va, vb):
            return False
        agreed += 1
        if agreed >= 6:
            return True
    return bool(sympy.simplify(a - b) == 0)


# --------------------------------------------------------------------------------------------------------------
# Choice and text
# --------------------------------------------------------------------------------------------------------------

_LETTER_RE = re.compile(r"^\(?([A-Za-z])[).:]?$")


def _norm_choice(text: str) -> str:
    return " ".join(_clean(text).casefold().split())


def _norm_text(text: str) -> str:
    """Letters and digits only, case-folded: spacing, hyphens, apostrophes and full stops never decide."""
    return "".join(c for c in unicodedata.normalize("NFKC", text).casefold() if c.isalnum())


def choice_index(spec: AnswerSpec) -> int:
    """Index of the correct choice: `value` is the choice's text, or its letter when no choice has that text."""
    return _choice_key(spec.value, spec.choices)


@lru_cache(maxsize=4096)
def _choice_key(value: str, choices: tuple[str, ...]) -> int:
    normed = [_norm_choice(c) for c in choices]
    v = _norm_choice(value)
    if v in normed:
        return normed.index(v)
    m = _LETTER_RE.match(value.strip())
    if m is not None:
        i = ord(m.group(1).upper()) - ord("A")
        if 0 <= i < len(choices):
            return i
    raise SpecError([f"answer.value: {value!r} is neither one of the choices nor a choice letter"])


def _read_choice(choices: tuple[str, ...], response: str) -> int:
    normed = [_norm_choice(c) for c in choices]
    r = _norm_choice(response)
    if not r:
        raise MalformedResponse("expected a choice, got an empty response")
    if r in normed:
        return normed.index(r)
    m = _LETTER_RE.match(r)
    if m is not None:
        i = ord(m.group(1).upper()) - ord("A")
        if 0 <= i < len(choices):
            return i
    last = chr(ord("A") + len(choices) - 1)
    raise MalformedResponse(f"expected a choice letter A-{last} or the text of one of the choices")


# --------------------------------------------------------------------------------------------------------------
# The specification
# --------------------------------------------------------------------------------------------------------------


def _value_problems(type_: str, value: str, choices: tuple[str, ...], equivalent: bool) -> list[str]:
    problems: list[str] = []
    if type_ == "number":
        if _read_decimal(_clean(value)) is None:
            problems.append(f"answer.value: {value!r} is not a valid number")
    elif type_ == "fraction":
        reading = _read_fraction(_clean(value))
        if reading is None:
            problems.append(f"answer.value: {value!r} is not a valid fraction")
        elif not equivalent and not reading.simplest:
            problems.append(
                f"answer.value: {value!r} is not in lowest terms, which is required when equivalent is false"
            )
    elif type_ == "expression":
        try:
            _expression_key(value)
        except MalformedResponse as exc:
            problems.append(f"answer.value: {value!r} is not a valid expression ({exc})")
    elif type_ == "choice":
        if len(choices) < 2:
            problems.append("answer.choices: required for type choice, with at least 2 choices")
        elif len(choices) > MAX_CHOICES:
            problems.append(f"answer.choices: at most {MAX_CHOICES} choices")
        else:
            normed = [_norm_choice(c) for c in choices]
            if any(not c for c in normed):
                problems.append("answer.choices: a choice is empty")
            if len(set(normed)) != len(normed):
                problems.append("answer.choices: choices must differ (ignoring case and spacing)")
            if not problems:
                try:
                    _choice_key(value, choices)
                except SpecError as exc:
                    problems.extend(exc.problems)
    elif type_ == "text":
        alternatives = value.split("|")
        if any(not _norm_text(a) for a in alternatives):
            problems.append(
                f"answer.value: {value!r} has an empty alternative (alternatives are separated by '|')"
            )
    return problems


@dataclass(frozen=True)
class AnswerSpec:
    """How a response is read and compared with the key.

    `tolerance` (number items) is absolute. `equivalent` (fraction and expression items) set to false asks for
    the form, not just the value: a fraction in lowest terms, or an expression identical up to sympy's ordering
    of terms (so "expand 2(x+1)" can demand ``2x + 2``).
    """

    type: str
    value: str
    choices: tuple[str, ...] = ()
    tolerance: float = 0.0
    equivalent: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.choices, tuple):  # a list from hand-written code: keep the spec hashable
            object.__setattr__(self, "choices", tuple(self.choices))
        problems = _spec_problems(self.type, self.value, self.choices, self.tolerance, self.equivalent)
        if problems:
            raise SpecError(list(problems))

    @classmethod
    def from_dict(cls, d: Any) -> AnswerSpec:
        """Read the JSON shape; every problem is reported at once, each naming its field."""
        if not isinstance(d, dict):
            raise SpecError(["answer: must be an object with 'type' and 'value'"])
        problems: list[str] = []
        unknown = sorted(set(d) - {"type", "value", "choices", "tolerance", "equivalent"})
        problems.extend(f"answer.{k}: unknown field" for k in unknown)
        type_ = d.get("type")
        if type_ is None:
            problems.append("answer.type: required")
        elif type_ not in ANSWER_TYPES:
            problems.append(f"answer.type: must be one of {', '.join(ANSWER_TYPES)}, not {type_!r}")
        value = d.get("value")
        if value is None:
            problems.append("answer.value: required")
        elif isinstance(value, bool) or not isinstance(value, str | int | float):
            problems.append("answer.value: must be a string")
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append("answer.value: must be finite")
        elif not str(value).strip():
            problems.append("answer.value: must not be empty")
        raw_choices = d.get("choices", [])
        if not isinstance(raw_choices, list | tuple) or not all(isinstance(c, str) for c in raw_choices):
            problems.append("answer.choices: must be a list of strings")
            raw_choices = []
        tolerance = d.get("tolerance", 0.0)
        if isinstance(tolerance, bool) or not isinstance(tolerance, int | float):
            problems.append("answer.tolerance: must be a number")
            tolerance = 0.0
        equivalent = d.get("equivalent", True)
        if not isinstance(equivalent, bool):
            problems.append("answer.equivalent: must be true or false")
            equivalent = True
        if problems:
            raise SpecError(problems)
        return cls(str(type_), str(value), tuple(raw_choices), float(tolerance), equivalent)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape, defaults left out so documents stay short and diffs stable."""
        out: dict[str, Any] = {"type": self.type, "value": self.value}
        if self.choices:
            out["choices"] = list(self.choices)
        if self.tolerance:
            out["tolerance"] = self.tolerance
        if not self.equivalent:
            out["equivalent"] = False
        return out


@lru_cache(maxsize=8192)
def _spec_problems(
    type_: str, value: str, choices: tuple[str, ...], tolerance: float, equivalent: bool
) -> tuple[str, ...]:
    problems: list[str] = []
    if type_ not in ANSWER_TYPES:
        return (f"answer.type: must be one of {', '.join(ANSWER_TYPES)}, not {type_!r}",)
    if not isinstance(value, str) or not value.strip():
        return ("answer.value: must be a non-empty string",)
    if choices and type_ != "choice":
        problems.append("answer.choices: only allowed for type choice")
    if tolerance and type_ != "number":
        problems.append("answer.tolerance: only allowed for type number")
    if not math.isfinite(tolerance) or tolerance < 0:
        problems.append("answer.tolerance: must be a finite number >= 0")
    problems.extend(_value_problems(type_, value, choices, equivalent))
    return tuple(problems)


# --------------------------------------------------------------------------------------------------------------
# Checking
# --------------------------------------------------------------------------------------------------------------

_EXPECTED = {
    "number": "expected a number such as 42 or 3.5",
    "fraction": "expected a fraction such as 3/4, a mixed number such as 1 1/2, or a decimal such as 0.75",
}


def _read_number_text(type_: str, response: str) -> str:
    text = _strip_assignment(_clean(response))
    if not text:
        raise MalformedResponse(f"{_EXPECTED[type_]}, got an empty response")
    if len(text) > _MAX_NUMBER_CHARS:
        raise MalformedResponse(f"{_EXPECTED[type_]}; that is too long")
    return text


def _read_number(response: str) -> Fraction:
    text = _read_number_text("number", response)
    value = _read_decimal(text)
    if value is None:
        if _read_fraction(text) is not None:
            raise MalformedResponse(f"{_EXPECTED['number']}: write the result as a whole number or decimal")
        if re.fullmatch(r"[+-]?\d+,\d+", text):
            raise MalformedResponse(f"{_EXPECTED['number']}: use a decimal point, not a comma")
        raise MalformedResponse(f"{_EXPECTED['number']}, not {text!r}")
    return value


def parse_response(spec: AnswerSpec, response: str) -> Fraction | int | str | Any:
    """The value a response stands for under the spec's type: a Fraction (number, fraction), a sympy expression,
    the chosen index (choice) or the normalised text. Useful to diagnose wrong answers; raises MalformedResponse.
    """
    if spec.type == "number":
        return _read_number(response)
    if spec.type == "fraction":
        text = _read_number_text("fraction", response)
        reading = _read_fraction(text)
        if reading is None:
            if re.fullmatch(r"[+-]?\d+\s*/\s*0+", text):
                raise MalformedResponse(f"{_EXPECTED['fraction']}; the denominator cannot be 0")
            raise MalformedResponse(f"{_EXPECTED['fraction']}, not {text!r}")
        return reading.value
    if spec.type == "expression":
        return _read_expression(_expression_key(spec.value), response).expr
    if spec.type == "choice":
        return _read_choice(spec.choices, response)
    if len(response) > MAX_TEXT_CHARS:
        raise MalformedResponse(f"expected a short answer of at most {MAX_TEXT_CHARS} characters")
    normed = _norm_text(response)
    if not normed:
        raise MalformedResponse("expected a word or short phrase, got an empty response")
    return normed


@lru_cache(maxsize=8192)
def _number_key(value: str) -> Fraction:
    v = _read_decimal(_clean(value))
    assert v is not None  # validated by AnswerSpec
    return v


@lru_cache(maxsize=8192)
def _fraction_key(value: str) -> _FractionReading:
    v = _read_fraction(_clean(value))
    assert v is not None  # validated by AnswerSpec
    return v


def _text_keys(value: str) -> frozenset[str]:
    return frozenset(_norm_text(a) for a in value.split("|"))


def check_answer(spec: AnswerSpec, response: str) -> bool:
    """Whether the response is correct; raises MalformedResponse when it cannot be read as the answer type."""
    if spec.type == "number":
        got = _read_number(response)
        key = _number_key(spec.value)
        if spec.tolerance:
            return abs(got - key) <= Fraction(repr(spec.tolerance))
        return bool(got == key)
    if spec.type == "fraction":
        text = _read_number_text("fraction", response)
        reading = _read_fraction(text)
        if reading is None:
            parse_response(spec, response)  # raises with the right message
            raise AssertionError("unreachable")  # pragma: no cover
        fkey = _fraction_key(spec.value)
        if reading.value != fkey.value:
            return False
        return spec.equivalent or reading.simplest
    if spec.type == "expression":
        ekey = _expression_key(spec.value)
        parsed = _read_expression(ekey, response)
        if not spec.equivalent:
            return bool(parsed.form == ekey.parsed.form)
        return _expressions_equal(parsed.expr, ekey.parsed.expr)
    if spec.type == "choice":
        return _read_choice(spec.choices, response) == choice_index(spec)
    got_text = parse_response(spec, response)
    return got_text in _text_keys(spec.value)


_CLAIM_PREFIX_RE = re.compile(
    r"^(?:so\s*,?\s*|therefore\s*,?\s*|thus\s*,?\s*)?(?:the\s+)?(?:final\s+|correct\s+)?(?:answer|result)"
    r"(?:\s+is|\s*:|\s*=)\s*",
    re.IGNORECASE,
)


def same_value(spec: AnswerSpec, text: str) -> bool:
    """Whether a claimed result (e.g. the one an LLM explanation states) has the key's value.

    Unlike `check_answer` this never raises and ignores form: a claim of ``2/4`` matches a key that must be
    written ``1/2``, and ``0.5`` matches a number key ``1/2`` would not be written as. Light decoration an
    explanation puts around a result (``The answer is **3/4**.``, ``x = 5``, ``3/4 + 1/4 = 1``) is removed.
    """
    claim = _clean(text)
    for _ in range(2):
        claim = claim.strip().strip("*`$").strip()
        claim = _CLAIM_PREFIX_RE.sub("", claim)
        claim = re.sub(r"[.!;:,]+$", "", claim).strip()
    if "=" in claim:  # "3/4 + 1/4 = 1", "x = 5": the result is what follows the last "="
        claim = claim.rsplit("=", 1)[1].strip()
    if not claim:
        return False
    relaxed = replace(spec, equivalent=True)
    try:
        if spec.type == "number":
            reading = _read_fraction(_read_number_text("fraction", claim))
            if reading is None:
                return False
            key = _number_key(spec.value)
            tol = Fraction(repr(spec.tolerance)) if spec.tolerance else Fraction(0)
            return abs(reading.value - key) <= tol
        return check_answer(relaxed, claim)
    except (MalformedResponse, SpecError):
        return False


def canonical(spec: AnswerSpec) -> str:
    """The key in a normalised form, for feedback ("the answer was 3/4") and for comparing keys."""
    if spec.type == "number":
        return _format_decimal(_number_key(spec.value))
    if spec.type == "fraction":
        reading = _fraction_key(spec.value)
        return _format_fraction(reading.value, mixed=reading.form == "mixed")
    if spec.type == "expression":
        import sympy

        out = sympy.sstr(_expression_key(spec.value).parsed.expr).replace("**", "^")
        return re.sub(r"(?<![A-Za-z0-9.])(\d+)\*(?=[A-Za-z(])", r"\1", out)
    if spec.type == "choice":
        return spec.choices[choice_index(spec)]
    return spec.value.split("|")[0].strip()
