"""The backend interface every LLM feature goes through.

One call shape for a local transformers model, any OpenAI-compatible server and the deterministic template
writer, so features never branch on the backend: they ask for a completion (optionally constrained by a JSON
schema or a regex so it always parses), get text plus the accounting that the service records (tokens, latency,
backend and model), and fall back to the template path when a backend raises `BackendError`.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypedDict


class ChatMessage(TypedDict):
    role: str  # "system" | "user" | "assistant"
    content: str


Messages = Sequence[Mapping[str, str]]


class BackendError(RuntimeError):
    """The backend could not produce a completion; callers fall back to the template path."""


class BackendTimeout(BackendError):
    pass


class BackendUnavailable(BackendError):
    """Transport failure after the retries (server down, connection reset)."""


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    backend: str
    model: str
    finish_reason: str = "stop"  # "stop" | "length"

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "latency_s": self.latency_s,
            "backend": self.backend,
            "model": self.model,
            "finish_reason": self.finish_reason,
        }


class CompletionStream:
    """Iterate for text chunks; once exhausted, `completion` holds the whole text and its accounting.

    A stream that is abandoned early never sets `completion` (the generator is closed, which frees the model).
    """

    def __init__(self, chunks: Iterator[str], finish: Callable[[str], Completion]) -> None:
        self._chunks = chunks
        self._finish = finish
        self._parts: list[str] = []
        self.completion: Completion | None = None

    def __iter__(self) -> Iterator[str]:
        for chunk in self._chunks:
            if chunk:
                self._parts.append(chunk)
                yield chunk
        self.completion = self._finish("".join(self._parts))

    def text(self) -> str:
        """Drain the stream and return the whole text."""
        for _ in self:
            pass
        return "".join(self._parts)

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def approx_tokens(text: str) -> int:
    """A deterministic stand-in for a token count where there is no tokenizer (words and punctuation marks)."""
    return len(_TOKEN_RE.findall(text))


def messages_text(messages: Messages) -> str:
    return "\n".join(m.get("content", "") for m in messages)


def validate_messages(messages: Messages) -> None:
    if not messages:
        raise ValueError("messages must not be empty")
    for i, m in enumerate(messages):
        if m.get("role") not in {"system", "user", "assistant"}:
            raise ValueError(f"messages[{i}].role must be system, user or assistant")
        if not isinstance(m.get("content"), str):
            raise ValueError(f"messages[{i}].content must be a string")


class StopScanner:
    """Cuts streamed text at the first stop string without ever emitting a prefix of one that might complete."""

    def __init__(self, stop: Sequence[str] | None) -> None:
        self.stop = [s for s in (stop or []) if s]
        self._pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        buf = self._pending + text
        cut = min((i for s in self.stop if (i := buf.find(s)) >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._pending = ""
            return buf[:cut]
        hold = 0
        for s in self.stop:
            for k in range(min(len(s) - 1, len(buf)), 0, -1):
                if buf.endswith(s[:k]):
                    hold = max(hold, k)
                    break
        self._pending = buf[len(buf) - hold :] if hold else ""
        return buf[: len(buf) - hold]

    def flush(self) -> str:
        out, self._pending = ("" if self.stopped else self._pending), ""
        return out


def cut_at_stop(text: str, stop: Sequence[str] | None) -> tuple[str, bool]:
    scanner = StopScanner(stop)
    out = scanner.feed(text)
    return out + scanner.flush(), scanner.stopped


class LLMBackend(ABC):
    """`fast` says whether several samples per request are affordable (self-consistency checks use it)."""

    name: ClassVar[str]
    model: str = ""
    fast: bool = False

    @property
    def version(self) -> str:
        """Part of every cache key: a new model or prompt format must not serve old cached text."""
        return f"{self.name}:{self.model}"

    @abstractmethod
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
    ) -> Completion: ...

    def stream(
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
    ) -> CompletionStream:
        """Default: generate the whole text, then hand it out in word-sized chunks."""
        start = time.perf_counter()
        done = self.generate(
            messages,
            max_tokens=max_tokens,
            temperature=temperature,
            seed=seed,
            stop=stop,
            timeout=timeout,
            json_schema=json_schema,
            regex=regex,
        )
        chunks = iter(re.findall(r"\S*\s*", done.text))

        def finish(text: str) -> Completion:
            return Completion(
                text,
                done.prompt_tokens,
                done.completion_tokens,
                time.perf_counter() - start,
                done.backend,
                done.model,
                done.finish_reason,
            )

        return CompletionStream(chunks, finish)
