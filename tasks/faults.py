"""Fault injection for tests that kill a worker mid-task: with TUTOR_TASK_STAGE_DELAY="stage:seconds" a task
pauses when it reaches that stage. Unset (always, outside those tests) it does nothing."""

from __future__ import annotations

import time

from django.conf import settings


def pause_at(stage: str) -> None:
    spec = getattr(settings, "TUTOR_TASK_STAGE_DELAY", "")
    if not spec:
        return
    name, _, seconds = spec.partition(":")
    if name == stage:
        time.sleep(float(seconds or 0))
