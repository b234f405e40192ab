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


THREADS = (
    "import os, sys\n"
    "if sys.argv[1] == '1':\n"
    "    from tutor.wsgi import application\n"
    "import numpy\n"
    "from threadpoolctl import threadpool_info\n"
    "import torch\n"
    "blas = sorted({i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'})\n"
    "print(blas[0], len(blas), torch.get_num_threads())\n"
)


def math_threads(setting: str | None, load_wsgi: bool = True) -> tuple[int, int]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tutor.settings"}
    env.pop("DATABASE_URL", None)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TUTOR_WEB_MATH_THREADS"):
        env.pop(var, None)
    if setting is not None:
        env["TUTOR_WEB_MATH_THREADS"] = setting
    out = subprocess.run(
        [sys.executable, "-c", THREADS, "1" if load_wsgi else "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True,
    )
    blas, pools, torch_threads = map(int, out.stdout.split())
    assert pools == 1, out.stdout  # one BLAS thread count for every BLAS library loaded
    return blas, torch_threads


def test_a_serving_process_runs_its_math_libraries_on_one_thread_unless_told_otherwise():
    # A serving process decides for many requests at once: its numpy BLAS and the torch it imports later use one
    # thread each by default, the number set, or the libraries' own default with 0.
    assert math_threads(None) == (1, 1)
    if (os.cpu_count() or 1) >= 2:  # the libraries cap their pools at the cores there are
        assert math_threads("2") == (2, 2)
    default = math_threads(None, load_wsgi=False)
    assert math_threads("0") == default
