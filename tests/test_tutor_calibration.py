import pytest

from curriculum.models import Item
from curriculum.selectors import curriculum_snapshot
from learners.models import Learner
from learners.services import attempt_record
from tasks.policy import calibrate_item_difficulty
from tutor.models import Decision, Watermark
from tutor.services.calibration import PRIOR_WEIGHT, STEP, item_difficulty_calibrate
from tutor.services.scheduling import decision_next

pytestmark = pytest.mark.django_db


def serve_and_answer(learner, right: bool, key: str = "k"):
    d = decision_next(learner_id=learner.pk)
    value = str(d.item.answer["value"]) if right else ("A" if d.item.answer["type"] == "choice" else "0")
    if right and d.item.answer["type"] == "choice":
        value = d.item.answer["value"]
    attempt_record(learner_id=learner.pk, item_id=d.item_id, response=value, client_attempt_id=key, decision_id=d.pk)
    return d


def test_surprising_answers_move_difficulty_once(course):
    learner = Learner.objects.create(display_name="x")
    d = serve_and_answer(learner, right=True, key="1")
    predicted = next(c[2] for c in Decision.objects.get(pk=d.pk).candidates if c[0] == d.item_id)
    before = Item.objects.get(pk=d.item_id).difficulty
    assert item_difficulty_calibrate(batch=10) == (1, False)
    item = Item.objects.get(pk=d.item_id)
    assert item.difficulty_n == 1
    assert item.difficulty == pytest.approx(before - STEP * (1 - predicted) / (PRIOR_WEIGHT + 1))
    assert item.difficulty < before  # answered right while predicted below 1: easier than thought
    # The scheduler's snapshot of the curriculum sees the new difficulty (bulk_update skips auto_now fields).
    assert curriculum_snapshot().items_by_id[d.item_id].difficulty == item.difficulty
    # Running again folds nothing new: the watermark moved with the update.
    assert calibrate_item_difficulty.delay().get() == {"done": 0, "has_more": False}
    assert Item.objects.get(pk=d.item_id).difficulty == item.difficulty
    assert Watermark.objects.get(name="item-difficulty").last_id > 0


def test_batches_are_bounded_and_wrong_answers_make_items_harder(course):
    learner = Learner.objects.create(display_name="y")
    served = [serve_and_answer(learner, right=False, key=str(k)) for k in range(5)]
    before = {d.item_id: Item.objects.get(pk=d.item_id).difficulty for d in served}
    assert item_difficulty_calibrate(batch=2) == (2, True)
    assert item_difficulty_calibrate(batch=2) == (2, True)
    assert item_difficulty_calibrate(batch=2) == (1, False)
    for item_id, old in before.items():
        assert Item.objects.get(pk=item_id).difficulty > old
    assert sum(Item.objects.values_list("difficulty_n", flat=True)) == 5
