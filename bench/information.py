"""What `joint` would gain from knowing more: the same policy told parts of the simulator's true state.

    python bench/information.py [--learners N] [--seeds S ...] [--unlock U] [--json]

`joint` decides from a filter over the 2^S knowledge states fed by the learner's answers. Here the same policy,
with the same model and thresholds, decides from a filter that is also told, from the simulator's true state:

* `start`: the knowledge state before the first exercise (the filter starts from it instead of the prior);
* `taught`: after each exercise, whether the practised skill is now known (the filter is conditioned on it);
* `start+taught`: both;
* `everything`: the whole knowledge state after every exercise (forgetting included);

and `full-info`, a rule that needs no filter at all: the ready unknown skill (every prerequisite known) with the
largest learning chance, its best-fitting item. Every variant meets the same learners and, as far as its choices
allow, the same luck (common random numbers); each learner stops at mastery of every skill (or at 300). Printed:
exercises to mastery per variant, and the paired difference against `joint` with a 95% interval over learners.
This is a diagnosis, not a policy: it says how much of `joint`'s distance from the ideal is the price of noisy
answers, and how much is the initial diagnosis (docs/decisions/0004, eleventh-session addendum).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from tutor.policy.base import Candidate, Decision, LearnerView  # noqa: E402
from tutor.policy.belief import item_fit  # noqa: E402
from tutor.policy.joint import JointBeliefPolicy, JointModel, JointState  # noqa: E402
from tutor.sim.env import SchedulingEnv, Setting  # noqa: E402
from tutor.sim.experiment import ExperimentConfig, make_setting, prepare  # noqa: E402

VARIANTS = ("joint", "start", "taught", "start+taught", "everything", "full-info")
# `answers`: told nothing, the runner's own filter of the answers; it must serve exactly what `joint` serves.
CHECKS = ("answers",)


class ToldJoint(JointBeliefPolicy):
    """`joint` reading its filter state from the runner (`states[row]`) instead of filtering the history."""

    states: dict[int, JointState]
    row: int = 0

    def _state_now(self, state: LearnerView) -> tuple[np.ndarray, np.ndarray]:
        model = self._joint()
        st = self.states[self.row]
        return model.at(st, self._now(state)), model.class_weights(st.loglik)


def _full_info(
    env: SchedulingEnv, row: int, candidates: list[Candidate], g: dict[str, float], index: dict[int, int]
) -> Decision:
    """`index`: skill id -> the course's skill position."""
    known = env.sim.state.known[row]
    prereq = env.sim.prereq
    best, best_v = 0, -1.0
    for k, c in enumerate(candidates):
        j = index[c.skills[0]]
        if known[j] or (prereq[j] & ~known).any():
            continue
        v = float(env.sim.skill.learn[j]) * item_fit(g, c.difficulty)
        if v > best_v:
            best, best_v = k, v
    c = candidates[best]
    return Decision(item=c.item, propensity=1.0, probabilities={c.item: 1.0}, skill=c.skills[0], info={})


def run(variant: str, policy: JointBeliefPolicy, setting: Setting, n: int, seed: int) -> np.ndarray:
    """Exercises to mastery of every skill per learner (the horizon when not reached) under `variant`."""
    env = SchedulingEnv(setting, n, seed)
    rng = np.random.default_rng([seed, 2])
    model = policy._joint()
    told = ToldJoint.of(policy)
    index = {s: k for k, s in enumerate(setting.course.skill_ids)}
    to_model = [model.pos_[s] for s in setting.course.skill_ids]  # course skill position -> the model's
    bits = np.array([1 << j for j in to_model], dtype=np.int64)
    n_states = 1 << len(model.skills_)

    def code(known: np.ndarray) -> int:
        return int(bits[known].sum())

    states: dict[int, JointState] = {}
    for r in range(n):
        st = model.new_belief()[0]
        if variant in ("start", "start+taught"):
            st.p = np.zeros_like(st.p)
            st.p[:, code(env.sim.state.known[r])] = 1.0
        states[r] = st
    told.states = states
    acting = policy if variant == "joint" else told
    primary = setting.course.primary_skill
    difficulty = setting.course.difficulty
    h = setting.horizon
    done_at = np.where(env.sim.all_known(), 0, -1)
    env.sim.state.active &= done_at < 0
    items = np.zeros(n, dtype=np.int64)
    for t in range(h):
        rows = np.flatnonzero(env.active)
        if len(rows) == 0:
            break
        pc = env.tracker.p_correct(rows)
        mask = env.tracker.candidate_mask(rows)
        for k, r in enumerate(rows.tolist()):
            cands = env.candidates(r, pc[k], mask[k])
            if variant == "full-info":
                d = _full_info(env, r, cands, model.globals_, index)
            else:
                told.row = r
                d = acting.select(cands, env.view(r), rng)
            items[r] = env.item_position(d.item)
        before = env.sim.state.time.copy()
        correct = env.step(items)
        if variant not in ("joint", "full-info"):
            for r in rows.tolist():
                s = int(primary[items[r]])
                st = states[r]
                model.update(st, to_model[s], float(difficulty[items[r]]),
                             bool(correct[r]), float(before[r]))
                if variant == "everything":
                    st.p = np.zeros_like(st.p)
                    st.p[:, code(env.sim.state.known[r])] = 1.0
                elif variant in ("taught", "start+taught"):
                    keep = ((np.arange(n_states) & bits[s]) != 0) == bool(env.sim.state.known[r, s])
                    p = st.p * keep[None, :]
                    total = p.sum(axis=1, keepdims=True)
                    st.p = np.where(total > 0, p / np.maximum(total, 1e-300), st.p)
        newly = (done_at < 0) & env.sim.all_known()
        done_at[newly] = t + 1
        env.sim.state.active &= done_at < 0
    return np.where(done_at < 0, h, done_at)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--learners", type=int, default=1000, help="learners per seed (default 1000)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[10_030], help="training seeds (default 10030)")
    ap.add_argument("--unlock", type=float, default=0.7, help="joint's gate (the benchmark tunes 0.6 or 0.7)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset")
    ap.add_argument("--quick", action="store_true", help="small preparation and 40 learners (seconds)")
    ap.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    args = ap.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS) - set(CHECKS))
    if unknown:
        ap.error(f"--variants: unknown {', '.join(unknown)}; known: {', '.join(VARIANTS + CHECKS)}")
    if "joint" not in variants:
        variants.insert(0, "joint")
    out = sys.stderr if args.json else sys.stdout
    base = ExperimentConfig.quick() if args.quick else ExperimentConfig()
    config = replace(base, policies=("mastery", "joint"), tune=False)
    n = 40 if args.quick else args.learners
    t0 = time.perf_counter()
    setting = make_setting(config)
    prepared = prepare(config, setting)
    policy = prepared.policies["joint"]
    assert isinstance(policy, JointBeliefPolicy)
    assert isinstance(policy._joint(), JointModel)
    policy.unlock = args.unlock
    print(f"joint prepared ({time.perf_counter() - t0:.0f}s)", file=out, flush=True)
    steps: dict[str, np.ndarray] = {}
    for v in variants:
        t1 = time.perf_counter()
        steps[v] = np.concatenate([run(v, policy, prepared.setting, n, s) for s in args.seeds])
        print(f"{v}: {steps[v].mean():.1f} ({time.perf_counter() - t1:.0f}s)", file=out, flush=True)
    h = prepared.setting.horizon
    base_steps = steps["joint"]
    doc: dict[str, Any] = {"learners": len(base_steps), "seeds": args.seeds, "unlock": args.unlock, "variants": {}}
    for v, s in steps.items():
        d = s - base_steps
        half = 1.96 * float(d.std(ddof=1)) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
        doc["variants"][v] = {
            "to_mastery": float(s.mean()),
            "median": float(np.median(s)),
            "share_at_horizon": float((s >= h).mean()),
            "vs_joint": float(d.mean()),
            "vs_joint_ci95": [float(d.mean()) - half, float(d.mean()) + half],
            "vs_joint_ratio": float(s.mean() / base_steps.mean()),
            "steps": s.tolist(),
        }
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    print(f"{len(base_steps)} learners (seeds {', '.join(map(str, args.seeds))}), joint's gate {args.unlock}")
    print(f"{'variant':<14}{'to mastery':>11}{'median':>8}{'at ' + str(h):>8}{'vs joint [95%]':>24}{'ratio':>7}")
    for v, r in doc["variants"].items():
        lo, hi = r["vs_joint_ci95"]
        cell = f"{r['vs_joint']:+.1f} [{lo:+.1f}, {hi:+.1f}]"
        print(f"{v:<14}{r['to_mastery']:>11.1f}{r['median']:>8.1f}{r['share_at_horizon']:>8.3f}{cell:>24}"
              f"{r['vs_joint_ratio']:>7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
