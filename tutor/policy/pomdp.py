"""Planning in belief space over the joint model: the schedule as a POMDP, solved by point-based value
iteration.

`joint` (tutor/policy/joint.py) serves the largest expected immediate gain behind a tuned gate. What it cannot
weigh is what an answer will tell over the many steps after it: of the 54 exercises between `joint` and the
same policy told the whole true state, 47 are the price of not seeing whether a practice taught
(docs/decisions/0004, eleventh-session addendum). A policy that closes part of that gap has to plan over
beliefs. Here `JointModel` is read as a partially observable Markov decision process:

* states: the 2^S knowledge states; the state that knows every skill costs nothing and is absorbing
  (forgetting is left out of the plan), every other state costs one exercise, so the value of a belief is the
  expected (discounted) number of exercises until every skill is known: the benchmark's measure;
* actions: a skill and an item difficulty (by default the model's best fit for learning and the hardest item,
  whose right answer is the strongest evidence), `len(difficulties) x S` in all;
* observations: right or wrong, with the model's guess and slip at a typical position in a session;
* transitions: the model's learning, exact per state (readiness rho^missing), at the learner classes' mean
  rate.

Forgetting, fatigue and the learner classes stay in the filter, which tracks the belief exactly as `joint`'s
does; the plan is made once, offline, for the stationary part.

The value function is the lower envelope of a set of alpha vectors, V(b) = min_i b . alpha_i. It is computed
by Perseus (Spaan & Vlassis 2005, "Perseus: randomized point-based value iteration for POMDPs"): a fixed set
of beliefs (those `joint` meets on training learners) is backed up in random order until every belief's value
has improved, over and over. Values are approached from above, starting from upper bounds: the values of blind
syllabi (every skill `reps` times in the graph's order, over and over), with discount `discount` < 1 so that
every bound is finite (0.997: a horizon of a few hundred exercises, the benchmark's 300). Each backup is exact
at its belief: for each action a and answer o, the alpha vector minimising b . g_{a,o,i}, where g_{a,o,i}(x) =
discount P(o | x, a) E[alpha_i(x') | x, a]; then the best action's sum, plus the cost.

Decision: the action of the alpha vector that attains V(b), the candidate of its skill whose difficulty is
nearest the planned one. The benchmark's plan holds about 2,400 vectors over 4,096 states (39 MB), and reading all
of them for every decision is what made a served decision slow under load; a large plan finds its vector through
`MassScreen`, which reads the belief's most probable states first and bounds the rest. `joint`'s dropout guard and
exploration (uniform `epsilon_all` over every candidate, so every candidate has a positive propensity) are
kept.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import IO, Any, Self

import numpy as np

from tutor.policy.base import Candidate, Decision, LearnerView
from tutor.policy.belief import item_fit
from tutor.policy.joint import JointBeliefPolicy, JointModel
from tutor.policy.sessions import SessionModel


def _layout(p: np.ndarray, w: np.ndarray, by_class: bool) -> np.ndarray:
    """A planner's belief from the filter's (C, 2^S) per-class beliefs `p` and class weights `w`: over
    (class, state), C x 2^S, or over the states with the classes mixed, 2^S."""
    return np.asarray((w[:, None] * p).ravel() if by_class else w @ p, dtype=np.float32)


def _best_fit(globals_: dict[str, float]) -> float:
    """The difficulty that teaches most under the model's item fit (its quadratic's peak), within [-1, 1]."""
    a, q = globals_["fit_linear"], globals_["fit_quadratic"]
    return float(np.clip(-a / (2.0 * q), -1.0, 1.0)) if q < 0 else (1.0 if a > 0 else -1.0)


_U32 = 2.0**-24  # float32's unit roundoff


class MassScreen:
    """The least of `alphas @ b` over the rows of `alphas` (n, N), reading the belief's likely states first.

    A belief is a distribution. With its states sorted by probability, the product over the first T of them,
    plus the probability m left on the others times the row's least (greatest) entry, is a lower (upper) bound
    of the row's value. After the first `stages[0]` states, then `stages[1]`, ..., every row whose lower bound
    exceeds the least upper bound is out (float32 rounding of the partial sums is covered: (T + 2) u of the
    largest entry's size); once at most `few` of the rows
    remain, they are read in full. The row found is the full product's argmin up to float32 rounding of
    near-ties, as the full product itself decides them. A belief spread over many states keeps most rows in
    until the last stage and then takes the full product, paying the stages on top; a concentrated belief
    reads a small part of the plan. On the benchmark's plan, over the beliefs it meets, a decision reads 18%
    of the plan on average and takes 0.42 times the full product's time; the tenth that end with the full
    product make its p99 2.0 ms against 1.4 (`bench/plan_screen.py`). The states are read through a copy of
    `alphas` laid out by state: the plan's memory twice."""

    def __init__(self, alphas: np.ndarray, stages: Sequence[int] = (128, 512), few: float = 0.1) -> None:
        self.alphas = np.ascontiguousarray(alphas, dtype=np.float32)
        self.by_state = np.ascontiguousarray(self.alphas.T)  # (N, n)
        self.least = self.alphas.min(axis=1).astype(np.float64)
        self.most = self.alphas.max(axis=1).astype(np.float64)
        self.scale = float(max(-self.least.min(), self.most.max())) if self.alphas.size else 0.0  # largest |entry|
        self.stages = [t for t in sorted(stages) if 0 < t < self.alphas.shape[1]]
        self.few = few
        self.read_ = 0  # rows x states read by the last `argmin` (for the benchmark)

    def _alive(self, part: np.ndarray, left: float, states: int) -> np.ndarray:
        left = max(left, 0.0)
        upper = part + left * self.most
        tol = (states + 2) * _U32 * self.scale
        return np.flatnonzero(part + left * self.least <= upper.min() + tol)

    def argmin(self, belief: np.ndarray) -> tuple[int, float]:
        """(row, value) of the least `alphas @ belief`."""
        b = np.asarray(belief, dtype=np.float32)
        n, n_states = self.alphas.shape
        done = 0
        if self.stages:
            order = np.argpartition(b, [n_states - t for t in self.stages])[::-1]
            part = np.zeros(n, dtype=np.float32)
            left = float(b.sum(dtype=np.float64))
            for t in self.stages:
                for lo in range(done, t, 64):  # blocks of states that stay in cache between copy and product
                    rows = order[lo : min(t, lo + 64)]
                    part += b[rows] @ self.by_state[rows]
                left -= float(b[order[done:t]].sum(dtype=np.float64))
                done = t
                alive = self._alive(part.astype(np.float64), left, t)
                if len(alive) <= self.few * n:
                    values = self.alphas[alive] @ b
                    self.read_ = t * n + len(alive) * n_states
                    best = int(values.argmin())
                    return int(alive[best]), float(values[best])
        values = self.alphas @ b
        self.read_ = n * n_states + done * n
        best = int(values.argmin())
        return best, float(values[best])


class BeliefPlanner:
    """Point-based value iteration (Perseus) for the joint model read as a POMDP (module docstring).

    `difficulties`: the item difficulties an action may ask for (None: the model's best fit and 1.0, the
    hardest); `position`: answers into the session at which guess and slip are taken; `discount` < 1;
    `classes`: plan over (learner class, knowledge state), C x 2^S states, each class learning at its own rate
    (the class never changes, answers tell it only through what was learned), instead of one class at the
    classes' mean rate. After `fit`: `alphas_` (n, C x 2^S or 2^S), float32, and `actions_` (n,) their action
    indices into `action_list_`; beliefs are laid out as `belief` makes them."""

    def __init__(
        self,
        difficulties: Sequence[float] | None = None,
        position: int = 10,
        discount: float = 0.997,
        reps: Sequence[int] = (3, 5, 8),
        batch: int = 128,
        classes: bool = False,
    ) -> None:
        if not 0.0 < discount < 1.0:
            raise ValueError("discount must be in (0, 1)")
        self.difficulties = difficulties
        self.position = position
        self.discount = discount
        self.reps = reps
        self.batch = batch
        self.classes = classes

    def belief(self, p: np.ndarray, w: np.ndarray) -> np.ndarray:
        """The planner's belief from the filter's (C, 2^S) per-class beliefs `p` and class weights `w`."""
        return _layout(p, w, self.classes)

    # -- the POMDP ------------------------------------------------------------------------------------------
    def _build(self, model: JointModel) -> None:
        g = model.globals_
        n_sk = len(model.skills_)
        n = 1 << n_sk
        diffs = list(self.difficulties) if self.difficulties is not None else [_best_fit(g), 1.0]
        # Each class's learning-rate multiplier, or one class at the classes' mean.
        rates = model._crate if self.classes else np.array([np.exp(model._clogw) @ model._crate])
        right, learn, skill = [], [], []
        self.action_list_: list[tuple[int, float]] = []
        for j in range(n_sk):
            for d in diffs:
                guess, slip = model._guess_slip(j, d, self.position)
                right.append(np.tile(np.where(model._bt[j], 1.0 - slip, guess), len(rates)))
                rate_x = rates[:, None] * model._rho_x[j][None, :]  # (C, N)
                chance = 1.0 - np.exp(model._lt[j] * item_fit(g, d) * rate_x)
                learn.append(np.where(model._bt[j][None, :], 0.0, chance).ravel())
                skill.append(j)
                self.action_list_.append((j, float(d)))
        self._right = np.asarray(right, dtype=np.float32)  # (A, C N): P(right | c, x)
        # (A, C N): P(the practised skill is learned | c, x)
        self._learn = np.asarray(learn, dtype=np.float32)
        self._skill = np.asarray(skill)
        # (S, C N): (c, x with skill j's bit flipped)
        self._flip = np.concatenate([model._flip + c * n for c in range(len(rates))], axis=1)
        self._cost = np.ones(len(rates) * n, dtype=np.float32)
        self._cost[n - 1 :: n] = 0.0  # every skill known, in each class

    def _g(self, alphas: np.ndarray) -> np.ndarray:
        """(A, 2, n, N): discount x P(o | x, a) x E[alpha(x') | x, a] for every action, answer and vector."""
        n_act = len(self.action_list_)
        out = np.empty((n_act, 2, alphas.shape[0], alphas.shape[1]), dtype=np.float32)
        for j in range(len(self._flip)):
            gained = alphas[:, self._flip[j]] - alphas  # alpha(x with skill j) - alpha(x)
            for a in np.flatnonzero(self._skill == j):
                nxt = alphas + self._learn[a] * gained
                out[a, 0] = nxt * (self.discount * self._right[a])
                out[a, 1] = nxt * (self.discount * (1.0 - self._right[a]))
        return out

    def _backup(self, beliefs: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact backups at `beliefs` (m, N): new alpha vectors (m, N), their actions (m,) and values (m,)."""
        n_act, _, n, n_states = g.shape
        h = (beliefs @ g.reshape(n_act * 2 * n, n_states).T).reshape(len(beliefs), n_act, 2, n)
        pick = h.argmin(axis=3)  # (m, A, 2)
        values = h.min(axis=3).sum(axis=2) + (beliefs @ self._cost)[:, None]  # (m, A)
        act = values.argmin(axis=1)
        rows = np.arange(len(beliefs))
        alphas = self._cost[None, :] + g[act, 0, pick[rows, act, 0]] + g[act, 1, pick[rows, act, 1]]
        return alphas, act, values[rows, act]

    def _blind(self, order: Sequence[int], reps: int, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The values of a blind syllabus (each skill of `order` `reps` times at the first difficulty, over
        and over), one alpha vector per position of the cycle: upper bounds of the optimal value."""
        seq = [int(np.flatnonzero(self._skill == j)[0]) for j in order for _ in range(reps)]
        alphas = np.tile(start.astype(np.float64), (len(seq), 1))
        learn = self._learn.astype(np.float64)
        for _ in range(100_000 // len(seq) + 1):
            before = alphas.copy()
            for pos in range(len(seq) - 1, -1, -1):
                a = seq[pos]
                nxt = alphas[(pos + 1) % len(seq)]
                alphas[pos] = self._cost + self.discount * (
                    nxt + learn[a] * (nxt[self._flip[self._skill[a]]] - nxt)
                )
            if np.abs(alphas - before).max() < 1e-3:
                break
        return alphas.astype(np.float32), np.asarray(seq)

    # -- solving --------------------------------------------------------------------------------------------
    def fit(
        self,
        model: JointModel,
        beliefs: np.ndarray,
        order: Sequence[int],
        iterations: int = 200,
        random_state: int = 0,
        progress: Callable[[str], None] | None = None,
    ) -> Self:
        """Perseus over `beliefs` (m, 2^S) for `iterations` rounds; `order`: the skills (model positions) in
        the graph's order, for the blind syllabi that start the values. `history_` records each round's mean
        value over the beliefs, the number of alpha vectors and the seconds."""
        self._build(model)
        top = (self._cost / (1.0 - self.discount)).astype(np.float32)
        alphas, actions = [top[None, :]], [np.zeros(1, dtype=np.int64)]
        for reps in self.reps:
            a, s = self._blind(order, reps, top)
            alphas.append(a)
            actions.append(s)
        self.alphas_ = np.concatenate(alphas)
        self.actions_ = np.concatenate(actions)
        self.history_: list[dict[str, float]] = []
        return self._rounds(beliefs, iterations, random_state, progress)

    def improve(
        self,
        model: JointModel,
        beliefs: np.ndarray,
        iterations: int,
        random_state: int = 0,
        progress: Callable[[str], None] | None = None,
    ) -> Self:
        """`iterations` more Perseus rounds over `beliefs`, from the current vectors (each the value of a
        conditional plan of the same model, so still upper bounds): how the plan is extended to beliefs met
        later, e.g. those its own policy meets (belief expansion, as in PBVI)."""
        self._build(model)
        return self._rounds(beliefs, iterations, random_state, progress)

    def _rounds(
        self,
        beliefs: np.ndarray,
        iterations: int,
        random_state: int,
        progress: Callable[[str], None] | None,
    ) -> Self:
        rng = np.random.default_rng(random_state)
        beliefs = np.asarray(beliefs, dtype=np.float32)
        start = len(self.history_)
        for it in range(start, start + iterations):
            t0 = time.perf_counter()
            g = self._g(self.alphas_)
            current = beliefs @ self.alphas_.T
            old, old_best = current.min(axis=1), current.argmin(axis=1)
            now = np.full(len(beliefs), np.inf, dtype=np.float32)
            todo = np.ones(len(beliefs), dtype=bool)
            new_a: list[np.ndarray] = []
            new_s: list[np.ndarray] = []
            while todo.any():
                pick = rng.choice(np.flatnonzero(todo), size=min(self.batch, int(todo.sum())), replace=False)
                a, s, v = self._backup(beliefs[pick], g)
                worse = v > old[pick]  # keep the old best vector where a backup would not improve
                if worse.any():
                    keep = old_best[pick[worse]]
                    a[worse], s[worse] = self.alphas_[keep], self.actions_[keep]
                new_a.append(a)
                new_s.append(s)
                now = np.minimum(now, (beliefs @ a.T).min(axis=1))
                todo = now > old + 1e-4
                todo[pick] = False
            alphas_new, actions_new = np.concatenate(new_a), np.concatenate(new_s)
            used = np.unique((beliefs @ alphas_new.T).argmin(axis=1))  # vectors that some belief needs
            self.alphas_, self.actions_ = alphas_new[used], actions_new[used]
            value = float((beliefs @ self.alphas_.T).min(axis=1).mean())
            self.history_.append(
                {"value": value, "alphas": len(self.alphas_), "seconds": time.perf_counter() - t0}
            )
            if progress is not None and (it % 10 == 9 or it == start + iterations - 1):
                progress(
                    f"planning: round {it + 1}/{start + iterations}, mean value {value:.2f}, "
                    f"{len(self.alphas_)} vectors"
                )
        return self

    #: plans with at least this many values (vectors x states) find a belief's vector through a `MassScreen`;
    #: smaller ones read every vector, which is as fast
    screen_above = 1 << 20
    _screen: MassScreen | None = None

    def _best(self, belief: np.ndarray) -> tuple[int, float]:
        """(index, value) of the alpha vector that attains the belief's value."""
        if self.alphas_.size >= self.screen_above:
            return self.screen().argmin(belief)
        values = self.alphas_ @ np.asarray(belief, dtype=np.float32)
        best = int(values.argmin())
        return best, float(values[best])

    def screen(self) -> MassScreen:
        """The screen of the current vectors, made again after they change (a copy of the plan)."""
        screen = self._screen
        if screen is None or screen.alphas is not self.alphas_:
            self.alphas_ = np.ascontiguousarray(self.alphas_, dtype=np.float32)
            screen = self._screen = MassScreen(self.alphas_)
        return screen

    def value(self, belief: np.ndarray) -> float:
        """The planned value (expected discounted exercises to mastery) of a belief over the 2^S states."""
        return self._best(belief)[1]

    def action(self, belief: np.ndarray) -> tuple[int, float]:
        """(skill position, item difficulty) of the alpha vector that attains the belief's value."""
        return self.action_list_[int(self.actions_[self._best(belief)[0]])]

    # -- persistence ----------------------------------------------------------------------------------------
    def dump(self) -> tuple[dict[str, Any], bytes]:
        """A JSON-able header and the alpha vectors (float32) and their actions (int32), little-endian."""
        head = {
            "difficulties": self.difficulties,
            "position": self.position,
            "discount": self.discount,
            "reps": list(self.reps),
            "batch": self.batch,
            "classes": self.classes,
            "actions": [list(a) for a in self.action_list_],
            "shape": list(self.alphas_.shape),
        }
        body = np.ascontiguousarray(self.alphas_, dtype="<f4").tobytes()
        return head, body + np.ascontiguousarray(self.actions_, dtype="<i4").tobytes()

    @classmethod
    def load(cls, head: dict[str, Any], body: bytes) -> BeliefPlanner:
        planner = cls(
            head["difficulties"], head["position"], head["discount"], head["reps"], head["batch"],
            bool(head.get("classes", False)),
        )
        n, n_states = head["shape"]
        if len(body) != 4 * n * n_states + 4 * n:
            raise ValueError("the planner's vectors do not match their header")
        planner.action_list_ = [(int(j), float(d)) for j, d in head["actions"]]
        planner.alphas_ = (
            np.frombuffer(body, dtype="<f4", count=n * n_states).reshape(n, n_states).astype(np.float32)
        )
        planner.actions_ = np.frombuffer(body, dtype="<i4", offset=4 * n * n_states).astype(np.int64)
        planner.history_ = []
        if planner.alphas_.size >= planner.screen_above:
            planner.screen()  # when the plan is loaded, not at its first decision
        return planner


class BeliefRecorder(JointBeliefPolicy):
    """`joint` that keeps the belief (over the 2^S states, classes mixed unless `by_class`) of every decision it
    takes but the settled ones: the points the planner backs up should be the beliefs a good policy meets."""

    #: beliefs with at least this probability of every skill known are not kept (see `sample`)
    settled = 0.8

    def __init__(self, *args: Any, by_class: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.by_class = by_class  # keep (class, state) beliefs, for `BeliefPlanner(classes=True)`
        self.seen_: list[np.ndarray] = []
        self.met_ = 0

    def _done(self, beliefs: np.ndarray) -> np.ndarray:
        """P(every skill known) of each belief (rows of `beliefs`, in this recorder's layout)."""
        n = 1 << len(self._joint().skills_)
        return np.asarray(beliefs[..., n - 1 :: n].sum(axis=-1))

    def select(
        self, candidates: Sequence[Candidate], state: LearnerView, rng: np.random.Generator
    ) -> Decision:
        p, w = self._state_now(state)
        b = _layout(p, w, self.by_class)
        self.met_ += 1
        if self._done(b) < self.settled:
            self.seen_.append(b)
        return super().select(candidates, state, rng)

    def sample(self, n: int, random_state: int = 0) -> np.ndarray:
        """Up to `n` of the recorded beliefs, drawn without replacement, and the prior. Beliefs that put at least
        `settled` on knowing every skill are left out: the learner is then most likely done (the benchmark stops
        counting there), and a run over the whole horizon spends most of its decisions on them, which would
        leave few points where the plan matters."""
        model = self._joint()
        prior = _layout(model.prior_joint_, np.exp(model._clogw), self.by_class)[None, :]
        seen = np.asarray(self.seen_)
        if len(seen):
            seen = seen[self._done(seen) < self.settled]
        if not len(seen):
            return prior
        rows = np.random.default_rng(random_state).choice(len(seen), size=min(n, len(seen)), replace=False)
        return np.concatenate([seen[rows], prior])


class PlanningPolicy(JointBeliefPolicy):
    """Serves the action of the planned value function (`BeliefPlanner`) at the joint belief. The filter, the
    dropout guard and the exploration are `joint`'s; with teacher targets (which the plan does not know) or
    when the planned skill has no candidate, it decides as `joint` does."""

    name = "pomdp"

    def __init__(self, *args: Any, planner: BeliefPlanner | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.planner_ = planner

    def plan(
        self,
        beliefs: np.ndarray,
        iterations: int = 200,
        planner: BeliefPlanner | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> Self:
        """Solve the POMDP over `beliefs` (`BeliefRecorder.sample`)."""
        model = self._joint()
        order = list(range(len(model.skills_)))  # the model keeps the graph's (topological) order
        self.planner_ = (planner or BeliefPlanner()).fit(model, beliefs, order, iterations, progress=progress)
        return self

    def replan(
        self,
        beliefs: np.ndarray,
        iterations: int,
        random_state: int = 1,
        progress: Callable[[str], None] | None = None,
    ) -> Self:
        """More rounds from the current plan over `beliefs` (e.g. the first points and those this policy met,
        `PlanRecorder`)."""
        if self.planner_ is None:
            raise ValueError("the policy has not planned yet: call plan() or load a saved policy")
        self.planner_.improve(self._joint(), beliefs, iterations, random_state, progress)
        return self

    def _planned(
        self, candidates: Sequence[Candidate], state: LearnerView
    ) -> tuple[int, float, np.ndarray] | None:
        """(skill, its belief, the distribution before the guard) of the planned action, or None where `joint`
        decides (teacher targets, or no candidate of the planned skill)."""
        if self.planner_ is None:
            raise ValueError("the policy has not planned yet: call plan() or load a saved policy")
        if state.targets:
            return None
        model = self._joint()
        p, w = self._state_now(state)
        j, d = self.planner_.action(self.planner_.belief(p, w))
        goal = model.skills_[j]
        eligible = [i for i, c in enumerate(candidates) if c.skills[0] == goal]
        if not eligible:
            return None
        best = min(eligible, key=lambda i: abs(candidates[i].difficulty - d))
        usual = np.full(len(candidates), self.epsilon_all / len(candidates))
        usual[best] += 1.0 - self.epsilon_all
        return goal, float(w @ p @ model._bf[:, j]), usual

    def distribution(self, candidates: Sequence[Candidate], state: LearnerView) -> np.ndarray:
        planned = self._planned(candidates, state)
        if planned is None:
            return super().distribution(candidates, state)
        return self._override(candidates, state, planned[2])

    def select(
        self, candidates: Sequence[Candidate], state: LearnerView, rng: np.random.Generator
    ) -> Decision:
        if not candidates:
            raise ValueError("no candidate items to choose from")
        planned = self._planned(candidates, state)
        if planned is None:
            return super().select(candidates, state, rng)
        return self._decide(candidates, state, rng, *planned)

    def save(self, fp: IO[bytes]) -> None:
        """A JSON line (`joint`'s document and the planner's header), then the planner's vectors."""
        if self.planner_ is None:
            raise ValueError("the policy has not planned yet")
        head, body = self.planner_.dump()
        doc: dict[str, Any] = {"policy": self.name, "params": self._hyper(), "model": self._joint().to_dict(),
                               "planner": head}  # fmt: skip
        if self.sessions_ is not None:
            doc["sessions"] = self.sessions_.to_dict()
        fp.write(json.dumps(doc).encode() + b"\n" + body)

    @classmethod
    def load(cls, fp: IO[bytes]) -> Self:
        head_bytes, _, body = fp.read().partition(b"\n")
        doc = json.loads(head_bytes.decode())
        sessions = SessionModel.from_dict(doc["sessions"]) if doc.get("sessions") else None
        planner = BeliefPlanner.load(doc["planner"], body)
        return cls(
            **doc["params"], model=JointModel.from_dict(doc["model"]), sessions=sessions, planner=planner
        )


class PlanRecorder(BeliefRecorder, PlanningPolicy):
    """`pomdp`, recording the beliefs its own plan leads to: where the plan should be extended next."""

    @classmethod
    def following(cls, policy: PlanningPolicy) -> PlanRecorder:
        """Records in the layout of `policy`'s planner."""
        assert policy.planner_ is not None
        return cls(
            **policy._hyper(), model=policy._joint(), sessions=policy.sessions_, planner=policy.planner_,
            by_class=policy.planner_.classes,
        )
