"""How a decision of a saved `pomdp` plan finds its alpha vector: the full product against `MassScreen`, on the
beliefs the plan meets.

    python bench/plan_screen.py PATH [--learners 20] [--seed 10050] [--stages 128,512 ...] [--repeat 3] [--json]

PATH is a file that `bench/scheduler.py --save` wrote (`pomdp.bin`). The policy decides for `--learners` simulated
learners of the benchmark's course over the benchmark's horizon, and every belief it decides at is kept (the
simulator runs on its default parameters: what is measured here is the planner's lookup, not the schedule). Then,
on those beliefs, for each `--stages` (repeatable; the screen's default when not given): the share of the plan
read per decision (mean, median, p99) and of decisions that took the full product in the end, how many decisions
pick the same vector as the full product, and the time per decision of each (mean, median, p99) with the ratio of
the means, both timed in this process, interleaved, `--repeat` times over all the beliefs. One thread for the
math libraries, as a serving process runs (`TUTOR_WEB_MATH_THREADS`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from tutor.policy.pomdp import MassScreen, PlanningPolicy, PlanRecorder  # noqa: E402
from tutor.policy.registry import load_policy  # noqa: E402
from tutor.sim.experiment import ExperimentConfig, make_setting  # noqa: E402
from tutor.sim.harness import run_policy  # noqa: E402

DEFAULT_STAGES = (128, 512)


def met_beliefs(policy: PlanningPolicy, learners: int, seed: int) -> np.ndarray:
    """Every belief (planner layout) at which `policy` decides for `learners` simulated learners."""
    recorder = PlanRecorder.following(policy)
    recorder.settled = 2.0  # keep them all, settled ones too: a served decision meets those as well
    run_policy(recorder, make_setting(ExperimentConfig()), learners, seed)
    return np.asarray(recorder.seen_, dtype=np.float32)


def _ms(seconds: list[float]) -> dict[str, float]:
    t = 1e3 * np.asarray(seconds)
    return {"mean": float(t.mean()), "p50": float(np.median(t)), "p99": float(np.percentile(t, 99))}


def measure(alphas: np.ndarray, beliefs: np.ndarray, stages: tuple[int, ...], repeat: int) -> dict[str, Any]:
    screen = MassScreen(alphas, stages=stages)
    read, same = [], 0
    for b in beliefs:
        row, _ = screen.argmin(b)
        read.append(screen.read_ / alphas.size)
        same += int(row == int((alphas @ b).argmin()))
    full_s: list[float] = []
    screen_s: list[float] = []
    for _ in range(repeat):
        for b in beliefs:
            t0 = time.perf_counter()
            int((alphas @ b).argmin())
            t1 = time.perf_counter()
            screen.argmin(b)
            screen_s.append(time.perf_counter() - t1)
            full_s.append(t1 - t0)
    shares = np.asarray(read)
    return {
        "stages": list(stages),
        "read": {
            "mean": float(shares.mean()),
            "p50": float(np.median(shares)),
            "p99": float(np.percentile(shares, 99)),
        },
        "full_product_share": float((shares >= 1.0).mean()),
        "same_decisions": same,
        "decisions": len(beliefs),
        "full_ms": _ms(full_s),
        "screen_ms": _ms(screen_s),
        "mean_ratio": float(np.sum(screen_s) / np.sum(full_s)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("path", help="a pomdp file written by bench/scheduler.py --save")
    ap.add_argument("--learners", type=int, default=20, help="simulated learners whose beliefs are kept (20)")
    ap.add_argument(
        "--seed", type=int, default=10_050, help="their seed (default 10050, not an evaluation seed)"
    )
    ap.add_argument(
        "--stages", action="append", help="comma-separated state counts of the screen (repeatable)"
    )
    ap.add_argument("--repeat", type=int, default=3, help="timed passes over the beliefs (3)")
    ap.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    args = ap.parse_args(argv)
    configs: list[tuple[int, ...]] = []
    for spec in args.stages or [",".join(map(str, DEFAULT_STAGES))]:
        try:
            stages = tuple(int(t) for t in spec.split(",") if t)
        except ValueError:
            ap.error(f"--stages: expected comma-separated integers, got {spec!r}")
        if not stages or min(stages) < 1:
            ap.error(f"--stages: expected positive integers, got {spec!r}")
        configs.append(stages)
    try:
        with open(args.path, "rb") as fp:
            policy = load_policy("pomdp", fp)
    except (OSError, ValueError, KeyError) as exc:
        ap.error(f"path: cannot load a pomdp plan from {args.path!r}: {exc}")
    assert isinstance(policy, PlanningPolicy)
    assert policy.planner_ is not None
    alphas = np.ascontiguousarray(policy.planner_.alphas_, dtype=np.float32)
    out = sys.stderr if args.json else sys.stdout
    t0 = time.perf_counter()
    beliefs = met_beliefs(policy, args.learners, args.seed)
    print(
        f"{len(beliefs)} beliefs met by {args.learners} learners ({time.perf_counter() - t0:.0f}s)", file=out
    )
    rows = [measure(alphas, beliefs, stages, args.repeat) for stages in configs]
    doc = {
        "plan": {"vectors": alphas.shape[0], "states": alphas.shape[1], "mb": alphas.nbytes / 2**20},
        "screens": rows,
    }
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    print(f"plan: {alphas.shape[0]} vectors x {alphas.shape[1]} states ({alphas.nbytes / 2**20:.1f} MB)")
    print(f"{'stages':<14}{'read mean':>10}{'p50':>7}{'p99':>7}{'full':>7}{'same':>13}"
          f"{'full ms mean':>14}{'p50':>7}{'p99':>7}{'screen ms mean':>16}{'p50':>7}{'p99':>7}{'ratio':>7}")  # fmt: skip
    for r in rows:
        f, s, rd = r["full_ms"], r["screen_ms"], r["read"]
        print(f"{','.join(map(str, r['stages'])):<14}{rd['mean']:>10.3f}{rd['p50']:>7.3f}{rd['p99']:>7.3f}"
              f"{r['full_product_share']:>7.3f}{r['same_decisions']:>7}/{r['decisions']:<5}"
              f"{f['mean']:>14.3f}{f['p50']:>7.3f}{f['p99']:>7.3f}{s['mean']:>16.3f}{s['p50']:>7.3f}{s['p99']:>7.3f}"
              f"{r['mean_ratio']:>7.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
