"""The main job: everything a newcomer needs, on embedded defaults, in one command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


class Command(BaseCommand):
    help = (
        "Migrate, import the demo course, create demo users, start the embedded Redis, a Celery worker, beat and "
        "the web server, and print the URL and tokens. --simulate plays simulated learners through the API."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("TUTOR_PORT", "8000")))
        parser.add_argument("--simulate", type=int, nargs="?", const=30, default=0, metavar="STEPS",
                            help="play STEPS exercises (default 30) for each demo learner through the API")
        parser.add_argument("--exit", action="store_true", help="stop everything after setup (and simulation)")
        parser.add_argument("--no-worker", action="store_true", help="do not start Celery worker and beat")

    def handle(self, *args: Any, **opts: Any) -> None:
        procs: list[subprocess.Popen[bytes]] = []
        # `kill`, a service manager or a container stop send SIGTERM: stop the children as Ctrl-C does. They run in
        # sessions of their own (so that a Ctrl-C reaches only us), and nothing else would stop them.
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, _terminate)
        try:
            self._run(opts, procs)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            for p in reversed(procs):
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)

    def _spawn(self, procs: list[subprocess.Popen[bytes]], args: list[str], log: Path) -> subprocess.Popen[bytes]:
        fh = log.open("ab")
        proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "DJANGO_SETTINGS_MODULE": "tutor.settings"})
        procs.append(proc)
        return proc

    def _run(self, opts: dict[str, Any], procs: list[subprocess.Popen[bytes]]) -> None:
        from tutor.demo import demo_setup
        from tutor.embedded import embedded_redis_start, redis_url_ping, web_server_wait

        data_dir: Path = settings.DATA_DIR
        data_dir.mkdir(parents=True, exist_ok=True)
        logs = data_dir / "logs"
        logs.mkdir(exist_ok=True)
        self.stdout.write(f"data directory: {data_dir}")
        call_command("migrate", verbosity=0, interactive=False)
        self.stdout.write(f"database migrated: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}")
        info = demo_setup()
        self.stdout.write(f"demo course: {json.dumps(info['curriculum'])}")

        if settings.EMBEDDED_REDIS:
            proc = embedded_redis_start(socket_path=settings.EMBEDDED_REDIS_SOCKET, log_path=logs / "redis.log")
            if proc is not None:
                procs.append(proc)
            self.stdout.write(f"embedded redis: {settings.REDIS_URL}")
        redis_url_ping(settings.REDIS_URL)

        py = sys.executable
        if not opts["no_worker"]:
            self._spawn(procs, [py, "-m", "celery", "-A", "tutor.celery", "worker", "-Q", "default,training,llm",
                                "--concurrency", "1", "--loglevel", "INFO", "-n", "demo@%h"], logs / "worker.log")
            self._spawn(procs, [py, "-m", "celery", "-A", "tutor.celery", "beat", "--loglevel", "INFO",
                                "-s", str(data_dir / "celerybeat-schedule")], logs / "beat.log")
            self.stdout.write(f"celery worker and beat started (logs in {logs})")
        port = opts["port"]
        web = self._spawn(procs, [py, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
                          logs / "web.log")
        base = f"http://127.0.0.1:{port}"
        if not web_server_wait(base, proc=web):
            raise SystemExit(f"web server did not start; see {logs / 'web.log'}")

        users = info["users"]
        self.stdout.write("")
        self.stdout.write(f"Tutor is running at {base}/  (API docs: {base}/api/v1/docs)")
        self.stdout.write(f"Pages: {base}/login/ as ada / ada-demo (learner) or teacher / teacher-demo")
        for name, u in users.items():
            ids = f"learner_id={u['learner_id']}" if u.get("learner_id") else f"classrooms={u['classroom_ids']}"
            self.stdout.write(f"  {u['role']:8s} {name:8s} {ids:18s} token={u['token']}")
        ada = users["ada"]
        self.stdout.write(
            f"\nTry:\n  curl -s -X POST -H 'Authorization: Bearer {ada['token']}' "
            f"{base}/api/v1/learners/{ada['learner_id']}/next"
        )
        if opts["simulate"]:
            self._simulate(base, users["admin"]["token"], info["learner_ids"], opts["simulate"], info["classroom_id"],
                           users["teacher"]["token"])
        if opts["exit"]:
            return
        self.stdout.write("\nPress Ctrl-C to stop.")
        try:
            while all(p.poll() is None for p in procs):
                time.sleep(1)
        except KeyboardInterrupt:
            self.stdout.write("stopping")

    def _simulate(self, base: str, token: str, learner_ids: list[int], steps: int, classroom_id: int,
                  teacher_token: str) -> None:
        from tqdm import tqdm

        from curriculum.models import Item
        from tutor.apiclient import ApiClient, simulate_via_api

        keys = {pk: (answer, diff) for pk, answer, diff in Item.objects.values_list("id", "answer", "difficulty")}
        bar = tqdm(total=steps * len(learner_ids), desc="simulated answers")
        records = simulate_via_api(base_url=base, token=token, learner_ids=learner_ids, steps=steps,
                                   answer_key=keys.__getitem__, on_step=lambda r: bar.update(1))
        bar.close()
        n = len(records)
        accuracy_first = sum(r.correct for r in records[: n // 3]) / max(1, n // 3)
        accuracy_last = sum(r.correct for r in records[-(n // 3):]) / max(1, n // 3)
        self.stdout.write(f"simulated {n} answers: accuracy first third {accuracy_first:.2f}, "
                          f"last third {accuracy_last:.2f}")
        _, room = ApiClient(base, teacher_token).call("GET", f"/api/v1/classrooms/{classroom_id}/mastery")
        self.stdout.write("class mastery by skill (teacher view):")
        for s in room["skills"]:
            mean = "   -" if s["mean_p_mastery"] is None else f"{s['mean_p_mastery']:.2f}"
            self.stdout.write(f"  {s['skill']:28s} mean P(mastery) {mean}  mastered by {s['mastered']}  "
                              f"attempts {s['attempts']}")
