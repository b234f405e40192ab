import io

import pytest
from django.core.management import call_command

from learners.errors import Conflict, InvalidInput
from learners.services import attempt_record, user_create
from tutor.models import Decision, PolicyVersion
from tutor.services import policies
from tutor.services.evaluation import logged_decisions, policy_report
from tutor.services.scheduling import decision_next

pytestmark = pytest.mark.django_db


def test_version_create_is_idempotent_and_validated(db):
    v1, created = policies.policy_version_create(name="m", kind="mastery", hyperparameters={"epsilon": 0.2})
    v2, again = policies.policy_version_create(name="m", kind="mastery", hyperparameters={"epsilon": 0.2})
    assert created and not again and v1.pk == v2.pk
    with pytest.raises(InvalidInput, match="kind"):
        policies.policy_version_create(name="x", kind="nope")
    with pytest.raises(InvalidInput, match="hyperparameters"):
        policies.policy_version_create(name="y", kind="mastery", hyperparameters={"bogus": 1})


def test_activate_and_rollback(course):
    a, _ = policies.policy_version_create(name="a", kind="mastery", hyperparameters={"epsilon": 0.1})
    b, _ = policies.policy_version_create(name="b", kind="mastery", hyperparameters={"epsilon": 0.3})
    policies.policy_activate(version_id=a.pk)
    policies.policy_activate(version_id=b.pk)
    assert list(PolicyVersion.objects.filter(active=True)) == [b]
    learner = user_create(username="l1", role="learner")
    d = decision_next(learner_id=learner["learner_id"])
    assert d.policy_version_id == b.pk and d.policy_name == "b@0"
    assert policies.policy_rollback() == a
    assert PolicyVersion.objects.get(active=True) == a
    assert policies.policy_rollback() is None  # a had no predecessor: back to the default policy
    assert not PolicyVersion.objects.filter(active=True).exists()
    assert decision_next(learner_id=learner["learner_id"]).policy_name == "mastery"
    with pytest.raises(Conflict):
        policies.policy_rollback()


def test_experiment_splits_learners_stably_and_report_compares_arms(course):
    a, _ = policies.policy_version_create(name="ctl", kind="mastery", hyperparameters={"epsilon": 0.1})
    b, _ = policies.policy_version_create(name="trt", kind="mastery", hyperparameters={"epsilon": 0.5})
    with pytest.raises(Conflict):
        policies.experiment_start(name="e", treatment_id=b.pk)
    policies.policy_activate(version_id=a.pk)
    policies.experiment_start(name="e", treatment_id=b.pk, treatment_share=0.5)
    learners = [user_create(username=f"x{i}", role="learner")["learner_id"] for i in range(12)]
    arms = {}
    for lid in learners:
        first = decision_next(learner_id=lid)
        second = decision_next(learner_id=lid)
        assert first.policy_version_id == second.policy_version_id
        arms[lid] = first.policy_version_id
        key = first.item.answer["value"]
        attempt_record(learner_id=lid, item_id=first.item_id, response=str(key), client_attempt_id="1",
                       decision_id=first.pk)
    assert set(arms.values()) == {a.pk, b.pk}
    report = policy_report()
    assert set(report) == {"ctl@0", "trt@0"}
    assert sum(r["decisions"] for r in report.values()) == 12
    assert all(r["accuracy"] == 1.0 for r in report.values())
    assert all(r["mean_gain"] > 0 for r in report.values())  # correct answers raise mastery
    logged = logged_decisions()
    assert len(logged) == 12 and all(abs(sum(c[1] for c in d.candidates) - 1) < 1e-6 for d in logged)
    out = io.StringIO()
    call_command("policy", "experiment-stop", stdout=out)
    assert "stopped 1" in out.getvalue()
    assert Decision.objects.count() == 24


def test_every_served_decision_gives_every_candidate_the_exploration_floor(course, settings):
    """Rule-based policies explore only within their focus skill; the service mixes in uniform choice over all
    candidates so that any later policy can be evaluated off-policy."""
    settings.TUTOR_EXPLORE = 0.2
    learner = user_create(username="floor", role="learner")
    d = decision_next(learner_id=learner["learner_id"])
    probs = [p for _, p, _ in d.candidates]
    n = len(probs)
    assert min(probs) >= 0.2 / n - 1e-12
    assert sum(probs) == pytest.approx(1.0)
    assert d.propensity == pytest.approx({i: p for i, p, _ in d.candidates}[d.item_id])
    assert d.context["info"]["explore"] == 0.2 and "focus_skill" in d.context["info"]
    settings.TUTOR_EXPLORE = 0.0
    d0 = decision_next(learner_id=learner["learner_id"])
    assert min(p for _, p, _ in d0.candidates) == 0.0  # v0 alone leaves items outside its focus at zero
    settings.TUTOR_EXPLORE = 1.5
    with pytest.raises(InvalidInput, match="TUTOR_EXPLORE"):
        decision_next(learner_id=learner["learner_id"])


def test_choose_draws_from_the_served_mixture():
    import numpy as np

    from curriculum.graph import SkillGraph
    from tutor.policy.base import Candidate, LearnerView, MasteryLearningPolicy
    from tutor.services.scheduling import choose

    graph = SkillGraph([1, 2], [(1, 2)])
    cands = [Candidate(10 + k, (1 + k % 2,), 0.3 + 0.1 * k) for k in range(6)]
    view = LearnerView(graph, {1: 0.2, 2: 0.1})
    policy = MasteryLearningPolicy(epsilon=0.0)
    mixed = policies.served(policy, 0.3).distribution(cands, view)
    rng = np.random.default_rng(0)
    counts = dict.fromkeys((c.item for c in cands), 0)
    for _ in range(4000):
        choice = choose(policy, cands, view, rng, 0.3)
        assert choice.propensity == pytest.approx(mixed[[c.item for c in cands].index(choice.item)], rel=1e-12)
        counts[choice.item] += 1
    freq = np.array([counts[c.item] for c in cands]) / 4000
    assert np.abs(freq - mixed).max() < 0.03


def test_a_version_with_a_non_finite_number_is_refused_naming_it_and_nothing_is_stored():
    before = PolicyVersion.objects.count()
    report = {"training": {"belief_model": {"globals": {"forget": float("inf")}}}, "ess": [1.0, float("nan")]}
    with pytest.raises(InvalidInput) as exc:
        policies.policy_version_create(name="bad", kind="zpdes", ope_report=report)
    assert exc.value.field == "ope_report" and "ope_report.training.belief_model.globals.forget" in str(exc.value)
    with pytest.raises(InvalidInput) as exc:
        policies.policy_version_create(name="bad", kind="zpdes", ope_report={"ess": [1.0, float("nan")]})
    assert "ope_report.ess.1" in str(exc.value)
    with pytest.raises(InvalidInput) as exc:
        policies.policy_version_create(name="bad", kind="zpdes", hyperparameters={"done": float("-inf")})
    assert exc.value.field == "hyperparameters"
    assert PolicyVersion.objects.count() == before
    # Finite numbers, nested, are stored as they are.
    version, created = policies.policy_version_create(name="ok", kind="zpdes", ope_report={"a": [{"b": 0.5}]})
    assert created and version.ope_report == {"a": [{"b": 0.5}]}


def test_the_serving_lookup_leaves_parameters_and_reports_in_the_database(course):
    # Looked up every second per process: a learned version's parameters (tens of MB for a plan) are read once,
    # when the process first loads the policy, not with every lookup.
    a, _ = policies.policy_version_create(name="a", kind="mastery", ope_report={"note": "x" * 1000})
    b, _ = policies.policy_version_create(name="b", kind="mastery", hyperparameters={"epsilon": 0.3})
    policies.policy_activate(version_id=a.pk)
    policies.experiment_start(name="e", treatment_id=b.pk, treatment_share=0.5)
    policies.serving_changed()
    experiment, version = policies._serving()
    assert version == a and {"params", "ope_report"} <= version.get_deferred_fields()
    for arm in (experiment.control, experiment.treatment):
        assert {"params", "ope_report"} <= arm.get_deferred_fields()
    learner = user_create(username="l1", role="learner")
    assert decision_next(learner_id=learner["learner_id"]).policy_version_id in (a.pk, b.pk)
