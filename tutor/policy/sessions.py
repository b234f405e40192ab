"""When a learner's session is likely to end, and how much a run of failures at its end raises the chance that
they never come back: both fitted on a log, so that a policy can weigh the risk of losing a learner.

Learners leave at the end of a session, and more often when it ended on a run of wrong answers (frustration; in
the simulator, `SimParams.frustration`; in the literature, the wheel-spinning learners of Beck & Gong 2013). A
policy cannot see when the session will end, but a log of past sessions tells how likely it is to end after the
n-th answer, and whether a run of failures ends it early. `SessionModel` estimates, from answers with their times
and a flag per learner that says whether they quit:

* `p_end(n, f)`: P(the session ends right after its n-th answer | the run of wrong answers is then f), a logistic
  model additive in a level per n (1..`max_len`, longer sessions pooled) and a level per f (0..`max_run`);
* `quit_rise(f)`: how much more likely a learner is to quit after a session ending on a run of f wrong answers
  than after one ending on a right answer, from a logistic model of quitting in min(f, `quit_cap`) / `quit_cap`.

Sessions are answers separated by pauses of at most `gap` seconds. The last session of a learner who did not quit
is cut by the end of the log, so its end is not counted as an end and says nothing about quitting.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np

from tutor.policy.belief import SESSION_GAP, _sig


class SessionModel:
    """Session ends and quitting, fitted on a log (module docstring). `fit(learner, correct, time, quit)` with rows
    chronological per learner; `quit` is indexed by learner id (a mapping or an array over ids 0..n-1)."""

    def __init__(self, max_len: int = 48, max_run: int = 10, quit_cap: int = 5, gap: float = SESSION_GAP) -> None:
        self.max_len = max_len
        self.max_run = max_run
        self.quit_cap = quit_cap
        self.gap = gap

    def fit(self, learner: np.ndarray, correct: np.ndarray, time: np.ndarray, quit: Any) -> Self:
        from sklearn.linear_model import LogisticRegression

        learner = np.asarray(learner)
        correct = np.asarray(correct).astype(bool)
        time = np.asarray(time, dtype=np.float64)
        if not (len(learner) == len(correct) == len(time)) or len(learner) == 0:
            raise ValueError("learner, correct and time must be non-empty and of one length")
        n_pos, run, ended, known_end, last_f = self._walk(learner, correct, time, quit)
        x_end = np.zeros((len(learner), self.max_len + self.max_run + 1))
        x_end[np.arange(len(learner)), np.minimum(n_pos, self.max_len) - 1] = 1.0
        x_end[np.arange(len(learner)), self.max_len + np.minimum(run, self.max_run)] = 1.0
        rows = known_end
        y = ended[rows]
        if y.all() or not y.any():
            raise ValueError("the log needs sessions that end and sessions that go on")
        end_model = LogisticRegression(C=10.0, fit_intercept=False, max_iter=2000).fit(x_end[rows], y)
        self.end_coef_ = end_model.coef_[0].tolist()
        f_end, quit_end = last_f
        xq = (np.minimum(f_end, self.quit_cap) / self.quit_cap)[:, None]
        if quit_end.all() or not quit_end.any():
            raise ValueError("the log needs learners who quit and learners who come back")
        q_model = LogisticRegression(C=100.0, max_iter=2000).fit(xq, quit_end)
        self.quit_coef_ = [float(q_model.intercept_[0]), float(q_model.coef_[0, 0])]
        self.sessions_ = int(len(quit_end))
        self.quits_ = int(quit_end.sum())
        return self

    def _walk(
        self, learner: np.ndarray, correct: np.ndarray, time: np.ndarray, quit: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """Per answer: its position in its session, the run of wrong answers after it, whether the session ends
        after it and whether that is known; per session end with a known outcome, the run and whether they quit."""
        n = len(learner)
        n_pos = np.zeros(n, dtype=np.int64)
        run = np.zeros(n, dtype=np.int64)
        ended = np.zeros(n, dtype=bool)
        known = np.ones(n, dtype=bool)
        f_end: list[int] = []
        q_end: list[bool] = []
        for k in range(n):
            first = k == 0 or learner[k] != learner[k - 1] or time[k] - time[k - 1] > self.gap
            n_pos[k] = 1 if first else n_pos[k - 1] + 1
            fails = 0 if (first or correct[k - 1]) else run[k - 1]
            run[k] = 0 if correct[k] else fails + 1
            last_of_learner = k == n - 1 or learner[k + 1] != learner[k]
            if last_of_learner:
                quits = bool(quit[learner[k]])
                ended[k] = quits
                known[k] = quits
                if quits:
                    f_end.append(int(run[k]))
                    q_end.append(True)
            elif time[k + 1] - time[k] > self.gap:
                ended[k] = True
                f_end.append(int(run[k]))
                q_end.append(False)
        return n_pos, run, ended, known, (np.asarray(f_end, dtype=np.float64), np.asarray(q_end, dtype=bool))

    def p_end(self, n: int, f: int) -> float:
        """P(the session ends right after its n-th answer, with a run of f wrong answers then)."""
        c = self.end_coef_
        return _sig(c[min(max(n, 1), self.max_len) - 1] + c[self.max_len + min(max(f, 0), self.max_run)])

    def quit_rise(self, f: int) -> float:
        """P(quit | the session ended on a run of f wrong answers) - P(quit | it ended on a right answer)."""
        a, b = self.quit_coef_
        return _sig(a + b * min(f, self.quit_cap) / self.quit_cap) - _sig(a)

    def to_dict(self) -> dict[str, Any]:
        return {
            "hyper": {"max_len": self.max_len, "max_run": self.max_run, "quit_cap": self.quit_cap, "gap": self.gap},
            "end_coef": self.end_coef_,
            "quit_coef": self.quit_coef_,
            "sessions": self.sessions_,
            "quits": self.quits_,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> SessionModel:
        m = cls(**doc.get("hyper", {}))
        m.end_coef_ = [float(v) for v in doc["end_coef"]]
        m.quit_coef_ = [float(v) for v in doc["quit_coef"]]
        m.sessions_ = int(doc.get("sessions", 0))
        m.quits_ = int(doc.get("quits", 0))
        if len(m.end_coef_) != m.max_len + m.max_run + 1 or len(m.quit_coef_) != 2:
            raise ValueError("the session model's coefficients do not match its sizes")
        return m
