"""Compare scheduling policies on simulated learners over the curriculum in the database (in process), or
measure the served path by driving the real HTTP API with simulated learners (--http)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = __doc__ or ""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quick", action="store_true", help="reduced run (under a minute)")
        parser.add_argument("--json", action="store_true", help="print one JSON document")
        parser.add_argument("--policies", help="comma-separated subset (default: all registered in the harness)")
        parser.add_argument("--seeds", type=int)
        parser.add_argument("--learners", type=int)
        parser.add_argument("--plot", help="write learning curves (PNG) here")
        parser.add_argument("--synthetic", action="store_true", help="use the synthetic course, not the database's")
        parser.add_argument("--http", metavar="URL", help="drive this running server's API instead")
        parser.add_argument("--token", help="admin token for --http")
        parser.add_argument("--steps", type=int, default=30, help="exercises per learner with --http")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["http"]:
            self._http(opts)
        else:
            self._in_process(opts)

    def _http(self, opts: dict[str, Any]) -> None:
        from tqdm import tqdm

        from tutor.services.simulation import simulate_http

        if not opts["token"]:
            raise CommandError("--http needs --token (an admin token: manage.py create_user NAME --role admin)")
        steps = opts["steps"]
        bar = tqdm(total=steps, desc="simulated exercises", disable=opts["json"])
        out = simulate_http(
            base_url=opts["http"], admin_token=opts["token"], n_learners=opts["learners"] or 20, steps=steps,
            ks=tuple(k for k in (10, 20, 50, 100, 200) if k <= steps),
            progress=lambda done, total: bar.update(done - bar.n),
        )
        bar.close()
        out.pop("learner_ids")
        self.stdout.write(json.dumps(out, indent=None if opts["json"] else 2))

    def _in_process(self, opts: dict[str, Any]) -> None:
        import torch

        from curriculum.selectors import curriculum_export
        from tutor.sim.course import course_from_document
        from tutor.sim.experiment import ExperimentConfig, compare, make_setting, prepare, summaries

        torch.set_num_threads(1)
        config = ExperimentConfig.quick() if opts["quick"] else ExperimentConfig()
        if opts["seeds"]:
            config = replace(config, seeds=tuple(range(1, opts["seeds"] + 1)))
        if opts["learners"]:
            config = replace(config, learners=opts["learners"])
        if opts["policies"]:
            config = replace(config, policies=tuple(opts["policies"].split(",")))
        doc = curriculum_export()
        course = None if opts["synthetic"] or not doc["items"] else course_from_document(doc)

        def log(msg: str) -> None:
            if not opts["json"]:
                self.stderr.write(msg)

        setting = make_setting(config, None, course)
        prepared = prepare(config, setting, log)
        results = compare(prepared, config, log)
        summary = summaries(results, config.ks)
        doc_out = {
            "course": "synthetic" if course is None else f"database ({course.n_skills} skills, {course.n_items} items)",
            "policies": {name: {k: v for k, v in s.items() if k != "curve"} for name, s in summary.items()},
        }
        if opts["plot"]:
            _plot(summary, opts["plot"])
            doc_out["plot"] = opts["plot"]
        if opts["json"]:
            self.stdout.write(json.dumps(doc_out, default=float))
            return
        self.stdout.write(str(doc_out["course"]))
        head = f"{'policy':<14}{'to mastery':>12}{'share':>8}" + "".join(f"{'post@' + str(k):>10}" for k in config.ks)
        self.stdout.write(head)
        for name, s in summary.items():
            row = f"{name:<14}{s['to_mastery']['mean']:>12.1f}{s['share_mastered']['mean']:>8.2f}"
            row += "".join(f"{s[f'post_test@{k}']['mean']:>10.3f}" for k in config.ks)
            self.stdout.write(row)
        if opts["plot"]:
            self.stdout.write(f"plot: {opts['plot']}")


def _plot(summary: dict[str, dict[str, Any]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for name, s in summary.items():
        ax.plot(s["curve"], label=name)
    ax.set_xlabel("exercises")
    ax.set_ylabel("post-test (true state)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
