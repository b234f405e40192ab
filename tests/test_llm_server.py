"""The OpenAI-compatible server, exercised over loopback with the `openai` backend as its client."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tutor.llm.backends import BackendError, BackendTimeout, BackendUnavailable, get_backend
from tutor.llm.backends.base import Completion, LLMBackend, Messages
from tutor.llm.backends.openai import OpenAIBackend
from tutor.llm.backends.template import TemplateBackend
from tutor.llm.prompts import ExplainRequest, explain_messages
from tutor.llm.server import RequestError, make_server, parse_request

REQ = ExplainRequest(
    kind="explanation",
    item_prompt="What is 52 - 17?",
    answer_text="35",
    solution="52 - 17: take away 10 to get 42, then 7 more to get 35.",
    response="45",
    misconception="off_by_ten",
    level="intermediate",
)


@pytest.fixture
def served() -> Iterator[tuple[str, LLMBackend]]:
    backend = TemplateBackend()
    server = make_server(backend, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", backend
    server.shutdown()
    server.server_close()


def test_openai_backend_gets_the_same_text_as_the_backend_behind_the_server(served: Any) -> None:
    url, backend = served
    client = get_backend("openai", base_url=url, model="template-v1")
    assert isinstance(client, OpenAIBackend)
    assert client.models() == ["template-v1"]
    msgs = explain_messages(REQ)
    direct = backend.generate(msgs)
    remote = client.generate(msgs)
    assert remote.text == direct.text
    assert (remote.prompt_tokens, remote.completion_tokens) == (
        direct.prompt_tokens,
        direct.completion_tokens,
    )
    assert (remote.backend, remote.model, remote.finish_reason) == ("openai", "template-v1", "stop")
    assert remote.latency_s > 0
    assert client.version == f"openai:template-v1@{url}"


def test_streaming_over_sse_yields_chunks_and_usage(served: Any) -> None:
    url, backend = served
    client = OpenAIBackend(url, "template-v1")
    stream = client.stream(explain_messages(REQ))
    chunks = list(stream)
    direct = backend.generate(explain_messages(REQ))
    assert len(chunks) > 5
    assert "".join(chunks) == direct.text
    assert stream.completion is not None
    assert stream.completion.completion_tokens == direct.completion_tokens
    assert stream.completion.prompt_tokens == direct.prompt_tokens


def test_json_schema_and_regex_travel_to_the_backend(served: Any) -> None:
    url, _ = served
    client = OpenAIBackend(url)
    schema = {"type": "object", "properties": {"n": {"type": "integer"}, "ok": {"type": "boolean"}}}
    assert json.loads(client.generate([{"role": "user", "content": "hi"}], json_schema=schema).text) == {
        "n": 0,
        "ok": True,
    }
    assert client.generate([{"role": "user", "content": "hi"}], regex=r"(?:yes|no)!").text == "no!"


def test_bad_requests_are_400_with_the_field_named(served: Any) -> None:
    url, _ = served
    body = json.dumps({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}).encode()
    req = urllib.request.Request(
        url + "/chat/completions", data=body, headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 400
    assert json.loads(err.value.read())["error"]["param"] == "max_tokens"
    client = OpenAIBackend(url, max_retries=3, backoff_s=0.01)
    with pytest.raises(BackendError, match="HTTP 400"):
        client.generate([{"role": "user", "content": "x"}], max_tokens=99999)
    assert client.retries_ == 0  # an HTTP answer is not a transport failure: no retry


def test_parse_request_reads_openai_fields() -> None:
    got = parse_request(
        {
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
            ],
            "max_completion_tokens": 7,
            "stop": "END",
            "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "integer"}}},
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )
    assert got["messages"] == [{"role": "user", "content": "ab"}]
    assert (got["max_tokens"], got["stop"], got["json_schema"], got["stream"], got["include_usage"]) == (
        7,
        ["END"],
        {"type": "integer"},
        True,
        True,
    )
    for bad, param in [
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "x", "content": "a"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": "a"}], "temperature": 3}, "temperature"),
        (
            {"messages": [{"role": "user", "content": "a"}], "response_format": {"type": "json_object"}},
            "response_format",
        ),
    ]:
        with pytest.raises(RequestError) as exc:
            parse_request(bad)
        assert exc.value.param == param


def test_transport_errors_are_retried_then_reported() -> None:
    server = make_server(TemplateBackend(), "127.0.0.1", 0)
    port = server.server_address[1]
    server.server_close()  # nothing listens there any more
    client = OpenAIBackend(f"http://127.0.0.1:{port}/v1", max_retries=2, backoff_s=0.001)
    with pytest.raises(BackendUnavailable):
        client.generate([{"role": "user", "content": "x"}])
    assert client.retries_ == 2


class _FlakyHandler(BaseHTTPRequestHandler):
    calls = 0

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        type(self).calls += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        if type(self).calls == 1:
            self.close_connection = True  # hang up without an answer: a transport failure
            return
        data = json.dumps(
            {"model": "m", "choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_a_dropped_connection_is_retried_once_and_succeeds() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FlakyHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = OpenAIBackend(f"http://127.0.0.1:{server.server_address[1]}/v1", backoff_s=0.001)
        done = client.generate([{"role": "user", "content": "x"}])
        assert (done.text, done.model, client.retries_) == ("ok", "m", 1)
        assert done.completion_tokens == 1  # no usage in the answer: counted locally
    finally:
        server.shutdown()
        server.server_close()


class _Slow(LLMBackend):
    name = "slow"
    model = "slow"

    def generate(self, messages: Messages, *, timeout: float = 30.0, **kw: Any) -> Completion:
        time.sleep(0.5)
        return Completion("late", 1, 1, 0.5, "slow", "slow")


def test_client_timeout_is_a_backend_timeout() -> None:
    server = make_server(_Slow(), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = OpenAIBackend(f"http://127.0.0.1:{server.server_address[1]}/v1", backoff_s=0.001)
        with pytest.raises(BackendTimeout):
            client.generate([{"role": "user", "content": "x"}], timeout=0.2)
    finally:
        server.shutdown()
        server.server_close()


class _Failing(LLMBackend):
    name = "failing"
    model = "failing"

    def generate(self, messages: Messages, **kw: Any) -> Completion:
        raise BackendTimeout("model too slow")

    def stream(self, messages: Messages, **kw: Any) -> Any:
        raise BackendError("model broken")


def test_backend_failures_map_to_gateway_statuses() -> None:
    server = make_server(_Failing(), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = OpenAIBackend(f"http://127.0.0.1:{server.server_address[1]}/v1")
        with pytest.raises(BackendError, match="HTTP 504"):
            client.generate([{"role": "user", "content": "x"}])
        with pytest.raises(BackendError, match="HTTP 502"):
            client.stream([{"role": "user", "content": "x"}]).text()
    finally:
        server.shutdown()
        server.server_close()
