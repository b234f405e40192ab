import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from curriculum.selectors import curriculum_export


class Command(BaseCommand):
    help = "Write the curriculum in the import format (to FILE, or standard output)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", nargs="?")

    def handle(self, *args: Any, **opts: Any) -> None:
        text = json.dumps(curriculum_export(), indent=2, ensure_ascii=False)
        if opts["file"]:
            Path(opts["file"]).write_text(text + "\n")
        else:
            self.stdout.write(text)
