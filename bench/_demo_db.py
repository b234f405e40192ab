"""Shared by the served-path benchmarks: Django on a fresh SQLite database under a temporary data directory, with
the demo course, one torch thread."""

from __future__ import annotations

import os
import tempfile


def setup_demo_database() -> None:
    os.environ["TUTOR_DATA_DIR"] = tempfile.mkdtemp(prefix="tutor-bench-")
    os.environ.pop("DATABASE_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "tutor.settings"
    os.environ.setdefault("TUTOR_LLM_BACKEND", "template")
    import django

    django.setup()
    import torch
    from django.core.management import call_command

    from tutor.demo import demo_setup

    torch.set_num_threads(1)
    call_command("migrate", verbosity=0)
    demo_setup()
