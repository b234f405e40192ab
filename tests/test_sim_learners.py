import numpy as np
import pytest

from tutor.sim.course import synthetic_course
from tutor.sim.learners import (
    DAY,
    Population,
    SimParams,
    SkillParams,
    answer_probability,
    learning_probability,
)


@pytest.fixture
def course():
    return synthetic_course(6, 4, random_state=3)


def run(pop: Population, items_fn, steps: int) -> np.ndarray:
    out = []
    for t in range(steps):
        out.append(pop.step(items_fn(t)))
    return np.array(out)


def test_same_seed_same_learners_and_answers(course):
    a = Population(course, SimParams(), 50, seed=7)
    b = Population(course, SimParams(), 50, seed=7)
    items = lambda t: np.full(50, t % course.n_items)  # noqa: E731
    ra, rb = run(a, items, 30), run(b, items, 30)
    assert np.array_equal(ra, rb)
    assert np.array_equal(a.state.known, b.state.known)
    assert np.array_equal(a.state.time, b.state.time)
    c = Population(course, SimParams(), 50, seed=8)
    assert not np.array_equal(run(c, items, 30), ra)


def test_learner_traits_do_not_depend_on_the_items_served(course):
    """Common random numbers: two policies meet the same learners (traits and initial knowledge)."""
    a = Population(course, SimParams(), 40, seed=1)
    b = Population(course, SimParams(), 40, seed=1)
    assert np.array_equal(a.ability, b.ability)
    assert np.array_equal(a.state.known, b.state.known)
    run(a, lambda t: np.zeros(40, dtype=int), 5)
    run(b, lambda t: np.full(40, course.n_items - 1), 5)
    assert np.array_equal(a.ability, b.ability) and np.array_equal(a.rate, b.rate)


def test_practice_raises_knowledge_and_idle_does_not():
    course = synthetic_course(3, 3, random_state=0)
    params = SimParams(prior=0.05, prior_prereq_factor=1.0, dropout=0.0, frustration=0.0, stability_days=1e9)
    pop = Population(course, params, 2000, seed=0)
    root = 0  # skill 0 has no prerequisites in any synthetic course
    items = np.flatnonzero(course.primary_skill == root)
    before = pop.state.known[:, root].mean()
    run(pop, lambda t: np.full(2000, items[t % len(items)]), 10)
    after = pop.state.known[:, root].mean()
    assert after > before + 0.5
    # Skills never practised keep their initial knowledge (no forgetting here).
    other = Population(course, params, 2000, seed=0)
    assert np.array_equal(pop.state.known[:, 2], other.state.known[:, 2])


def test_weak_prerequisites_teach_less(course):
    params = SimParams(prereq_factor=0.15)
    pop = Population(course, params, 4, seed=0)
    skill = int(np.flatnonzero(course.prerequisite_matrix().any(axis=1))[0])
    pres = np.flatnonzero(course.prerequisite_matrix()[skill])
    item = int(np.flatnonzero(course.primary_skill == skill)[0])
    pop.state.known[:] = False
    pop.state.known[0, pres] = True  # learner 0 has the prerequisites, learner 1 does not
    pop.ability[:] = 0.0
    pop.rate[:] = 1.0
    p = pop.learn_probability(np.array([item, item]), np.array([0, 1]))
    t = pop.skill.learn[skill]
    zpd = pop._zpd_raw(course.difficulty[[item]], np.zeros(1))[0] / pop._zpd_norm
    assert p[0] == pytest.approx(1 - (1 - t) ** zpd, rel=1e-12)
    assert p[1] == pytest.approx(1 - (1 - t) ** (zpd * 0.15 ** len(pres)), rel=1e-12)
    assert p[1] < 0.5 * p[0]


def test_answer_and_learning_equations():
    assert answer_probability(np.array([True]), np.array([0.2]), np.array([0.1]), np.array([0.0]))[
        0
    ] == pytest.approx(0.9)
    assert answer_probability(np.array([False]), np.array([0.2]), np.array([0.1]), np.array([0.0]))[
        0
    ] == pytest.approx(0.2)
    hard = answer_probability(np.array([True, False]), np.full(2, 0.2), np.full(2, 0.1), np.full(2, 1.0))
    assert hard[0] < 0.9 and hard[1] < 0.2
    assert learning_probability(np.array([0.3]), np.array([1.0]))[0] == pytest.approx(0.3)
    assert learning_probability(np.array([0.3]), np.array([2.0]))[0] == pytest.approx(0.51)
    assert learning_probability(np.array([0.3]), np.array([0.0]))[0] == 0.0


def test_forgetting_happens_over_gaps_not_within_a_session():
    course = synthetic_course(2, 2, random_state=0)
    params = SimParams(
        stability_days=2.0, session_length=1000, dropout=0.0, frustration=0.0, frustration_quit=10**6
    )
    pop = Population(course, params, 3000, seed=0)
    pop.state.known[:] = True
    pop.state.stability[:] = 2.0
    run(pop, lambda t: np.zeros(3000, dtype=int), 20)  # 20 x 45 s: nearly nothing lost
    assert pop.state.known[:, 1].mean() > 0.99
    # End the session: a gap of 0.5-1.5 days; survival exp(-gap / 2 days).
    pop.state.in_session[:] = pop.state.session_len - 1
    pop.step(np.zeros(3000, dtype=int))
    assert 0.5 < pop.state.known[:, 1].mean() < 0.75
    assert np.all(pop.state.time > DAY * 0.5)


def test_post_test_rises_with_knowledge(course):
    pop = Population(course, SimParams(), 10, seed=0)
    pop.state.known[:] = False
    low = pop.post_test()
    pop.state.known[:] = True
    high = pop.post_test()
    assert np.all(high > low)
    assert np.all((low > 0) & (high < 1))


def test_skill_params_and_json_round_trip():
    p = SimParams(prior=0.4, ability_sd=0.7)
    assert SimParams.from_json(p.to_json()) == p
    a = SkillParams.draw(p, 5, 1)
    b = SkillParams.draw(p, 5, 1)
    assert np.array_equal(a.learn, b.learn)
    assert np.all((a.guess <= 0.45) & (a.slip <= 0.35))


def test_dropout_stops_answers(course):
    params = SimParams(dropout=1.0, session_length=5)
    pop = Population(course, params, 20, seed=0)
    run(pop, lambda t: np.zeros(20, dtype=int), 30)
    assert not pop.state.active.any()
    assert pop.state.steps.max() <= 12  # sessions of >= 5 answers, one session at most
    assert not pop.step(np.zeros(20, dtype=int)).any()
