"""The `openai` backend: any OpenAI-compatible chat-completions server (vLLM, llama.cpp, Ollama, a hosted API,
or our own `serve_llm`), over the standard library's urllib so the web process needs no extra client package.

Retries cover transport failures only (connection refused or reset, timeouts, a truncated response) with
exponential backoff and jitter; an HTTP error status is an answer, not a transport failure, and is raised at once
(a 400 will not improve on retry, and a bad completion is the checks' business, not the transport's). A stream is
retried only before its first chunk has been handed out, so no caller ever sees text twice.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from tutor.llm.backends.base import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    Completion,
    CompletionStream,
    LLMBackend,
    Messages,
    approx_tokens,
    messages_text,
    validate_messages,
)

TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    urllib.error.URLError,
    ConnectionError,
    TimeoutError,
    socket.timeout,
    http.client.IncompleteRead,
    http.client.RemoteDisconnected,
    http.client.BadStatusLine,
)


def _is_transport(exc: BaseException) -> bool:
    return isinstance(exc, TRANSPORT_ERRORS) and not isinstance(exc, urllib.error.HTTPError)


class OpenAIBackend(LLMBackend):
    name = "openai"

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8001/v1",
        model: str = "default",
        *,
        api_key: str | None = None,
        max_retries: int = 2,
        backoff_s: float = 0.5,
        fast: bool = False,
        random_state: int | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.fast = fast
        self._rng = random.Random(random_state)
        self.retries_ = 0

    @property
    def version(self) -> str:
        return f"openai:{self.model}@{self.base_url}"

    def _body(
        self,
        messages: Messages,
        *,
        max_tokens: int,
        temperature: float,
        seed: int | None,
        stop: Sequence[str] | None,
        json_schema: Mapping[str, Any] | None,
        regex: str | None,
        stream: bool,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        if seed is not None:
            body["seed"] = seed
        if stop:
            body["stop"] = list(stop)
        if json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": dict(json_schema), "strict": True},
            }
        if regex is not None:
            body["guided_regex"] = regex  # vLLM's name; our server reads it too
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def _open(self, path: str, body: dict[str, Any] | None, timeout: float) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, headers=headers)
        try:
            return urllib.request.urlopen(req, timeout=timeout)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise BackendError(f"HTTP {exc.code} from {self.base_url}{path}: {detail}") from exc

    def _backoff(self, attempt: int) -> None:
        self.retries_ += 1
        time.sleep(self.backoff_s * (2**attempt) * (0.5 + self._rng.random()))

    def models(self, timeout: float = 10.0) -> list[str]:
        with self._open("/models", None, timeout) as resp:
            return [m["id"] for m in json.loads(resp.read())["data"]]

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
        validate_messages(messages)
        body = self._body(
            messages,
            max_tokens=max_tokens,
            temperature=temperature,
            seed=seed,
            stop=stop,
            json_schema=json_schema,
            regex=regex,
            stream=False,
        )
        start = time.perf_counter()
        deadline = time.monotonic() + timeout
        for attempt in range(self.max_retries + 1):
            left = deadline - time.monotonic()
            if left <= 0:
                raise BackendTimeout(f"no answer from {self.base_url} within {timeout} s")
            try:
                with self._open("/chat/completions", body, left) as resp:
                    payload = json.loads(resp.read())
                break
            except BaseException as exc:
                if not _is_transport(exc):
                    raise
                if attempt == self.max_retries:
                    if isinstance(exc, TimeoutError | socket.timeout):
                        raise BackendTimeout(f"no answer from {self.base_url} within {timeout} s") from exc
                    raise BackendUnavailable(f"{self.base_url}: {exc}") from exc
                self._backoff(attempt)
        try:
            choice = payload["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise BackendError(f"malformed completion from {self.base_url}: {str(payload)[:200]}") from exc
        usage = payload.get("usage") or {}
        return Completion(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens", approx_tokens(messages_text(messages)))),
            completion_tokens=int(usage.get("completion_tokens", approx_tokens(text))),
            latency_s=time.perf_counter() - start,
            backend=self.name,
            model=str(payload.get("model", self.model)),
            finish_reason=str(choice.get("finish_reason") or "stop"),
        )

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
        validate_messages(messages)
        body = self._body(
            messages,
            max_tokens=max_tokens,
            temperature=temperature,
            seed=seed,
            stop=stop,
            json_schema=json_schema,
            regex=regex,
            stream=True,
        )
        start = time.perf_counter()
        deadline = time.monotonic() + timeout
        state: dict[str, Any] = {"usage": None, "finish_reason": "stop", "model": self.model}

        def events(resp: Any) -> Iterator[str]:
            for raw in resp:
                if time.monotonic() > deadline:
                    raise BackendTimeout(f"stream from {self.base_url} exceeded {timeout} s")
                line = raw.decode("utf-8").strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                event = json.loads(data)
                state["model"] = event.get("model", state["model"])
                if event.get("usage"):
                    state["usage"] = event["usage"]
                for choice in event.get("choices") or []:
                    if choice.get("finish_reason"):
                        state["finish_reason"] = choice["finish_reason"]
                    delta = (choice.get("delta") or {}).get("content")
                    if delta:
                        yield delta

        def chunks() -> Iterator[str]:
            for attempt in range(self.max_retries + 1):
                sent = False
                try:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise BackendTimeout(f"no answer from {self.base_url} within {timeout} s")
                    with self._open("/chat/completions", body, left) as resp:
                        for delta in events(resp):
                            sent = True
                            yield delta
                    return
                except BaseException as exc:
                    if sent or not _is_transport(exc):
                        raise
                    if attempt == self.max_retries:
                        raise BackendUnavailable(f"{self.base_url}: {exc}") from exc
                    self._backoff(attempt)

        def finish(text: str) -> Completion:
            usage = state["usage"] or {}
            return Completion(
                text=text,
                prompt_tokens=int(usage.get("prompt_tokens", approx_tokens(messages_text(messages)))),
                completion_tokens=int(usage.get("completion_tokens", approx_tokens(text))),
                latency_s=time.perf_counter() - start,
                backend=self.name,
                model=str(state["model"]),
                finish_reason=str(state["finish_reason"]),
            )

        return CompletionStream(chunks(), finish)
