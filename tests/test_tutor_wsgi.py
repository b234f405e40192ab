"""The WSGI entry point leaves what startup made alive out of the cycle collector's walks."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = (
    "import gc, time\n"
    "from tutor.wsgi import application\n"
    "t = time.perf_counter(); gc.collect(); ms = (time.perf_counter() - t) * 1000\n"
    "print(gc.get_freeze_count(), len(gc.get_objects()), ms)\n"
)


def probe(freeze: str) -> tuple[int, int]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tutor.settings", "TUTOR_GC_FREEZE": freeze}
    env.pop("DATABASE_URL", None)  # importing the application opens no connection; keep it off the servers
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    frozen, tracked, _ = out.stdout.split()
    return int(frozen), int(tracked)


@pytest.mark.parametrize("freeze", ["1", "0"])
def test_startup_objects_are_frozen_unless_turned_off(freeze):
    frozen, tracked = probe(freeze)
    if freeze == "1":
        # Every API and page module is imported and then frozen: a full collection has almost nothing to walk.
        assert frozen > 50_000 and tracked < 1_000
    else:
        assert frozen == 0 and tracked > 30_000
