"""Simulated learners that answer through the real HTTP API (`/next`, then `/attempts`), so the served path is
exercised end to end: what `manage.py demo --simulate` shows a newcomer, and what the end-to-end checks measure.

The driver is an operator tool with database access: it reads the answer key of the served item to answer
correctly, and writes a plausible wrong answer otherwise. Whether the simulated learner is right is decided by a
small latent-knowledge model (per-skill knowledge that grows with practice), seeded.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from curriculum.generation.answers import AnswerSpec, MalformedResponse, SpecError, check_answer


def wrong_response(answer: dict[str, Any], rng: np.random.Generator) -> str:
    """A response of the right type that the service's own answer check judges wrong (a random fraction can be
    the key in another form: 8/10 for 4/5)."""
    try:
        spec: AnswerSpec | None = AnswerSpec.from_dict(answer)
    except SpecError:
        spec = None
    response = _draw_wrong(answer, rng)
    for _ in range(100):
        if spec is None:
            return response
        try:
            if not check_answer(spec, response):
                return response
        except MalformedResponse:
            pass
        response = _draw_wrong(answer, rng)
    return response


def _draw_wrong(answer: dict[str, Any], rng: np.random.Generator) -> str:
    """A plausible response of the answer's type, usually not the key."""
    kind, value = answer.get("type"), str(answer.get("value", ""))
    if kind == "choice":
        choices = list(answer.get("choices", []))
        others = [c for c in choices if c.strip().lower() != value.strip().lower()]
        if value.strip().upper() in {chr(65 + i) for i in range(len(choices))}:
            others = [chr(65 + i) for i in range(len(choices)) if chr(65 + i) != value.strip().upper()]
        return str(rng.choice(others)) if others else "A"
    if kind == "number":
        try:
            return str(int(float(value)) + int(rng.integers(1, 4)))
        except ValueError:
            return "0"
    if kind == "fraction":
        return f"{int(rng.integers(1, 9))}/{int(rng.integers(10, 19))}"
    if kind == "expression":
        return f"({value})+{int(rng.integers(1, 5))}"
    return "I am not sure"


class ApiClient:
    def __init__(self, base_url: str, token: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - our own server
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")


@dataclass
class SimulatedLearner:
    learner_id: int
    rng: np.random.Generator
    ability: float = 0.0
    knowledge: dict[str, float] = field(default_factory=dict)

    def answers_correctly(self, skills: list[str], difficulty: float) -> bool:
        k = min(self.knowledge.get(s, -1.5) for s in skills) if skills else 0.0
        p = 0.15 + 0.8 / (1 + math.exp(-(k + self.ability - difficulty)))
        return bool(self.rng.random() < p)

    def practise(self, skills: list[str]) -> None:
        for s in skills:
            self.knowledge[s] = self.knowledge.get(s, -1.5) + 0.35


@dataclass
class StepRecord:
    learner_id: int
    correct: bool
    next_ms: float
    attempt_ms: float
    mastery: float


def simulate_via_api(
    *,
    base_url: str,
    token: str,
    learner_ids: list[int],
    steps: int,
    answer_key: Callable[[int], tuple[dict[str, Any], float]],
    seed: int = 0,
    on_step: Callable[[StepRecord], None] | None = None,
) -> list[StepRecord]:
    """Play `steps` exercises for each learner (round robin) through the API with an admin token."""
    client = ApiClient(base_url, token)
    rng = np.random.default_rng(seed)
    learners = [SimulatedLearner(lid, np.random.default_rng(seed * 1000 + lid), float(rng.normal(0, 0.5)))
                for lid in learner_ids]
    records: list[StepRecord] = []
    for _ in range(steps):
        for sim in learners:
            t0 = time.perf_counter()
            status, served = client.call("POST", f"/api/v1/learners/{sim.learner_id}/next")
            t1 = time.perf_counter()
            if status != 200:
                raise RuntimeError(f"/next answered {status}: {served}")
            answer, difficulty = answer_key(served["item_id"])
            correct = sim.answers_correctly(served["skills"], difficulty)
            response = str(answer["value"]) if correct else wrong_response(answer, sim.rng)
            if correct and answer.get("type") == "text":
                response = str(answer["value"]).split("|")[0]
            status, result = client.call(
                "POST",
                f"/api/v1/learners/{sim.learner_id}/attempts",
                {
                    "item": served["item_id"],
                    "response": response,
                    "client_attempt_id": uuid.uuid4().hex,
                    "decision_id": served["decision_id"],
                    "time_taken_ms": int(sim.rng.integers(3000, 60000)),
                },
            )
            t2 = time.perf_counter()
            if status not in (200, 201):
                raise RuntimeError(f"/attempts answered {status}: {result}")
            sim.practise(served["skills"])
            rec = StepRecord(
                sim.learner_id,
                bool(result["correct"]),
                (t1 - t0) * 1000,
                (t2 - t1) * 1000,
                float(np.mean([m["p_mastery"] for m in result["mastery"]])) if result["mastery"] else 0.0,
            )
            records.append(rec)
            if on_step:
                on_step(rec)
    return records
