"""The template writer: deterministic explanations, hints and scene sentences with no model.

It is the fallback for every model failure and the whole output of the `template` backend, so it must pass the
same checks as model text by construction: explanations end with the key, hints are built only from solution
steps that the pipeline has already stripped of the answer, and everything stays inside the level's word limit.
"""

from __future__ import annotations

import hashlib
import re

from tutor.llm.diagnose import MISCONCEPTIONS
from tutor.llm.prompts import MAX_WORDS, ExplainRequest

ANALOGIES = (
    "Think of it like following a recipe: each step uses what the last one made.",
    "Think of it like climbing stairs: one careful step at a time gets you to the top.",
    "Think of it like packing a bag: put each thing in its right place before you close it.",
)

HINT_FALLBACK = {
    "beginner": "Read the exercise again slowly and write down the first small step before you calculate.",
    "intermediate": "Write down what the exercise asks, then do one step at a time.",
    "advanced": "Set up the first step carefully before calculating.",
}


# Only short answer-like responses are echoed back; anything wordier is the learner's text, not ours to repeat.
_ECHO_RE = re.compile(r"[-+\w./ ()^*=]{1,24}")


def solution_steps(solution: str) -> list[str]:
    """Split a worked solution into steps: lines, or sentences when it is one paragraph."""
    lines = [ln.strip() for ln in solution.splitlines() if ln.strip()]
    if len(lines) <= 1 and solution.strip():
        lines = [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", solution.strip()) if s.strip()]
    return lines


def _pick(options: tuple[str, ...], key: str) -> str:
    digest = hashlib.sha256(key.encode()).digest()
    return options[digest[0] % len(options)]


def _fit(steps: list[str], budget: int) -> list[str]:
    """Keep whole steps within a word budget: the first steps and always the last one (where the result is)."""
    out: list[str] = []
    used = 0
    for i, step in enumerate(steps):
        words = len(step.split())
        if used + words > budget and i < len(steps) - 1:
            if steps[-1] not in out and used + len(steps[-1].split()) <= budget + 10:
                out.append(steps[-1])
            break
        out.append(step)
        used += words
    return out


def template_explanation(req: ExplainRequest) -> str:
    said, question = MISCONCEPTIONS.get(req.misconception, MISCONCEPTIONS["unknown"])
    if req.diagnosis_text:
        said = req.diagnosis_text
    head: list[str] = []
    shown = " ".join((req.response or "").split())
    if _ECHO_RE.fullmatch(shown) and not re.search(r"[A-Za-z]{2,}", shown):
        head.append(f"You answered {shown}, but the correct answer is {req.answer_text}.")
    elif shown:
        head.append(f"The correct answer is {req.answer_text}.")
    head.append(said)
    steps = solution_steps(req.solution)
    overhead = sum(len(s.split()) for s in head) + 20
    budget = max(MAX_WORDS[req.level] - overhead, 15)
    if req.style == "analogy":
        head.append(_pick(ANALOGIES, req.item_prompt))
    elif req.style == "socratic":
        head.append(f"Ask yourself: {question}")
    if req.style == "short_hint":
        body = steps[:1]
        body = _fit(body, budget)
    else:
        body = _fit(steps, budget)
    lines = [" ".join(head)]
    if body:
        lines.append("Here is how to solve it:" if req.style != "short_hint" else "Start here:")
        lines.extend(body)
    lines.append(f"Answer: {req.answer_text}")
    return "\n".join(lines)


def template_hint(req: ExplainRequest) -> str:
    """The first step of the (answer-free) solution the pipeline passes in, or a generic nudge."""
    steps = solution_steps(req.solution)
    if steps:
        first = steps[0].rstrip(".")
        return f"Hint: start like this: {first}."
    return f"Hint: {HINT_FALLBACK[req.level]}"


SCENES = {
    "shopping": ("{name} is at the market with a shopping list.", "{name} is counting coins at the shop."),
    "baking": ("{name} is baking bread for the school fair.", "{name} is measuring flour for a cake."),
    "sport": ("{name} is keeping the score at a football match.", "{name} is timing laps at the pool."),
    "garden": ("{name} is planting a vegetable garden.", "{name} is sharing seeds with a neighbour."),
    "travel": ("{name} is planning a bus trip with friends.", "{name} is reading a map before a walk."),
    "school": ("{name} is helping a friend with homework.", "{name} is sorting books in the class library."),
}
NAMES = ("Maya", "Leo", "Amara", "Tom", "Sofia", "Ravi", "Nina", "Omar", "Lena", "Kai")


def pick_name(key: str) -> str:
    return _pick(NAMES, key + "n")


# A scene opens "<name> is <verb>" with a verb that fits the theme (the item writer forces that opening on the
# model); each verb reads well with the theme's object, which is what the template backend writes after it.
THEME_VERBS: dict[str, tuple[str, ...]] = {
    "shopping": ("buying", "choosing", "shopping for"),
    "baking": ("baking", "making", "decorating"),
    "sport": ("playing", "training for", "watching"),
    "garden": ("planting", "watering", "picking"),
    "travel": ("visiting", "packing for", "driving to"),
    "school": ("reading about", "drawing", "writing about"),
}
THEME_OBJECTS = {
    "shopping": "fruit at the market",
    "baking": "cakes for the school fair",
    "sport": "a football match in the park",
    "garden": "tomatoes in the garden",
    "travel": "the seaside with friends",
    "school": "animals for a class project",
}


def template_scene(name: str, theme: str, key: str = "", opening: str | None = None) -> str:
    if opening:
        return f"{opening} {THEME_OBJECTS.get(theme, THEME_OBJECTS['school'])}."
    return _pick(SCENES.get(theme, SCENES["school"]), key + theme).format(name=name)


def brief_question(brief: str, name: str) -> str:
    """The template's brief as the question of a word problem.

    Briefs read "find the total of 462 and 514" or "3 equal unknown amounts plus 30 more make 54; ask for one
    unknown amount"; the second form becomes a statement and a question. Parenthesised advice is dropped.
    """
    main, _, ask = re.sub(r"\s*\([^)]*\)", "", brief).partition(";")
    main, ask = main.strip().rstrip("."), ask.strip()
    if ask.startswith("ask "):
        what = ask[4:].removeprefix("for ").strip()
        question = (
            (what[0].upper() + what[1:]) if what.startswith(("how", "what", "which")) else f"What is {what}"
        )
        return f"{name} knows that {main}. {question.rstrip('?')}?"
    return f"Can you help {name} {main}?"


def template_story(brief: str, name: str, theme: str) -> str:
    """A plain word problem from the template's brief: a scene sentence, then the question."""
    return f"{template_scene(name, theme, brief)} {brief_question(brief, name)}"
