"""Online calibration of item difficulty from the attempt log.

Each answer to a served item moves the item's difficulty (a logit) against the surprise of the answer: the
tracer's predicted P(correct) logged with the decision, minus what happened. An item learners find harder than
predicted gets harder, and the step shrinks as answers accumulate (1 / (n0 + n)), so a difficulty settles. A
watermark on the attempt log moves in the same transaction as the updates: a batch run twice, or killed and re-run,
counts every answer once.
"""

from __future__ import annotations

import math
from collections import defaultdict

from django.db import transaction
from django.utils import timezone

from curriculum.models import Item
from curriculum.selectors import curriculum_changed
from learners.models import Attempt
from tutor.models import Watermark

WATERMARK = "item-difficulty"
PRIOR_WEIGHT = 10.0  # answers' worth of confidence in the imported difficulty
STEP = 4.0  # a logit's worth of surprise moves a fresh item by about STEP / PRIOR_WEIGHT


def item_difficulty_calibrate(*, batch: int = 2000) -> tuple[int, bool]:
    """Fold the next `batch` answers into item difficulties; returns (answers folded, more to do)."""
    with transaction.atomic():
        mark, _ = Watermark.objects.select_for_update().get_or_create(name=WATERMARK)
        rows = list(
            Attempt.objects.filter(pk__gt=mark.last_id)
            .order_by("id")
            .values_list("id", "item_id", "correct", "decision__candidates", "decision__item_id")[: batch + 1]
        )
        more = len(rows) > batch
        rows = rows[:batch]
        if not rows:
            return 0, False
        residuals: dict[int, list[float]] = defaultdict(list)
        for _, item_id, correct, candidates, served in rows:
            if not candidates or served != item_id:
                continue  # answers not served by a logged decision carry no prediction to compare with
            predicted = next((float(c[2]) for c in candidates if c[0] == item_id and len(c) > 2), None)
            if predicted is None or math.isnan(predicted):
                continue
            residuals[item_id].append(float(correct) - predicted)
        items = Item.objects.select_for_update().filter(pk__in=list(residuals))
        now = timezone.now()
        changed = []
        for item in items:
            for r in residuals[item.pk]:
                item.difficulty_n += 1
                item.difficulty -= STEP * r / (PRIOR_WEIGHT + item.difficulty_n)
            item.difficulty = max(-4.0, min(4.0, item.difficulty))
            item.updated_at = now  # bulk_update does not touch auto_now; the curriculum snapshot's key reads it
            changed.append(item)
        Item.objects.bulk_update(changed, ["difficulty", "difficulty_n", "updated_at"])
        mark.last_id = rows[-1][0]
        mark.save(update_fields=["last_id", "updated_at"])
        if changed:
            curriculum_changed()
    return len(rows), more
