"""Shapes service results for the templates: percentages, heat-map levels and chart data. Display only: every
number shown comes from a service or selector unchanged, apart from rounding for display."""

from __future__ import annotations

import math
from typing import Any

# Ten heat-map levels of one hue (light to dark blue, readable by colour-blind viewers); site.css defines a
# background and a text colour with at least 4.5:1 contrast for each `.heat-N`.
HEAT_LEVELS = 10


def percent(p: float | None) -> int | None:
    """Whole percent, rounded down: 0.9496 shows as 94, so a skill shown at 95% or more is mastered at the
    default threshold of 0.95 (rounding to nearest showed "95%" next to "not mastered")."""
    return None if p is None else math.floor(100 * p + 1e-9)


def heat_level(p: float | None) -> int | None:
    if p is None:
        return None
    return min(HEAT_LEVELS - 1, max(0, int(p * HEAT_LEVELS)))


# What to type, per answer type: shown under the answer box and announced with it.
ANSWER_HINTS = {
    "number": "A number, e.g. 42 or 3.5",
    "fraction": "A fraction, e.g. 3/4 or 1 1/2",
    "expression": "An expression, e.g. 2x + 3",
    "text": "A word or a short phrase",
}


def exercise(
    *,
    item_id: int,
    prompt: str,
    answer: dict[str, Any],
    skills: list[str],
    decision_id: int,
    client_attempt_id: str,
    response: str = "",
    error: str | None = None,
) -> dict[str, Any]:
    """What the answer form needs, and nothing of the key: only the answer type and the choices leave the server."""
    type_ = str(answer.get("type", "text"))
    choices = [str(c) for c in answer.get("choices", [])] if type_ == "choice" else []
    return {
        "item_id": item_id,
        "prompt": prompt,
        "skills": skills,
        "type": type_,
        "choices": [
            {"letter": chr(ord("A") + i), "text": c, "checked": c == response} for i, c in enumerate(choices)
        ],
        "hint": ANSWER_HINTS.get(type_, ""),
        "inputmode": "decimal" if type_ == "number" else "text",
        "decision_id": decision_id,
        "client_attempt_id": client_attempt_id,
        "response": response,
        "error": error,
    }


def mastery_bars(rows: list[dict[str, Any]], *, threshold: float) -> list[dict[str, Any]]:
    """The learner's overview: one bar per skill, marked mastered at the service's threshold."""
    return [
        {
            **r,
            "pct": percent(r["p_mastery"]),
            "mastered": r["p_mastery"] >= threshold,
            "practised": r["n_attempts"] > 0,
        }
        for r in rows
    ]


def feedback(result: dict[str, Any], *, names: dict[int, str]) -> dict[str, Any]:
    """The stored attempt result with skill names and percentages; an `explanation` object, when the service
    adds one to the feedback, is passed through."""
    fb = dict(result.get("feedback", {}))
    explanation = fb.get("explanation")
    text = explanation.get("text") if isinstance(explanation, dict) else None
    return {
        "correct": bool(result.get("correct")),
        "message": fb.get("message", ""),
        "correct_answer": fb.get("correct_answer"),
        "solution": fb.get("solution"),
        "explanation": text if isinstance(text, str) and text.strip() else None,
        "mastery": [
            {
                "skill": m["skill"],
                "name": names.get(int(m["skill_id"]), m["skill"]),
                "p_mastery": m["p_mastery"],
                "pct": percent(m["p_mastery"]),
            }
            for m in result.get("mastery", [])
        ],
    }


def classroom_grid(report: dict[str, Any]) -> dict[str, Any]:
    """`learners.selectors.classroom_mastery` as a learners x skills grid, class averages and bar-chart data."""
    skills = report["skills"]
    rows = []
    for lr in report["learners"]:
        cells = []
        for s in skills:
            p = lr["mastery"].get(s["skill_id"])
            cells.append({"skill": s["skill"], "name": s["name"], "pct": percent(p), "level": heat_level(p)})
        rows.append({"learner_id": lr["learner_id"], "name": lr["name"], "cells": cells})
    averages = [
        {
            "skill": s["skill"],
            "pct": percent(s["mean_p_mastery"]),
            "level": heat_level(s["mean_p_mastery"]),
            "mastered": s["mastered"],
        }
        for s in skills
    ]
    chart = {
        "title": "Class average P(mastery) per skill",
        "labels": [s["skill"] for s in skills],
        "names": [s["name"] for s in skills],
        "values": [s["mean_p_mastery"] for s in skills],
        "threshold": report["threshold"],
    }
    return {"skills": skills, "rows": rows, "averages": averages, "chart": chart, "n_learners": len(rows)}


def history_charts(history: dict[str, Any], *, threshold: float) -> list[dict[str, Any]]:
    """One line chart per practised skill: x is the answer's number in the learner's log, y the stored mastery."""
    return [
        {
            "skill": s["skill"],
            "name": s["name"],
            "dom_id": f"history-{s['skill_id']}",
            "data_id": f"history-{s['skill_id']}-data",
            "last_pct": percent(s["points"][-1][1]),
            "points": s["points"],
            "data": {
                "title": s["name"],
                "x": [n for n, _ in s["points"]],
                "y": [p for _, p in s["points"]],
                "threshold": threshold,
            },
        }
        for s in history["skills"]
    ]
