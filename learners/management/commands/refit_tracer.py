import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from learners.services import tracer_refit


class Command(BaseCommand):
    help = "Refit a tracer on the attempt log and activate it if it is at least as good (the nightly task's service)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tracer", help="registered tracer name (default: settings.TUTOR_TRACER)")
        parser.add_argument("--through", type=int, help="last attempt id to train on (default: all)")
        parser.add_argument("--async", dest="run_async", action="store_true", help="queue the Celery task instead")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["run_async"]:
            from tasks.tracing import refit_tracer

            result = refit_tracer.delay(name=opts["tracer"], through_attempt_id=opts["through"])
            self.stdout.write(json.dumps({"task_id": result.id}))
            return
        bar = tqdm(total=100, desc="refit", unit="%")

        def progress(stage: str, fraction: float) -> None:
            bar.set_postfix_str(stage)
            bar.update(int(fraction * 100) - bar.n)

        outcome = tracer_refit(name=opts["tracer"], through_attempt_id=opts["through"], progress=progress)
        bar.close()
        self.stdout.write(
            json.dumps(
                {
                    "version_id": outcome.version.pk,
                    "version": str(outcome.version),
                    "activated": outcome.activated,
                    "created": outcome.created,
                    "reason": outcome.reason,
                    "metrics": outcome.version.metrics,
                }
            )
        )
