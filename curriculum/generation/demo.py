"""The demo course: school arithmetic from place value to two-step equations, generated from the templates.

It is built, not shipped as a JSON file, so it can never drift from the templates and the answer checker; the same
seed always gives the same document (each template draws from its own generator, keyed by the seed and the
template's code, so adding a template leaves the other templates' items unchanged).
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from curriculum.generation.templates import TEMPLATES, GeneratedItem, ItemTemplate

__all__ = ["SKILLS", "demo_course"]

# (code, name, description, prerequisites), in an order that respects the prerequisites.
SKILLS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    (
        "place-value",
        "Place value",
        "Read and write whole numbers up to hundreds of thousands; the value of a digit depends on its place.",
        (),
    ),
    (
        "add-whole",
        "Adding whole numbers",
        "Add whole numbers in columns, carrying when a column adds up to ten or more.",
        ("place-value",),
    ),
    (
        "sub-whole",
        "Subtracting whole numbers",
        "Subtract whole numbers in columns, regrouping when a digit is too small; find a missing addend.",
        ("add-whole",),
    ),
    (
        "mul-whole",
        "Multiplying whole numbers",
        "Multiplication facts and times tables to 12 × 12, and multiplying by one- and two-digit numbers with "
        "partial products.",
        ("add-whole",),
    ),
    (
        "div-whole",
        "Dividing whole numbers",
        "Division facts, division with a remainder, and short division of three- and four-digit numbers.",
        ("mul-whole", "sub-whole"),
    ),
    (
        "frac-concept",
        "What a fraction is",
        "A fraction as equal parts of a whole: numerator and denominator, and a fraction of an amount.",
        ("div-whole",),
    ),
    (
        "frac-equivalent",
        "Equivalent fractions",
        "Fractions that name the same amount: multiply or divide top and bottom by the same number; lowest terms.",
        ("frac-concept", "mul-whole"),
    ),
    (
        "frac-compare",
        "Comparing fractions",
        "Compare fractions with the same denominator, the same numerator, or different denominators.",
        ("frac-equivalent",),
    ),
    (
        "frac-add-like",
        "Adding fractions with like denominators",
        "Add and subtract fractions and mixed numbers whose denominators are the same.",
        ("frac-equivalent",),
    ),
    (
        "frac-add-unlike",
        "Adding fractions with unlike denominators",
        "Add and subtract fractions after renaming them with a common denominator.",
        ("frac-add-like", "frac-compare"),
    ),
    (
        "decimals",
        "Decimals",
        "Tenths, hundredths and thousandths as decimals; compare, add, and multiply decimals by 10 and 100.",
        ("frac-equivalent", "place-value"),
    ),
    (
        "eq-one-step",
        "One-step equations",
        "Solve x + a = b, x − a = b and a·x = b by undoing one operation; write expressions from words.",
        ("div-whole", "sub-whole"),
    ),
    (
        "eq-two-step",
        "Two-step equations",
        "Solve a·x + b = c and x/a + b = c by undoing two operations in order; collect like terms.",
        ("eq-one-step",),
    ),
)

DEFAULT_ITEMS_PER_TEMPLATE = 14


def _template_rng(seed: int, template: ItemTemplate) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(template.code.encode())])


def _items(template: ItemTemplate, seed: int, count: int) -> list[GeneratedItem]:
    """`count` distinct exercises; a repeated draw is skipped, so codes and exercises are unique."""
    rng = _template_rng(seed, template)
    seen_codes: set[str] = set()
    seen_exercises: set[tuple[str, tuple[str, ...]]] = set()
    out: list[GeneratedItem] = []
    for _ in range(50 * count):
        item = template.generate(rng)
        exercise = (item.prompt, item.answer.choices)
        if item.code in seen_codes or exercise in seen_exercises:
            continue
        seen_codes.add(item.code)
        seen_exercises.add(exercise)
        out.append(item)
        if len(out) == count:
            return out
    raise RuntimeError(
        f"template {template.code} gave only {len(out)} distinct items of the {count} asked for"
    )


def demo_course(seed: int = 0, items_per_template: int = DEFAULT_ITEMS_PER_TEMPLATE) -> dict[str, Any]:
    """The demo course as a curriculum document (docs/curriculum-format.md), ready for `import_curriculum`.

    13 skills and, by default, 14 items from each of the 41 templates (574 items), every one with a worked
    solution and a difficulty.
    """
    if items_per_template < 1:
        raise ValueError("items_per_template must be at least 1")
    skill_codes = {code for code, *_ in SKILLS}
    skills = [
        {"code": code, "name": name, "description": description, "prerequisites": list(prerequisites)}
        for code, name, description, prerequisites in SKILLS
    ]
    items: list[dict[str, Any]] = []
    for template in TEMPLATES.values():
        missing = set(template.skills) - skill_codes
        if missing:
            raise RuntimeError(f"template {template.code} names unknown skills {sorted(missing)}")
        items.extend(item.to_dict() for item in _items(template, seed, items_per_template))
    return {"skills": skills, "items": items}
