"""Test override: tasks run eagerly in-process unless an integration test starts a real worker; fast hashing."""

import os

from tutor.settings import *  # noqa: F403
from tutor.settings import DATABASES, REDIS_URL  # noqa: F401

CELERY_TASK_ALWAYS_EAGER = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory: the concurrency tests need several connections to see one database.
    import tempfile

    DATABASES["default"]["TEST"] = {"NAME": f"{tempfile.gettempdir()}/tutor-test-{os.getpid()}.sqlite3"}

# Tests that check which item the v0 policy serves need its deterministic choice; the tests of the service's
# uniform exploration (tests/test_tutor_policies.py, test_tutor_policy_training.py) set their own share.
TUTOR_EXPLORE = 0.0
