"""Goals in plain language: "be ready for fractions by Friday" -> target skills and a due date.

Why in two stages: embedding similarity to the skill descriptions is cheap, deterministic and never invents a
skill, but it cannot always tell neighbours apart; a model may, but may also name codes that do not exist or pick
badly (a 135M model does). So similarity proposes a short list and its own targets; the model (when configured)
picks from the short list under a constraint that only allows listed codes, every code is validated against the
skill list again (a remote server may ignore the constraint), and the model's pick can only narrow the
similarity targets. The teacher confirms the mapping before the scheduler uses it.

Dates are parsed by rules relative to a given `today` (never the clock, so tests and replays are exact).
"""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from tutor.llm.backends.base import BackendError, LLMBackend
from tutor.llm.embed import Embedder, get_embedder
from tutor.llm.prompts import goal_messages

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = tuple(m.lower() for m in calendar.month_name[1:])
NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "couple of": 2, "few": 3,
}  # fmt: skip
_N = r"(\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|couple of|few)"
_WD = "(" + "|".join(WEEKDAYS) + r"|mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)\b"
_MON = "(" + "|".join(MONTHS) + r"|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)\b"


def _weekday(name: str) -> int:
    return next(i for i, w in enumerate(WEEKDAYS) if w.startswith(name[:3]))


def _month(name: str) -> int:
    return next(i + 1 for i, m in enumerate(MONTHS) if m.startswith(name[:3]))


def _add_months(d: date, n: int) -> date:
    y, m = divmod(d.month - 1 + n, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def _upcoming(today: date, weekday: int) -> date:
    """The next such weekday, today included ("by Friday" said on a Friday means today)."""
    return today + timedelta(days=(weekday - today.weekday()) % 7)


@dataclass(frozen=True)
class DueDate:
    due: date
    text: str  # the phrase it was read from


def parse_due(text: str, today: date) -> DueDate | None:
    """The deadline a goal states, relative to `today`; None when it states none.

    Understood: today, tomorrow, "in/within N days|weeks|months", weekday names ("by Friday"; "next Friday" is
    the one in the following week), "end of the week" (Friday), "end of next week", "next week" (its Monday),
    "end of the month", ISO dates, and day-month names ("14 March", "March 14th", with or without a year; a
    date already past this year means next year).
    """
    s = text.lower()
    m = re.search(r"\b(\d{4})-(\d{2})-(\d{2})\b", s)
    if m:
        try:
            return DueDate(date(int(m.group(1)), int(m.group(2)), int(m.group(3))), m.group(0))
        except ValueError:
            pass
    for pattern, order in (
        (rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MON}(?:\s+(\d{{4}}))?", "dm"),
        (rf"\b{_MON}\s+(\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(\d{{4}}))?", "md"),
    ):
        m = re.search(pattern, s)
        if m:
            day, mon = (m.group(1), m.group(2)) if order == "dm" else (m.group(2), m.group(1))
            year = int(m.group(3)) if m.group(3) else today.year
            try:
                due = date(year, _month(mon), int(day))
            except ValueError:
                continue
            if not m.group(3) and due < today:
                due = date(year + 1, due.month, due.day)
            return DueDate(due, m.group(0))
    m = re.search(rf"\b(?:in|within)\s+(?:the\s+next\s+)?{_N}\s+(day|week|month)s?\b", s)
    if m:
        n = int(m.group(1)) if m.group(1).isdigit() else NUMBER_WORDS[m.group(1)]
        unit = m.group(2)
        due = (
            _add_months(today, n)
            if unit == "month"
            else today + timedelta(days=n * (7 if unit == "week" else 1))
        )
        return DueDate(due, m.group(0))
    m = re.search(r"\bend of (?:the |this )?(next )?(week|month)\b", s)
    if m:
        if m.group(2) == "week":
            friday = _upcoming(today, 4)
            return DueDate(friday + timedelta(days=7) if m.group(1) else friday, m.group(0))
        base = _add_months(today.replace(day=1), 1 if m.group(1) else 0)
        return DueDate(base.replace(day=calendar.monthrange(base.year, base.month)[1]), m.group(0))
    m = re.search(rf"\b(next\s+)?{_WD}", s)
    if m:
        wd = _weekday(m.group(2))
        due = _upcoming(today, wd)
        if m.group(1) and (due == today or due.isocalendar()[1] == today.isocalendar()[1]):
            due += timedelta(days=7)
        return DueDate(due, m.group(0))
    m = re.search(r"\bnext week\b", s)
    if m:
        return DueDate(today + timedelta(days=7 - today.weekday()), m.group(0))
    if re.search(r"\btomorrow\b", s):
        return DueDate(today + timedelta(days=1), "tomorrow")
    if re.search(r"\btoday\b|\btonight\b", s):
        return DueDate(today, "today")
    return None


@dataclass(frozen=True)
class GoalMapping:
    """What is shown to the teacher to confirm."""

    targets: tuple[str, ...]
    due: date | None
    due_text: str | None
    method: str  # "embedding" | "model"
    scores: Mapping[str, float] = field(default_factory=dict)  # similarity of each shortlisted skill
    rejected_codes: tuple[str, ...] = ()  # codes the model named that are not skills

    def as_dict(self) -> dict[str, object]:
        return {
            "targets": list(self.targets),
            "due": self.due.isoformat() if self.due else None,
            "due_text": self.due_text,
            "method": self.method,
            "scores": dict(self.scores),
            "rejected_codes": list(self.rejected_codes),
        }


def _stems(text: str) -> set[str]:
    """Crude stems: the first five letters (subtraction/subtracting, fractions/fraction, carry/carrying)."""
    return {w[:5] for w in re.findall(r"[a-z]{3,}", text.lower())}


_STOP = _stems(
    "ready for the and with by be get learn learner class able master goal practice work on need to"
)


class GoalMapper:
    """Map a goal to skills; `skills` maps code -> "name. description".

    shortlist: how many skills similarity passes on; threshold and margin: without a model, the targets are the
    skills scoring at least `threshold` and within `margin` of the best; lexical_bonus: added per shared content word with the skill's name and description, so a
    skill named in the goal wins over a merely related one.
    """

    def __init__(
        self,
        skills: Mapping[str, str],
        *,
        embedder: Embedder | None = None,
        backend: LLMBackend | None = None,
        shortlist: int = 5,
        threshold: float = 0.35,
        margin: float = 0.1,
        lexical_bonus: float = 0.15,
        timeout: float = 20.0,
    ) -> None:
        if not skills:
            raise ValueError("no skills to map goals to")
        self.skills = dict(skills)
        self.embedder = embedder if embedder is not None else get_embedder(None)
        self.backend = backend
        self.shortlist = shortlist
        self.threshold = threshold
        self.margin = margin
        self.lexical_bonus = lexical_bonus
        self.timeout = timeout
        self._codes = list(self.skills)
        self._vecs = self.embedder.encode([f"{c.replace('_', ' ')}: {d}" for c, d in self.skills.items()])

    def similarities(self, goal: str) -> dict[str, float]:
        vec = self.embedder.encode([goal])[0]
        sims = self._vecs @ vec
        words = _stems(goal) - _STOP
        out = {}
        for code, sim in zip(self._codes, sims, strict=True):
            shared = len(words & (_stems(code.replace("_", " ") + " " + self.skills[code]) - _STOP))
            out[code] = float(sim) + self.lexical_bonus * min(shared, 2)
        return out

    def map(self, goal: str, *, today: date) -> GoalMapping:
        due = parse_due(goal, today)
        topic = goal.replace(due.text, " ") if due else goal
        scores = self.similarities(topic)
        ranked = sorted(scores, key=lambda c: -scores[c])[: self.shortlist]
        shortlist = {c: round(scores[c], 4) for c in ranked}
        best = scores[ranked[0]] if ranked else 0.0
        targets = tuple(c for c in ranked if scores[c] >= max(self.threshold, best - self.margin))
        if not targets and ranked:
            targets = (ranked[0],)  # the teacher sees the score and confirms or changes it
        method, rejected = "embedding", list[str]()
        if self.backend is not None:
            picked, rejected = self._ask_model(topic, ranked)
            narrowed = tuple(c for c in targets if c in picked)
            if narrowed and narrowed != targets:
                # The model may only narrow the similarity targets, never add a far-off skill: measured with
                # SmolLM2-135M, its own picks were right for 1 goal in 10, similarity alone for 7 in 10.
                targets, method = narrowed, "model"
        return GoalMapping(
            targets, due.due if due else None, due.text if due else None, method, shortlist, tuple(rejected)
        )

    def _ask_model(self, goal: str, ranked: list[str]) -> tuple[list[str], list[str]]:
        assert self.backend is not None
        schema = {
            "type": "object",
            "properties": {
                "skills": {"type": "array", "items": {"enum": ranked}, "minItems": 1, "maxItems": 3}
            },
        }
        try:
            done = self.backend.generate(
                goal_messages(goal=goal, skills={c: self.skills[c] for c in ranked}),
                max_tokens=48,
                json_schema=schema,
                timeout=self.timeout,
            )
            named = json.loads(done.text).get("skills", [])
        except (BackendError, ValueError, AttributeError):
            return [], []
        if not isinstance(named, list):
            return [], []
        picked = [c for c in dict.fromkeys(str(x) for x in named) if c in self.skills]
        rejected = [str(x) for x in named if str(x) not in self.skills]
        return picked, rejected


def rank_skills(
    goal: str, skills: Mapping[str, str], embedder: Embedder | None = None
) -> list[tuple[str, float]]:
    """Convenience for a one-off ranking (the service keeps a GoalMapper per curriculum version instead)."""
    scores = GoalMapper(skills, embedder=embedder).similarities(goal)
    order = np.argsort([-scores[c] for c in scores], kind="stable")
    codes = list(scores)
    return [(codes[i], scores[codes[i]]) for i in order]
