from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from learners.services import attempt_log
from learners.tracing.data import write_export


class Command(BaseCommand):
    help = (
        "Write the attempt log as CSV (learner,item,skills,correct,timestamp), the format bench/tracing.py and "
        "learners.tracing.data.read_export read."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file")
        parser.add_argument("--through", type=int, help="last attempt id to include")

    def handle(self, *args: Any, **opts: Any) -> None:
        log, last = attempt_log(through_attempt_id=opts["through"])
        write_export(opts["file"], log)
        self.stdout.write(f"wrote {len(log.attempt_starts())} attempts (through attempt {last}) to {opts['file']}")
