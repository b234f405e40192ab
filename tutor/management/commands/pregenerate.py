"""Write ahead the explanations of the common wrong answers and the hints of approved items.

`--queue` hands the work to the Celery `llm` queue (the task continues itself batch by batch); without it the same
service runs here, batch after batch, printing progress, which is what a demo or a first install wants.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Pre-generate explanations of common wrong answers (and hints) with the configured LLM backend."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--item", type=int, default=None, help="only this item id")
        parser.add_argument("--batch", type=int, default=5, help="items per batch (default 5)")
        parser.add_argument(
            "--queue", action="store_true", help="queue the Celery task instead of running here"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from tasks.llm import pregenerate_explanations
        from tutor.services.explanations import explanations_pregenerate

        if options["queue"]:
            result = pregenerate_explanations.delay(item_id=options["item"], batch=options["batch"])
            self.stdout.write(f"queued task {result.id} on the llm queue")
            return
        after, total = 0, 0
        while True:
            out = explanations_pregenerate(
                after_item_id=after, item_id=options["item"], batch=options["batch"]
            )
            total += out.done
            counts = {k: v for k, v in out.info.items() if k != "next_after"}
            self.stdout.write(f"{total} items done, through item {out.info['next_after']}: {counts}")
            if not out.has_more:
                break
            after = int(out.info["next_after"])
