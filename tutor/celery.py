"""The Celery app: configured from Django settings (CELERY_*), tasks live in the top-level `tasks` package."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutor.settings")

app = Celery("tutor")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.include = ["tasks.tracing", "tasks.policy", "tasks.llm"]
