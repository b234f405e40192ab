"""The scheduler's per-process view of a learner's answers (tutor.services.learner_history)."""

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from curriculum.selectors import curriculum_snapshot
from learners.models import Attempt, LearnerState
from learners.services import attempt_record, user_create
from tutor.policy.base import Outcome
from tutor.services import learner_history
from tutor.services.learner_history import HistoryCache
from tutor.services.policies import policy_activate, policy_bytes, policy_version_create
from tutor.services.scheduling import decision_next

pytestmark = pytest.mark.django_db


def _answer(learner_id, course, k, correct=True):
    code = ("add-1", "count-1", "sub-1")[k % 3]
    item = course["items"][code]
    right = item.answer["value"]
    attempt_record(learner_id=learner_id, item_id=item.pk, response=right if correct else "999",
                   client_attempt_id=f"a{k}")


def _from_log(learner_id, window):
    rows = Attempt.objects.filter(learner_id=learner_id).order_by("-id")[:window]
    return [(a.item_id, a.correct, a.created_at.timestamp()) for a in reversed(rows)]


def _get(cache, learner_id):
    ls = LearnerState.objects.get(learner_id=learner_id)
    return cache.outcomes(learner_id=learner_id, n_attempts=ls.n_attempts, last_attempt_id=ls.last_attempt_id,
                          snapshot=curriculum_snapshot())


def test_the_same_answer_objects_come_back_and_only_new_rows_are_read(course):
    lid = user_create(username="h1", role="learner")["learner_id"]
    cache = HistoryCache(window=50)
    for k in range(4):
        _answer(lid, course, k, correct=k != 1)
    first = _get(cache, lid)
    assert [(o.item, o.correct, o.time) for o in first] == _from_log(lid, 50)
    assert first[0].skills == (course["skills"]["add"].pk,) and isinstance(first[0], Outcome)
    ls = LearnerState.objects.get(learner_id=lid)
    with CaptureQueriesContext(connection) as unchanged:
        again = cache.outcomes(learner_id=lid, n_attempts=ls.n_attempts, last_attempt_id=ls.last_attempt_id,
                               snapshot=curriculum_snapshot())
    assert again is first and len(unchanged) == 0
    _answer(lid, course, 4, correct=False)
    ls = LearnerState.objects.get(learner_id=lid)
    with CaptureQueriesContext(connection) as grown:
        later = cache.outcomes(learner_id=lid, n_attempts=ls.n_attempts, last_attempt_id=ls.last_attempt_id,
                               snapshot=curriculum_snapshot())
    assert len(grown) == 1  # the new answer and the last one held, in one query
    assert all(a is b for a, b in zip(later, first, strict=False)) and len(later) == 5
    assert [(o.item, o.correct, o.time) for o in later] == _from_log(lid, 50)
    assert cache.stats == {"hit": 1, "extend": 1, "rebuild": 1}


def test_the_window_slides_and_stays_bounded(course):
    lid = user_create(username="h2", role="learner")["learner_id"]
    cache = HistoryCache(window=5)
    seen = []
    for k in range(9):
        _answer(lid, course, k, correct=k % 2 == 0)
        seen.append(_get(cache, lid))
    assert [len(h) for h in seen] == [1, 2, 3, 4, 5, 5, 5, 5, 5]
    assert [(o.item, o.correct, o.time) for o in seen[-1]] == _from_log(lid, 5)
    assert seen[-1][:4] == seen[-2][1:] and all(a is b for a, b in zip(seen[-1][:4], seen[-2][1:], strict=True))
    assert cache.stats["rebuild"] == 1


def test_answers_removed_or_written_elsewhere_make_it_read_the_log_again(course):
    lid = user_create(username="h3", role="learner")["learner_id"]
    cache = HistoryCache(window=50)
    for k in range(5):
        _answer(lid, course, k)
    _get(cache, lid)
    # The newest held answer is deleted and two others arrive (the state row says 6 answers): not an extension.
    Attempt.objects.filter(learner_id=lid).order_by("-id").first().delete()
    ls = LearnerState.objects.get(learner_id=lid)
    LearnerState.objects.filter(pk=ls.pk).update(n_attempts=4)
    for k in range(5, 7):
        _answer(lid, course, k, correct=False)
    after = _get(cache, lid)
    assert [(o.item, o.correct, o.time) for o in after] == _from_log(lid, 50)
    assert cache.stats["rebuild"] == 2 and cache.stats["extend"] == 0
    # The curriculum changed: answers are rebuilt with the new snapshot's skills and difficulty.
    item = course["items"]["add-1"]
    item.difficulty = 1.5
    item.save()
    from curriculum.selectors import curriculum_changed

    curriculum_changed()
    rebuilt = _get(cache, lid)
    assert {o.difficulty for o in rebuilt if o.item == item.pk} == {1.5}


def test_a_long_time_learner_costs_one_belief_update_per_decision(course, monkeypatch):
    """Past the window, every request shows the policy a window slid by one answer; the belief policy must
    extend its state instead of filtering the whole window again (the cost that broke the latency target)."""
    from tests.test_policy_belief import PLAIN
    from tutor.policy.belief import BeliefModel, BeliefPolicy

    monkeypatch.setattr(learner_history.cache, "window", 6)
    skills = sorted(s.pk for s in course["skills"].values())
    m = BeliefModel().set_params(skills, np.zeros((4, 4), dtype=bool), [0.5] * 4, [0.2] * 4, [0.2] * 4, [0.1] * 4,
                                 PLAIN)
    version, _ = policy_version_create(name="b", kind="belief", params=policy_bytes(BeliefPolicy(model=m)))
    policy_activate(version_id=version.pk)
    lid = user_create(username="h4", role="learner")["learner_id"]
    for k in range(10):
        _answer(lid, course, k, correct=k % 3 != 0)
    decision_next(learner_id=lid)
    from tutor.services.policies import policy_for_learner

    served = policy_for_learner(learner_id=lid)[1]
    assert isinstance(served, BeliefPolicy)
    calls = []
    real = served.model_.update
    monkeypatch.setattr(served.model_, "update", lambda *a: calls.append(a) or real(*a))
    for k in range(10, 14):
        _answer(lid, course, k, correct=k % 2 == 0)
        decision_next(learner_id=lid)
    assert len(calls) == 4  # one answer filtered per request, not the window of six
    # Three answers arrive through another process (no decision here in between): three updates.
    for k in range(14, 17):
        _answer(lid, course, k, correct=True)
    decision_next(learner_id=lid)
    assert len(calls) == 7
