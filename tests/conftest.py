"""Shared fixtures. Database rows come from factories (tests/factories.py); pure objects from plain fixtures.

Integration tests need real servers. `servers` checks them: unreachable servers skip the test with a loud reason
locally and fail it under CI=true, where .ci/run has started them.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
_skipped_for_servers: list[str] = []


def _server_problem() -> str | None:
    from django.conf import settings

    from tutor.embedded import redis_url_ping

    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        return "DATABASE_URL does not point to PostgreSQL (set DATABASE_URL=postgres://postgres@127.0.0.1:5432/test)"
    if settings.EMBEDDED_REDIS:
        return "REDIS_URL is not set (set REDIS_URL=redis://127.0.0.1:6379/15)"
    try:
        redis_url_ping(settings.REDIS_URL)
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable
        return f"Redis at {settings.REDIS_URL} unreachable: {exc}"
    return None


@pytest.fixture(scope="session")
def servers() -> dict[str, Any]:
    from django.conf import settings

    problem = _server_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"CI=true but integration servers are unavailable: {problem}")
        _skipped_for_servers.append(problem)
        pytest.skip(f"INTEGRATION TEST SKIPPED: {problem}")
    return {"database": settings.DATABASES["default"], "redis_url": settings.REDIS_URL}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _skipped_for_servers:
        terminalreporter.write_sep("!", "INTEGRATION TESTS SKIPPED", red=True, bold=True)
        terminalreporter.write_line(f"reason: {_skipped_for_servers[0]}", red=True)
        terminalreporter.write_line("run `bash .ci/run` (or set DATABASE_URL and REDIS_URL) to run them", red=True)


@pytest.fixture
def course(db: Any) -> dict[str, Any]:
    """A small curriculum in the database: four skills in a chain-with-branch, items of each answer type."""
    from tests.factories import make_course  # Django models: imported lazily so pure tests run without Django

    return make_course()


@pytest.fixture(autouse=True)
def _fresh_process_caches() -> Any:
    """Per-process caches (active versions, loaded models, the curriculum snapshot) must not outlive a test's
    database: ids are reused after a rollback."""

    from django.conf import settings

    if not settings.configured:
        yield  # a pure test run without the Django plugin: nothing cached
        return

    def clear() -> None:
        from curriculum import selectors
        from learners import services as learner_services
        from tutor.caching import clear_all
        from tutor.services import belief_checkpoints, learner_history, policies

        clear_all()
        learner_history.cache.clear()
        belief_checkpoints.clear()
        learner_services._tracers.clear()
        policies._loaded.clear()
        selectors._cached = None

    clear()
    yield
    clear()
