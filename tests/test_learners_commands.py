import io
import json

import pytest
from django.core.management import CommandError, call_command

from learners.models import SkillMastery
from learners.services import attempt_record
from learners.tracing.data import read_export

pytestmark = pytest.mark.django_db


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_user_prints_the_api_ids(course):
    info = json.loads(run("create_user", "zoe", "--role", "learner", "--classroom", "7C"))
    assert info["username"] == "zoe" and info["role"] == "learner"
    assert isinstance(info["learner_id"], int) and info["classroom_ids"] == [info["classroom_id"]]
    assert info["token"].startswith("tut_")
    with pytest.raises(CommandError, match="username"):
        run("create_user", "zoe", "--role", "learner")


def test_replay_check_detects_tampering_and_rebuild_repairs(course):
    info = json.loads(run("create_user", "yan", "--role", "learner"))
    for n, (code, resp) in enumerate([("count-1", "3"), ("count-2", "4"), ("add-1", "4")]):
        attempt_record(learner_id=info["learner_id"], item_id=course["items"][code].pk, response=resp,
                       client_attempt_id=str(n))
    assert "equals a replay" in run("replay_mastery", "--check")
    SkillMastery.objects.filter(learner_id=info["learner_id"]).update(p_mastery=0.5)
    with pytest.raises(CommandError, match="mismatch"):
        run("replay_mastery", "--check")
    run("replay_mastery")
    assert "equals a replay" in run("replay_mastery", "--check")


def test_export_attempts_round_trips_through_the_tracing_loader(course, tmp_path):
    info = json.loads(run("create_user", "xia", "--role", "learner"))
    attempt_record(learner_id=info["learner_id"], item_id=course["items"]["sub-expr"].pk, response="x+2",
                   client_attempt_id="a")
    attempt_record(learner_id=info["learner_id"], item_id=course["items"]["add-1"].pk, response="5",
                   client_attempt_id="b")
    path = tmp_path / "log.csv"
    assert "wrote 2 attempts" in run("export_attempts", str(path))
    log = read_export(path)
    assert len(log.attempt_starts()) == 2 and len(log) == 3  # the first attempt has two skills
    assert log.correct.tolist() == [1, 1, 0]


def test_refit_command_prints_the_version(course):
    info = json.loads(run("create_user", "wu", "--role", "learner"))
    attempt_record(learner_id=info["learner_id"], item_id=course["items"]["add-1"].pk, response="4",
                   client_attempt_id="a")
    out = json.loads(run("refit_tracer", "--tracer", "bkt").strip().splitlines()[-1])
    assert out["created"] is True and out["version"].startswith("bkt@")
    again = json.loads(run("refit_tracer", "--tracer", "bkt").strip().splitlines()[-1])
    assert again["created"] is False and again["version_id"] == out["version_id"]


def test_import_curriculum_refuses_bad_file(tmp_path, db):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"skills": [{"code": "a", "name": "A", "prerequisites": ["a"]}], "items": []}))
    with pytest.raises(CommandError, match="prerequisite cycle: a -> a"):
        run("import_curriculum", str(bad))
    with pytest.raises(CommandError, match="FILE or --demo"):
        run("import_curriculum")
