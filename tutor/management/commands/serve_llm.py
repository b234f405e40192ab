"""Serve the configured (or named) LLM backend as an OpenAI-compatible endpoint.

One model process serves every web and Celery worker, which then use `TUTOR_LLM_BACKEND=openai` with
`TUTOR_LLM_BASE_URL=http://HOST:PORT/v1` and never import torch.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tutor.llm.backends import BACKENDS


class Command(BaseCommand):
    help = "Serve an LLM backend as an OpenAI-compatible chat-completions endpoint (/v1/chat/completions)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8001, help="port (default 8001; 0 picks a free one)")
        parser.add_argument(
            "--backend",
            default=None,
            help=f"one of {', '.join(sorted(BACKENDS))} (default: TUTOR_LLM_BACKEND, or local when that is openai)",
        )
        parser.add_argument(
            "--model-name", default=None, help="the model id clients send (default: the backend's)"
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=None,
            help="seconds per request (default TUTOR_LLM_TIMEOUT_S x 4)",
        )
        parser.add_argument("--no-warm", action="store_true", help="do not load the model before serving")

    def handle(self, *args: Any, **options: Any) -> None:
        from tutor.llm.server import make_server
        from tutor.services.llm import llm_backend, llm_backend_name, llm_timeout

        name = options["backend"] or llm_backend_name()
        if name == "openai" and options["backend"] is None:
            name = "local"  # a server in front of another server is a proxy nobody asked for
        if name == "off":
            raise CommandError("LLM features are off (TUTOR_LLM_BACKEND=off): name a --backend to serve")
        if name not in BACKENDS:
            raise CommandError(f"unknown backend {name!r}; choose one of {', '.join(sorted(BACKENDS))}")
        backend = llm_backend(name)
        assert backend is not None
        load = getattr(backend, "load", None)
        if load is not None and not options["no_warm"]:
            self.stderr.write(f"loading {backend.version} ...")
            load()
        timeout = options["timeout"] or 4 * llm_timeout()
        try:
            server = make_server(
                backend, options["host"], options["port"], model_name=options["model_name"], timeout=timeout
            )
        except OSError as exc:
            raise CommandError(f"cannot bind {options['host']}:{options['port']}: {exc}") from exc
        bound, port = server.server_address[0], server.server_address[1]
        host = bound.decode() if isinstance(bound, bytes) else bound
        # One line a supervisor (or a test) can read: where clients should point TUTOR_LLM_BASE_URL.
        self.stdout.write(f"serving {backend.version} on http://{host}:{port}/v1")
        self.stdout.flush()

        def stop(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
            sys.stdout.flush()
