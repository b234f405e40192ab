"""The explanation pipeline: diagnose -> prompt -> generate -> check -> (template fallback), with counts.

Why in this order: the diagnosis is deterministic and part of the cache key, so the same mistake on the same
item at the same level is generated once; the model only phrases what the worked solution already says; and
nothing the model wrote reaches a learner before `checks` has compared its stated result with the key. When the
backend is off, slow, failing, or its text fails a check, the template writer's text is served instead and the
reason is counted, so a broken model degrades the wording, never the correctness.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from curriculum.generation.answers import AnswerSpec, canonical
from tutor.llm.backends.base import BackendError, BackendTimeout, Completion, LLMBackend
from tutor.llm.checks import check_explanation, check_hint, numbers_in, same, stated_result, states_answer
from tutor.llm.constrain import regex_escape
from tutor.llm.diagnose import Diagnosis, diagnose
from tutor.llm.prompts import MAX_TOKENS, PROMPT_VERSION, ExplainRequest, explain_messages
from tutor.llm.writer import solution_steps, template_explanation, template_hint

HINT_MAX_TOKENS = 80

# Sentence text: anything printable but digits, tags, quotes-escapes, newlines and sentence ends (numbers come
# only from the grounded list, sentences end only where the pattern says).
_SENTENCE_CHAR = r"[^\x00-\x1f\\<>0-9.!?]"


def grounded_pattern(
    sources: Sequence[str], *, answer_text: str | None, max_sentences: int = 4, min_sentences: int = 1
) -> str:
    """A regex for model text whose every number appears in `sources` (or is 1, 2 or 10), written as up to
    `max_sentences` sentences, then (for explanations) a last line "Answer: <key>".

    This is what makes a 135M model usable at all: it cannot invent a number, and it cannot end on a result other
    than the key. The checks still run afterwards (length, repetition, reciting the prompt).
    """
    numbers = {"1", "2", "10"}
    for text in sources:
        for n in numbers_in(text):
            numbers.add(n)
            numbers.update(p for p in n.split("/") if p)
    alternatives = "|".join(regex_escape(n) for n in sorted(numbers, key=lambda x: (-len(x), x)))
    num, c = f"(?:{alternatives})", _SENTENCE_CHAR
    sentence = rf"[A-Z]{c}*(?:{num}{c}+)*{num}?[.!?]"  # a number is never followed by another digit
    lo, hi = max(min_sentences - 1, 0), max(max_sentences - 1, min_sentences - 1, 0)
    body = rf"{sentence}(?: {sentence}){{{lo},{hi}}}"
    if answer_text is None:
        return body
    return body + r"\nAnswer: " + regex_escape(answer_text)


@dataclass(frozen=True)
class ItemInfo:
    """What the pipeline needs of an item (the service builds it from the database row)."""

    code: str
    prompt: str
    answer: AnswerSpec
    solution: str = ""
    skills: tuple[str, ...] = ()
    known_wrong: tuple[tuple[str, str], ...] = ()  # from the template: (wrong response, misconception code)

    @cached_property
    def version(self) -> str:
        """Content hash: editing the prompt, key or solution invalidates cached explanations."""
        blob = json.dumps([self.prompt, canonical(self.answer), self.solution], ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @cached_property
    def answer_text(self) -> str:
        return canonical(self.answer)


def explanation_cache_key(
    *,
    item: ItemInfo,
    diagnosis: str,
    level: str,
    backend_version: str,
    kind: str = "explanation",
    style: str = "",
) -> str:
    """(item, diagnosis, level, backend version), plus kind, style and prompt version, which all change the text."""
    parts = [item.code, item.version, diagnosis, level, kind, style, backend_version, PROMPT_VERSION]
    return "expl:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]


@dataclass
class Explanation:
    text: str
    kind: str
    source: str  # "model" | "template"
    diagnosis: Diagnosis
    level: str
    style: str
    backend_version: str
    cache_key: str
    stated_result: str | None
    rejected: list[str] = field(default_factory=list)  # reasons the model's candidates were refused
    completions: list[Completion] = field(default_factory=list)

    @property
    def prompt_tokens(self) -> int:
        return sum(c.prompt_tokens for c in self.completions)

    @property
    def completion_tokens(self) -> int:
        return sum(c.completion_tokens for c in self.completions)

    @property
    def latency_s(self) -> float:
        return sum(c.latency_s for c in self.completions)

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "kind": self.kind,
            "source": self.source,
            "misconception": self.diagnosis.code,
            "diagnosis": self.diagnosis.text,
            "level": self.level,
            "style": self.style,
            "backend_version": self.backend_version,
            "cache_key": self.cache_key,
            "stated_result": self.stated_result,
            "rejected": list(self.rejected),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "latency_s": self.latency_s,
        }


@dataclass
class ExplainStats:
    """What was served and why the model's text was refused (the service exports these as metrics)."""

    requests: int = 0
    served: Counter[str] = field(default_factory=Counter)  # source -> count
    rejected: Counter[str] = field(default_factory=Counter)  # reason -> count of candidates
    candidates: int = 0
    fallbacks: int = 0  # requests where a model was asked but the template was served

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "served": dict(self.served),
            "rejected": dict(self.rejected),
            "candidates": self.candidates,
            "fallbacks": self.fallbacks,
        }


Scorer = Callable[[str, ItemInfo, str, str], float]  # (text, item, level, style) -> predicted helpfulness


class Explainer:
    """Serve checked explanations and hints.

    n_samples: candidates drawn per request (best-of-n when a `scorer` is given, else the first that passes).
    self_consistency: with n_samples >= 3, also require that the majority of the samples' stated results equal
    the key (a model that is right by luck once is refused). None means: on when the backend is `fast`.
    constrain: decode explanations under `grounded_pattern` (sentences whose numbers all come from the item, the
    solution or the learner's answer, then "Answer: <key>"). None means: on for the local backend, whose small
    model otherwise invents numbers; a remote server may not support regex constraints.
    check_template: also run the checks on template text (it passes them by construction, which the tests and
    `bench/llm.py` verify over every template; checking costs up to 5 ms on expression items, sympy).
    """

    def __init__(
        self,
        backend: LLMBackend | None,
        *,
        n_samples: int = 1,
        self_consistency: bool | None = None,
        temperature: float = 0.7,
        timeout: float = 30.0,
        seed: int = 0,
        scorer: Scorer | None = None,
        check_template: bool = False,
        constrain: bool | None = None,
        max_sentences: int = 4,
    ) -> None:
        self.backend = backend
        self.check_template = check_template
        self.constrain = constrain
        self.max_sentences = max_sentences
        self.n_samples = n_samples
        self.self_consistency = self_consistency
        self.temperature = temperature
        self.timeout = timeout
        self.seed = seed
        self.scorer = scorer
        self.stats = ExplainStats()

    @property
    def backend_version(self) -> str:
        return self.backend.version if self.backend is not None else "off"

    def diagnose(self, item: ItemInfo, response: str) -> Diagnosis:
        return diagnose(
            answer_type=str(item.answer.type),
            key=item.answer_text,
            response=response,
            prompt=item.prompt,
            known_wrong=item.known_wrong,
        )

    def cache_key(self, item: ItemInfo, diagnosis: str, level: str, kind: str, style: str) -> str:
        return explanation_cache_key(
            item=item,
            diagnosis=diagnosis,
            level=level,
            backend_version=self.backend_version,
            kind=kind,
            style=style,
        )

    def answer_free_solution(self, item: ItemInfo) -> str:
        """The solution steps before the first one that states the key: all a hint may build on."""
        kept: list[str] = []
        for step in solution_steps(item.solution):
            if states_answer(step, item.answer, item.prompt):
                break
            kept.append(step)
        return "\n".join(kept)

    def _request(
        self, item: ItemInfo, kind: str, response: str | None, diag: Diagnosis, level: str, style: str
    ) -> ExplainRequest:
        return ExplainRequest(
            kind=kind,
            item_prompt=item.prompt,
            answer_text=item.answer_text if kind == "explanation" else "",
            solution=item.solution if kind == "explanation" else self.answer_free_solution(item),
            response=response,
            misconception=diag.code,
            diagnosis_text=diag.text if diag.code != "unknown" else "",
            level=level,
            style=style,
        )

    def _check(self, text: str, item: ItemInfo, req: ExplainRequest) -> list[str]:
        grounding = [item.prompt, req.solution, item.answer_text]
        if req.kind == "explanation":
            return check_explanation(
                text, spec=item.answer, level=req.level, grounding=grounding, response=req.response
            )
        return check_hint(text, spec=item.answer, prompt=item.prompt, grounding=grounding)

    def _template(self, req: ExplainRequest) -> str:
        return template_explanation(req) if req.kind == "explanation" else template_hint(req)

    def _samples(self, req: ExplainRequest, rejected: list[str], completions: list[Completion]) -> list[str]:
        assert self.backend is not None
        messages = explain_messages(req)
        n = max(1, self.n_samples)
        constrain = self.constrain if self.constrain is not None else self.backend.name == "local"
        pattern = None
        if constrain:
            sources = [req.item_prompt, req.solution, req.answer_text, req.response or ""]
            pattern = grounded_pattern(
                sources,
                answer_text=req.answer_text if req.kind == "explanation" else None,
                max_sentences=self.max_sentences if req.kind == "explanation" else 2,
                min_sentences=2 if req.kind == "explanation" else 1,
            )
        texts: list[str] = []
        for i in range(n):
            try:
                done = self.backend.generate(
                    messages,
                    max_tokens=MAX_TOKENS[req.level] if req.kind == "explanation" else HINT_MAX_TOKENS,
                    temperature=0.0 if n == 1 else self.temperature,
                    seed=self.seed + i,
                    timeout=self.timeout,
                    regex=pattern,
                )
            except BackendTimeout:
                rejected.append("timeout")
                break
            except BackendError:
                rejected.append("backend_error")
                break
            completions.append(done)
            texts.append(done.text.strip())
        return texts

    def _run(self, item: ItemInfo, kind: str, response: str | None, level: str, style: str) -> Explanation:
        self.stats.requests += 1
        diag = (
            self.diagnose(item, response)
            if response is not None
            else diagnose(answer_type="none", key="", response="")
        )
        req = self._request(item, kind, response, diag, level, style)
        key = self.cache_key(item, diag.code, level, kind, style)
        rejected: list[str] = []
        completions: list[Completion] = []
        chosen: str | None = None
        if self.backend is not None and self.backend.name != "template":
            texts = self._samples(req, rejected, completions)
            self.stats.candidates += len(texts)
            passing: list[str] = []
            for text in texts:
                reasons = self._check(text, item, req)
                rejected.extend(reasons)
                if not reasons:
                    passing.append(text)
            use_sc = self.self_consistency if self.self_consistency is not None else self.backend.fast
            if passing and kind == "explanation" and use_sc and len(texts) >= 3:
                results = [stated_result(t) for t in texts]
                agree = sum(1 for r in results if r is not None and same(item.answer, r))
                if agree * 2 <= len(texts):
                    rejected.append("inconsistent")
                    passing = []
            if passing:
                chosen = (
                    max(passing, key=lambda t: self.scorer(t, item, level, style))  # type: ignore[misc]
                    if self.scorer is not None and len(passing) > 1
                    else passing[0]
                )
            else:
                self.stats.fallbacks += 1
        elif self.backend is not None:  # the template backend: same text, no round trip through the prompt
            t0 = time.perf_counter()
            text = self._template(req)
            completions.append(
                Completion(
                    text, 0, len(text.split()), time.perf_counter() - t0, "template", self.backend.model
                )
            )
        self.stats.rejected.update(rejected)
        if chosen is not None:
            source = "model"
        else:
            chosen = self._template(req)
            source = "template"
            if self.check_template and self._check(
                chosen, item, req
            ):  # only when the item's solution is unusable
                self.stats.rejected["template_failed_checks"] += 1
                if kind == "hint":
                    chosen = template_hint(
                        ExplainRequest(
                            kind="hint", item_prompt=item.prompt, answer_text="", solution="", level=level
                        )
                    )
        self.stats.served[source] += 1
        return Explanation(
            text=chosen,
            kind=kind,
            source=source,
            diagnosis=diag,
            level=level,
            style=style,
            backend_version=self.backend_version,
            cache_key=key,
            stated_result=stated_result(chosen) if kind == "explanation" else None,
            rejected=rejected,
            completions=completions,
        )

    def explain(
        self, item: ItemInfo, response: str, *, level: str = "intermediate", style: str = "worked_example"
    ) -> Explanation:
        """An explanation of a wrong answer, always stating the key."""
        return self._run(item, "explanation", response, level, style)

    def hint(self, item: ItemInfo, *, level: str = "intermediate", style: str = "short_hint") -> Explanation:
        """A hint before any attempt: built only on answer-free solution steps, and checked never to state the key."""
        return self._run(item, "hint", None, level, style)

    def explain_events(
        self,
        item: ItemInfo,
        response: str | None,
        *,
        level: str = "intermediate",
        style: str = "worked_example",
    ) -> Iterator[dict[str, Any]]:
        """Events for a server-sent-events response: a start event at once, then the checked text in chunks, then
        the whole record. Unchecked model text is never streamed; the early event keeps the page responsive while
        the model works."""
        yield {"event": "start", "backend": self.backend_version}
        done = (
            self.explain(item, response, level=level, style=style)
            if response is not None
            else self.hint(item, level=level, style=style)
        )
        for line in done.text.splitlines(keepends=True):
            yield {"event": "delta", "text": line}
        yield {"event": "done", **done.as_dict()}


def common_wrong_answers(item: ItemInfo, limit: int = 5) -> Sequence[str]:
    """The responses worth pre-generating explanations for (the Celery task walks these)."""
    seen: list[str] = []
    for wrong, _ in item.known_wrong:
        if wrong not in seen:
            seen.append(wrong)
    return seen[:limit]
