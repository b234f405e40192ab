"""Offline policy updates from a real decision log: contexts are rebuilt exactly, estimates gate activation, and
the task is idempotent."""

import numpy as np
import pytest

from learners.models import Learner
from learners.services import attempt_record
from tasks.policy import train_policy
from tutor.apiclient import wrong_response
from tutor.models import PolicyVersion
from tutor.services.evaluation import logged_decisions
from tutor.services.policies import policy_active, served
from tutor.services.policy_training import _features, decision_contexts, ope_dataset, policy_train
from tutor.services.scheduling import decision_next

pytestmark = pytest.mark.django_db


def play(n_learners: int, steps: int, seed: int = 0) -> None:
    """Learners whose chance of success grows with practice answer what the active policy serves."""
    rng = np.random.default_rng(seed)
    for k in range(n_learners):
        learner = Learner.objects.create(display_name=f"sim{k}")
        skill = rng.normal(-0.5, 0.5)
        for step in range(steps):
            d = decision_next(learner_id=learner.pk)
            ok = rng.random() < 1 / (1 + np.exp(-(skill - d.item.difficulty)))
            response = str(d.item.answer["value"]) if ok else wrong_response(d.item.answer, rng)
            if ok and d.item.answer["type"] == "text":
                response = d.item.answer["value"].split("|")[0]
            attempt_record(learner_id=learner.pk, item_id=d.item_id, response=response,
                           client_attempt_id=str(step), decision_id=d.pk)
            skill += 0.15


def test_contexts_rebuild_the_logging_distribution_exactly(course, settings):
    settings.TUTOR_EXPLORE = 0.1
    play(6, 10)
    rows = logged_decisions()
    contexts = decision_contexts(rows)
    assert len(contexts) == len(rows) == 60
    _, active, _ = policy_active()
    logging_policy = served(active)  # mixed with the service's uniform exploration
    for c in contexts:
        probs = logging_policy.distribution(c.candidates, c.view)
        assert probs[c.chosen] == pytest.approx(c.decision.propensity, rel=1e-9)
    # The served item's skill: its logging probability, summed from the logged candidates, is what the logging
    # policy gives that skill now; on its own log every clustered weight is 1.
    from tutor.policy.bandit import RidgeModel

    feats = _features(contexts)
    chosen_x = np.array([x[c.chosen] for c, x in zip(contexts, feats, strict=True)])
    q = RidgeModel(10.0).fit(chosen_x, np.zeros(len(contexts)))
    data = ope_dataset(logging_policy, contexts, feats, q)
    assert data.cluster_propensity is not None and data.cluster_target_prob is not None
    assert np.allclose(data.cluster_target_prob, data.cluster_propensity, rtol=1e-9)
    assert np.all(data.cluster_propensity >= data.propensity) and np.any(data.cluster_propensity > data.propensity)


def test_train_bandit_records_ope_and_is_idempotent(course, settings):
    settings.TUTOR_EXPLORE = 0.1
    play(8, 12)
    first = policy_train(kind="bandit", n_boot=50)
    assert first.created and first.version is not None
    report = first.version.ope_report
    assert report["decisions"] == 96
    assert set(report["candidate"]) >= {"ips", "snips", "dr", "cdr", "ess", "ess_clustered"}
    # The active (logging) policy evaluated on its own log: every weight is 1, so IPS is the logged mean.
    assert report["active"]["ips"]["value"] == pytest.approx(report["logged_mean_reward"], rel=1e-9)
    lower = report["candidate"]["dr"]["ci95"][0]
    assert first.activated == (lower > report["active"]["dr"]["value"])
    assert PolicyVersion.objects.get(pk=first.version.pk).active == first.activated
    again = train_policy.delay(kind="bandit").get()
    assert again["created"] is False and again["version_id"] == first.version.pk
    assert PolicyVersion.objects.filter(name="bandit-auto").count() == 1


def test_not_enough_data_and_unknown_kind(course):
    play(1, 3)
    out = policy_train(kind="bandit")
    assert out.version is None and "need 50" in out.report["reason"]
    from learners.errors import InvalidInput

    with pytest.raises(InvalidInput, match="kind"):
        policy_train(kind="nope")
    with pytest.raises(InvalidInput, match="estimator") as err:
        policy_train(kind="bandit", estimator="dm")
    assert "cdr" in str(err.value) and "selected" in str(err.value)


def test_the_gate_can_use_the_clustered_estimator(course, settings):
    settings.TUTOR_EXPLORE = 0.1
    play(8, 12)
    out = policy_train(kind="bandit", n_boot=50, estimator="cdr")
    report = out.report
    assert report["estimator"] == "cdr" and "cdr" in report["rule"]
    assert out.activated == (report["candidate"]["cdr"]["ci95"][0] > report["active"]["cdr"]["value"])


def test_the_gate_can_use_the_selection_between_estimators(course, settings):
    settings.TUTOR_EXPLORE = 0.1
    play(8, 12)
    out = policy_train(kind="bandit", n_boot=50, estimator="selected")
    report = out.report
    picks = {report[side]["selected"]["estimator"] for side in ("candidate", "active")}
    used = "cdr" if picks == {"cdr"} else "dr"
    assert report["asked_estimator"] == "selected" and report["estimator"] == used
    assert out.activated == (report["candidate"][used]["ci95"][0] > report["active"][used]["value"])


def test_the_selected_gate_judges_both_policies_by_one_estimator():
    from tutor.services.policy_training import gate_estimator

    cdr, dr = {"selected": {"estimator": "cdr"}}, {"selected": {"estimator": "dr"}}
    assert gate_estimator("selected", cdr, cdr) == "cdr"
    assert gate_estimator("selected", cdr, dr) == "dr"
    assert gate_estimator("selected", dr, cdr) == "dr"
    assert gate_estimator("selected", {}, cdr) == "dr"  # no clustered estimate for the candidate
    assert gate_estimator("ips", cdr, cdr) == "ips"


def test_the_policy_command_passes_the_gate_estimator_and_refuses_an_unknown_one(course, settings):
    import io
    import json as json_

    from django.core.management import CommandError, call_command

    settings.TUTOR_EXPLORE = 0.1
    play(8, 12)
    with pytest.raises(CommandError, match="estimator"):
        call_command("policy", "train", "bandit", "--estimator", "dm", "--async")
    out = io.StringIO()
    call_command("policy", "train", "bandit", "--estimator", "selected", stdout=out)
    printed = json_.loads(out.getvalue())
    version = PolicyVersion.objects.get(pk=printed["version_id"])
    assert version.ope_report["asked_estimator"] == "selected"
    assert version.ope_report["estimator"] in {"cdr", "dr"}
