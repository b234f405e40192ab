"""The benchmark's off-policy evaluation check: chunked logs, the same whatever the number of workers.

The check with two workers runs in a fresh interpreter, as the benchmark runs it: its workers are forked, and a
forked child inherits the parent's open connections. Under CI this test process holds a Celery broker connection
from earlier tests, and kombu's after-fork cleanup blocks on the inherited Redis channel.
"""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tutor.sim.experiment import ExperimentConfig, make_setting, ope_check, prepare

SIZES = {
    "n_skills": 4, "items_per_skill": 3, "policies": ("random", "mastery"), "pilot_learners": 30,
    "pilot_horizon": 30, "ope_learners": 25, "ope_chunk": 10, "ope_horizon": 20,
}

SCRIPT = """
import json, sys
from dataclasses import replace
from tutor.sim.experiment import ExperimentConfig, make_setting, ope_check, prepare
sizes = json.loads(sys.argv[1])
config = replace(ExperimentConfig.quick(), **{**sizes, "policies": tuple(sizes["policies"])})
prepared = prepare(config, make_setting(config))
print(json.dumps([ope_check(prepared, config), ope_check(prepared, replace(config, workers=2))]))
"""


@pytest.fixture(scope="module")
def one_worker():
    config = replace(ExperimentConfig.quick(), **SIZES)
    prepared = prepare(config, make_setting(config))
    return ope_check(prepared, config)


def test_ope_check_reads_every_chunk(one_worker):
    assert one_worker["learners"] == 25
    # 25 learners x 20 exercises, fewer only where a learner quit.
    assert 0.8 * 25 * 20 <= one_worker["decisions"] <= 25 * 20
    for name in ("random", "mastery"):
        row = one_worker[name]
        assert row["truth"] > 0
        for k in ("ips", "snips", "dr", "cdr"):
            lo, hi = row[k]["ci95"]
            assert lo <= row[k]["value"] <= hi
        # Weights on the served item's skill are no larger than on the item (a skill holds the item).
        assert row["ess_clustered"] >= row["ess"] * 0.999


def test_ope_check_does_not_depend_on_the_number_of_workers(one_worker):
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(SIZES)],
        cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=300, check=True,
    )
    fresh_one, fresh_two = json.loads(out.stdout)
    assert fresh_one == fresh_two
    # And a fresh process computes what this one did (JSON turns the intervals' tuples into lists).
    assert fresh_one == json.loads(json.dumps(one_worker))
