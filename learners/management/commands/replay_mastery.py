import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from learners.models import Learner
from learners.services import learner_state_rebuild, mastery_check, tracer_active


class Command(BaseCommand):
    help = "Replay the attempt log: --check compares with stored mastery (exit 1 on any difference); else rebuild."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--check", action="store_true")
        parser.add_argument("--learner", type=int, action="append", help="only these learner ids")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["check"]:
            problems = mastery_check(learner_ids=opts["learner"])
            for p in problems[:50]:
                self.stderr.write(json.dumps(p))
            if problems:
                raise CommandError(f"{len(problems)} mismatch(es) between stored mastery and a replay of the log")
            self.stdout.write("stored mastery equals a replay of the attempt log")
            return
        version, tracer = tracer_active()
        qs = Learner.objects.all() if not opts["learner"] else Learner.objects.filter(pk__in=opts["learner"])
        n = 0
        for learner in qs.iterator():
            with transaction.atomic():
                locked = Learner.objects.select_for_update().get(pk=learner.pk)
                learner_state_rebuild(learner=locked, version=version, tracer=tracer)
            n += 1
        self.stdout.write(f"rebuilt {n} learner(s) with tracer version {version}")
