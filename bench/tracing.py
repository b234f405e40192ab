"""Benchmark every registered knowledge tracer on one dataset, against pyBKT fitted on the same split.

    .venv/bin/python bench/tracing.py DATA_DIR [--json] [--tracers a,b] [--folds K] [--plot PATH] [--quick]

DATA_DIR is a dataset folder in one of the formats of `learners.tracing.data` (assist2009_builder,
assist2009_pid_akt or any folder in its format, statics2011_dkvmn) or an attempt-log export CSV. The split is the
dataset's own (fixed train/test, or its folds) unless `--folds K` asks for K folds by learner.

Each (tracer, split) runs in a forked child so that its peak memory (max RSS growth) is its own. For each tracer:
AUC, RMSE, accuracy, log-loss, ECE (one prediction per problem attempt, mean over folds), fit and predict time,
latency of one pure `update` (p50/p99 over up to 20,000 consecutive test answers) and a leak check.

pyBKT (its C++ build, the fastest) is fitted on the same split in a virtualenv of its own, created on first use under
var/bench/pybkt-venv with numpy==1.26.4 pandas==2.2.3 scikit-learn==1.5.2 and
`pip install --no-binary pyBKT --no-build-isolation pyBKT`, run with OMP_NUM_THREADS=1; its single-response
`predict` (which replays the learner's history) is timed as its online latency. Ratios are against it.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from learners.tracing.base import AttemptLog, Query  # noqa: E402
from learners.tracing.data import Dataset, load  # noqa: E402
from learners.tracing.evaluation import (  # noqa: E402
    Split,
    attempt_labels,
    calibration,
    dataset_splits,
    leak_check,
    metrics,
    per_skill_auc,
    subsample_learners,
)
from learners.tracing.registry import TRACERS, make_tracer  # noqa: E402

PYBKT_VENV = ROOT / "var" / "bench" / "pybkt-venv"
PYBKT_PINS = ["numpy==1.26.4", "pandas==2.2.3", "scikit-learn==1.5.2"]
UPDATE_SAMPLES = 20_000
LEAK_LEARNERS = 150


# ---------------------------------------------------------------------- our tracers


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def _latencies(tracer: Any, log: AttemptLog, limit: int) -> dict[str, float]:
    """p50/p99 of one `update` and one `predict_next`, replaying the test answers in log order."""
    states: dict[int, Any] = {}
    upd: list[int] = []
    nxt: list[int] = []
    clock = time.perf_counter_ns
    for n, (learner, attempt) in enumerate(log.attempts()):
        if n >= limit:
            break
        state = states.get(learner)
        if state is None:
            state = tracer.init_state()
        query = Query(item=attempt.item, skills=attempt.skills, timestamp=attempt.timestamp)
        t0 = clock()
        tracer.predict_next(state, query)
        t1 = clock()
        state = tracer.update(state, attempt)
        t2 = clock()
        states[learner] = state
        nxt.append(t1 - t0)
        upd.append(t2 - t1)
    u = np.asarray(upd, dtype=np.float64) / 1e6
    q = np.asarray(nxt, dtype=np.float64) / 1e6
    return {
        "update_p50_ms": float(np.percentile(u, 50)),
        "update_p99_ms": float(np.percentile(u, 99)),
        "predict_next_p50_ms": float(np.percentile(q, 50)),
        "predict_next_p99_ms": float(np.percentile(q, 99)),
        "update_samples": float(len(u)),
    }


def _run_one(name: str, params: dict[str, Any], split: Split, with_extras: bool, conn: Any) -> None:
    """Child process: fit, predict, time the online path, check leakage; send a dict back."""
    try:
        cls = TRACERS[name]
        if "torch" in sys.modules:
            import torch

            torch.set_num_threads(1)
        base_rss = _rss_mb()
        tracer = make_tracer(name, **params)
        t0 = time.perf_counter()
        tracer.fit(split.train)
        t1 = time.perf_counter()
        p = np.asarray(tracer.predict(split.test), dtype=np.float64)
        t2 = time.perf_counter()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        out: dict[str, Any] = {
            "fit_s": t1 - t0,
            "predict_s": t2 - t1,
            "peak_mb": max(peak - base_rss, 0.0),
            "p": p,
        }
        out.update(_latencies(tracer, split.test, UPDATE_SAMPLES))
        if with_extras:
            learners = np.unique(split.test.learner)[:LEAK_LEARNERS]
            sub = split.test.take(np.flatnonzero(np.isin(split.test.learner, learners)))
            report = leak_check(tracer, sub, rounds=2)
            out["leak_ok"] = report.ok
            out["leak_checked"] = report.checked
            out["leak_max_change"] = report.max_change
        out["class"] = f"{cls.__module__}.{cls.__qualname__}"
        conn.send(out)
    except Exception as exc:  # report, do not kill the benchmark
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        conn.close()


def run_tracer(name: str, params: dict[str, Any], splits: list[Split]) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    per_split = []
    for i, split in enumerate(splits):
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_run_one, args=(name, params, split, i == 0, send))
        proc.start()
        send.close()
        res = recv.recv()
        proc.join()
        if "error" in res:
            return {"error": res["error"]}
        y = attempt_labels(split.test)
        res["metrics"] = metrics(y, res["p"])
        res["y"] = y
        per_split.append(res)
    return _aggregate(per_split, splits)


def _aggregate(per_split: list[dict[str, Any]], splits: list[Split]) -> dict[str, Any]:
    keys = ["auc", "rmse", "accuracy", "logloss", "ece"]
    out: dict[str, Any] = {k: float(np.mean([r["metrics"][k] for r in per_split])) for k in keys}
    if len(per_split) > 1:
        out["auc_std"] = float(np.std([r["metrics"][k] for r in per_split for k in ["auc"]]))
    for k in ("fit_s", "predict_s", "peak_mb", "update_p50_ms", "update_p99_ms", "predict_next_p50_ms",
              "predict_next_p99_ms"):  # fmt: skip
        if k in per_split[0]:
            out[k] = float(np.mean([r[k] for r in per_split]))
    for k in ("leak_ok", "leak_checked", "leak_max_change", "class"):
        if k in per_split[0]:
            out[k] = per_split[0][k]
    y = np.concatenate([r["y"] for r in per_split])
    p = np.concatenate([r["p"] for r in per_split])
    out["n_attempts"] = len(y)
    if len(per_split) > 1:
        out["auc_pooled"] = metrics(y, p)["auc"]
    skill_auc = per_skill_auc(splits[0].test, per_split[0]["p"])
    if skill_auc:
        vals = np.array(list(skill_auc.values()))
        out["skill_auc_median"] = float(np.median(vals))
        out["skill_auc_n"] = len(vals)
    out["calibration"] = calibration(y, p)
    out["_y"] = y
    out["_p"] = p
    return out


# ---------------------------------------------------------------------- pyBKT

PYBKT_RUNNER = r"""
import json, sys, time
import numpy as np, pandas as pd
from pyBKT.models import Model

work = sys.argv[1]
cfg = json.load(open(f"{work}/config.json"))
out = {}
for split in cfg["splits"]:
    train = pd.read_csv(f"{work}/{split}_train.csv", dtype={"skill_name": str})
    test = pd.read_csv(f"{work}/{split}_test.csv", dtype={"skill_name": str})
    res = {}
    for variant, forgets in (("bkt", False), ("bkt_forget", True)):
        model = Model(seed=cfg["seed"], num_fits=cfg["num_fits"])
        t0 = time.perf_counter()
        model.fit(data=train, forgets=forgets)
        t1 = time.perf_counter()
        pred = model.predict(data=test).sort_index()
        t2 = time.perf_counter()
        np.save(f"{work}/{split}_{variant}.npy", pred["correct_predictions"].to_numpy(dtype=np.float64))
        lat = []
        if cfg["latency_samples"]:
            rng = np.random.default_rng(0)
            rows = rng.choice(len(test), size=min(cfg["latency_samples"], len(test)), replace=False)
            users = test["user_id"].to_numpy()
            for r in rows:
                hist = test.iloc[: r + 1]
                hist = hist[users[: r + 1] == users[r]]
                s = time.perf_counter()
                model.predict(data=hist)
                lat.append((time.perf_counter() - s) * 1000.0)
        res[variant] = {"fit_s": t1 - t0, "predict_s": t2 - t1,
                        "predict_one_p50_ms": float(np.percentile(lat, 50)) if lat else None,
                        "predict_one_p99_ms": float(np.percentile(lat, 99)) if lat else None}
    out[split] = res
json.dump(out, open(f"{work}/result.json", "w"))
"""


def ensure_pybkt(venv: Path, log: Any) -> Path | None:
    """The venv's python, creating the venv (about a minute) if needed; None if it cannot be built here."""
    py = venv / "bin" / "python"
    probe = [str(py), "-c", "import pyBKT.fit.E_step"]  # the C++ extension, not the pure-Python fallback
    if py.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return py
    log(f"building pyBKT in {venv} ...")
    venv.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(py), "-m", "pip", "install", "-q", *PYBKT_PINS, "setuptools", "wheel"],
        [str(py), "-m", "pip", "install", "-q", "--no-binary", "pyBKT", "--no-build-isolation", "pyBKT"],
    ]
    for cmd in steps:
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            log(f"pyBKT setup failed: {' '.join(cmd)}\n{r.stderr[-2000:]}")
            return None
    if subprocess.run(probe, capture_output=True).returncode != 0:
        log("pyBKT installed without its C++ extension; not using it as the baseline")
        return None
    return py


def _to_pybkt_csv(log: AttemptLog, path: Path) -> None:
    import csv

    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["order_id", "user_id", "skill_name", "correct"])
        for i, (u, s, c) in enumerate(
            zip(log.learner.tolist(), log.skill.tolist(), log.correct.tolist(), strict=True)
        ):
            w.writerow([i, u, s, c])


def _rows_to_attempts(log: AttemptLog, p_rows: np.ndarray) -> np.ndarray:
    """pyBKT predicts per row; a multi-skill attempt gets the mean of its rows, as our BKT does by default."""
    starts = log.attempt_starts()
    ends = np.append(starts[1:], len(log))
    sums = np.add.reduceat(p_rows, starts) if len(starts) else np.zeros(0)
    return sums / (ends - starts)


def run_pybkt(splits: list[Split], num_fits: int, latency_samples: int, log: Any) -> dict[str, Any] | None:
    py = ensure_pybkt(PYBKT_VENV, log)
    if py is None:
        return None
    work = Path(tempfile.mkdtemp(prefix="pybkt-", dir=PYBKT_VENV.parent))
    try:
        names = [f"s{i}" for i in range(len(splits))]
        for name, split in zip(names, splits, strict=True):
            _to_pybkt_csv(split.train, work / f"{name}_train.csv")
            _to_pybkt_csv(split.test, work / f"{name}_test.csv")
        config = {"splits": names, "seed": 42, "num_fits": num_fits, "latency_samples": latency_samples}
        (work / "config.json").write_text(json.dumps(config))
        (work / "runner.py").write_text(PYBKT_RUNNER)
        env = dict(os.environ, OMP_NUM_THREADS="1")
        r = subprocess.run(
            [str(py), str(work / "runner.py"), str(work)], env=env, capture_output=True, text=True
        )
        if r.returncode != 0:
            log(f"pyBKT run failed:\n{r.stderr[-3000:]}")
            return None
        raw = json.loads((work / "result.json").read_text())
        out: dict[str, Any] = {}
        for variant in ("bkt", "bkt_forget"):
            per_split = []
            for name, split in zip(names, splits, strict=True):
                rows = np.load(work / f"{name}_{variant}.npy")
                # pyBKT's predictions can exceed 1 by rounding; NaN would be a degenerate skill: counted, 0.5
                repaired = int(np.sum(~np.isfinite(rows) | (rows < 0.0) | (rows > 1.0)))
                rows = np.clip(np.nan_to_num(rows, nan=0.5), 0.0, 1.0)
                p = _rows_to_attempts(split.test, rows)
                y = attempt_labels(split.test)
                per_split.append(
                    {
                        **raw[name][variant],
                        "p": p,
                        "y": y,
                        "metrics": metrics(y, p),
                        "repaired_rows": repaired,
                    }
                )
            agg = _aggregate(per_split, splits)
            for k in ("predict_one_p50_ms", "predict_one_p99_ms"):
                vals = [r[k] for r in per_split if r.get(k) is not None]
                agg[k] = float(np.mean(vals)) if vals else None
            agg["repaired_rows"] = sum(r["repaired_rows"] for r in per_split)
            out[variant] = agg
        out["version"] = subprocess.run(
            [str(py), "-c", "import importlib.metadata as m; print(m.version('pyBKT'))"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        out["num_fits"] = num_fits
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------------- output


def _public(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if not k.startswith("_")}


def plot(path: Path, results: dict[str, dict[str, Any]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 5.5))
    colors = [plt.get_cmap("tab20")(i) for i in range(20)]
    for i, (name, res) in enumerate(results.items()):
        if "_y" not in res:
            continue
        style = {"color": colors[i % len(colors)], "lw": 1.2, "ls": "--" if name.startswith("pyBKT") else "-"}
        fpr, tpr, _ = roc_curve(res["_y"], res["_p"])
        ax1.plot(fpr, tpr, label=f"{name} (AUC {res['auc']:.3f})", **style)
        cal = res["calibration"]
        xs = [x for x, c in zip(cal["mean_predicted"], cal["count"], strict=True) if c > 0]
        ys = [y for y, c in zip(cal["fraction_correct"], cal["count"], strict=True) if c > 0]
        ax2.plot(xs, ys, marker="o", ms=3, label=f"{name} (ECE {res['ece']:.3f})", **style)
    for ax in (ax1, ax2):
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7, loc="lower right")
    ax1.set(title="ROC", xlabel="false positive rate", ylabel="true positive rate")
    ax2.set(title="calibration", xlabel="mean predicted P(correct)", ylabel="fraction correct")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(doc: dict[str, Any]) -> str:
    cols = [
        ("auc", "AUC", "{:.4f}"),
        ("rmse", "RMSE", "{:.4f}"),
        ("accuracy", "ACC", "{:.4f}"),
        ("logloss", "logloss", "{:.4f}"),
        ("ece", "ECE", "{:.4f}"),
        ("fit_s", "fit s", "{:.2f}"),
        ("predict_s", "pred s", "{:.2f}"),
        ("update_p50_ms", "upd p50 ms", "{:.4f}"),
        ("update_p99_ms", "upd p99 ms", "{:.4f}"),
        ("peak_mb", "peak MB", "{:.0f}"),
        ("leak_ok", "leak-free", "{}"),
    ]
    rows = []
    for name, res in doc["tracers"].items():
        if "error" in res:
            rows.append([name, "error: " + res["error"]])
            continue
        rows.append([name] + [fmt.format(res[k]) if res.get(k) is not None else "-" for k, _, fmt in cols])
    pyb = doc.get("pybkt") or {}
    for variant in ("bkt", "bkt_forget"):
        if variant in pyb:
            res = dict(pyb[variant])
            res["update_p50_ms"] = res.get("predict_one_p50_ms")
            res["update_p99_ms"] = res.get("predict_one_p99_ms")
            rows.append(
                [f"pyBKT {variant}"]
                + [fmt.format(res[k]) if res.get(k) is not None else "-" for k, _, fmt in cols]
            )
    header = ["tracer"] + [h for _, h, _ in cols]
    widths = [max(len(str(r[i])) for r in [header, *rows] if i < len(r)) for i in range(len(header))]
    lines = [
        "  ".join(
            str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=False))
        )
        for r in [header, *rows]
    ]
    lines.insert(1, "-" * len(lines[0]))
    out = [
        f"dataset {doc['dataset']}  split {doc['split']}  ({doc['n_test_attempts']} test attempts)",
        *lines,
    ]
    if pyb:
        out.append(f"pyBKT {pyb.get('version')} (C++ build, OMP_NUM_THREADS=1, num_fits={pyb.get('num_fits')}); "
                   "its upd columns time one single-response predict")  # fmt: skip
    for line in doc.get("ratios", []):
        out.append(line)
    return "\n".join(out)


def ratios(doc: dict[str, Any]) -> list[str]:
    pyb = doc.get("pybkt") or {}
    lines = []
    for ours, theirs in (("bkt", "bkt"), ("bkt_forget", "bkt_forget")):
        a, b = doc["tracers"].get(ours), pyb.get(theirs)
        if not a or not b or "error" in a:
            continue
        r = {
            "auc_diff": a["auc"] - b["auc"],
            "rmse_diff": a["rmse"] - b["rmse"],
            "fit_time_ratio": a["fit_s"] / b["fit_s"],
        }
        if b.get("predict_one_p99_ms"):
            r["online_p99_speedup"] = b["predict_one_p99_ms"] / a["update_p99_ms"]
        doc.setdefault("vs_pybkt", {})[ours] = r
        line = (
            f"{ours} vs pyBKT {theirs}: AUC {a['auc']:.4f} vs {b['auc']:.4f} ({r['auc_diff']:+.4f}), "
            f"RMSE {a['rmse']:.4f} vs {b['rmse']:.4f}, fit {a['fit_s']:.2f}s vs {b['fit_s']:.2f}s "
            f"(x{r['fit_time_ratio']:.2f} of pyBKT's time)"
        )
        if "online_p99_speedup" in r:
            line += f", online p99 {r['online_p99_speedup']:.0f}x faster"
        lines.append(line)
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir")
    ap.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    ap.add_argument("--tracers", help="comma-separated names (default: every registered tracer)")
    ap.add_argument("--folds", type=int, help="k-fold split by learner instead of the dataset's own split")
    ap.add_argument("--plot", help="write ROC and calibration curves to this PNG")
    ap.add_argument(
        "--quick", action="store_true", help="a fifth of the learners, first split only (smoke test)"
    )
    ap.add_argument("--no-pybkt", action="store_true", help="skip the pyBKT baseline")
    ap.add_argument(
        "--restarts", type=int, default=5, help="random restarts for BKT-family tracers and pyBKT"
    )
    ap.add_argument("--pybkt-latency-samples", type=int, default=200)
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    dataset: Dataset = load(args.data_dir)
    splits = dataset_splits(dataset, folds=args.folds)
    split_name = splits[0].name if len(splits) == 1 else f"{len(splits)}-fold by learner"
    if args.quick:
        s = splits[0]
        splits = [Split(s.name, subsample_learners(s.train, 0.2), subsample_learners(s.test, 0.2))]
        split_name += " (quick: 20% of learners, first split)"
    names = args.tracers.split(",") if args.tracers else list(TRACERS)
    doc: dict[str, Any] = {
        "dataset": dataset.name,
        "split": split_name,
        "n_test_attempts": int(sum(len(s.test.attempt_starts()) for s in splits)),
        "tracers": {},
    }
    for name in names:
        params: dict[str, Any] = {}
        if name.startswith("bkt"):
            params["n_restarts"] = args.restarts
        log(f"{name} ...")
        t = time.perf_counter()
        doc["tracers"][name] = run_tracer(name, params, splits)
        log(
            f"{name}: {time.perf_counter() - t:.1f}s  auc {doc['tracers'][name].get('auc', float('nan')):.4f}"
        )
    if not args.no_pybkt:
        log("pyBKT ...")
        try:
            doc["pybkt"] = run_pybkt(splits, args.restarts, args.pybkt_latency_samples, log)
        except Exception as exc:  # the baseline failing must not lose our tracers' figures
            log(f"pyBKT failed: {type(exc).__name__}: {exc}")
            doc["pybkt"] = None
    doc["ratios"] = ratios(doc)
    if args.plot:
        curves = {k: v for k, v in doc["tracers"].items() if "error" not in v}
        for variant, res in (doc.get("pybkt") or {}).items():
            if isinstance(res, dict) and "_y" in res:
                curves[f"pyBKT {variant}"] = res
        plot(Path(args.plot), curves, f"{doc['dataset']} ({doc['split']})")
    public = {
        **doc,
        "tracers": {k: _public(v) for k, v in doc["tracers"].items()},
        "pybkt": (
            {k: (_public(v) if isinstance(v, dict) else v) for k, v in doc["pybkt"].items()}
            if doc.get("pybkt")
            else None
        ),
    }
    if args.json:
        print(json.dumps(public, indent=1, default=float))
    else:
        print(table(public))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
