import numpy as np
import pytest

from learners.tracing.base import Attempt, AttemptLog, Query
from learners.tracing.bkt import BKT
from tutor.sim.course import synthetic_course
from tutor.sim.learners import Population, SimParams
from tutor.sim.tracking import BKTParams, PopulationTracker, bkt_params_from_tracer


def _fitted_bkt(course, rng):
    pop = Population(course, SimParams(), 40, seed=1)
    rows = []
    for _ in range(30):
        items = rng.integers(0, course.n_items, size=40)
        correct = pop.step(items)
        rows += [(r, int(items[r]), int(course.primary_skill[items[r]]), int(correct[r])) for r in range(40)]
    rows.sort(key=lambda x: x[0])
    learner, item, skill, correct = (np.array(c) for c in zip(*rows, strict=True))
    return BKT(n_restarts=2, max_iter=20).fit(AttemptLog.from_rows(learner, item, skill, correct))


def test_tracker_reproduces_the_services_bkt_update_answer_by_answer():
    course = synthetic_course(4, 3, random_state=0)
    rng = np.random.default_rng(0)
    tracer = _fitted_bkt(course, rng)
    params = bkt_params_from_tracer(tracer, course)
    tracker = PopulationTracker(course, params, 3)
    states = [tracer.init_state() for _ in range(3)]
    for t in range(25):
        items = rng.integers(0, course.n_items, size=3)
        correct = rng.random(3) < 0.6
        pc = tracker.p_correct()
        for r in range(3):
            i = int(items[r])
            skills = (course.skill_ids[course.primary_skill[i]],)
            assert pc[r, i] == pytest.approx(tracer.predict_next(states[r], Query(i, skills)), abs=1e-12)
            states[r] = tracer.update(states[r], Attempt(i, skills, bool(correct[r]), float(t)))
        tracker.update(np.arange(3), items, correct, np.full(3, float(t)))
        for r in range(3):
            for k, sid in enumerate(course.skill_ids):
                assert tracker.mastery[r, k] == pytest.approx(tracer.mastery(states[r], sid), abs=1e-12)
    assert np.array_equal(tracker.attempts.sum(axis=1), np.full(3, 25))


def test_candidate_mask_excludes_the_recent_window():
    course = synthetic_course(2, 3, random_state=0)
    tracker = PopulationTracker(course, BKTParams.constant(2), 2, window=2)
    tracker.update(np.array([0, 1]), np.array([0, 1]), np.array([True, False]), np.zeros(2))
    tracker.update(np.array([0]), np.array([2]), np.array([True]), np.zeros(1))
    tracker.update(np.array([0]), np.array([3]), np.array([True]), np.zeros(1))
    mask = tracker.candidate_mask()
    assert mask[0].tolist() == [True, True, False, False, True, True]  # 0 fell out of the window of 2
    assert mask[1].tolist() == [True, False, True, True, True, True]


def test_bkt_params_round_trip():
    p = BKTParams.constant(3, prior=0.4)
    q = BKTParams.from_dict(p.to_dict())
    assert np.array_equal(p.prior, q.prior) and np.array_equal(p.slip, q.slip)
