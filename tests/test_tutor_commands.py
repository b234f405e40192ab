import io
import json

import pytest
from django.core.management import call_command

from learners.services import user_create


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.django_db
def test_simulate_in_process_on_the_database_course(course, tmp_path):
    plot = tmp_path / "curves.png"
    doc = json.loads(run("simulate", "--quick", "--json", "--policies", "random,mastery", "--learners", "8",
                         "--seeds", "1", "--plot", str(plot)))
    assert doc["course"] == "database (4 skills, 9 items)"
    assert set(doc["policies"]) == {"random", "mastery"}
    for s in doc["policies"].values():
        assert 0 <= s["share_mastered"]["mean"] <= 1
        assert 0 < s["post_test@20"]["mean"] <= 1
    assert plot.stat().st_size > 10_000


@pytest.mark.django_db(transaction=True)
def test_simulate_over_http(live_server, course):
    admin = user_create(username="root", role="admin")
    out = json.loads(run("simulate", "--http", live_server.url, "--token", admin["token"], "--learners", "2",
                         "--steps", "10", "--json"))
    assert out["learners"] == 2 and out["steps"] == 10
    assert set(out["post_test"]) == {"10"}
    assert out["next_ms"]["n"] == out["attempt_ms"]["n"] > 0


@pytest.mark.django_db
def test_policy_command_create_list_activate_rollback(course):
    created = json.loads(run("policy", "create", "eager", "mastery", "--hyper", '{"epsilon": 0.3}'))
    assert created["created"] is True
    assert "active: eager@0" in run("policy", "activate", str(created["version_id"]))
    assert "* eager@0 kind=mastery" in run("policy", "list")
    assert "default policy from settings" in run("policy", "rollback")
