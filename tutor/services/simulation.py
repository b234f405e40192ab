"""End-to-end evaluation of the served path: simulated learners (tutor.sim) answer through the real HTTP API.

Each simulated learner gets a learner record; an admin token requests `/next` and posts `/attempts` on their
behalf. The simulator decides whether the answer is right from its true state, the driver sends the key or a
plausible wrong response, and the post-test is read from the simulator's true state — the same measures as the
in-process harness, so the two can be compared.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from curriculum.models import Item
from curriculum.selectors import curriculum_export
from learners.models import Learner
from tutor.apiclient import ApiClient, wrong_response
from tutor.sim.course import course_from_document
from tutor.sim.learners import Population, SimParams


def simulate_http(
    *,
    base_url: str | Sequence[str],
    admin_token: str,
    n_learners: int,
    steps: int,
    ks: Sequence[int] = (10, 20, 50),
    seed: int = 0,
    params: SimParams | None = None,
    progress: Callable[[int, int], None] | None = None,
    untimed_steps: int = 0,
) -> dict[str, Any]:
    """`steps` exercises per learner through the API; with `untimed_steps`, that many come first without
    being timed (learners with a long log, served by a process that has seen them: the steady state). Several
    base URLs (server processes over one database) get each request at random, as a load balancer would."""
    doc = curriculum_export()
    course = course_from_document(doc)
    codes = [it["code"] for it in doc["items"]]
    pk_of = dict(Item.objects.filter(code__in=codes).values_list("code", "id"))
    item_pk = [pk_of[c] for c in codes]
    position = {pk: k for k, pk in enumerate(item_pk)}
    answers = {it["code"]: it["answer"] for it in doc["items"]}
    pop = Population(course, params or SimParams(), n_learners, seed)
    run = uuid.uuid4().hex[:8]
    learners = [Learner.objects.create(display_name=f"sim-{run}-{k}") for k in range(n_learners)]
    urls = [base_url] if isinstance(base_url, str) else list(base_url)
    clients = [ApiClient(u, admin_token) for u in urls]
    rng = np.random.default_rng(seed)
    route = np.random.default_rng([seed, 1])  # which server gets each request

    def client() -> ApiClient:
        return clients[int(route.integers(len(clients)))]

    next_ms: list[float] = []
    attempt_ms: list[float] = []
    post_test: dict[int, float] = {}
    served_correct: list[bool] = []
    total = untimed_steps + steps
    for step in range(1, total + 1):
        timed = step > untimed_steps
        active = np.flatnonzero(pop.state.active)
        if len(active) == 0:
            break
        items = np.zeros(n_learners, dtype=np.int64)
        decisions: dict[int, dict[str, Any]] = {}
        for row in active:
            t0 = time.perf_counter()
            status, served = client().call("POST", f"/api/v1/learners/{learners[row].pk}/next")
            if timed:
                next_ms.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                raise RuntimeError(f"/next answered {status}: {served}")
            items[row] = position[served["item_id"]]
            decisions[int(row)] = served
        correct = pop.step(items)
        for learner_row, served in decisions.items():
            answer = answers[served["code"]]
            ok = bool(correct[learner_row])
            if ok:
                response = str(answer["value"]).split("|")[0] if answer["type"] == "text" else str(answer["value"])
            else:
                response = wrong_response(answer, rng)
            t0 = time.perf_counter()
            status, result = client().call(
                "POST",
                f"/api/v1/learners/{learners[learner_row].pk}/attempts",
                {"item": served["item_id"], "response": response, "client_attempt_id": f"{run}-{step}",
                 "decision_id": served["decision_id"]},
            )
            if timed:
                attempt_ms.append((time.perf_counter() - t0) * 1000)
            if status not in (200, 201):
                raise RuntimeError(f"/attempts answered {status}: {result}")
            if result["correct"] != ok:
                raise RuntimeError(f"the service judged {response!r} for {served['code']} as {result['correct']}")
            served_correct.append(ok)
        if step in ks:
            post_test[step] = float(pop.post_test().mean())
        if progress:
            progress(step, total)

    def pct(values: list[float], q: float) -> float:
        return float(np.percentile(values, q)) if values else float("nan")

    return {
        "learners": n_learners,
        "steps": steps,
        "post_test": post_test,
        "share_all_known": float(pop.all_known().mean()),
        "accuracy": float(np.mean(served_correct)) if served_correct else float("nan"),
        "next_ms": {"p50": pct(next_ms, 50), "p99": pct(next_ms, 99), "n": len(next_ms)},
        "attempt_ms": {"p50": pct(attempt_ms, 50), "p99": pct(attempt_ms, 99), "n": len(attempt_ms)},
        "learner_ids": [lr.pk for lr in learners],
    }
