"""The benchmark's off-policy evaluation check: chunked logs, the same whatever the number of workers."""

from dataclasses import replace

import pytest

from tutor.sim.experiment import ExperimentConfig, make_setting, ope_check, prepare


@pytest.fixture(scope="module")
def prepared_config():
    config = replace(
        ExperimentConfig.quick(), n_skills=4, items_per_skill=3, policies=("random", "mastery"),
        pilot_learners=30, pilot_horizon=30, ope_learners=25, ope_chunk=10, ope_horizon=20,
    )
    return prepare(config, make_setting(config)), config


def test_ope_check_reads_every_chunk_and_does_not_depend_on_workers(prepared_config):
    prepared, config = prepared_config
    one = ope_check(prepared, config)
    two = ope_check(prepared, replace(config, workers=2))
    assert one == two
    assert one["learners"] == 25
    # 25 learners x 20 exercises, fewer only where a learner quit.
    assert 0.8 * 25 * 20 <= one["decisions"] <= 25 * 20
    for name in ("random", "mastery"):
        row = one[name]
        assert row["truth"] > 0
        for k in ("ips", "snips", "dr"):
            lo, hi = row[k]["ci95"]
            assert lo <= row[k]["value"] <= hi
