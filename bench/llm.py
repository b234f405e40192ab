"""The LLM tutor's pure parts, measured on the demo course (issue 5 targets).

- explanations: a fixed set of (item, wrong answer) cases drawn from the demo course's templates (each template's
  own wrong answers, so every case has a known misconception); per backend, the share of served explanations
  whose stated result equals the key (target >= 99%), the share of model candidates rejected by the checks (with
  reasons), whether a hint before any attempt ever states the key, and tokens and latency;
- template latency: writing a template explanation (target < 5 ms), against marking the same answer with
  `check_answer` (the work every attempt already does) as the same-process baseline;
- drafts: word problems written around template numbers (`curriculum.generation.itemgen`), share passing the
  checks (goal >= 90% with the local model), first-attempt share, and wrong keys among passed drafts, recomputed
  here independently of the writer's own check (target 0);
- reward model: held-out AUC on synthetic feedback over demo items (the oracle AUC of the hidden helpfulness is the
  ceiling), and best-of-4 against a random pick on held-out items (mean hidden helpfulness);
- goals: a fixed set of teacher goals mapped to demo skills and dates (exact-match share).

The local model decodes about 10-17 tokens/s on one core, so its runs use a sample (`--local-cases`,
`--local-drafts`), evenly spaced over the fixed set; the figures say how many cases they are over.

Usage: python bench/llm.py [--backend template|local|openai] [--json] [--cases 200] [--local-cases 20]
       [--drafts 52] [--local-drafts 20] [--base-url URL --model NAME] [--data-dir DIR] [--threads 1]
       [--embedder hashing|minilm] [--skip-reward] [--skip-goals]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402
from datetime import date  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from curriculum.generation.answers import canonical, check_answer  # noqa: E402
from curriculum.generation.templates import TEMPLATES, GeneratedItem  # noqa: E402
from tutor.llm.backends import LLMBackend, get_backend  # noqa: E402
from tutor.llm.checks import same, stated_result, states_answer  # noqa: E402
from tutor.llm.explain import Explainer, ItemInfo  # noqa: E402
from tutor.llm.prompts import LEVELS, STYLES  # noqa: E402

SEED = 0


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] if s else float("nan")


def ms(samples_s: list[float]) -> dict[str, float]:
    x = [1000 * v for v in samples_s]
    return {
        "n": len(x),
        "mean_ms": round(statistics.fmean(x), 4) if x else float("nan"),
        "p50_ms": round(pct(x, 0.5), 4),
        "p99_ms": round(pct(x, 0.99), 4),
    }


# ---------------------------------------------------------------------------------------------------------------
# The fixed case set


def cases(n: int) -> list[tuple[ItemInfo, str, str, GeneratedItem]]:
    """(item, wrong response, template misconception code, generated item), round robin over the templates so
    every template contributes; deterministic for a given n."""
    per_template: dict[str, list[tuple[ItemInfo, str, str, GeneratedItem]]] = {}
    for code, template in TEMPLATES.items():
        rng = np.random.default_rng([SEED, zlib.crc32(code.encode())])
        rows: list[tuple[ItemInfo, str, str, GeneratedItem]] = []
        seen: set[str] = set()
        for _ in range(60):
            item = template.generate(rng)
            if item.code in seen:
                continue
            seen.add(item.code)
            wrong = template.wrong_answers(item.params)
            info = ItemInfo(
                code=item.code,
                prompt=item.prompt,
                answer=item.answer,
                solution=item.solution,
                skills=item.skills,
                known_wrong=tuple(wrong),
            )
            rows.extend((info, response, mcode, item) for response, mcode in wrong)
            if len(rows) >= 12:
                break
        per_template[code] = rows
    out: list[tuple[ItemInfo, str, str, GeneratedItem]] = []
    k = 0
    while len(out) < n:
        added = False
        for rows in per_template.values():
            if k < len(rows) and len(out) < n:
                out.append(rows[k])
                added = True
        if not added:
            break
        k += 1
    return out


def sample(rows: list[Any], k: int) -> list[Any]:
    if k >= len(rows):
        return rows
    idx = np.linspace(0, len(rows) - 1, k).round().astype(int)
    return [rows[i] for i in idx]


# ---------------------------------------------------------------------------------------------------------------
# Sections


def explanations(
    backend: LLMBackend | None, rows: list[Any], *, n_samples: int, timeout: float
) -> dict[str, Any]:
    explainer = Explainer(backend, n_samples=n_samples, timeout=timeout)
    correct = 0
    diag_match = 0
    latencies: list[float] = []
    tokens = 0
    for i, (info, response, mcode, _) in enumerate(rows):
        level = LEVELS[i % len(LEVELS)]
        style = STYLES[(i // len(LEVELS)) % len(STYLES)]
        t0 = time.perf_counter()
        got = explainer.explain(info, response, level=level, style=style)
        latencies.append(time.perf_counter() - t0)
        tokens += got.completion_tokens
        result = stated_result(got.text)
        correct += result is not None and same(info.answer, result)
        diag_match += got.diagnosis.code == mcode
    stats = explainer.stats.as_dict()
    hinter = Explainer(backend, timeout=timeout)
    hints_leaking = 0
    for i, (info, _, _, _) in enumerate(rows):
        hint = hinter.hint(info, level=LEVELS[i % len(LEVELS)])
        hints_leaking += states_answer(hint.text, info.answer, info.prompt)
    served = stats["served"]
    candidates = stats["candidates"]
    return {
        "cases": len(rows),
        "served_correct_share": round(correct / len(rows), 4),
        "served_from_model": served.get("model", 0),
        "served_from_template": served.get("template", 0),
        "model_candidates": candidates,
        "requests_falling_back": stats["fallbacks"],
        "rejected_share": round(stats["fallbacks"] / stats["requests"], 4) if backend is not None else None,
        "reject_reasons": stats["rejected"],
        "hints": len(rows),
        "hints_stating_the_key": hints_leaking,
        "hint_stats": hinter.stats.as_dict(),
        "diagnosis_matches_template": round(diag_match / len(rows), 4),
        "completion_tokens": tokens,
        "latency": ms(latencies),
    }


def template_latency(rows: list[Any], repeats: int = 3) -> dict[str, Any]:
    explainer = Explainer(None)
    baseline: list[float] = []
    template: list[float] = []
    for info, response, _, _ in rows:  # warm-up (sympy's first parse, caches), untimed
        check_answer(info.answer, response)
        explainer.explain(info, response)
    for _ in range(repeats):
        for i, (info, response, _, _) in enumerate(rows):
            t0 = time.perf_counter()
            check_answer(info.answer, response)
            baseline.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            explainer.explain(info, response, level=LEVELS[i % 3], style=STYLES[i % 4])
            template.append(time.perf_counter() - t0)
    b, t = ms(baseline), ms(template)
    return {
        "baseline_check_answer": b,
        "template_explanation": t,
        "ratio_p99": round(t["p99_ms"] / b["p99_ms"], 1) if b["p99_ms"] else None,
        "target_p99_ms": 5.0,
    }


def drafts(backend: LLMBackend, n: int, existing: list[str], embedder: str | None) -> dict[str, Any]:
    from curriculum.generation.itemgen import ItemWriter, default_embedder

    writer = ItemWriter(backend, embedder=default_embedder(embedder), existing=existing)
    t0 = time.perf_counter()
    made = writer.draft_many(n, np.random.default_rng(SEED))
    elapsed = time.perf_counter() - t0
    wrong = 0
    for d in made:
        if d.passed and d.item is not None:
            key = TEMPLATES[d.template].render(dict(d.params)).answer
            if d.item.answer != key or not check_answer(d.item.answer, canonical(key)):
                wrong += 1
    out = writer.stats.as_dict()
    out.update(
        {
            "wrong_keys_recomputed": wrong,
            "seconds": round(elapsed, 2),
            "examples": [d.story for d in made if d.passed][:5],
            "failed_examples": [(d.story, d.reasons) for d in made if not d.passed][:3],
            "embedder": writer.embedder.name,
        }
    )
    return out


def reward(rows: list[Any], embedder: str | None) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    from tutor.llm.reward import RewardModel, best_of_n, synthetic_candidate

    items = list({info.code: info for info, *_ in rows}.values())
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(items))
    held = {items[i].code for i in order[: len(items) // 4]}
    train_items = [it for it in items if it.code not in held]
    test_items = [it for it in items if it.code in held]

    def draw(pool: list[ItemInfo], k: int) -> tuple[list[Any], np.ndarray]:
        cands, probs = [], []
        for _ in range(k):
            it = pool[int(rng.integers(len(pool)))]
            c, p = synthetic_candidate(it.prompt, canonical(it.answer), it.solution, rng)
            cands.append(c)
            probs.append(p)
        return cands, np.array(probs)

    train_c, train_p = draw(train_items, 2000)
    test_c, test_p = draw(test_items, 600)
    y_train = (rng.random(len(train_p)) < train_p).astype(int)
    y_test = (rng.random(len(test_p)) < test_p).astype(int)
    t0 = time.perf_counter()
    model = RewardModel(embedder=embedder).fit(train_c, y_train)
    fit_s = time.perf_counter() - t0
    held_out = model.evaluate(test_c, y_test)
    best, rand = [], []
    for it in test_items:
        for level in LEVELS:
            group = [
                synthetic_candidate(it.prompt, canonical(it.answer), it.solution, rng, level=level)
                for _ in range(4)
            ]
            pick = best_of_n(model, [c for c, _ in group])
            best.append(group[pick][1])
            rand.append(group[int(rng.integers(4))][1])
    return {
        "embedder": embedder or "hashing",
        "train": len(train_c),
        "held_out": len(test_c),
        "held_out_items": len(test_items),
        "auc": round(held_out["auc"], 4),
        "oracle_auc": round(float(roc_auc_score(y_test, test_p)), 4),
        "fit_s": round(fit_s, 2),
        "C": model.C_,
        "best_of_4_helpfulness": round(float(np.mean(best)), 4),
        "random_pick_helpfulness": round(float(np.mean(rand)), 4),
    }


GOALS = [
    ("be ready for fractions by Friday", {"frac-concept", "frac-equivalent", "frac-compare", "frac-add-like",
                                          "frac-add-unlike"}, date(2025, 3, 14)),
    ("learn the times tables in two weeks", {"mul-whole"}, date(2025, 3, 26)),
    ("solve two-step equations by the end of the month", {"eq-two-step"}, date(2025, 3, 31)),
    ("get better at carrying when adding, by next Monday", {"add-whole"}, date(2025, 3, 17)),
    ("subtraction with borrowing by 20 March", {"sub-whole"}, date(2025, 3, 20)),
    ("decimals before the end of next week", {"decimals"}, date(2025, 3, 21)),
    ("adding fractions with different denominators in 10 days", {"frac-add-unlike"}, date(2025, 3, 22)),
    ("place value of digits tomorrow", {"place-value"}, date(2025, 3, 13)),
    ("long division with remainders by Thursday", {"div-whole"}, date(2025, 3, 13)),
    ("compare fractions next week", {"frac-compare"}, date(2025, 3, 17)),
]  # fmt: skip


def goals(backend: LLMBackend | None, embedder: str | None) -> dict[str, Any]:
    from curriculum.generation.demo import SKILLS
    from tutor.llm.embed import get_embedder
    from tutor.llm.goals import GoalMapper

    skills = {code: f"{name}. {desc}" for code, name, desc, _ in SKILLS}
    mapper = GoalMapper(skills, embedder=get_embedder(embedder), backend=backend)
    today = date(2025, 3, 12)
    date_ok = exact = inside = 0
    rows = []
    for text, expected, due in GOALS:
        got = mapper.map(text, today=today)
        date_ok += got.due == due
        exact += set(got.targets) == expected or (
            len(expected) > 2 and set(got.targets) <= expected and got.targets != ()
        )
        inside += bool(got.targets) and set(got.targets) <= expected
        rows.append({"goal": text, "targets": list(got.targets), "due": str(got.due), "method": got.method})
    return {
        "goals": len(GOALS),
        "dates_right": date_ok,
        "targets_right": exact,
        "targets_within_expected": inside,
        "embedder": mapper.embedder.name,
        "rows": rows,
    }


# ---------------------------------------------------------------------------------------------------------------


def make_backend(args: argparse.Namespace) -> tuple[LLMBackend | None, dict[str, Any]]:
    info: dict[str, Any] = {}
    if args.backend == "local":
        import torch

        torch.set_num_threads(args.threads)
        data_dir = Path(args.data_dir or ROOT / "var")
        backend = get_backend("local", data_dir=data_dir, threads=args.threads)
        t0 = time.perf_counter()
        loaded = backend.load()  # type: ignore[union-attr]
        info = {"load_s": round(time.perf_counter() - t0, 2), "from_cache": loaded.from_cache,
                "threads": args.threads}  # fmt: skip
        return backend, info
    if args.backend == "openai":
        return get_backend("openai", base_url=args.base_url, model=args.model), info
    return get_backend(args.backend), info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", default="template", choices=["template", "local", "openai", "off"])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--local-cases", type=int, default=20)
    ap.add_argument("--drafts", type=int, default=52)
    ap.add_argument("--local-drafts", type=int, default=20)
    ap.add_argument("--samples", type=int, default=1, help="candidates per explanation (best-of-n)")
    ap.add_argument("--base-url", default="http://127.0.0.1:8001/v1")
    ap.add_argument("--model", default="default")
    ap.add_argument(
        "--data-dir", default=None, help="where the local model's bf16 copy is kept (default var/)"
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--embedder", default=None, choices=[None, "hashing", "minilm"])
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--skip-reward", action="store_true")
    ap.add_argument("--skip-goals", action="store_true")
    ap.add_argument("--skip-explanations", action="store_true")
    ap.add_argument("--skip-drafts", action="store_true")
    args = ap.parse_args()

    backend, backend_info = make_backend(args)
    slow = args.backend in {"local", "openai"}
    rows = cases(args.cases)
    if len(rows) < args.cases:
        raise SystemExit(f"only {len(rows)} cases could be drawn")
    run_rows = sample(rows, args.local_cases) if slow else rows
    report: dict[str, Any] = {
        "backend": args.backend,
        "backend_version": backend.version if backend is not None else "off",
        "backend_info": backend_info,
        "case_set": {"cases": len(rows), "templates": len({r[3].template for r in rows})},
    }
    if not args.skip_explanations:
        report["explanations"] = explanations(backend, run_rows, n_samples=args.samples, timeout=args.timeout)
    report["template_latency"] = template_latency(rows)
    if backend is not None and not args.skip_drafts:
        from curriculum.generation.demo import demo_course

        existing = [it["prompt"] for it in demo_course(SEED)["items"]]
        report["drafts"] = drafts(
            backend, args.local_drafts if slow else args.drafts, existing, args.embedder
        )
    if not args.skip_reward:
        report["reward_model"] = reward(rows, args.embedder)
    if not args.skip_goals:
        report["goals"] = goals(backend if args.backend != "template" else None, args.embedder)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return
    print(f"backend {report['backend_version']} {backend_info}")
    if "explanations" in report:
        e = report["explanations"]
        print(
            f"explanations: {e['cases']} cases, served with a correct result {e['served_correct_share']:.2%} "
            f"(target >= 99%); model served {e['served_from_model']}, template {e['served_from_template']}; "
            f"rejected {e['rejected_share']}, reasons {e['reject_reasons']}"
        )
        h = e["hint_stats"]
        print(f"  hints: {e['hints_stating_the_key']} of {e['hints']} state the key; model served "
              f"{h['served'].get('model', 0)}, rejected reasons {h['rejected']}")  # fmt: skip
        print(
            f"  diagnosis = template's misconception: {e['diagnosis_matches_template']:.2%}; latency {e['latency']}"
        )
    t = report["template_latency"]
    print(f"template explanation {t['template_explanation']} vs check_answer {t['baseline_check_answer']}: "
          f"p99 ratio {t['ratio_p99']} (target p99 < 5 ms)")  # fmt: skip
    if "drafts" in report:
        d = report["drafts"]
        print(f"drafts: {d['passed']}/{d['drafts']} pass ({d['pass_rate']:.2%}), first attempt "
              f"{d['first_attempt_pass_rate']:.2%}, {d['attempts']} attempts, wrong keys {d['wrong_keys_recomputed']}, "
              f"reasons {d['attempt_reasons']}, {d['seconds']} s")  # fmt: skip
        for s in d["examples"][:3]:
            print(f"  e.g. {s}")
    if "reward_model" in report:
        r = report["reward_model"]
        print(f"reward model ({r['embedder']}): held-out AUC {r['auc']} (oracle {r['oracle_auc']}) on {r['held_out']}; "
              f"best-of-4 {r['best_of_4_helpfulness']} vs random {r['random_pick_helpfulness']}")  # fmt: skip
    if "goals" in report:
        g = report["goals"]
        print(f"goals ({g['embedder']}): dates {g['dates_right']}/{g['goals']}, targets {g['targets_right']}/{g['goals']}, "
              f"within expected {g['targets_within_expected']}/{g['goals']}")  # fmt: skip


if __name__ == "__main__":
    main()
