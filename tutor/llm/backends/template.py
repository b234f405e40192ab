"""The model-free backend: the template writer behind the common interface.

It reads the tagged sections of prompts built by `tutor.llm.prompts` and answers with the deterministic template
text, so it can sit behind the OpenAI-compatible server (tests of the `openai` backend need no model) and be the
backend of choice when no model is wanted. A constrained request gets the template text when it matches the
constraint, otherwise the shortest text that does.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from tutor.llm.backends.base import (
    Completion,
    LLMBackend,
    Messages,
    approx_tokens,
    cut_at_stop,
    messages_text,
    validate_messages,
)
from tutor.llm.constrain import RegexDFA, constraint_pattern
from tutor.llm.prompts import LEVELS, STYLES, ExplainRequest, parse_sections, unquote_learner_text
from tutor.llm.writer import template_explanation, template_hint, template_scene, template_story

TEMPLATE_VERSION = "template-v1"


def _words(text: str) -> set[str]:
    return {w.rstrip("s") for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 2}


class TemplateBackend(LLMBackend):
    name = "template"
    fast = True

    def __init__(self, model: str = TEMPLATE_VERSION) -> None:
        self.model = model
        self._dfas: dict[str, RegexDFA] = {}

    def _write(self, messages: Messages, seed: int | None) -> str | dict[str, Any]:
        users = [m.get("content", "") for m in messages if m.get("role") == "user"]
        sections, meta = parse_sections(users[-1] if users else "")
        kind = meta.get("kind", "")
        if kind in {"explanation", "hint"}:
            response = sections.get("learner_answer")
            req = ExplainRequest(
                kind=kind,
                item_prompt=sections.get("exercise", ""),
                answer_text=sections.get("correct_answer", ""),
                solution=sections.get("worked_solution", ""),
                response=None if response is None else unquote_learner_text(response),
                misconception=meta.get("misconception", "unknown"),
                diagnosis_text=sections.get("likely_mistake", ""),
                level=meta.get("level", "intermediate") if meta.get("level") in LEVELS else "intermediate",
                style=meta.get("style", "worked_example")
                if meta.get("style") in STYLES
                else "worked_example",
            )
            return template_explanation(req) if kind == "explanation" else template_hint(req)
        if kind == "scene":
            name = meta.get("name", "Maya")
            theme, opening = meta.get("theme", ""), meta.get("opening")
            return {"scene": template_scene(name, theme, sections.get("brief", ""), opening)}
        if kind == "story":
            return {
                "story": template_story(
                    sections.get("brief", ""), meta.get("name", "Maya"), meta.get("theme", "")
                )
            }
        if kind == "goal":
            goal = _words(unquote_learner_text(sections.get("goal", "")))
            picked = []
            for line in sections.get("skills", "").splitlines():
                code, _, desc = line.partition(":")
                if code.strip() and goal & _words(code.replace("_", " ") + " " + desc.split(".")[0]):
                    picked.append(code.strip())
            return {"skills": picked}
        return "The template backend answers tutoring prompts only."

    def generate(
        self,
        messages: Messages,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int | None = None,
        stop: Sequence[str] | None = None,
        timeout: float = 30.0,
        json_schema: Mapping[str, Any] | None = None,
        regex: str | None = None,
    ) -> Completion:
        start = time.perf_counter()
        validate_messages(messages)
        written = self._write(messages, seed)
        pattern = constraint_pattern(json_schema, regex)
        finish = "stop"
        if pattern is not None:
            text = written if isinstance(written, str) else json.dumps(written, ensure_ascii=False)
            dfa = self._dfas.get(pattern)
            if dfa is None:
                dfa = self._dfas[pattern] = RegexDFA(pattern)
            if not dfa.fullmatch(text):
                text = dfa.example()
        else:
            text = written if isinstance(written, str) else json.dumps(written, ensure_ascii=False)
            text, _ = cut_at_stop(text, stop)
            words = re.findall(r"\S+\s*", text)
            if approx_tokens(text) > max_tokens:
                kept: list[str] = []
                for w in words:
                    if approx_tokens("".join([*kept, w])) > max_tokens:
                        break
                    kept.append(w)
                text = "".join(kept).rstrip()
                finish = "length"
        return Completion(
            text=text,
            prompt_tokens=approx_tokens(messages_text(messages)),
            completion_tokens=approx_tokens(text),
            latency_s=time.perf_counter() - start,
            backend=self.name,
            model=self.model,
            finish_reason=finish,
        )
