"""`bench/plan_screen.py`: what it reports of a screen is measured on the beliefs given, and bad arguments are named."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.test_policy_pomdp import _values_over_states

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import plan_screen  # noqa: E402


def test_measure_checks_every_decision_against_the_full_product():
    rng = np.random.default_rng(4)
    alphas = _values_over_states(rng, 400, 9, noise=0.3)
    beliefs = np.concatenate(
        [rng.dirichlet(np.full(512, 0.02), size=30), rng.dirichlet(np.ones(512), size=10)]
    )
    row = plan_screen.measure(alphas, beliefs.astype(np.float32), (32, 128), repeat=1)
    assert row["same_decisions"] == row["decisions"] == 40
    assert row["read"]["p50"] < 1.0 < row["read"]["p99"]  # the spread quarter reads the stages and the plan
    assert row["full_product_share"] == pytest.approx(0.25, abs=0.1)
    assert row["full_ms"]["mean"] > 0 and row["screen_ms"]["p99"] >= row["screen_ms"]["p50"] > 0


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "plan_screen.py"), *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip


def test_bad_arguments_are_named(tmp_path):
    missing = _run(str(tmp_path / "nope.bin"))
    assert missing.returncode == 2 and "path: cannot load a pomdp plan" in missing.stderr
    (tmp_path / "bad.bin").write_bytes(b'{"policy": "pomdp"}\n')
    assert "path: cannot load" in _run(str(tmp_path / "bad.bin")).stderr
    stages = _run(str(tmp_path / "bad.bin"), "--stages", "a,b")
    assert stages.returncode == 2 and "--stages" in stages.stderr
