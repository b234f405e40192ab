"""Latency of the served path: `/next` and `/attempts` over real HTTP, per active policy, against the v0 mastery
policy measured in the same run.

    python bench/serving.py [--learners 10] [--steps 30] [--untimed 0] [--servers 1] [--json] [--policies a,b]
                            [--course demo|synthetic] [--load KIND=PATH ...]

A fresh SQLite database under a temporary data directory gets the demo course; Django's threaded WSGI server
serves the API in this process; simulated learners (tutor.sim) answer through urllib. The mastery policy runs
first and logs decisions; the bandit is then trained from that log and the simulator-trained kinds (planner,
hierarchical, ppo) in the simulator over the demo course (`policy_train`, sizes from `--training`), and each policy
in `--policies` is activated in turn (whatever OPE said: this measures latency) and measured the same way. Prints
p50/p99 and their ratio to the baseline; with one server, also the full collections of the cycle collector in the
process while each policy was measured (how many, the longest pause). The server runs `tutor.wsgi.application`, the
production entry point (`TUTOR_GC_FREEZE=0` runs it without freezing what startup left alive). With `--untimed N`
every learner first answers N exercises through the API untimed (without dropout, so that all of them get there):
the steady state of a server whose learners have long logs, past the window of answers a policy sees
(`tutor.services.learner_history.WINDOW`) when N exceeds it.
With `--servers K` (K > 1) the API is served instead by K `runserver` processes over the same database and each
request goes to one of them at random, as behind a load balancer: every process serves every learner, so most
decisions find answers that another process recorded since.
With `--course synthetic` the database gets the course `bench/scheduler.py` evaluates on instead of the demo course,
and `--load KIND=PATH` serves a policy that `bench/scheduler.py --save` wrote (its skills are bound to the
database's skills of the same codes): the benchmark's own trained policy, e.g. its full-size `pomdp` plan, measured
through the API without training it again.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._demo_db import scheduler_course, setup_demo_database  # noqa: E402


def bound_to_database(path: Path) -> bytes:
    """A policy file of `bench/scheduler.py --save` with its model's skills (the synthetic course's ids) replaced
    by the database ids of the skills imported under their names (`course_document`)."""
    from curriculum.models import Skill

    head, sep, body = path.read_bytes().partition(b"\n")
    doc = json.loads(head)
    course = scheduler_course()
    code_of = dict(zip(course.skill_ids, course.skill_names, strict=True))
    pk_of = dict(Skill.objects.values_list("code", "id"))
    missing = [s for s in doc["model"]["skills"] if code_of.get(s) not in pk_of]
    if missing:
        raise SystemExit(f"{path}: skills {missing} are not in the database's course (was it saved on another?)")
    doc["model"]["skills"] = [pk_of[code_of[s]] for s in doc["model"]["skills"]]
    return json.dumps(doc).encode() + sep + body


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--learners", type=int, default=10)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--policies", default="bandit,zpdes,planner")
    ap.add_argument("--untimed", type=int, default=0, help="untimed exercises per learner before the timed ones")
    ap.add_argument("--servers", type=int, default=1, help="server processes (1: a threaded server in this process)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--training", default='{"pilot_learners": 100, "tune": false, "ppo_iterations": 20}',
                    help="JSON simulator sizes for the simulator-trained kinds (latency does not depend on them)")
    ap.add_argument("--course", choices=("demo", "synthetic"), default="demo",
                    help="the demo course, or the scheduler benchmark's synthetic course (for --load)")
    ap.add_argument("--load", action="append", default=[], metavar="KIND=PATH",
                    help="serve this policy saved by bench/scheduler.py --save (needs --course synthetic)")
    args = ap.parse_args(argv)
    loads: list[tuple[str, Path]] = []
    for spec in args.load:
        kind, sep, path = spec.partition("=")
        if not sep or not Path(path).is_file():
            ap.error(f"--load {spec!r}: expected KIND=PATH with PATH a file saved by bench/scheduler.py --save")
        loads.append((kind, Path(path)))
    if loads and args.course != "synthetic":
        ap.error("--load serves a policy of the scheduler benchmark's course: add --course synthetic")

    setup_demo_database(args.course)
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    from learners.services import user_create
    from tutor.embedded import web_server_wait
    from tutor.services.policies import policy_activate, policy_version_create
    from tutor.services.policy_simulation import SIM_TRAINED
    from tutor.services.policy_training import policy_train
    from tutor.services.simulation import simulate_http
    from tutor.sim.learners import SimParams

    token = user_create(username="bench-admin", role="admin")["token"]

    class Quiet(WSGIRequestHandler):
        def log_message(self, *a: Any) -> None:
            pass

    procs: list[subprocess.Popen[bytes]] = []
    server = None
    if args.servers > 1:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        bases = []
        for _ in range(args.servers):
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            procs.append(subprocess.Popen(
                [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
            bases.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(bases, procs, strict=True):
            if not web_server_wait(url, proc=proc):
                raise SystemExit(f"server {url} did not start")
        base: str | list[str] = bases
    else:
        server = ThreadedWSGIServer(("127.0.0.1", 0), Quiet)
        from tutor.wsgi import application  # the production entry point (it freezes what startup left alive)

        server.set_app(application)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"

    # Full collections of the cycle collector in this process (one server: the server's) while a policy is
    # measured: each one pauses every request in flight.
    pauses: list[float] = []
    started: list[float] = []

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if info["generation"] == 2:
            if phase == "start":
                started.append(time.perf_counter())
            elif started:
                pauses.append((time.perf_counter() - started.pop()) * 1000)

    gc.callbacks.append(on_gc)

    def measure(label: str, seed: int) -> dict[str, Any]:
        params = SimParams().with_(dropout=0.0, frustration=0.0) if args.untimed else None
        pauses.clear()
        out = simulate_http(base_url=base, admin_token=token, n_learners=args.learners, steps=args.steps,
                            ks=(args.steps,), seed=seed, params=params, untimed_steps=args.untimed)
        out.pop("learner_ids")
        out["policy"] = label
        if server is not None:
            out["full_gc"] = {"n": len(pauses), "max_ms": round(max(pauses, default=0.0), 1),
                              "frozen": gc.get_freeze_count()}
        if not args.json:
            longest = max(pauses, default=0.0)
            gc_note = f"  full gc x{len(pauses)} (max {longest:.0f} ms)" if server is not None else ""
            print(f"{label:<10} next p50 {out['next_ms']['p50']:6.1f} ms  p99 {out['next_ms']['p99']:6.1f} ms   "
                  f"attempt p50 {out['attempt_ms']['p50']:6.1f} ms  p99 {out['attempt_ms']['p99']:6.1f} ms  "
                  f"(n={out['next_ms']['n']}){gc_note}", flush=True)
        return out

    results = {"mastery": measure("mastery", 1)}
    for k, (kind, path) in enumerate(loads):
        label = f"{kind}:{path.name}"
        version, _ = policy_version_create(name=f"bench-{label}", kind=kind, params=bound_to_database(path))
        policy_activate(version_id=version.pk)
        results[label] = measure(label, 100 + k)
    for k, kind in enumerate(p for p in args.policies.split(",") if p):
        if kind == "bandit" or kind in SIM_TRAINED:
            trained = policy_train(kind=kind, min_decisions=10, n_boot=50,
                                   training=json.loads(args.training) if kind in SIM_TRAINED else None)
            assert trained.version is not None, trained.report
            version = trained.version
        else:
            version, _ = policy_version_create(name=f"bench-{kind}", kind=kind)
        try:
            policy_activate(version_id=version.pk)
            results[kind] = measure(kind, 2 + k)
        except Exception as exc:  # noqa: BLE001 - an unfit policy is reported, not fatal
            results[kind] = {"policy": kind, "error": repr(exc)[:300]}
            if not args.json:
                print(f"{kind:<10} failed: {exc!r}"[:300])
    if server is not None:
        server.shutdown()
    for proc in procs:
        proc.terminate()
        proc.wait(30)

    base_next = results["mastery"]["next_ms"]
    for r in results.values():
        if "next_ms" in r:
            r["next_p99_ratio_to_mastery"] = r["next_ms"]["p99"] / base_next["p99"]
            r["next_p50_ratio_to_mastery"] = r["next_ms"]["p50"] / base_next["p50"]
    if args.json:
        print(json.dumps({"learners": args.learners, "steps": args.steps, "untimed": args.untimed,
                          "servers": args.servers, "results": results}, indent=1))
    else:
        print("\nratio of /next latency to the mastery policy (same run):")
        for name, r in results.items():
            if "next_ms" in r:
                print(f"  {name:<10} p50 x{r['next_p50_ratio_to_mastery']:.2f}  p99 x{r['next_p99_ratio_to_mastery']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
