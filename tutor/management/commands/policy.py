import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from learners.errors import ServiceError
from tutor.models import PolicyVersion
from tutor.services import policies


class Command(BaseCommand):
    help = "Policy versions: list, activate, rollback, and A/B experiments (start, stop, report)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list")
        p = sub.add_parser("activate")
        p.add_argument("version_id", type=int)
        sub.add_parser("rollback", help="re-activate the previously active version")
        p = sub.add_parser("create", help="record a version of a registered policy with hyperparameters")
        p.add_argument("name")
        p.add_argument("kind")
        p.add_argument("--hyper", default="{}", help="JSON object of hyperparameters")
        p = sub.add_parser("experiment-start")
        p.add_argument("name")
        p.add_argument("treatment_id", type=int)
        p.add_argument("--share", type=float, default=0.5)
        sub.add_parser("experiment-stop")
        p = sub.add_parser("train", help="train a candidate from the decision log; activate it if OPE says so")
        p.add_argument("kind", nargs="?", default="bandit")
        p.add_argument("--hyper", default="{}",
                       help="JSON object of hyperparameters (bandit and rule-based kinds; the simulator-trained "
                            "kinds choose theirs in training and record them)")
        p.add_argument("--through-decision", type=int)
        p.add_argument("--training", default="{}",
                       help="JSON object: simulator sizes for planner/hierarchical/ppo (e.g. {\"ppo_iterations\": 50})")
        p.add_argument("--estimator", default="dr",
                       help="the gate's estimator: ips, snips, dr, cdr, or selected (clustered DR where the "
                            "selection between clustered and plain DR takes it for both policies)")
        p.add_argument("--async", dest="run_async", action="store_true", help="queue the Celery task instead")
        p = sub.add_parser("report", help="compare policy versions on the decision log")
        p.add_argument("--since-decision", type=int, default=0)

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            self._handle(opts)
        except ServiceError as exc:
            raise CommandError(str(exc)) from exc

    def _handle(self, opts: dict[str, Any]) -> None:
        action = opts["action"]
        if action == "list":
            for v in PolicyVersion.objects.order_by("id"):
                self.stdout.write(f"{v.pk:4d} {'*' if v.active else ' '} {v} kind={v.kind} {json.dumps(v.hyperparameters)}")
        elif action == "activate":
            self.stdout.write(f"active: {policies.policy_activate(version_id=opts['version_id'])}")
        elif action == "rollback":
            previous = policies.policy_rollback()
            self.stdout.write(f"active: {previous if previous else 'default policy from settings'}")
        elif action == "create":
            try:
                hyper = json.loads(opts["hyper"])
            except json.JSONDecodeError as exc:
                raise CommandError(f"--hyper: {exc}") from exc
            v, created = policies.policy_version_create(name=opts["name"], kind=opts["kind"], hyperparameters=hyper)
            self.stdout.write(json.dumps({"version_id": v.pk, "created": created}))
        elif action == "experiment-start":
            e = policies.experiment_start(
                name=opts["name"], treatment_id=opts["treatment_id"], treatment_share=opts["share"]
            )
            self.stdout.write(f"experiment {e}")
        elif action == "experiment-stop":
            self.stdout.write(f"stopped {policies.experiment_stop()} experiment(s)")
        elif action == "train":
            try:
                hyper = json.loads(opts["hyper"])
                training = json.loads(opts["training"])
            except json.JSONDecodeError as exc:
                raise CommandError(f"--hyper/--training: {exc}") from exc
            from tutor.services.policy_training import check_estimator

            check_estimator(opts["estimator"])  # before queueing: a worker's failure would come back late
            if opts["run_async"]:
                from tasks.policy import train_policy

                result = train_policy.delay(
                    kind=opts["kind"], hyperparameters=hyper, through_decision_id=opts["through_decision"],
                    training=training, estimator=opts["estimator"],
                )
                self.stdout.write(json.dumps({"task_id": result.id}))
                return
            from tqdm import tqdm

            from tutor.services.policy_training import policy_train

            bar = tqdm(total=100, desc="train policy", unit="%")

            def progress(stage: str, fraction: float) -> None:
                bar.set_postfix_str(stage[:60])
                bar.update(int(fraction * 100) - bar.n)

            out = policy_train(kind=opts["kind"], hyperparameters=hyper,
                               through_decision_id=opts["through_decision"], progress=progress,
                               training=training, estimator=opts["estimator"])
            bar.close()
            self.stdout.write(json.dumps({"version_id": out.version.pk if out.version else None,
                                          "created": out.created, "activated": out.activated,
                                          "report": out.report}, indent=2))
        elif action == "report":
            from tutor.services.evaluation import policy_report

            self.stdout.write(json.dumps(policy_report(since_decision_id=opts["since_decision"]), indent=2))
