"""`bench/scheduler.py`: a policy saved by one run and loaded by another is evaluated exactly as trained, and
`bench/serving.py` serves it through the API."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--quick", "--json", "--no-ope", "--seeds", "1", "--learners", "20", "--policies", "mastery,joint"]


def _bench(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scheduler.py"), *QUICK, *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        check=True,
    )
    return json.loads(out.stdout)


def test_saved_policy_loaded_in_another_run_gives_the_same_figures(tmp_path):
    trained = _bench("--save", str(tmp_path))
    assert (tmp_path / "joint.bin").is_file() and trained["training"]["loaded"] == {}
    loaded = _bench("--load", f"joint={tmp_path / 'joint.bin'}")
    assert loaded["training"]["loaded"] == {"joint": str(tmp_path / "joint.bin")}
    assert "joint_tuning" not in loaded["training"]  # not trained again
    assert list(loaded["policies"]) == ["mastery", "joint"]
    for name in ("mastery", "joint"):
        assert loaded["policies"][name]["to_mastery"] == trained["policies"][name]["to_mastery"]

    # The same file served through the API over the benchmark's course (`bench/serving.py --load`).
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "serving.py"), "--course", "synthetic", "--policies", "",
         "--load", f"joint={tmp_path / 'joint.bin'}", "--learners", "2", "--steps", "4", "--json"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=True,
    )  # fmt: skip
    served = json.loads(out.stdout)["results"]
    assert list(served) == ["mastery", "joint:joint.bin"]
    assert served["joint:joint.bin"]["next_ms"]["n"] == 8 and "error" not in served["joint:joint.bin"]


def test_load_names_the_bad_argument(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "scheduler.py"),
            *QUICK,
            "--load",
            f"joint={tmp_path / 'nope.bin'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.returncode == 2 and "--load" in out.stderr and "nope.bin" in out.stderr
