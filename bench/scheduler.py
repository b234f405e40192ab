"""Compare scheduling policies on simulated learners: exercises to mastery, post-test after K exercises, OPE.

    python bench/scheduler.py [--json] [--quick] [--seeds S] [--learners N] [--plot PATH] [--data FOLDER]
                              [--save DIR] [--load NAME=PATH ...]

Every policy meets the same simulated learners (same seeds), the same candidate sets and the same BKT view; the
learned policies are fitted and trained on other seeds first. `--data` calibrates the simulator on a real log
folder (see /work/shared/data) and reports the match of accuracy-by-attempt curves; without it the simulator
uses its stored calibrated defaults. Figures are means over seeds with 95% t-intervals across seeds.
`--save` writes every trained learned policy to DIR/NAME.bin; `--load NAME=PATH` evaluates that saved policy
instead of training it (one made by a run with the same configuration, e.g. to try another decision rule on the
same plan without planning again); the JSON's training report lists what was loaded.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from tutor.policy.registry import load_policy  # noqa: E402
from tutor.sim.experiment import (  # noqa: E402
    LEARNED,
    ExperimentConfig,
    compare,
    make_setting,
    ope_check,
    prepare,
    relative_gain,
    summaries,
)


def calibrate_from(folder: str, log: Any) -> tuple[Any, dict[str, Any]]:
    from learners.tracing.data import load
    from tutor.sim.calibration import calibrate

    ds = load(folder)
    train = ds.train if ds.train is not None else ds.all()
    t0 = time.perf_counter()
    cal = calibrate(train)
    log(
        f"calibrated on {folder} ({time.perf_counter() - t0:.1f}s): accuracy-curve RMSE {cal.rmse:.4f} "
        f"(BKT-only simulator {cal.baseline_rmse:.4f})"
    )
    return cal.params, cal.to_dict()


def print_calibration(cal: dict[str, Any]) -> None:
    print(f"{'attempt':>8}{'real':>8}{'sim':>8}{'BKT only':>10}")
    for a, r, m, b in zip(
        cal["attempt"], cal["real_curve"], cal["sim_curve"], cal["bkt_only_curve"], strict=True
    ):
        print(f"{a:>8}{r:>8.3f}{m:>8.3f}{b:>10.3f}")
    print(f"RMSE {cal['rmse']:.4f} (BKT-only simulator {cal['bkt_only_rmse']:.4f})")
    print(f"sequence lengths real {cal['real_lengths']}")
    print(f"sequence lengths sim  {cal['sim_lengths']}")
    print(f"BKT fit across skills: {cal['bkt_summary']}")
    keep = ("prior", "learn", "guess", "slip", "ability_sd", "rate_sd")
    print("calibrated: " + ", ".join(f"{k}={cal['params'][k]:.3f}" for k in keep))
    print(f"not identified by these logs (defaults kept): {', '.join(cal['not_identified'])}")


def plot(summary: dict[str, dict[str, Any]], path: str, ks: tuple[int, ...]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for name, s in summary.items():
        curve = np.asarray(s["curve"])
        style = "-" if name in LEARNED else "--"
        ax.plot(np.arange(len(curve)), curve, style, label=name)
    for k in ks:
        ax.axvline(k, color="grey", lw=0.5)
    ax.set_xlabel("exercises")
    ax.set_ylabel("post-test (expected correctness over all skills, true state)")
    ax.set_title("Learning curves per policy (mean over seeds and learners)")
    ax.legend(ncol=3, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def table(summary: dict[str, dict[str, Any]], ks: tuple[int, ...]) -> str:
    head = f"{'policy':<13}{'to mastery':>20}{'share':>8}" + "".join(f"{'post@' + str(k):>15}" for k in ks)
    head += f"{'on known':>10}{'from start':>12}{'unready':>9}{'dropout':>9}"
    lines = [head, "-" * len(head)]
    for name, s in summary.items():
        tm = s["to_mastery"]
        cell = f"{tm['mean']:.1f} [{tm['ci95'][0]:.1f},{tm['ci95'][1]:.1f}]"
        row = f"{name:<13}{cell:>20}{s['share_mastered']['mean']:>8.3f}"
        for k in ks:
            p = s[f"post_test@{k}"]
            row += f"{p['mean']:>8.3f}±{(p['ci95'][1] - p['ci95'][0]) / 2:.3f}"
        row += f"{s['on_known_share']['mean']:>10.3f}{s['on_known_start_share']['mean']:>12.3f}"
        row += f"{s['on_unready_share']['mean']:>9.3f}"
        row += f"{s['dropout_share']['mean']:>9.3f}"
        lines.append(row)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    ap.add_argument("--quick", action="store_true", help="reduced run (under a minute)")
    ap.add_argument("--seeds", type=int, help="number of evaluation seeds")
    ap.add_argument("--learners", type=int, help="simulated learners per seed and policy")
    ap.add_argument("--plot", help="write the learning curves PNG here")
    ap.add_argument("--data", help="calibrate the simulator on this real data folder first")
    ap.add_argument("--policies", help="comma-separated subset of policies")
    ap.add_argument(
        "--workers", type=int, help="processes for the evaluation runs (default 1; with --quick, up to 2 cores)"
    )
    ap.add_argument("--ppo-iterations", type=int, help="PPO training iterations")
    ap.add_argument("--no-ope", action="store_true", help="skip the off-policy evaluation check")
    ap.add_argument("--ope-learners", type=int, help="learners of the exploring log the OPE check reads")
    ap.add_argument("--save", metavar="DIR", help="save every trained learned policy to DIR/NAME.bin")
    ap.add_argument(
        "--load",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="evaluate this saved learned policy instead of training it (repeatable)",
    )
    ap.add_argument(
        "--calibrate-only", action="store_true", help="with --data: print the calibration and stop"
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr if args.json else sys.stdout, flush=True)

    config = ExperimentConfig.quick() if args.quick else ExperimentConfig()
    if args.seeds:
        config = replace(config, seeds=tuple(range(1, args.seeds + 1)))
    if args.learners:
        config = replace(config, learners=args.learners)
    if args.policies:
        config = replace(config, policies=tuple(args.policies.split(",")))
    if args.ppo_iterations is not None:
        config = replace(config, ppo_iterations=args.ppo_iterations)
    if args.ope_learners:
        config = replace(config, ope_learners=args.ope_learners)
    loaded: dict[str, str] = {}
    for spec in args.load:
        name, sep, path = spec.partition("=")
        if not sep or name not in LEARNED or not Path(path).is_file():
            ap.error(f"--load {spec!r}: expected NAME=PATH with NAME one of {', '.join(LEARNED)} and PATH a file")
        loaded[name] = path
    workers = args.workers if args.workers is not None else (min(2, os.cpu_count() or 1) if args.quick else 1)
    config = replace(config, workers=workers)
    t0 = time.perf_counter()
    calibration = None
    sim = None
    if args.data:
        sim, calibration = calibrate_from(args.data, log)
        if args.calibrate_only:
            if args.json:
                print(json.dumps(calibration, indent=1, default=float))
            else:
                print_calibration(calibration)
            return 0
    setting = make_setting(config, sim)
    prepared = prepare(replace(config, policies=tuple(p for p in config.policies if p not in loaded)), setting, log)
    if args.save:
        Path(args.save).mkdir(parents=True, exist_ok=True)
        for name, policy in prepared.policies.items():
            if name in LEARNED:
                with open(Path(args.save) / f"{name}.bin", "wb") as fp:
                    policy.save(fp)  # type: ignore[attr-defined]
    for name, path in loaded.items():
        with open(path, "rb") as fp:
            prepared.policies[name] = load_policy(name, fp)
        log(f"{name}: loaded from {path}, not trained")
    prepared.policies = {name: prepared.policies[name] for name in config.policies if name in prepared.policies}
    prepared.report["loaded"] = loaded
    log(
        f"evaluating {len(prepared.policies)} policies x {len(config.seeds)} seeds x {config.learners} learners"
    )
    results = compare(prepared, config, log)
    summary = summaries(results, config.ks)
    gains: dict[str, Any] = {}
    for name in prepared.policies:
        if name in LEARNED:
            gains[name] = {
                b: relative_gain(summary, results, name, b)
                for b in ("mastery", "zpdes", "random")
                if b in summary
            }
    ope = None if args.no_ope else ope_check(prepared, config, log)
    if args.plot:
        plot(summary, args.plot, config.ks)
    elapsed = time.perf_counter() - t0
    doc = {
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(config).items()},
        "simulator": json.loads(prepared.setting.sim.to_json()),
        "calibration": calibration,
        "training": prepared.report,
        "policies": {
            name: {k: v for k, v in s.items() if k != "curve"} | {"curve": [round(x, 4) for x in s["curve"]]}
            for name, s in summary.items()
        },
        "fewer_exercises_than": gains,
        "ope": ope,
        "plot": args.plot,
        "seconds": round(elapsed, 1),
    }
    if args.json:
        print(json.dumps(doc, indent=1, default=float))
        # The readable table too, on stderr, so one run gives both.
        log("\n" + table(summary, config.ks))
        for name, g in gains.items():
            log(
                f"{name} needs fewer exercises than "
                + ", ".join(
                    f"{b}: {v['mean']:+.1%} [{v['ci95'][0]:+.1%},{v['ci95'][1]:+.1%}]" for b, v in g.items()
                )
            )
        return 0
    print()
    print(table(summary, config.ks))
    print(
        "\nexercises to mastery of all skills: mean per learner, censored at the horizon "
        f"({config.horizon}) for learners who never got there; 'share' = reached it."
    )
    for name, g in gains.items():
        parts = ", ".join(
            f"{b}: {v['mean']:+.1%} [{v['ci95'][0]:+.1%},{v['ci95'][1]:+.1%}]" for b, v in g.items()
        )
        print(f"{name} needs fewer exercises than {parts}")
    if ope:
        print(
            f"\nOPE from {ope['decisions']} decisions of {ope['logging_policy']} (per-decision tracer gain):"
        )
        print(
            f"{'policy':<13}{'truth':>9}{'IPS':>9}{'SNIPS':>9}{'DR':>9}{'CDR':>9}"
            f"{'DR err':>9}{'CDR err':>9}{'chosen':>8}{'its err':>9}{'ESS':>9}{'ESS skill':>11}"
        )
        for name in prepared.policies:
            r = ope[name]
            print(
                f"{name:<13}{r['truth']:>9.4f}{r['ips']['value']:>9.4f}{r['snips']['value']:>9.4f}"
                f"{r['dr']['value']:>9.4f}{r['cdr']['value']:>9.4f}{r['dr']['rel_error']:>9.1%}"
                f"{r['cdr']['rel_error']:>9.1%}{r['selected']['estimator']:>8}{r['selected']['rel_error']:>9.1%}"
                f"{r['ess']:>9.0f}{r['ess_clustered']:>11.0f}"
            )
    if args.plot:
        print(f"\nplot: {args.plot}")
    print(f"total {elapsed:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
