"""Serving latency of explanations, against a baseline measured in the same process.

Targets (issue 5): a cached explanation served in p99 < 20 ms through the API; a template explanation in < 5 ms.

What it does, on a fresh SQLite database in a temporary folder (nothing of yours is touched, no data folder is
read): imports the demo course, starts the OpenAI-compatible server (`tutor.llm.server`) with the template backend
on loopback and points the service's `openai` backend at it, records wrong answers of one learner on distinct
items and has each explanation generated and cached through the streaming endpoint. Then it times, through the
Django test client (the whole middleware and API stack, no network):

- baseline: `GET /api/v1/me` (authentication, one small query);
- cached: `POST /api/v1/attempts/{id}/explanation` answered from the cache (a model explanation);
- template (pure): writing a template explanation (`Explainer(TemplateBackend()).explain`), no database;
- template (service, first time): a case nobody asked for yet: the template text written and stored, once as
  its own transaction (SQLite's commit included) and once inside an open transaction, as on the attempt path;
- the attempt path: recording a wrong answer (which now builds the explanation object) against a right one.

Usage: python bench/llm_serving.py [--json] [--n 400] [--items 40]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def summary(samples_s: list[float]) -> dict[str, float]:
    ms = sorted(1000 * s for s in samples_s)

    def pct(q: float) -> float:
        return ms[min(len(ms) - 1, int(round(q * (len(ms) - 1))))]

    return {
        "n": len(ms),
        "mean_ms": round(statistics.fmean(ms), 3),
        "p50_ms": round(pct(0.50), 3),
        "p90_ms": round(pct(0.90), 3),
        "p99_ms": round(pct(0.99), 3),
        "max_ms": round(ms[-1], 3),
    }


def timed(fn: Callable[[], Any], n: int, warmup: int = 20) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON document")
    parser.add_argument("--n", type=int, default=400, help="timed requests per measurement")
    parser.add_argument("--items", type=int, default=40, help="distinct wrong answers cached")
    args = parser.parse_args()

    from tutor.llm.backends.template import TemplateBackend
    from tutor.llm.server import make_server

    server = make_server(TemplateBackend(), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"

    tmp = tempfile.TemporaryDirectory(prefix="bench-llm-")
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "tutor.settings",
            "TUTOR_DATA_DIR": tmp.name,
            "DJANGO_DEBUG": "false",  # no query log: measure what production runs
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(32),
            "TUTOR_LLM_BACKEND": "openai",
            "TUTOR_LLM_BASE_URL": url,
            "TUTOR_LLM_MODEL": "template-v1",
            "TUTOR_LOG_LEVEL": "ERROR",
        }
    )
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction
    from django.test import Client

    from curriculum.generation.demo import demo_course
    from curriculum.models import Item
    from curriculum.services import curriculum_import
    from learners.services import user_create
    from tutor.llm.explain import Explainer
    from tutor.services.explanations import explanation_template, make_case
    from tutor.services.items import item_info

    t0 = time.perf_counter()
    call_command("migrate", verbosity=0)
    curriculum_import(document=demo_course())
    setup_s = time.perf_counter() - t0

    ada = user_create(username="bench", role="learner")
    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {ada['token']}"}
    items = [i for i in Item.objects.order_by("id") if item_info(item=i).known_wrong][: args.items]
    attempts: list[int] = []
    for k, item in enumerate(items):
        wrong = item_info(item=item).known_wrong[0][0]
        r = client.post(
            f"/api/v1/learners/{ada['learner_id']}/attempts",
            data=json.dumps({"item": item.pk, "response": wrong, "client_attempt_id": f"w{k}"}),
            content_type="application/json",
            **auth,
        )
        attempt_id = r.json()["attempt_id"]
        b"".join(client.post(f"/api/v1/attempts/{attempt_id}/explanation?stream=1", **auth).streaming_content)
        attempts.append(attempt_id)
    check = client.post(f"/api/v1/attempts/{attempts[0]}/explanation", **auth).json()
    if not (check["cached"] and check["source"] == "model"):
        raise RuntimeError(f"the explanation was not cached as a model explanation: {check}")

    def baseline() -> None:
        assert client.get("/api/v1/me", **auth).status_code == 200

    cycle = iter(range(10**9))

    def cached() -> None:
        a = attempts[next(cycle) % len(attempts)]
        assert client.post(f"/api/v1/attempts/{a}/explanation", **auth).status_code == 200

    # Interleave the two so that machine noise hits both alike.
    base_s, cached_s = [], []
    for _ in range(20):
        baseline()
        cached()
    for _ in range(args.n):
        base_s.extend(timed(baseline, 1, warmup=0))
        cached_s.extend(timed(cached, 1, warmup=0))

    template = Explainer(TemplateBackend())
    infos = [item_info(item=i) for i in items]
    pure_cycle = iter(range(10**9))

    def template_pure() -> None:
        # A response never seen before, so no cache inside the answer checker helps.
        k = next(pure_cycle)
        template.explain(infos[k % len(infos)], str(500000 + k), level="intermediate", style="worked_example")

    pure_s = timed(template_pure, args.n)

    fresh = iter(range(10**9))

    def template_service() -> None:
        case = make_case(item=items[0], response=str(100000 + next(fresh)), level="beginner", style="analogy")
        _, existed = explanation_template(case)
        if existed:
            raise RuntimeError("the case was meant to be new")

    service_s = timed(template_service, min(args.n, 200), warmup=5)

    class Rollback(Exception):
        pass

    def template_service_in_transaction() -> None:
        # As on the attempt path: inside a transaction that is already open, so no commit of its own.
        try:
            with transaction.atomic():
                template_service()
                raise Rollback
        except Rollback:
            pass

    service_tx_s = timed(template_service_in_transaction, min(args.n, 200), warmup=5)

    pool = list(Item.objects.filter(status="approved").order_by("id")[200:400])
    seq = iter(range(10**9))

    def answer(right: bool) -> Callable[[], None]:
        def run() -> None:
            k = next(seq)
            item = pool[k % len(pool)]
            response = item.answer["value"] if right else "987654"
            if item.answer.get("type") == "choice":
                response = item.answer["value"] if right else ("A" if item.answer["value"] != "A" else "B")
            if item.answer.get("type") == "text":
                response = response if right else "zzz"
            r = client.post(
                f"/api/v1/learners/{ada['learner_id']}/attempts",
                data=json.dumps({"item": item.pk, "response": response, "client_attempt_id": f"p{k}"}),
                content_type="application/json",
                **auth,
            )
            assert r.status_code == 201, r.content

        return run

    right_s, wrong_s = [], []
    n_attempts = min(args.n, 200)
    for _ in range(n_attempts):
        right_s.extend(timed(answer(True), 1, warmup=0))
        wrong_s.extend(timed(answer(False), 1, warmup=0))

    base, cach = summary(base_s), summary(cached_s)
    figures: dict[str, Any] = {
        "setup_s": round(setup_s, 1),
        "cached_items": len(attempts),
        "baseline_me": base,
        "cached_explanation_api": cach,
        "template_explanation_pure": summary(pure_s),
        "template_explanation_service_first": summary(service_s),
        "template_explanation_service_first_no_commit": summary(service_tx_s),
        "attempt_right": summary(right_s),
        "attempt_wrong_with_explanation": summary(wrong_s),
        "ratios": {
            "cached_over_baseline_p50": round(cach["p50_ms"] / base["p50_ms"], 2),
            "cached_over_baseline_p99": round(cach["p99_ms"] / base["p99_ms"], 2),
            "wrong_over_right_attempt_p50": round(summary(wrong_s)["p50_ms"] / summary(right_s)["p50_ms"], 2),
        },
        "targets": {
            "cached_p99_under_20ms": cach["p99_ms"] < 20.0,
            "template_pure_p99_under_5ms": summary(pure_s)["p99_ms"] < 5.0,
            "template_service_no_commit_p99_under_5ms": summary(service_tx_s)["p99_ms"] < 5.0,
        },
    }
    server.shutdown()
    tmp.cleanup()
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    for name, value in figures.items():
        if isinstance(value, dict) and "p99_ms" in value:
            print(
                f"{name:38s} p50 {value['p50_ms']:8.3f} ms   p99 {value['p99_ms']:8.3f} ms   (n={value['n']})"
            )
        else:
            print(f"{name:38s} {value}")


if __name__ == "__main__":
    main()
