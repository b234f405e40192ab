"""The main job (`manage.py demo`, what `python3 dev.py up` runs) on embedded defaults, as a separate process."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc (Linux)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            found.append(int(entry))
    return found


def test_demo_serves_and_sigterm_stops_everything_it_started(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    env.update(TUTOR_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="tutor.settings", TUTOR_LLM_BACKEND="template")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "demo", "--no-worker", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Press Ctrl-C to stop" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(180), "".join(lines)[-3000:]
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(base + "/api/v1/openapi.json", timeout=10) as r:  # noqa: S310 - our server
            assert r.status == 200
        children = _processes_mentioning(str(tmp_path)) + _processes_mentioning(f"127.0.0.1:{port}")
        assert len(children) >= 2, children  # the embedded Redis and the web server
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 20
        while any(Path(f"/proc/{pid}").exists() for pid in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [pid for pid in children if Path(f"/proc/{pid}").exists()]
        assert not left, f"still running after SIGTERM: {left}"
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in _processes_mentioning(str(tmp_path)) + _processes_mentioning(f"127.0.0.1:{port}"):
            os.kill(pid, signal.SIGKILL)
