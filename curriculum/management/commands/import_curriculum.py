import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from curriculum.document import DocumentError
from curriculum.services import curriculum_import


class Command(BaseCommand):
    help = "Import (upsert by code) a curriculum document; '--demo' imports the shipped demo course."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", nargs="?", help="path of a JSON curriculum document (docs/curriculum-format.md)")
        parser.add_argument("--demo", action="store_true", help="import the demo arithmetic course")
        parser.add_argument("--seed", type=int, default=0, help="seed of the demo course's item templates")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["demo"]:
            from curriculum.generation.demo import demo_course

            document = demo_course(seed=opts["seed"])
        elif opts["file"]:
            try:
                document = json.loads(Path(opts["file"]).read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise CommandError(f"{opts['file']}: {exc}") from exc
        else:
            raise CommandError("give a FILE or --demo")
        try:
            report = curriculum_import(document=document)
        except DocumentError as exc:
            raise CommandError("\n".join(["document refused, nothing imported:", *exc.problems])) from exc
        self.stdout.write(json.dumps(report.as_dict()))
