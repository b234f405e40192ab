"""Celery tasks of the LLM tutor, run eagerly and each run twice: the second run must change nothing."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
from celery.exceptions import Retry

from curriculum.generation.demo import SKILLS
from curriculum.generation.templates import TEMPLATES
from curriculum.models import Item, Skill
from curriculum.services import curriculum_import
from learners.models import User
from learners.services import attempt_record, user_create
from tasks.llm import fold_style_outcomes, generate_item_drafts, pregenerate_explanations, train_reward_model
from tutor.llm.backends import BACKENDS, BackendUnavailable
from tutor.llm.backends.base import Completion, LLMBackend, Messages
from tutor.llm.prompts import LEVELS, STYLES
from tutor.models import (
    Explanation,
    ExplanationFeedback,
    ItemDraftRequest,
    ItemOrigin,
    RewardModelVersion,
    StyleBanditState,
    StyleDecision,
)
from tutor.services.explanations import common_responses, explanation_fast, explanation_generate, make_case
from tutor.services.feedback import reward_scorer
from tutor.services.items import item_info

pytestmark = pytest.mark.django_db


class Scripted(LLMBackend):
    """A model answering from a class-level script; `fail` makes it a server that is down."""

    name = "scripted"
    model = "tasks-1"
    script: ClassVar[list[str]] = []
    calls: ClassVar[int] = 0
    fail: ClassVar[bool] = False

    def generate(self, messages: Messages, **kw: Any) -> Completion:
        Scripted.calls += 1
        if Scripted.fail:
            raise BackendUnavailable("connection refused")
        text = Scripted.script.pop(0) if Scripted.script else "I think it is 99.\nAnswer: 99"
        return Completion(text, 40, len(text.split()), 0.01, self.name, self.model)


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch, settings: Any) -> type[Scripted]:
    monkeypatch.setitem(BACKENDS, "scripted-tasks", "tests.test_llm_tasks:Scripted")
    settings.TUTOR_LLM_BACKEND = "scripted-tasks"
    Scripted.script, Scripted.calls, Scripted.fail = [], 0, False
    return Scripted


def _template_items(codes: tuple[str, ...] = ("frac-add-unlike", "add-carry")) -> list[Item]:
    rng = np.random.default_rng(3)
    docs = [TEMPLATES[c].render(TEMPLATES[c].draw(rng)).to_dict() for c in codes]
    skills = [{"code": c, "name": n, "description": d, "prerequisites": list(p)} for c, n, d, p in SKILLS]
    curriculum_import(document={"skills": skills, "items": docs})
    return list(Item.objects.filter(code__in=[d["code"] for d in docs]).order_by("id"))


def test_pregeneration_writes_each_case_once(db: Any) -> None:
    items = _template_items()
    per_item = []
    for item in items:
        info = item_info(item=item)
        responses = common_responses(item=item, info=info)
        assert responses == [w for w, _ in info.known_wrong][:5] and len(responses) >= 2
        per_item.append(3 * (len(responses) + 1))  # every level, the common wrong answers and a hint
    expected = sum(per_item)
    first = pregenerate_explanations.delay(batch=1).get()  # continues itself to the second item
    assert (first["done"], first["has_more"], first["template"]) == (1, True, per_item[0])
    assert Explanation.objects.count() == expected
    assert set(Explanation.objects.values_list("backend_version", flat=True)) == {"template:template-v1"}
    again = pregenerate_explanations.delay(batch=5).get()
    assert (again["done"], again["has_more"], again.get("template", 0), again["cached"]) == (
        2,
        False,
        0,
        expected,
    )
    assert Explanation.objects.count() == expected


def test_pregeneration_retries_a_failing_backend_but_not_a_bad_output(
    db: Any, scripted: type[Scripted]
) -> None:
    item = _template_items(("frac-add-unlike",))[0]
    cases = 3 * (len(common_responses(item=item, info=item_info(item=item))) + 1)
    # Every text the model writes states a wrong result: counted, not stored, not retried.
    out = pregenerate_explanations.delay(item_id=item.pk).get()
    assert (out["done"], out["has_more"], out["failed_checks"], scripted.calls) == (1, False, cases, cases)
    assert not Explanation.objects.filter(backend_version="scripted:tasks-1").exists()
    # A server that is down is a transport failure: the task asks to be retried (eager mode raises the retry).
    scripted.calls, scripted.fail = 0, True
    with pytest.raises(Retry) as retry:
        pregenerate_explanations.delay(item_id=item.pk).get()
    assert isinstance(retry.value.exc, BackendUnavailable)
    assert scripted.calls == cases


def test_draft_generation_is_idempotent(db: Any, settings: Any) -> None:
    _template_items(("add-carry",))
    teacher = User.objects.get(pk=user_create(username="tess", role="teacher")["user_id"])
    skill = Skill.objects.get(code="add-whole")
    req = ItemDraftRequest.objects.create(
        skill=skill, count=4, requested_by=teacher, backend_version="template"
    )
    first = generate_item_drafts.delay(request_id=req.pk, batch=3).get()  # 3 now, then continues with the 4th
    assert (first["done"], first["has_more"]) == (3, True)
    req.refresh_from_db()
    assert (req.next_index, req.status, req.n_passed + req.n_failed) == (4, "done", 4)
    drafts = list(Item.objects.filter(source="generated").order_by("id").values_list("code", "prompt"))
    assert len(drafts) == req.n_passed >= 3, req.reasons
    indexes = [i for i in ItemOrigin.objects.values_list("index", flat=True) if i is not None]
    assert len(indexes) == len(set(indexes)) == len(drafts)
    again = generate_item_drafts.delay(request_id=req.pk).get()
    assert (again["done"], again["has_more"]) == (0, False)
    assert (
        list(Item.objects.filter(source="generated").order_by("id").values_list("code", "prompt")) == drafts
    )
    # A re-run from scratch writes the very same drafts (each is seeded by request and index).
    codes = [c for c, _ in drafts]
    Item.objects.filter(source="generated").delete()
    ItemDraftRequest.objects.filter(pk=req.pk).update(next_index=0, n_passed=0, n_failed=0, reasons={})
    generate_item_drafts.delay(request_id=req.pk, batch=4).get()
    assert (
        list(Item.objects.filter(source="generated").order_by("id").values_list("code", flat=True)) == codes
    )
    assert generate_item_drafts.delay(request_id=10**9).get() == {
        "done": 0,
        "has_more": False,
        "reason": "nothing to do",
    }


def _rated_explanations(course: dict[str, Any]) -> None:
    """Teachers rate template explanations: worked examples and analogies good, the rest bad (learnable)."""
    teacher = User.objects.get(pk=user_create(username="tess", role="teacher")["user_id"])
    for code in ("add-1", "add-2", "sub-1", "count-1", "count-2"):
        item = course["items"][code]
        for level in LEVELS:
            for style in STYLES:
                row, _ = explanation_fast(make_case(item=item, response="99", level=level, style=style))
                good = style in ("worked_example", "analogy")
                ExplanationFeedback.objects.create(
                    explanation=row, user=teacher, role="teacher", rating=5 if good else 1
                )


def test_reward_model_training_is_idempotent_and_activates_a_good_model(course: dict[str, Any]) -> None:
    _rated_explanations(course)
    assert ExplanationFeedback.objects.count() == 60
    first = train_reward_model.delay().get()
    second = train_reward_model.delay().get()
    assert (first["created"], first["activated"]) == (True, True), first
    assert (second["created"], second["activated"], second["version_id"]) == (
        False,
        True,
        first["version_id"],
    )
    assert second["reason"] == "already trained on this data"
    version = RewardModelVersion.objects.get()
    assert version.active and version.auc is not None and version.auc == first["auc"] and version.auc >= 0.55
    assert version.n_train + version.n_test == 60
    assert version.meta["class"] == "RewardModel" and bytes(version.params)[:2] == b"PK"  # npz, not a pickle
    assert RewardModelVersion.objects.filter(active=True).count() == 1


def test_best_of_n_serves_the_candidate_the_active_reward_model_rates_highest(
    course: dict[str, Any], scripted: type[Scripted]
) -> None:
    _rated_explanations(course)
    train_reward_model.delay().get()
    version, scorer, n = reward_scorer()
    assert version is not None and scorer is not None and n == 3
    item = course["items"]["add-2"]  # 7 + 5 = ?
    candidates = [
        "Start at 7 and count on 5 more: that makes 12, not 13.\nAnswer: 12",
        "Think of 7 apples and 5 more apples: together there are 12 apples.\nAnswer: 12",
        "Add the ones: 7 and 5 make 12, so the sum is 12 and not 13.\nAnswer: 12",
    ]
    scripted.script = list(candidates)
    case = make_case(item=item, response="13", level="beginner", style="worked_example")
    row, written = explanation_generate(case)
    scores = [scorer(t, case.info, "beginner", "worked_example") for t in candidates]
    best = candidates[int(np.argmax(scores))]
    assert len(set(scores)) == 3
    assert (written.source, written.rejected, row.text, row.n_candidates, row.reward_model_id) == (
        "model",
        [],
        best,
        3,
        version.pk,
    )
    assert row.reward_score == pytest.approx(max(scores))


def test_style_outcomes_are_folded_into_the_bandit_once(course: dict[str, Any]) -> None:
    lid = user_create(username="ada", role="learner")["learner_id"]
    items = course["items"]
    attempt_record(learner_id=lid, item_id=items["add-1"].pk, response="5", client_attempt_id="a")
    decision = StyleDecision.objects.get()
    assert fold_style_outcomes.delay().get() == {"done": 0, "has_more": False, "next_after": decision.pk}
    attempt_record(learner_id=lid, item_id=items["add-2"].pk, response="12", client_attempt_id="b")
    assert fold_style_outcomes.delay().get()["done"] == 1
    assert fold_style_outcomes.delay().get()["done"] == 0
    decision.refresh_from_db()
    assert (decision.outcome, decision.folded) == (True, True)
    state = StyleBanditState.objects.get()
    c, s = LEVELS.index(decision.level), STYLES.index(decision.style)
    assert state.n_folded == 1
    assert state.state["alpha"][c][s] == 2.0 and state.state["beta"][c][s] == 1.0
    assert sum(map(sum, state.state["alpha"])) == 13.0 and sum(map(sum, state.state["beta"])) == 12.0


def test_approving_a_draft_queues_its_pregeneration_with_a_model_backend(
    db: Any, scripted: type[Scripted], django_capture_on_commit_callbacks: Any
) -> None:
    from tutor.services.items import item_review

    _template_items(("frac-add-unlike",))
    template = TEMPLATES["frac-add-unlike"]
    params = template.draw(np.random.default_rng(11))
    gen = template.render(params)
    item = Item.objects.create(
        code=gen.code + "-draft",
        prompt=gen.prompt,
        answer=gen.answer.to_dict(),
        solution=gen.solution,
        status="draft",
        source="generated",
    )
    item.skills.set(Skill.objects.filter(code__in=gen.skills))
    ItemOrigin.objects.create(
        item=item, template=template.code, params=params, checks={"passed": True, "reasons": []}
    )
    teacher = User.objects.get(pk=user_create(username="tess", role="teacher")["user_id"])
    cases = 3 * (len(common_responses(item=item, info=item_info(item=item))) + 1)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        item_review(user=teacher, item_id=item.pk, approve=True)
    queued = [c for c in callbacks if getattr(c, "func", None) is not None]  # task sends, not cache clears
    assert len(queued) == 1 and scripted.calls == cases  # every case asked once (the script's text fails)


def test_pregenerate_command_walks_every_approved_item(db: Any) -> None:
    from io import StringIO

    from django.core.management import call_command

    items = _template_items()
    out = StringIO()
    call_command("pregenerate", batch=1, stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert [line.split(",")[0] for line in lines] == ["1 items done", "2 items done"]
    per_item = [3 * (len(common_responses(item=i, info=item_info(item=i))) + 1) for i in items]
    assert Explanation.objects.count() == sum(per_item)
