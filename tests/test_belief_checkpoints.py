"""Belief states kept per learner so that a fresh process resumes instead of filtering the whole history
(tutor.policy.belief dump/load/resume, tutor.services.belief_checkpoints)."""

import numpy as np
import pytest

from tests.test_policy_belief import GRAPH
from tests.test_policy_belief import model as mean_field
from tests.test_policy_joint import CANDS, history, joint
from tutor.policy.base import LearnerView
from tutor.policy.belief import BeliefPolicy
from tutor.policy.joint import JointBeliefPolicy, JointModel


@pytest.mark.parametrize(
    "make",
    [
        lambda: mean_field(classes=[{"weight": 0.5, "rate": 0.5, "shift": 0.0}, {"weight": 0.5, "rate": 2.0, "shift": 0.0}]),
        lambda: joint(),
        lambda: JointModel.from_model(joint(), rate_sd=0.8),
    ],
    ids=["mean-field", "joint", "joint-classes"],
)
def test_a_dumped_belief_filters_on_exactly_as_the_original(make):
    m = make()
    hist = history(np.random.default_rng(3), 40)
    whole = m.filter(hist)
    resumed = m.filter(hist[17:], m.load_belief(m.dump_belief(m.filter(hist[:17]))))
    now = hist[-1].time + 3 * 86400.0
    assert m.beliefs(resumed, now) == m.beliefs(whole, now)  # bit for bit: the bytes hold every float
    assert m.loglik_of(resumed) == m.loglik_of(whole)


def test_a_belief_of_another_model_is_refused():
    mf, jm = mean_field(), joint()
    with pytest.raises(ValueError, match="another model"):
        jm.load_belief(mf.dump_belief(mf.new_belief()))
    with pytest.raises(ValueError, match="another model"):
        mf.load_belief(jm.dump_belief(jm.new_belief()))
    three = JointModel.from_model(joint(), rate_sd=0.8)
    with pytest.raises(ValueError, match="another model"):
        jm.load_belief(three.dump_belief(three.new_belief()))


@pytest.mark.parametrize(("cls", "make"), [(BeliefPolicy, mean_field), (JointBeliefPolicy, joint)])
def test_resume_costs_the_answers_after_the_checkpoint_and_decides_as_a_full_filter(cls, make, monkeypatch):
    m = make()
    hist = history(np.random.default_rng(5), 60)
    view = LearnerView(GRAPH, {}, history=hist, now=hist[-1].time + 60.0)
    cold = cls(model=m)
    assert cold.known_through(hist) == 0
    checkpoint = m.load_belief(m.dump_belief(m.filter(hist[:52])))
    calls = []
    real = m.update
    monkeypatch.setattr(m, "update", lambda *a: calls.append(a) or real(*a))
    cold.resume(hist, 52, checkpoint)
    assert cold.known_through(hist) == 60
    decided = cold.distribution(CANDS, view)
    assert len(calls) == 8  # the eight answers after the checkpoint, and no refiltering when deciding
    monkeypatch.undo()
    full = cls(model=m)
    assert decided == pytest.approx(full.distribution(CANDS, view), abs=0)
    assert cold.belief(view) == full.belief(view)
    with pytest.raises(ValueError, match="outside"):
        cold.resume(hist, 61, checkpoint)


def test_the_digest_follows_the_model():
    a, b = BeliefPolicy(model=mean_field()), BeliefPolicy(model=mean_field())
    assert a.model_digest() == b.model_digest() and len(a.model_digest()) == 64
    assert BeliefPolicy(model=mean_field(learn=(0.3, 0.2, 0.2, 0.2))).model_digest() != a.model_digest()
    a.fit(mean_field(forget=0.2))
    assert a.model_digest() != b.model_digest()


# -- the service -----------------------------------------------------------------------------------------------


@pytest.fixture
def served(course, settings):
    """A joint policy version active on the test course; returns a helper to answer and ask for the next item."""
    from learners.services import attempt_record, user_create
    from tutor.policy.joint import JointModel
    from tutor.services.policies import policy_activate, policy_bytes, policy_version_create
    from tutor.services.scheduling import decision_next

    skills = sorted(s.pk for s in course["skills"].values())
    m = JointModel().set_params(
        skills, np.zeros((4, 4), dtype=bool), [0.4, 0.5, 0.6, 0.5], [0.2] * 4, [0.2] * 4, [0.1] * 4,
        {"difficulty_effect": 0.5, "fatigue": 0.3, "fit_linear": 0.0, "fit_quadratic": 0.0, "prereq": 0.15,
         "prior_prereq": 0.3, "forget": 0.05},
    )
    version, _ = policy_version_create(name="j", kind="joint", params=policy_bytes(JointBeliefPolicy(model=m)))
    policy_activate(version_id=version.pk)
    lid = user_create(username="ck", role="learner")["learner_id"]
    count = {"k": 0}

    def answer(n, decide=True):
        for _ in range(n):
            k = count["k"]
            item = course["items"][("add-1", "count-1", "sub-1")[k % 3]]
            right = item.answer["value"]
            attempt_record(learner_id=lid, item_id=item.pk, response=right if k % 4 else "999",
                           client_attempt_id=f"c{k}")
            count["k"] += 1
            if decide:
                decision_next(learner_id=lid)

    return {"version": version, "learner": lid, "answer": answer, "decide": lambda: decision_next(learner_id=lid)}


def _fresh_process():
    """What a new worker process starts with: no cached answers, policies, or checkpoint bookkeeping."""
    from tutor.services import belief_checkpoints, learner_history, policies

    learner_history.cache.clear()
    policies._loaded.clear()
    belief_checkpoints.clear()


def _served_policy(learner_id):
    from tutor.services.policies import policy_for_learner

    return policy_for_learner(learner_id=learner_id)[1]


def _count_updates(monkeypatch, policy):
    calls = []
    real = policy.model_.update
    monkeypatch.setattr(policy.model_, "update", lambda *a: calls.append(a) or real(*a))
    return calls


def _full_belief(learner_id, policy):
    """The belief of a policy that filters every answer of the learner from the first."""
    from curriculum.selectors import curriculum_snapshot
    from learners.models import LearnerState
    from tutor.services.learner_history import HistoryCache

    ls = LearnerState.objects.get(learner_id=learner_id)
    hist = HistoryCache().outcomes(learner_id=learner_id, n_attempts=ls.n_attempts,
                                   last_attempt_id=ls.last_attempt_id, snapshot=curriculum_snapshot())
    fresh = JointBeliefPolicy(model=policy.model_)
    return fresh.belief(LearnerView(GRAPH, {}, history=hist, now=hist[-1].time))


def test_a_fresh_process_resumes_from_the_checkpoint(served, monkeypatch, django_assert_max_num_queries):
    from tutor.models import BeliefCheckpoint

    served["answer"](47)
    ck = BeliefCheckpoint.objects.get(learner_id=served["learner"])
    assert ck.n_attempts == 40 and ck.policy_version_id == served["version"].pk  # written at 20 and 40 answers
    _fresh_process()
    policy = _served_policy(served["learner"])
    calls = _count_updates(monkeypatch, policy)
    served["decide"]()
    assert len(calls) == 7  # the answers after the checkpoint, not all 47
    monkeypatch.undo()
    from curriculum.selectors import curriculum_snapshot
    from learners.models import LearnerState
    from tutor.services import learner_history

    ls = LearnerState.objects.get(learner_id=served["learner"])
    hist = learner_history.cache.outcomes(learner_id=served["learner"], n_attempts=ls.n_attempts,
                                          last_attempt_id=ls.last_attempt_id, snapshot=curriculum_snapshot())
    resumed = policy.belief(LearnerView(GRAPH, {}, history=hist, now=hist[-1].time))
    assert resumed == pytest.approx(_full_belief(served["learner"], policy), rel=1e-12)
    # Warm again: one update per answer, no checkpoint read.
    served["answer"](1, decide=False)
    calls = _count_updates(monkeypatch, policy)
    with django_assert_max_num_queries(12):
        served["decide"]()
    assert len(calls) == 1


def test_a_checkpoint_behind_deleted_answers_is_not_used(served, monkeypatch):
    from learners.models import Attempt, LearnerState

    served["answer"](45)
    # An early answer is removed (and the learner's count with it): the checkpoint's position no longer holds
    # the attempt it was taken after, so the fresh process filters everything.
    Attempt.objects.filter(learner_id=served["learner"]).order_by("id").first().delete()
    LearnerState.objects.filter(learner_id=served["learner"]).update(n_attempts=44)
    _fresh_process()
    policy = _served_policy(served["learner"])
    calls = _count_updates(monkeypatch, policy)
    served["decide"]()
    assert len(calls) == 44


def test_a_checkpoint_of_another_model_is_not_used(served, monkeypatch):
    from tutor.models import BeliefCheckpoint

    served["answer"](45)
    BeliefCheckpoint.objects.update(model_digest="0" * 64)
    _fresh_process()
    policy = _served_policy(served["learner"])
    calls = _count_updates(monkeypatch, policy)
    served["decide"]()
    assert len(calls) == 45


def test_checkpoints_only_move_forward_and_saving_twice_is_harmless(served):
    from curriculum.selectors import curriculum_snapshot
    from learners.models import LearnerState
    from tutor.models import BeliefCheckpoint
    from tutor.services import belief_checkpoints, learner_history

    served["answer"](21)
    lid, version = served["learner"], served["version"]
    ls = LearnerState.objects.get(learner_id=lid)
    hist, ids = learner_history.cache.outcomes_and_ids(learner_id=lid, n_attempts=ls.n_attempts,
                                                       last_attempt_id=ls.last_attempt_id,
                                                       snapshot=curriculum_snapshot())
    policy = _served_policy(lid)
    before = BeliefCheckpoint.objects.get(learner_id=lid)
    assert before.n_attempts == 20
    # Another process, holding an older view (20 answers), tries to write after this one wrote at 40.
    served["answer"](20)
    assert BeliefCheckpoint.objects.get(learner_id=lid).n_attempts == 40
    belief_checkpoints.clear()
    kw = {"policy": policy, "version": version, "learner_id": lid}
    assert not belief_checkpoints.save(**kw, history=hist[:20], ids=ids[:20], n_attempts=20)
    assert BeliefCheckpoint.objects.get(learner_id=lid).n_attempts == 40
    # A second writer at the same count changes nothing either; one row per learner and version.
    ls = LearnerState.objects.get(learner_id=lid)
    hist, ids = learner_history.cache.outcomes_and_ids(learner_id=lid, n_attempts=ls.n_attempts,
                                                       last_attempt_id=ls.last_attempt_id,
                                                       snapshot=curriculum_snapshot())
    belief_checkpoints.clear()
    row = BeliefCheckpoint.objects.get(learner_id=lid)
    assert not belief_checkpoints.save(**kw, history=hist, ids=ids, n_attempts=ls.n_attempts)
    assert BeliefCheckpoint.objects.filter(learner_id=lid).count() == 1
    assert BeliefCheckpoint.objects.get(learner_id=lid).updated_at == row.updated_at


def test_activation_prunes_checkpoints_of_versions_that_no_longer_serve(served):
    from tutor.models import BeliefCheckpoint
    from tutor.services.policies import policy_activate, policy_version_create

    served["answer"](20)
    assert BeliefCheckpoint.objects.count() == 1
    for k in range(3):  # three later versions: the first one leaves the latest three activated
        v, _ = policy_version_create(name=f"m{k}", kind="mastery")
        policy_activate(version_id=v.pk)
        assert BeliefCheckpoint.objects.count() == (1 if k < 2 else 0)


def test_past_the_window_a_fresh_process_holds_the_same_belief_as_a_long_running_one(served, monkeypatch):
    """Before checkpoints, a process meeting a learner with more answers than the window filtered the window
    alone, while a process that had served them all along kept every answer's evidence."""
    from curriculum.selectors import curriculum_snapshot
    from learners.models import LearnerState
    from tutor.models import BeliefCheckpoint
    from tutor.services import learner_history

    monkeypatch.setattr(learner_history.cache, "window", 30)
    served["answer"](47)
    lid = served["learner"]
    long_running = _served_policy(lid)
    ls = LearnerState.objects.get(learner_id=lid)
    hist = learner_history.cache.outcomes(learner_id=lid, n_attempts=ls.n_attempts,
                                          last_attempt_id=ls.last_attempt_id, snapshot=curriculum_snapshot())
    assert len(hist) == 30
    view = LearnerView(GRAPH, {}, history=hist, now=hist[-1].time)
    kept = long_running.belief(view)
    window_only = JointBeliefPolicy(model=long_running.model_).belief(view)
    assert kept != pytest.approx(window_only, rel=1e-6)  # the 17 answers before the window matter
    _fresh_process()
    served["decide"]()  # resumes from the checkpoint at 40 answers
    fresh = _served_policy(lid)
    assert fresh is not long_running
    ls = LearnerState.objects.get(learner_id=lid)
    hist = learner_history.cache.outcomes(learner_id=lid, n_attempts=ls.n_attempts,
                                          last_attempt_id=ls.last_attempt_id, snapshot=curriculum_snapshot())
    assert fresh.belief(LearnerView(GRAPH, {}, history=hist, now=hist[-1].time)) == pytest.approx(kept, rel=1e-12)
    assert BeliefCheckpoint.objects.get(learner_id=lid).n_attempts == 40


def test_concurrent_writers_leave_one_row_with_the_newest_state(transactional_db, served, monkeypatch):
    """Eight threads (each its own database connection) write checkpoints of different lengths for one learner at
    once, without the per-process bookkeeping that normally spares most of the writes: one row remains, the
    longest, and it resumes to the same belief as filtering everything. On PostgreSQL under CI."""
    import random
    import threading

    from django.db import connection

    from curriculum.selectors import curriculum_snapshot
    from learners.models import LearnerState
    from tutor.models import BeliefCheckpoint
    from tutor.services import belief_checkpoints, learner_history

    served["answer"](160, decide=False)
    lid, version = served["learner"], served["version"]
    policy = _served_policy(lid)
    ls = LearnerState.objects.get(learner_id=lid)
    hist, ids = learner_history.cache.outcomes_and_ids(learner_id=lid, n_attempts=ls.n_attempts,
                                                       last_attempt_id=ls.last_attempt_id,
                                                       snapshot=curriculum_snapshot())
    policy.filter_state(hist)
    monkeypatch.setattr(belief_checkpoints, "_remember", lambda key, n: None)
    monkeypatch.setattr(belief_checkpoints, "_saved", {})
    lengths = list(range(20, 161, 20))
    random.Random(3).shuffle(lengths)
    barrier = threading.Barrier(len(lengths))
    errors = []

    def write(n):
        try:
            barrier.wait()
            belief_checkpoints.save(policy=policy, version=version, learner_id=lid, history=hist[:n], ids=ids[:n],
                                    n_attempts=n)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in lengths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = list(BeliefCheckpoint.objects.filter(learner_id=lid))
    assert len(rows) == 1 and rows[0].n_attempts == 160 and rows[0].last_attempt_id == ids[-1]
    resumed = JointBeliefPolicy(model=policy.model_)
    resumed.resume(hist, 160, policy.model_.load_belief(bytes(rows[0].state)))
    view = LearnerView(GRAPH, {}, history=hist, now=hist[-1].time)
    assert resumed.belief(view) == JointBeliefPolicy(model=policy.model_).belief(view)
