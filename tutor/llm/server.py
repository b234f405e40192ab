"""An OpenAI-compatible HTTP server over any backend (what `python manage.py serve_llm` runs).

Why: one model process serves every web and Celery worker, so they never import torch; and because it speaks the
common chat-completions protocol, the `openai` backend is tested against it and can be pointed at vLLM or
llama.cpp later with no code change. Standard library only (ThreadingHTTPServer): the traffic is a handful of
workers, and the backend serialises generation anyway.

Endpoints: `POST /v1/chat/completions` (with `stream: true` as server-sent events, `response_format` of type
`json_schema`, and vLLM's `guided_regex`), `GET /v1/models`, `GET /health`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tutor.llm.backends.base import BackendError, BackendTimeout, LLMBackend

logger = logging.getLogger(__name__)

MAX_BODY = 1_000_000
MAX_TOKENS_LIMIT = 4096


class RequestError(ValueError):
    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def _content(value: Any, i: int) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # the "content parts" form: keep the text parts
        parts = [p.get("text", "") for p in value if isinstance(p, dict) and p.get("type") == "text"]
        return "".join(str(p) for p in parts)
    raise RequestError(f"messages[{i}].content must be a string", f"messages[{i}].content")


def parse_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a chat-completions body into backend keyword arguments (400 with the field named otherwise)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("messages must be a non-empty list", "messages")
    msgs = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in {"system", "user", "assistant"}:
            raise RequestError(f"messages[{i}].role must be system, user or assistant", f"messages[{i}].role")
        msgs.append({"role": m["role"], "content": _content(m.get("content"), i)})
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens", 256))
    if (
        not isinstance(max_tokens, int)
        or isinstance(max_tokens, bool)
        or not 1 <= max_tokens <= MAX_TOKENS_LIMIT
    ):
        raise RequestError(f"max_tokens must be an integer in 1..{MAX_TOKENS_LIMIT}", "max_tokens")
    temperature = body.get("temperature", 0.0)
    if not isinstance(temperature, int | float) or isinstance(temperature, bool) or not 0 <= temperature <= 2:
        raise RequestError("temperature must be a number in 0..2", "temperature")
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise RequestError("seed must be an integer", "seed")
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and (not isinstance(stop, list) or not all(isinstance(s, str) for s in stop)):
        raise RequestError("stop must be a string or a list of strings", "stop")
    json_schema = None
    fmt = body.get("response_format")
    if fmt is not None:
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        if kind == "json_schema":
            schema = (fmt.get("json_schema") or {}).get("schema")
            if not isinstance(schema, dict):
                raise RequestError("response_format.json_schema.schema must be an object", "response_format")
            json_schema = schema
        elif kind != "text":
            raise RequestError("response_format.type must be text or json_schema", "response_format")
    regex = body.get("guided_regex")
    if regex is not None and not isinstance(regex, str):
        raise RequestError("guided_regex must be a string", "guided_regex")
    if regex is not None and json_schema is not None:
        raise RequestError("give response_format or guided_regex, not both", "guided_regex")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError("stream must be a boolean", "stream")
    return {
        "messages": msgs,
        "max_tokens": max_tokens,
        "temperature": float(temperature),
        "seed": seed,
        "stop": stop,
        "json_schema": json_schema,
        "regex": regex,
        "stream": stream,
        "include_usage": bool((body.get("stream_options") or {}).get("include_usage")),
    }


def make_handler(
    backend: LLMBackend, model_name: str, timeout: float, lock: threading.Lock
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "tutor-llm/1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
            logger.debug("%s " + format, self.address_string(), *args)

        def _json(self, status: int, payload: Mapping[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str, kind: str, param: str | None = None) -> None:
            self._json(status, {"error": {"message": message, "type": kind, "param": param, "code": status}})

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._json(
                    200,
                    {
                        "object": "list",
                        "data": [
                            {"id": model_name, "object": "model", "created": 0, "owned_by": backend.name}
                        ],
                    },
                )
            elif self.path.rstrip("/") == "/health":
                self._json(200, {"status": "ok", "backend": backend.name, "version": backend.version})
            else:
                self._error(404, f"no route {self.path}", "not_found")

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._error(404, f"no route {self.path}", "not_found")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_BODY:
                self._error(
                    413 if length > MAX_BODY else 400, "body missing or too large", "invalid_request_error"
                )
                return
            try:
                body = json.loads(self.rfile.read(length))
                if not isinstance(body, dict):
                    raise RequestError("body must be a JSON object")
                req = parse_request(body)
            except RequestError as exc:
                self._error(400, str(exc), "invalid_request_error", exc.param)
                return
            except ValueError as exc:
                self._error(400, f"invalid JSON: {exc}", "invalid_request_error")
                return
            stream, include_usage = req.pop("stream"), req.pop("include_usage")
            cid = "chatcmpl-" + uuid.uuid4().hex[:24]
            if stream:
                self._stream(cid, req, include_usage)
                return
            try:
                with lock:
                    done = backend.generate(timeout=timeout, **req)
            except BackendTimeout as exc:
                self._error(504, str(exc), "timeout")
                return
            except BackendError as exc:
                self._error(502, str(exc), "backend_error")
                return
            except ValueError as exc:
                self._error(400, str(exc), "invalid_request_error")
                return
            self._json(
                200,
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model_name,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": done.text},
                            "finish_reason": done.finish_reason,
                        }
                    ],
                    "usage": {
                        "prompt_tokens": done.prompt_tokens,
                        "completion_tokens": done.completion_tokens,
                        "total_tokens": done.prompt_tokens + done.completion_tokens,
                    },
                },
            )

        def _event(self, payload: Mapping[str, Any] | str) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            self.wfile.write(f"data: {data}\n\n".encode())
            self.wfile.flush()

        def _stream(self, cid: str, req: dict[str, Any], include_usage: bool) -> None:
            created = int(time.time())

            def chunk(delta: Mapping[str, Any], finish: str | None) -> dict[str, Any]:
                return {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model_name,
                    "choices": [{"index": 0, "delta": dict(delta), "finish_reason": finish}],
                }

            with lock:
                try:
                    s = backend.stream(timeout=timeout, **req)
                    it = iter(s)
                    first = next(it, None)
                except BackendTimeout as exc:
                    self._error(504, str(exc), "timeout")
                    return
                except BackendError as exc:
                    self._error(502, str(exc), "backend_error")
                    return
                except ValueError as exc:
                    self._error(400, str(exc), "invalid_request_error")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    self._event(chunk({"role": "assistant", "content": ""}, None))
                    if first is not None:
                        self._event(chunk({"content": first}, None))
                    for piece in it:
                        self._event(chunk({"content": piece}, None))
                    done = s.completion
                    self._event(chunk({}, done.finish_reason if done else "stop"))
                    if include_usage and done is not None:
                        usage = {
                            "prompt_tokens": done.prompt_tokens,
                            "completion_tokens": done.completion_tokens,
                            "total_tokens": done.prompt_tokens + done.completion_tokens,
                        }
                        self._event({**chunk({}, None), "choices": [], "usage": usage})
                    self._event("[DONE]")
                except BackendError as exc:
                    self._event({"error": {"message": str(exc), "type": "backend_error"}})
                except (BrokenPipeError, ConnectionResetError):
                    s.close()  # the client went away: stop generating

    return Handler


def make_server(
    backend: LLMBackend,
    host: str = "127.0.0.1",
    port: int = 8001,
    *,
    model_name: str | None = None,
    timeout: float = 120.0,
    serialize: bool = True,
) -> ThreadingHTTPServer:
    """A bound server (port 0 picks a free one: read `server.server_address`); call `serve_forever()`.

    `serialize` runs one request at a time: a CPU model gains nothing from concurrent decoding.
    """
    lock: Any = threading.Lock() if serialize else _NoLock()
    handler = make_handler(backend, model_name or backend.model or backend.name, timeout, lock)
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def serve(
    backend: LLMBackend,
    host: str = "127.0.0.1",
    port: int = 8001,
    *,
    model_name: str | None = None,
    timeout: float = 120.0,
) -> None:
    """Serve until interrupted (the `serve_llm` management command calls this)."""
    server = make_server(backend, host, port, model_name=model_name, timeout=timeout)
    logger.info("serving %s on http://%s:%s/v1", backend.version, *server.server_address[:2])
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
