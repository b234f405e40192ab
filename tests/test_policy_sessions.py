import numpy as np
import pytest

from tutor.policy.sessions import SessionModel


def synthetic_log(n_learners=400, sessions=8, length=10, stop_run=4, seed=0):
    """Sessions of `length` answers that also end at a run of `stop_run` wrong answers; after each session a
    learner quits with probability 0.02 + 0.3 min(f, 5) / 5, f being the run of wrong answers it ended on."""
    rng = np.random.default_rng(seed)
    learner, correct, time = [], [], []
    quit = np.zeros(n_learners, dtype=bool)
    for u in range(n_learners):
        t = 0.0
        for _ in range(sessions):
            run = 0
            for _ in range(length):
                c = bool(rng.random() < 0.6)
                run = 0 if c else run + 1
                learner.append(u)
                correct.append(c)
                time.append(t)
                t += 45.0
                if run >= stop_run:
                    break
            t += 86400.0
            if rng.random() < 0.02 + 0.3 * min(run, 5) / 5:
                quit[u] = True
                break
    return np.array(learner), np.array(correct), np.array(time), quit


def test_session_ends_and_quitting_are_recovered_from_a_log():
    m = SessionModel().fit(*synthetic_log())
    assert m.p_end(10, 0) > 0.95 and m.p_end(10, 2) > 0.95  # every session has at most ten answers
    assert m.p_end(5, 0) < 0.02 and m.p_end(5, 3) < 0.02  # nothing ends a session early but the run of four
    assert m.p_end(5, 4) > 0.95
    assert m.quit_rise(0) == 0.0
    rises = [m.quit_rise(f) for f in range(7)]
    assert rises == sorted(rises) and rises[5] == rises[6]  # capped at five
    assert m.quit_rise(4) == pytest.approx(0.3 * 4 / 5, abs=0.08)


def test_the_last_session_of_a_learner_who_stayed_says_nothing_about_ends_or_quitting():
    m = SessionModel()
    # Learner 0: two sessions, then the log ends (stayed); learner 1: one session, then quit.
    learner = np.array([0, 0, 0, 0, 1, 1])
    correct = np.array([True, False, False, True, False, False])
    time = np.array([0.0, 45.0, 90000.0, 90045.0, 0.0, 45.0])
    n_pos, run, ended, known, (f_end, q_end) = m._walk(learner, correct, time, {0: False, 1: True})
    assert n_pos.tolist() == [1, 2, 1, 2, 1, 2]
    assert run.tolist() == [0, 1, 1, 0, 1, 2]  # the run restarts with each session
    assert ended.tolist() == [False, True, False, False, False, True]
    assert known.tolist() == [True, True, True, False, True, True]
    assert f_end.tolist() == [1.0, 2.0] and q_end.tolist() == [False, True]


def test_round_trip_and_refusals():
    m = SessionModel().fit(*synthetic_log(n_learners=200))
    again = SessionModel.from_dict(m.to_dict())
    assert [again.p_end(n, f) for n in range(1, 60) for f in range(12)] == [
        m.p_end(n, f) for n in range(1, 60) for f in range(12)
    ]
    assert again.quit_rise(3) == m.quit_rise(3) and again.quits_ == m.quits_ > 0
    with pytest.raises(ValueError, match="sizes"):
        SessionModel.from_dict({**m.to_dict(), "end_coef": [0.0] * 5})
    learner, correct, time, _ = synthetic_log(n_learners=50)
    with pytest.raises(ValueError, match="quit"):
        SessionModel().fit(learner, correct, time, np.zeros(50, dtype=bool))
