import pytest

from learners.errors import Conflict, InvalidInput, NotFound
from learners.models import Attempt, LearnerState, SkillMastery, TracerVersion
from learners.services import (
    attempt_log,
    attempt_record,
    mastery_check,
    tracer_active,
    tracer_refit,
    user_create,
)
from tests.factories import LearnerFactory

pytestmark = pytest.mark.django_db


def answer(learner, item, response, key, **kw):
    return attempt_record(learner_id=learner.pk, item_id=item.pk, response=response, client_attempt_id=key, **kw)


def test_correct_answer_raises_mastery_and_wrong_lowers_it(course):
    learner = LearnerFactory()
    add1 = course["items"]["add-1"]
    first = answer(learner, add1, "4", "a1")
    assert first.created and first.result["correct"] is True
    p1 = first.result["mastery"][0]["p_mastery"]
    _, tracer = tracer_active()
    assert p1 > tracer.mastery(tracer.init_state(), course["skills"]["add"].pk)
    second = answer(learner, course["items"]["add-2"], "11", "a2")
    assert second.result["correct"] is False
    assert second.result["feedback"]["correct_answer"] == "12"
    assert second.result["feedback"]["solution"] == "7 + 5 = 12."
    assert second.result["mastery"][0]["p_mastery"] < p1
    row = SkillMastery.objects.get(learner=learner, skill=course["skills"]["add"])
    assert (row.n_attempts, row.n_correct) == (2, 1)
    assert row.p_mastery == second.result["mastery"][0]["p_mastery"]


def test_same_client_attempt_id_stores_one_attempt_and_returns_same_result(course):
    learner = LearnerFactory()
    item = course["items"]["frac-1"]
    a = answer(learner, item, "2/4", "same")
    b = answer(learner, item, "2/4", "same")
    assert a.created and not b.created
    assert a.result == b.result
    assert a.result["correct"] is True  # 2/4 equals 1/2
    assert Attempt.objects.filter(learner=learner).count() == 1
    assert LearnerState.objects.get(learner=learner).n_attempts == 1
    with pytest.raises(Conflict, match="client_attempt_id: already used for a different answer"):
        answer(learner, item, "1/3", "same")


def test_multi_skill_item_updates_every_skill(course):
    learner = LearnerFactory()
    out = answer(learner, course["items"]["sub-expr"], "2 + x", "e1")
    assert out.result["correct"] is True
    assert sorted(m["skill"] for m in out.result["mastery"]) == ["add", "sub"]
    assert SkillMastery.objects.filter(learner=learner).count() == 2


def test_bad_input_is_refused_and_nothing_is_lost(course):
    learner = LearnerFactory()
    answer(learner, course["items"]["add-1"], "4", "ok")
    with pytest.raises(InvalidInput) as exc:
        answer(learner, course["items"]["add-1"], "four-ish", "bad")
    assert exc.value.field == "response"
    with pytest.raises(NotFound) as exc:
        attempt_record(learner_id=learner.pk, item_id=999999, response="1", client_attempt_id="x")
    assert exc.value.field == "item"
    with pytest.raises(NotFound) as exc:
        attempt_record(learner_id=999999, item_id=course["items"]["add-1"].pk, response="1", client_attempt_id="y")
    assert exc.value.field == "learner"
    with pytest.raises(InvalidInput) as exc:
        answer(learner, course["items"]["add-1"], "4", "")
    assert exc.value.field == "client_attempt_id"
    with pytest.raises(InvalidInput) as exc:
        answer(learner, course["items"]["add-1"], "4", "z", time_taken_ms=-5)
    assert exc.value.field == "time_taken_ms"
    assert Attempt.objects.filter(learner=learner).count() == 1
    assert LearnerState.objects.get(learner=learner).n_attempts == 1


def test_replay_reproduces_stored_mastery_exactly(course):
    learners = [LearnerFactory() for _ in range(3)]
    items = list(course["items"].values())
    responses = {"number": "4", "choice": "B", "expression": "x+2", "fraction": "1/2", "text": "denominator"}
    for n in range(30):
        lr = learners[n % 3]
        item = items[(n * 7) % len(items)]
        answer(lr, item, responses[item.answer["type"]] if n % 4 else "0" if item.answer["type"] != "choice" else "A",
               f"k{n}")
    assert mastery_check() == []
    # Tampering with a stored value is detected.
    row = SkillMastery.objects.filter(learner=learners[0]).first()
    row.p_mastery = min(1.0, row.p_mastery + 0.01)
    row.save()
    problems = mastery_check()
    assert len(problems) == 1 and problems[0]["learner"] == learners[0].pk


def test_user_create_returns_api_ids_and_refuses_duplicates(db):
    info = user_create(username="amy", role="learner", classroom="5B")
    assert info["role"] == "learner" and info["learner_id"] is not None
    assert info["classroom_ids"] == [info["classroom_id"]]
    assert info["token"].startswith("tut_")
    teacher = user_create(username="mr-t", role="teacher", classroom="5B")
    assert teacher["learner_id"] is None and teacher["classroom_ids"] == [info["classroom_id"]]
    with pytest.raises(Conflict):
        user_create(username="amy", role="learner")
    with pytest.raises(InvalidInput, match="role"):
        user_create(username="zed", role="wizard")


def test_refit_fits_from_the_log_activates_and_is_idempotent(course):
    import numpy as np

    rng = np.random.default_rng(0)
    items = [course["items"][c] for c in ("add-1", "add-2", "count-1", "count-2")]
    keys = {"add-1": "4", "add-2": "12", "count-1": "3", "count-2": "5"}
    for k in range(40):
        lr = LearnerFactory()
        known = False
        for step in range(12):
            item = items[step % 4]
            ok = rng.random() < (0.9 if known else 0.25)
            answer(lr, item, keys[item.code] if ok else "0", f"{k}-{step}")
            known = known or rng.random() < 0.3
    before, _ = tracer_active()
    log, last = attempt_log()
    assert len(log.attempt_starts()) == 480
    out = tracer_refit(name="bkt")
    assert out.created and out.version.trained_through_attempt_id == last
    assert "auc" in out.version.metrics["holdout"]
    assert out.activated == (
        out.version.metrics["holdout"]["logloss"] <= out.version.metrics["active_on_holdout"]["logloss"] + 1e-12
    )
    again = tracer_refit(name="bkt")
    assert not again.created and again.version.pk == out.version.pk
    assert TracerVersion.objects.filter(name="bkt", trained_through_attempt_id=last).count() == 1
    assert TracerVersion.objects.filter(active=True).count() == 1
    if out.activated:
        # The next answer folds the learner's whole log with the new parameters; replay agrees.
        lr = LearnerFactory()
        answer(lr, items[0], "4", "after")
        assert LearnerState.objects.get(learner=lr).tracer_version_id == out.version.pk
        assert mastery_check() == []
    assert before.pk != out.version.pk
