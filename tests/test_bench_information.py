"""`bench/information.py`: the runner's own filter reproduces `joint`, and telling it the true state helps."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_information_bench_reproduces_joint_when_told_nothing_and_gains_when_told_everything():
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "information.py"), "--quick", "--json",
         "--variants", "answers,everything,full-info"],
        capture_output=True, text=True, timeout=600, cwd=ROOT, check=True,
    )
    doc = json.loads(out.stdout)
    v = doc["variants"]
    assert set(v) == {"joint", "answers", "everything", "full-info"}
    # Told nothing, the runner's filter is the policy's: the same exercises to mastery for every learner.
    assert v["answers"]["steps"] == v["joint"]["steps"]
    assert v["answers"]["vs_joint"] == 0.0
    # Told the whole state after every exercise, the same policy needs far fewer exercises.
    assert v["everything"]["vs_joint_ci95"][1] < 0
    assert v["full-info"]["to_mastery"] < v["joint"]["to_mastery"]
    assert doc["learners"] == 40 and len(v["joint"]["steps"]) == 40
