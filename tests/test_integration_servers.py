"""Against the real servers (.ci/run starts them): PostgreSQL as the database, Redis as broker and result backend,
and a real Celery worker process that runs the refit task from the queue."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from learners.models import TracerVersion
from learners.services import attempt_record
from tests.factories import LearnerFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parent.parent


def test_database_is_postgresql(servers):
    assert connection.vendor == "postgresql"
    with connection.cursor() as cur:
        cur.execute("select version()")
        assert "PostgreSQL" in cur.fetchone()[0]


@pytest.fixture
def worker(servers):
    """A real `celery worker` process on the test database and the real broker."""
    db = connection.settings_dict
    url = f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": settings.REDIS_URL,
           "DJANGO_SETTINGS_MODULE": "tutor.settings", "CELERY_TASK_ALWAYS_EAGER": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tutor.celery", "worker", "-Q", "default,training,llm",
         "--concurrency", "1", "--pool", "solo", "--loglevel", "WARNING", "-n", f"test-{os.getpid()}@%h"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    from tutor.celery import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if app.control.inspect(timeout=1).ping():
            break
        if proc.poll() is not None:
            pytest.fail(f"worker exited: {proc.stdout.read().decode()[-2000:]}")
    else:
        proc.kill()
        pytest.fail("worker did not answer a ping within 60 s")
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_refit_runs_on_a_real_worker_and_twice_is_a_noop(worker, course, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    from tasks.tracing import refit_tracer
    from tutor.celery import app

    app.conf.task_always_eager = False
    try:
        item = course["items"]["add-1"]
        for k in range(6):
            lr = LearnerFactory()
            for step in range(5):
                attempt_record(learner_id=lr.pk, item_id=item.pk, response="4" if (k + step) % 3 else "1",
                               client_attempt_id=f"{k}-{step}")
        first = refit_tracer.delay(name="bkt").get(timeout=120)
        second = refit_tracer.delay(name="bkt").get(timeout=120)
    finally:
        app.conf.task_always_eager = True
    assert first["created"] is True and second["created"] is False
    assert first["version_id"] == second["version_id"]
    assert TracerVersion.objects.filter(name="bkt", trained_through_attempt_id=first["trained_through_attempt_id"]).count() == 1
