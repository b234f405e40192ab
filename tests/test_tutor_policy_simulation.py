"""Simulator-trained policies (planner, hierarchical, PPO) for the service's own curriculum: trained over database
ids, recorded as versions with explicit parameters, gated by off-policy evaluation on the real log, and served."""

import io
from datetime import timedelta

import numpy as np
import pytest
from django.db.models import F

from curriculum.selectors import curriculum_snapshot
from learners.errors import InvalidInput
from learners.models import Learner
from tests.test_tutor_policy_training import play
from tutor.models import PolicyVersion
from tutor.policy.registry import load_policy
from tutor.services import policies
from tutor.services.evaluation import logged_decisions
from tutor.services.policy_simulation import course_from_snapshot, simulator_params
from tutor.services.policy_training import decision_contexts, policy_train
from tutor.services.scheduling import decision_next

pytestmark = pytest.mark.django_db

TINY = {"pilot_learners": 20, "pilot_horizon": 30, "tune": False, "horizon": 40, "ppo_iterations": 2, "ppo_envs": 8,
        "pomdp_learners": 4, "pomdp_beliefs": 40, "pomdp_iterations": 5, "pomdp_expand_learners": 3,
        "pomdp_expand_iterations": 3}  # fmt: skip


def test_course_keeps_database_ids_and_difficulties(course):
    snap = curriculum_snapshot()
    c = course_from_snapshot(snap)
    assert set(c.skill_ids) == set(snap.graph.skills)
    assert c.item_ids == tuple(i.id for i in snap.items)
    for k, info in enumerate(snap.items):
        assert tuple(c.skill_ids[s] for s in c.item_skills[k]) == info.skills
        assert c.difficulty[k] == info.difficulty
    assert sorted(c.graph.edges()) == sorted(snap.graph.edges())


@pytest.mark.parametrize("kind", ["hierarchical", "ppo", "belief", "joint", "pomdp"])
def test_train_in_simulator_record_gate_and_serve(course, kind, settings):
    settings.TUTOR_EXPLORE = 0.1
    play(6, 10)
    out = policy_train(kind=kind, n_boot=30, min_decisions=30, training=TINY)
    assert out.created and out.version is not None
    v = PolicyVersion.objects.get(pk=out.version.pk)
    report = v.ope_report
    assert report["simulator_training"]["course"]["skills"] == len(curriculum_snapshot().graph.skills)
    assert "defaults" in report["simulator_training"]["simulator"]["source"]
    assert out.activated == (report["candidate"]["dr"]["ci95"][0] > report["active"]["dr"]["value"])
    # The stored parameters are the trained policy, over database ids; the recorded hyperparameters are its own.
    policy = load_policy(kind, io.BytesIO(bytes(v.params)))
    if hasattr(policy, "_hyper"):
        assert v.hyperparameters == policy._hyper()
    rows = logged_decisions()
    for ctx in decision_contexts(rows)[:10]:
        probs = policy.distribution(ctx.candidates, ctx.view)
        assert probs.sum() == pytest.approx(1.0)
        assert (policies.served(policy).distribution(ctx.candidates, ctx.view) > 0).all()
    # Activated by hand when OPE did not: it serves real items of the curriculum.
    policies.policy_activate(version_id=v.pk)
    learner_id = rows[0].learner_id
    d = decision_next(learner_id=learner_id)
    assert d.policy_version_id == v.pk
    assert d.item_id in curriculum_snapshot().items_by_id
    # Idempotent: the same log trains nothing new.
    again = policy_train(kind=kind, n_boot=30, min_decisions=30, training=TINY)
    assert not again.created and again.version.pk == v.pk


def test_bad_training_options_name_the_field(course):
    play(6, 10)
    with pytest.raises(InvalidInput, match="training"):
        policy_train(kind="planner", min_decisions=30, training={"bogus": 1})
    # Simulator-trained kinds choose their own hyperparameters: a value passed in would be recorded but not used.
    with pytest.raises(InvalidInput, match="hyperparameters"):
        policy_train(kind="joint", min_decisions=30, hyperparameters={"unlock": 0.5})
    assert not PolicyVersion.objects.exists()


def test_simulated_learners_calibrate_on_the_service_log_when_it_is_big_enough(course):
    play(8, 12)
    params, report, log = simulator_params()
    assert "defaults" in report["source"] and report["attempts"] == 96
    params, report, log = simulator_params(min_attempts=50)
    assert report["source"] == "the service's attempt log"
    assert np.isfinite(report["accuracy_curve_rmse"])
    assert 0 < params.prior < 1 and 0 < params.learn < 1


@pytest.mark.parametrize("kind", ["belief", "joint"])
def test_belief_model_is_fitted_on_the_real_log_once_it_is_big_enough(course, settings, monkeypatch, kind):
    from tutor.services import policy_simulation

    settings.TUTOR_EXPLORE = 0.1
    play(8, 12)
    monkeypatch.setattr(policy_simulation, "MIN_CALIBRATION_ATTEMPTS", 50)
    out = policy_train(kind=kind, n_boot=30, min_decisions=30, training=TINY)
    st = out.version.ope_report["simulator_training"]
    assert st["simulator"]["source"] == "the service's attempt log"
    fitted = st[f"{kind}_model"]
    assert fitted["source"] == "the service's attempt log" and fitted["answers"] == 96
    policy = load_policy(kind, io.BytesIO(bytes(out.version.params)))
    assert sorted(policy.model_.skills_) == sorted(curriculum_snapshot().graph.skills)
    extra = ("answers", "loglik", "source", "refine")
    assert policy.model_.to_dict() == {k: v for k, v in fitted.items() if k not in extra}
    if kind == "joint":
        steps = fitted["refine"]["steps"]
        assert steps[-1]["loglik"] >= steps[0]["loglik"]
        # Everybody answered today in one sitting: no session has ended and nobody has quit, so the session
        # model stays the simulator pilot's.
        kept = st["joint_sessions_log"]
        assert (kept["learners"], kept["quit"]) == (8, 0) and "sessions that end" in kept["skipped"]
        pilot = st["joint_sessions"]
        assert policy.sessions_ is None if "skipped" in pilot else policy.sessions_.to_dict() == pilot


def test_joint_session_model_is_fitted_on_the_real_log_with_the_quit_rule(course, settings, monkeypatch):
    """Learners silent for longer than TUTOR_QUIT_AFTER_DAYS have quit: with some of them, and learners who came
    back after a pause, the joint policy's session model is fitted on the service's own log."""
    from learners.models import Attempt
    from tutor.services import policy_simulation

    settings.TUTOR_EXPLORE = 0.1
    play(8, 12)
    day = timedelta(days=1)
    for k, learner in enumerate(Learner.objects.order_by("id")):
        ids = list(Attempt.objects.filter(learner=learner).order_by("id").values_list("id", flat=True))
        # Two sessions two days apart; the first four learners had them 40 days ago and never came back.
        away = 40 * day if k < 4 else 0 * day
        Attempt.objects.filter(pk__in=ids[:6]).update(created_at=F("created_at") - 2 * day - away)
        Attempt.objects.filter(pk__in=ids[6:]).update(created_at=F("created_at") - away)
    monkeypatch.setattr(policy_simulation, "MIN_CALIBRATION_ATTEMPTS", 50)
    out = policy_train(kind="joint", n_boot=30, min_decisions=30, training=TINY)
    st = out.version.ope_report["simulator_training"]
    fitted = st["joint_sessions"]
    assert fitted["source"] == "the service's attempt log" and (fitted["learners"], fitted["quit"]) == (8, 4)
    assert "joint_sessions_log" not in st
    policy = load_policy("joint", io.BytesIO(bytes(out.version.params)))
    about = ("source", "quit_after_days", "learners", "quit")
    assert policy.sessions_.to_dict() == {k: v for k, v in fitted.items() if k not in about}
    assert policy.sessions_.quit_rise(5) != 0.0
    # With a longer silence before counting a learner as gone, nobody has quit.
    answers, quit = policy_simulation.sessions_from_log(policy_simulation.attempt_log()[0], quit_after_days=60.0)
    assert len(quit) == 8 and not any(quit.values()) and len(answers[0]) == 96


def test_sessions_from_log_counts_answers_once_and_quits_by_silence():
    from learners.tracing.base import AttemptLog
    from tutor.services.policy_simulation import sessions_from_log

    d = 86400.0
    log = AttemptLog.from_rows(
        learner=[1, 1, 1, 2, 2, 3],
        item=[5, 5, 6, 5, 6, 7],
        skill=[10, 11, 10, 10, 10, 12],
        correct=[0, 0, 1, 1, 0, 1],
        attempt=[1, 1, 2, 3, 4, 5],  # learner 1's first answer is tagged with two skills: one row counts
        timestamp=[0.0, 0.0, 60.0, 0.0, 40 * d, 39 * d],
    )
    (learner, correct, time), quit = sessions_from_log(log, quit_after_days=28)
    assert learner.tolist() == [1, 1, 2, 2, 3] and correct.tolist() == [False, True, True, False, True]
    assert time.tolist() == [0.0, 60.0, 0.0, 40 * d, 39 * d]
    assert quit == {1: True, 2: False, 3: False}
