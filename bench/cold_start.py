"""The first decision for a learner in a process that has not served them yet, with and without belief
checkpoints (tutor.services.belief_checkpoints), against a warm decision in the same run.

    python bench/cold_start.py [--learners 8] [--answers 1050] [--policy joint] [--repeats 3] [--json]

A fresh SQLite database gets the demo course (13 skills: 8,192 joint states); the policy is trained in the
simulator with small sizes (`--training`) and activated. Every learner then answers `--answers` exercises through
the service layer in this process (`decision_next`, then `attempt_record` with the simulated learner's answer),
which writes a checkpoint every `TUTOR_BELIEF_CHECKPOINT_EVERY` answers. Then, per learner and repeat, the
process forgets what it held for the learner (its cached answers and the policy's remembered filter states,
as in a running process that never served them; the policy stays loaded) and times one
`decision_next` with checkpoints used, once with them ignored (the previous behaviour: the whole window of up to
1,000 answers filtered), in alternating order, and one warm `decision_next` (the learner just served). The ratio of
each to the warm decision is printed. Timings are in-process (no HTTP), so they isolate the decision.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._demo_db import setup_demo_database  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--learners", type=int, default=8)
    ap.add_argument("--answers", type=int, default=1050)
    ap.add_argument("--policy", default="joint", choices=("joint", "belief"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--training", default='{"pilot_learners": 60, "tune": false, "joint_learners": 20}',
                    help="JSON simulator sizes for training the policy (latency does not depend on them)")
    args = ap.parse_args(argv)

    setup_demo_database()
    import numpy as np
    from tqdm import tqdm

    from curriculum.selectors import curriculum_export
    from learners.models import Learner
    from learners.services import attempt_record
    from tutor.apiclient import wrong_response
    from tutor.policy.belief import BeliefPolicy
    from tutor.services import belief_checkpoints, learner_history
    from tutor.services.policies import policy_activate, policy_for_learner
    from tutor.services.policy_training import policy_train
    from tutor.services.scheduling import decision_next
    from tutor.sim.course import course_from_document
    from tutor.sim.learners import Population, SimParams

    doc = curriculum_export()
    course = course_from_document(doc)
    item_ids = {it["code"]: it for it in doc["items"]}
    position = {c: k for k, c in enumerate(it["code"] for it in doc["items"])}
    rng = np.random.default_rng(7)

    def serve(n_learners: int, steps: int, seed: int, label: str) -> list[Learner]:
        """`steps` decisions and answers for `n_learners` new simulated learners, through the service layer."""
        pop = Population(course, SimParams().with_(dropout=0.0, frustration=0.0), n_learners, seed)
        learners = [Learner.objects.create(display_name=f"{label}-{k}") for k in range(n_learners)]
        for step in tqdm(range(steps), desc=label, disable=args.json):
            served = [decision_next(learner_id=lr.pk) for lr in learners]
            correct = pop.step(np.array([position[d.item.code] for d in served]))
            for k, (lr, d) in enumerate(zip(learners, served, strict=True)):
                answer = item_ids[d.item.code]["answer"]
                value = str(answer["value"])
                right = value.split("|")[0] if answer["type"] == "text" else value
                response = right if correct[k] else wrong_response(answer, rng)
                attempt_record(learner_id=lr.pk, item_id=d.item_id, response=response,
                               client_attempt_id=f"{label}-{step}", decision_id=d.pk)
        return learners

    serve(4, 10, 6, "pilot")  # a decision log under the default policy, which training needs
    trained = policy_train(kind=args.policy, min_decisions=10, n_boot=50, training=json.loads(args.training))
    assert trained.version is not None, trained.report
    policy_activate(version_id=trained.version.pk)
    t0 = time.perf_counter()
    learners = serve(args.learners, args.answers, 7, "answers")
    fill_s = time.perf_counter() - t0

    served_policy = policy_for_learner(learner_id=learners[0].pk)[1]
    assert isinstance(served_policy, BeliefPolicy)

    def forget() -> None:
        """What a running process holds for learners it never served: nothing (the policy stays loaded)."""
        learner_history.cache.clear()
        served_policy.clear_memo()
        belief_checkpoints.clear()

    def timed(learner_id: int) -> float:
        t = time.perf_counter()
        decision_next(learner_id=learner_id)
        return (time.perf_counter() - t) * 1000

    every = belief_checkpoints.EVERY
    ms: dict[str, list[float]] = {"cold, checkpoint": [], "cold, no checkpoint": [], "warm": []}
    for rep in range(args.repeats):
        for k, lr in enumerate(learners):
            order = (True, False) if (rep + k) % 2 == 0 else (False, True)
            for use in order:
                forget()
                belief_checkpoints.EVERY = every if use else 10**9
                try:
                    ms["cold, checkpoint" if use else "cold, no checkpoint"].append(timed(lr.pk))
                finally:
                    belief_checkpoints.EVERY = every
            ms["warm"].append(timed(lr.pk))

    def stats(v: list[float]) -> dict[str, float]:
        return {"p50": float(np.percentile(v, 50)), "max": float(max(v)), "n": len(v)}

    out = {
        "policy": args.policy,
        "learners": args.learners,
        "answers": args.answers,
        "checkpoint_every": every,
        "fill_seconds": round(fill_s, 1),
        "ms": {k: stats(v) for k, v in ms.items()},
    }
    warm = out["ms"]["warm"]["p50"]
    out["p50_ratio_to_warm"] = {k: v["p50"] / warm for k, v in out["ms"].items()}
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print(f"{args.policy}, {args.learners} learners x {args.answers} answers (filled in {fill_s:.0f}s), "
              f"checkpoint every {every} answers:")
        for k, v in out["ms"].items():
            print(f"  {k:<20} p50 {v['p50']:6.1f} ms  max {v['max']:6.1f} ms  (n={v['n']})  "
                  f"p50 x{out['p50_ratio_to_warm'][k]:.2f} of warm")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
