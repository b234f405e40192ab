"""200 answers from 10 concurrent clients, each sent twice, through the real HTTP server: exactly 200 attempts are
stored and the stored mastery equals a replay of the log. Runs on SQLite locally and on PostgreSQL under CI."""

import json
import random
import threading
import urllib.error
import urllib.request

import pytest

from learners.models import Attempt, LearnerState
from learners.services import mastery_check, user_create

pytestmark = pytest.mark.django_db(transaction=True)


def post(url, token, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_concurrent_duplicate_answers_lose_nothing_and_store_once(live_server, course):
    learners = [user_create(username=f"c{i}", role="learner") for i in range(5)]
    items = list(course["items"].values())
    keys = {"number": None, "choice": "B", "expression": "x+2", "fraction": "1/2", "text": "denominator"}
    rng = random.Random(7)
    jobs = []
    for n in range(200):
        who = learners[n % 5]
        item = items[rng.randrange(len(items))]
        right = rng.random() < 0.6
        key = item.answer["value"] if item.answer["type"] == "number" else keys[item.answer["type"]]
        response = key if right else ("A" if item.answer["type"] == "choice" else "0")
        body = {"item": item.pk, "response": response, "client_attempt_id": f"n{n}"}
        jobs.append((who, body))
        jobs.append((who, body))  # every answer is sent twice
    rng.shuffle(jobs)
    results: dict[tuple[int, str], list[dict]] = {}
    errors: list[str] = []
    lock = threading.Lock()

    def client(chunk):
        for who, body in chunk:
            status, out = post(f"{live_server.url}/api/v1/learners/{who['learner_id']}/attempts", who["token"], body)
            with lock:
                if status not in (200, 201):
                    errors.append(f"{status} {out}")
                results.setdefault((who["learner_id"], body["client_attempt_id"]), []).append(out)

    threads = [threading.Thread(target=client, args=(jobs[i::10],)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Attempt.objects.count() == 200
    assert sum(s.n_attempts for s in LearnerState.objects.all()) == 200
    assert all(len(r) == 2 and r[0] == r[1] for r in results.values())
    assert mastery_check() == []
