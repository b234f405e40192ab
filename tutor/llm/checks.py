"""Checks that every explanation and hint passes before it reaches a learner.

The model's text is never trusted to be right: the result it states is parsed and compared with the answer key
(the same comparison that marks learner answers, `answers.same_value`), hints are searched for anything equal to
the key, numbers that appear in no source are treated as invented, and length and content stay inside fixed
limits. Each failure has a short reason code so the pipeline can count what fails and why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from fractions import Fraction

from curriculum.generation.answers import AnswerSpec, same_value
from tutor.llm.prompts import LEVEL_VOICE, MAX_WORDS, STYLE_VOICE, SYSTEM

# Slack over the word budget the prompt asks for: the closing "Answer:" line and a short greeting.
WORD_SLACK = 15
MIN_WORDS = 4
MIN_EXPLANATION_WORDS = 12  # "The correct answer is 5/6. Answer: 5/6" explains nothing
HINT_MAX_WORDS = 50

_RESULT_RE = re.compile(r"(?im)^\W*(?:final\s+)?answer\s*(?:is)?\s*[:=]\s*(.+?)\s*$")
_RESULT_INLINE_RE = re.compile(
    r"(?i)(?<!your )\b(?:the\s+)?(?:final\s+)?answer\s+is\s*:?\s*([^\n]+?)(?:[.!]\s|[.!]?$|\n)"
)
_NUMBER_RE = re.compile(r"(?<![\w.])[-−]?\d+(?:[.,]\d+)*(?:\s*/\s*\d+)?(?![\w])")
_CLAUSE_RE = re.compile(r",|;|\s+(?:because|since|so|which|and|but|well)\b", re.I)
_STATES_RE = re.compile(r"(?i)(?:answer\s+is|answer\s*:|=)\s*([^\s,;!?]+(?:\s*/\s*\d+)?)")

BANNED_PATTERNS: dict[str, re.Pattern[str]] = {
    "link": re.compile(r"(?i)https?://|www\.|\b[\w.-]+@[\w-]+\.\w+"),
    "code": re.compile(
        r"```|<\s*/?\s*(?:script|div|span|a|meta|exercise|worked_solution|learner_answer|request)\b"
    ),
    "self_reference": re.compile(r"(?i)\bas an ai\b|\blanguage model\b|\bi cannot\b|\bi can't help\b"),
    "prompt_leak": re.compile(r"(?i)worked_solution|learner_answer|likely_mistake|correct_answer|<meta"),
    "rude": re.compile(r"(?i)\b(?:stupid|idiot|dumb|shut up|hate you|damn|hell)\b"),
}


def _clean_value(text: str) -> str:
    value = text.strip().strip("*_`\"'").strip()
    value = re.sub(r"[.!;]+$", "", value).strip()
    return value.replace("−", "-")


def stated_result(text: str) -> str | None:
    """The final result an explanation states: its last "Answer: ..." line, else its last "the answer is ..."."""
    lines = _RESULT_RE.findall(text)
    if lines:
        return _clean_value(lines[-1])
    inline = _RESULT_INLINE_RE.findall(text)
    if inline:
        return _clean_value(inline[-1])
    return None


def claimed_results(text: str) -> list[str]:
    """Every result the text claims ("Answer: ...", "the answer is ..."), in no particular order."""
    found = _RESULT_RE.findall(text) + _RESULT_INLINE_RE.findall(text)
    return [_clean_value(_CLAUSE_RE.split(v)[0]) for v in found]


def same(spec: AnswerSpec, text: str) -> bool:
    """`same_value` that treats unparsable text as different instead of raising."""
    try:
        return bool(same_value(spec, text))
    except (ValueError, TypeError, ArithmeticError):
        return False


def numbers_in(text: str) -> list[str]:
    return [m.group(0).replace("−", "-").replace(" ", "") for m in _NUMBER_RE.finditer(text)]


def _number_set(texts: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for t in texts:
        for n in numbers_in(t):
            out.add(n)
            out.update(n.split("/"))  # the parts of a fraction are grounded too
            out.add(n.lstrip("-"))
    return out


def states_answer(text: str, spec: AnswerSpec, prompt: str) -> bool:
    """Whether `text` gives the key away: an explicit "answer is X"/"= X" equal to the key, or any number equal to
    the key that the exercise itself does not already show (a key that is also an operand cannot be hidden)."""
    for m in _STATES_RE.finditer(text):
        if same(spec, _clean_value(m.group(1))):
            return True
    shown = set(numbers_in(prompt))
    for n in numbers_in(text):
        if n not in shown and same(spec, n):
            return True
    value = str(spec.value).strip()
    if value and not re.fullmatch(r"[-\d./\s]+", value):  # words, expressions, choices
        pattern = r"(?i)(?<!\w)" + re.escape(value) + r"(?!\w)"
        if re.search(pattern, text) and not re.search(pattern, prompt):
            return True
    return False


def _ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z']+", text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


# Six words in a row from our own instructions: the model is reciting the prompt, not explaining.
_INSTRUCTION_NGRAMS = _ngrams(
    " . ".join([SYSTEM, *LEVEL_VOICE.values(), *STYLE_VOICE.values()]), 6
) | _ngrams(
    "explain to the learner why the correct answer is use at most words end with one line exactly like "
    "give the learner a hint for the first step do not give the final answer or any number that is the answer",
    6,
)


def _repetitive(text: str) -> bool:
    words = re.findall(r"\w+", text.lower())
    grams = [" ".join(words[i : i + 4]) for i in range(len(words) - 3)]
    return any(grams.count(g) > 2 for g in set(grams))


_ARITH_NUM = r"-?\d+(?:\.\d+)?(?:/\d+)?"
_ARITH_RE = re.compile(
    rf"({_ARITH_NUM})\s*([+\-−×x*÷:]|\s/\s)\s*({_ARITH_NUM})\s*=\s*({_ARITH_NUM})(?![\d/])"
)
_CLAIM_RE = re.compile(
    r"(?i)\b(?:answer|result)\b[^.?!\n]{0,40}?\b(?:is|would be|will be|should be|equals)\b|\b(?:answer|result)\s*:"
)


def _value(text: str) -> Fraction | None:
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


def wrong_arithmetic(text: str) -> list[str]:
    """Every "a op b = c" the text states that is false (exact arithmetic): a model's slip in a step is as
    misleading as a wrong final result."""
    ops = {"+": "+", "-": "-", "−": "-", "×": "*", "x": "*", "*": "*", "÷": "/", ":": "/", "/": "/"}
    bad = []
    for m in _ARITH_RE.finditer(text.replace("−", "-")):
        a, b, c = _value(m.group(1)), _value(m.group(3)), _value(m.group(4))
        op = ops.get(m.group(2).strip() or "/")
        if a is None or b is None or c is None or op is None:
            continue
        if op == "/" and b == 0:
            continue
        got = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else a}[op]
        if got != c:
            bad.append(m.group(0))
    return bad


def content_problems(text: str) -> list[str]:
    problems = [name for name, pat in BANNED_PATTERNS.items() if pat.search(text)]
    if _ngrams(text, 6) & _INSTRUCTION_NGRAMS:
        problems.append("prompt_echo")
    if any(ord(c) < 32 and c not in "\n\t" for c in text):
        problems.append("control_chars")
    letters = [c for c in text if c.isalpha()]
    if letters and sum(not c.isascii() for c in letters) / len(letters) > 0.2:
        problems.append("non_ascii")
    if _repetitive(text):
        problems.append("repetitive")
    return problems


def check_explanation(
    text: str,
    *,
    spec: AnswerSpec,
    level: str,
    grounding: Iterable[str],
    response: str | None = None,
) -> list[str]:
    """Reasons the explanation may not be served (empty when it passes)."""
    reasons: list[str] = []
    words = len(text.split())
    if words < MIN_EXPLANATION_WORDS:
        return ["too_short"]
    if words > MAX_WORDS[level] + WORD_SLACK:
        reasons.append("too_long")
    result = stated_result(text)
    if result is None:
        reasons.append("no_result")
    elif not same(spec, result):
        reasons.append("wrong_result")
    elif not all(same(spec, claim) for claim in claimed_results(text)):
        reasons.append("conflicting_result")  # right at the end, but another result claimed on the way
    sources = list(grounding)
    if response:
        sources.append(response)
    known = _number_set(sources) | {"0", "1", "2", "10"}
    if any(n not in known and n.lstrip("-") not in known for n in numbers_in(text)):
        reasons.append("ungrounded_number")
    if response and len(response) >= 25 and response.strip().lower()[:25] in text.lower():
        reasons.append("echoes_learner_text")
    if wrong_arithmetic(text):
        reasons.append("wrong_arithmetic")
    reasons.extend(content_problems(text))
    return reasons


def check_hint(text: str, *, spec: AnswerSpec, prompt: str, grounding: Iterable[str]) -> list[str]:
    reasons: list[str] = []
    words = len(text.split())
    if words < MIN_WORDS:
        return ["too_short"]
    if words > HINT_MAX_WORDS:
        reasons.append("too_long")
    if states_answer(text, spec, prompt):
        reasons.append("states_answer")
    elif _CLAIM_RE.search(text):
        reasons.append(
            "claims_result"
        )  # a hint points at a step; any "the answer is ..." is a give-away or wrong
    known = _number_set([prompt, *grounding]) | {"0", "1", "2", "10"}
    if any(n not in known and n.lstrip("-") not in known for n in numbers_in(text)):
        reasons.append("ungrounded_number")
    if wrong_arithmetic(text):
        reasons.append("wrong_arithmetic")
    reasons.extend(content_problems(text))
    return reasons
