"""Shared by the served-path benchmarks: Django on a fresh SQLite database under a temporary data directory, with
the demo course (or the scheduler benchmark's synthetic course), one torch thread."""

from __future__ import annotations

import os
import tempfile
from typing import Any


def scheduler_course() -> Any:
    """The course `bench/scheduler.py` evaluates on (`ExperimentConfig`'s synthetic course)."""
    from tutor.sim.course import synthetic_course
    from tutor.sim.experiment import ExperimentConfig

    config = ExperimentConfig()
    return synthetic_course(config.n_skills, config.items_per_skill, random_state=config.course_seed)


def setup_demo_database(course: str = "demo") -> None:
    """`course`: "demo" (the demo course and its users) or "synthetic" (the course `bench/scheduler.py`
    evaluates on, `ExperimentConfig`'s, so that a policy it saved can be served)."""
    if course not in ("demo", "synthetic"):
        raise ValueError(f"course: expected 'demo' or 'synthetic', got {course!r}")
    os.environ["TUTOR_DATA_DIR"] = tempfile.mkdtemp(prefix="tutor-bench-")
    os.environ.pop("DATABASE_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "tutor.settings"
    os.environ.setdefault("TUTOR_LLM_BACKEND", "template")
    import django

    django.setup()
    import torch
    from django.core.management import call_command

    torch.set_num_threads(1)
    call_command("migrate", verbosity=0)
    if course == "demo":
        from tutor.demo import demo_setup

        demo_setup()
        return
    from curriculum.services import curriculum_import
    from tutor.sim.course import course_document

    curriculum_import(document=course_document(scheduler_course()))
