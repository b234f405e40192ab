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


def _start_worker(name: str, extra_env: dict[str, str]) -> subprocess.Popen:
    db = connection.settings_dict
    url = f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": settings.REDIS_URL,
           "DJANGO_SETTINGS_MODULE": "tutor.settings", "CELERY_TASK_ALWAYS_EAGER": "0", **extra_env}
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tutor.celery", "worker", "-Q", "default,training,llm",
         "--concurrency", "1", "--pool", "solo", "--loglevel", "WARNING", "-n", f"{name}-{os.getpid()}@%h"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def test_policy_training_survives_a_worker_killed_mid_run(servers, course, settings):
    """SIGKILL the worker while the task is past its estimates but before it records anything: nothing is
    half-activated, the broker redelivers the task to the next worker, and exactly one version results."""
    import signal

    from celery.result import AsyncResult

    from tests.test_tutor_policy_training import play
    from tutor.celery import app
    from tutor.models import PolicyVersion

    play(8, 8)
    app.conf.task_always_eager = False
    visibility = {"TUTOR_BROKER_VISIBILITY_TIMEOUT": "6"}
    first = _start_worker("doomed", {**visibility, "TUTOR_TASK_STAGE_DELAY": "record:120"})
    second = None
    try:
        from tasks.policy import train_policy

        result: AsyncResult = train_policy.apply_async(kwargs={"kind": "bandit"})
        deadline = time.monotonic() + 120
        while not (result.state == "PROGRESS" and (result.info or {}).get("stage") == "record"):
            assert time.monotonic() < deadline, f"task never reached the record stage: {result.state}"
            time.sleep(0.2)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert PolicyVersion.objects.filter(name="bandit-auto").count() == 0
        time.sleep(7)  # past the visibility timeout, so the next worker restores the unacknowledged task at start
        second = _start_worker("heir", visibility)
        out = result.get(timeout=180)
        assert out["created"] is True
        assert PolicyVersion.objects.filter(name="bandit-auto").count() == 1
        assert PolicyVersion.objects.filter(active=True).count() <= 1
    finally:
        app.conf.task_always_eager = True
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=20)
