"""Test override: tasks run eagerly in-process unless an integration test starts a real worker; fast hashing."""

from tutor.settings import *  # noqa: F403
from tutor.settings import DATABASES, REDIS_URL  # noqa: F401

CELERY_TASK_ALWAYS_EAGER = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
