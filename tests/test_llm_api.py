"""The LLM tutor's API: explanations (JSON and server-sent events), hints, feedback, drafts and goals."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from django.test import Client
from django.utils import timezone

from curriculum.generation.answers import AnswerSpec
from curriculum.generation.demo import SKILLS
from curriculum.models import Item, Skill
from learners.services import user_create
from tests.factories import ItemFactory, SkillFactory
from tutor.llm.backends import BACKENDS
from tutor.llm.backends.base import BackendTimeout, Completion, LLMBackend, Messages
from tutor.llm.backends.template import TemplateBackend
from tutor.llm.checks import states_answer
from tutor.llm.explain import Explainer
from tutor.llm.goals import parse_due
from tutor.llm.prompts import level_for_mastery
from tutor.models import Decision, Explanation, ExplanationFeedback, Goal, ItemOrigin, StyleDecision
from tutor.services.explanations import explanation_fast, make_case
from tutor.services.goals import goals_changed
from tutor.services.items import item_info

pytestmark = pytest.mark.django_db

GOOD = "Start at 7 and count on 5 more: that makes 12, not 13.\nAnswer: 12"
WRONG = "Start at 7 and count on 5 more: that makes 13, not 12.\nAnswer: 13"


class Scripted(LLMBackend):
    """A model that answers from a script (class-level, so the per-process backend sees what a test queued)."""

    name = "scripted"
    model = "scripted-1"
    script: ClassVar[list[str]] = []

    def generate(self, messages: Messages, **kw: Any) -> Completion:
        if not Scripted.script:
            raise BackendTimeout("script exhausted")
        text = Scripted.script.pop(0)
        return Completion(text, 50, len(text.split()), 0.01, self.name, self.model)


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch, settings: Any) -> type[Scripted]:
    monkeypatch.setitem(BACKENDS, "scripted", "tests.test_llm_api:Scripted")
    settings.TUTOR_LLM_BACKEND = "scripted"
    Scripted.script = []
    return Scripted


def call(client: Client, method: str, path: str, token: str | None = None, body: Any = None) -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    if body is not None:
        return getattr(client, method)(
            path, data=json.dumps(body), content_type="application/json", **headers
        )
    return getattr(client, method)(path, **headers)


def events(response: Any) -> list[tuple[str, dict[str, Any]]]:
    raw = b"".join(response.streaming_content).decode()
    out = []
    for block in raw.strip().split("\n\n"):
        name, data = block.split("\n", 1)
        out.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


@pytest.fixture
def people(course: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        "ada": user_create(username="ada", role="learner", classroom="A"),
        "ben": user_create(username="ben", role="learner", classroom="B"),
        "tess": user_create(username="tess", role="teacher", classroom="A"),
        "tom": user_create(username="tom", role="teacher", classroom="B"),
        "root": user_create(username="root", role="admin"),
    }


def answer(client: Client, who: dict[str, Any], item: Item, response: str, key: str) -> Any:
    r = call(
        client,
        "post",
        f"/api/v1/learners/{who['learner_id']}/attempts",
        who["token"],
        {"item": item.pk, "response": response, "client_attempt_id": key},
    )
    assert r.status_code == 201, r.content
    return r.json()


def test_wrong_answer_carries_the_template_explanation_and_the_cache_serves_it_again(client, people, course):
    ada, tess, tom, ben = people["ada"], people["tess"], people["tom"], people["ben"]
    item = course["items"]["add-2"]  # 7 + 5 = ?
    result = answer(client, ada, item, "13", "w1")
    brief = result["feedback"]["explanation"]
    decision = StyleDecision.objects.get(attempt_id=result["attempt_id"])
    level = level_for_mastery(result["mastery"][0]["p_mastery"])
    expected = Explainer(TemplateBackend()).explain(
        item_info(item=item), "13", level=level, style=decision.style
    )
    assert brief == {
        "id": brief["id"],
        "text": expected.text,
        "source": "template",
        "cached": False,
        "level": level,
        "style": decision.style,
        "misconception": "off_by_one",
        "stream_url": None,  # the template backend has nothing fresher to stream
    }
    assert brief["text"].startswith("You answered 13, but the correct answer is 12.")
    assert brief["text"].endswith("Answer: 12")
    assert decision.explanation_id == brief["id"] and decision.level == level
    assert decision.propensity == pytest.approx(decision.probabilities[decision.style])
    # The endpoint answers with the same stored explanation, now from the cache, for the learner and her teacher.
    path = f"/api/v1/attempts/{result['attempt_id']}/explanation"
    first = call(client, "post", path, ada["token"]).json()
    again = call(client, "post", path, tess["token"]).json()
    assert first == again
    assert (first["id"], first["text"], first["cached"], first["kind"]) == (
        brief["id"],
        expected.text,
        True,
        "explanation",
    )
    assert Explanation.objects.count() == 1
    # Nobody else sees it, and ids leak nothing.
    assert call(client, "post", path, ben["token"]).status_code == 404
    assert call(client, "post", path, tom["token"]).status_code == 404
    assert call(client, "post", "/api/v1/attempts/999999/explanation", ada["token"]).status_code == 404
    # A correct answer has nothing to explain.
    ok = answer(client, ada, item, "12", "r1")
    assert "explanation" not in ok["feedback"] or ok["feedback"]["explanation"] is None
    refused = call(client, "post", f"/api/v1/attempts/{ok['attempt_id']}/explanation", ada["token"])
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "attempt_id"
    # A different wrong answer with the same misconception gets its own text (the template echoes the response).
    other = answer(client, ada, item, "11", "w2")["feedback"]["explanation"]
    assert other["id"] != brief["id"] and other["text"].startswith("You answered 11")


def test_sse_replays_the_template_when_no_model_is_configured(client, people, course):
    ada = people["ada"]
    result = answer(client, ada, course["items"]["add-2"], "13", "w1")
    r = call(client, "post", f"/api/v1/attempts/{result['attempt_id']}/explanation?stream=1", ada["token"])
    assert r.status_code == 200 and r["Content-Type"] == "text/event-stream"
    got = events(r)
    names = [n for n, _ in got]
    assert names[0] == "start" and names[-1] == "done" and set(names[1:-1]) == {"delta"}
    text = "".join(e["text"] for n, e in got if n == "delta")
    done = got[-1][1]
    assert text == done["text"] == result["feedback"]["explanation"]["text"]
    assert (done["id"], done["source"], done["stored"]) == (
        result["feedback"]["explanation"]["id"],
        "template",
        True,
    )


def test_sse_streams_a_model_explanation_and_stores_it_only_when_it_passes_the_checks(
    client, people, course, scripted
):
    ada = people["ada"]
    item = course["items"]["add-2"]
    result = answer(client, ada, item, "13", "w1")
    brief = result["feedback"]["explanation"]
    assert brief["source"] == "template" and brief["cached"] is False
    assert brief["stream_url"] == f"/api/v1/attempts/{result['attempt_id']}/explanation?stream=1"
    # The model states a wrong result: the learner gets the template text and nothing is stored for the model.
    scripted.script = [WRONG]
    got = events(call(client, "post", brief["stream_url"], ada["token"]))
    done = got[-1][1]
    assert [n for n, _ in got][0] == "start" and got[0][1]["backend"] == "scripted:scripted-1"
    assert "".join(e["text"] for n, e in got if n == "delta") == brief["text"]
    assert (done["source"], done["stored"], done["id"], done["rejected"]) == (
        "template",
        False,
        brief["id"],
        ["wrong_result"],
    )
    assert not Explanation.objects.filter(backend_version="scripted:scripted-1").exists()
    assert WRONG not in json.dumps(got)  # unchecked text never reaches the learner
    # The model gets it right: the checked text is streamed and stored, and served from the cache from now on.
    scripted.script = [GOOD]
    got = events(call(client, "post", brief["stream_url"], ada["token"]))
    done = got[-1][1]
    assert "".join(e["text"] for n, e in got if n == "delta") == GOOD
    assert (done["source"], done["stored"], done["text"], done["rejected"]) == ("model", True, GOOD, [])
    stored = Explanation.objects.get(backend_version="scripted:scripted-1")
    assert (stored.pk, stored.text, stored.checks_passed, stored.completion_tokens) == (
        done["id"],
        GOOD,
        True,
        len(GOOD.split()),
    )
    cached = call(client, "post", f"/api/v1/attempts/{result['attempt_id']}/explanation", ada["token"]).json()
    assert (cached["id"], cached["text"], cached["cached"], cached["source"], cached["stream_url"]) == (
        stored.pk,
        GOOD,
        True,
        "model",
        None,
    )
    # The same wrong answer at the same level and style is served the model's text at once, without a model call.
    case = make_case(item=item, response="13", level=done["level"], style=done["style"])
    assert explanation_fast(case) == (stored, True)
    assert scripted.script == []


def test_hint_never_states_the_answer(client, people, course):
    ada, tess = people["ada"], people["tess"]
    for item in Item.objects.all():
        hint = call(client, "get", f"/api/v1/items/{item.pk}/hint", ada["token"]).json()
        spec = AnswerSpec.from_dict(item.answer)
        assert hint["kind"] == "hint" and hint["level"] == "beginner"
        assert not states_answer(hint["text"], spec, item.prompt), (item.code, hint["text"])
        assert "Answer:" not in hint["text"]
        key = spec.value if spec.type != "choice" else spec.choices["ABCDEFGH".index(spec.value)]
        if key not in item.prompt:
            assert key not in hint["text"], (item.code, hint["text"])
    item = course["items"]["add-2"]
    first = call(client, "get", f"/api/v1/items/{item.pk}/hint?level=advanced", tess["token"]).json()
    second = call(client, "get", f"/api/v1/items/{item.pk}/hint?level=advanced", tess["token"]).json()
    assert (first["level"], first["cached"], second["cached"], second["id"]) == (
        "advanced",
        False,
        True,
        first["id"],
    )
    refused = call(client, "get", f"/api/v1/items/{item.pk}/hint?level=advanced", ada["token"])
    assert refused.status_code == 403 and refused.json()["errors"][0]["field"] == "level"
    bad = call(client, "get", f"/api/v1/items/{item.pk}/hint?level=expert", tess["token"])
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "level"
    Item.objects.filter(pk=item.pk).update(status=Item.Status.DRAFT)
    assert call(client, "get", f"/api/v1/items/{item.pk}/hint", ada["token"]).status_code == 404


def test_feedback_is_validated_per_role_and_replaced_on_repeat(client, people, course):
    ada, ben, tess = people["ada"], people["ben"], people["tess"]
    item = course["items"]["add-2"]
    brief = answer(client, ada, item, "13", "w1")["feedback"]["explanation"]
    path = f"/api/v1/explanations/{brief['id']}/feedback"

    def field(r: Any) -> tuple[int, str]:
        return r.status_code, r.json()["errors"][0]["field"]

    created = call(client, "post", path, ada["token"], {"helpful": True})
    assert created.status_code == 201 and created.json()["helpful"] is True
    replaced = call(client, "post", path, ada["token"], {"helpful": False})
    assert replaced.status_code == 200 and replaced.json()["id"] == created.json()["id"]
    assert ExplanationFeedback.objects.get().helpful is False
    assert field(call(client, "post", path, ada["token"], {})) == (400, "helpful")
    assert field(call(client, "post", path, ada["token"], {"helpful": True, "rating": 5})) == (400, "rating")
    assert field(call(client, "post", path, ada["token"], {"helpful": True, "corrected_text": "x"})) == (
        400,
        "corrected_text",
    )
    assert field(call(client, "post", path, ben["token"], {"helpful": True})) == (404, "explanation_id")
    assert field(call(client, "post", path, tess["token"], {"rating": 6})) == (422, "rating")
    assert field(call(client, "post", path, tess["token"], {})) == (400, "rating")
    assert field(call(client, "post", path, tess["token"], {"helpful": True})) == (400, "helpful")
    wrong = {"rating": 2, "corrected_text": "Add 5 to 7.\nAnswer: 13"}
    assert field(call(client, "post", path, tess["token"], wrong)) == (400, "corrected_text")
    no_result = {"rating": 2, "corrected_text": "Add 5 to 7 and count carefully."}
    assert field(call(client, "post", path, tess["token"], no_result)) == (400, "corrected_text")
    good = {"rating": 2, "corrected_text": "Count on 5 from 7.\nAnswer: 12"}
    r = call(client, "post", path, tess["token"], good)
    assert r.status_code == 201 and (r.json()["rating"], r.json()["corrected_text"]) == (
        2,
        good["corrected_text"],
    )
    assert field(
        call(client, "post", "/api/v1/explanations/999999/feedback", tess["token"], {"rating": 3})
    ) == (404, "explanation_id")
    assert ExplanationFeedback.objects.count() == 2


def _demo_skills() -> None:
    from curriculum.services import curriculum_import

    curriculum_import(
        document={
            "skills": [
                {"code": c, "name": n, "description": d, "prerequisites": list(p)} for c, n, d, p in SKILLS
            ],
            "items": [],
        }
    )


def test_drafts_are_generated_reviewed_and_only_approved_ones_are_served(
    client, people, course, django_capture_on_commit_callbacks
):
    _demo_skills()
    tess, ada, root = people["tess"], people["ada"], people["root"]
    with django_capture_on_commit_callbacks(execute=True):
        r = call(client, "post", "/api/v1/items/drafts", tess["token"], {"skill": "add-whole", "count": 3})
    assert r.status_code == 202, r.content
    assert (r.json()["skill"], r.json()["count"], r.json()["status"], r.json()["done"]) == (
        "add-whole",
        3,
        "queued",
        0,
    )
    req = call(client, "get", f"/api/v1/items/drafts/requests/{r.json()['id']}", tess["token"]).json()
    assert req["status"] == "done"
    assert req["done"] == 3 and req["passed"] + req["failed"] == 3
    listed = call(client, "get", "/api/v1/items/drafts?skill=add-whole", tess["token"]).json()
    assert len(listed) == req["passed"] >= 2
    for d in listed:
        assert (d["status"], d["source"], d["skills"], d["checks"]) == (
            "draft",
            "generated",
            ["add-whole"],
            {"passed": True, "reasons": []},
        )
        origin = ItemOrigin.objects.get(item_id=d["id"])
        from curriculum.generation.templates import TEMPLATES

        assert d["answer"] == TEMPLATES[origin.template].render(dict(origin.params)).answer.to_dict()
        assert origin.story in d["prompt"]
    a, b = listed[0]["id"], listed[1]["id"]
    # A draft is never served: make the drafts the only items of a root skill and ask for the next item.
    Item.objects.filter(pk__in=[d["id"] for d in listed]).update(difficulty=0.0)
    Skill.objects.filter(code="place-value").delete()
    served = {
        call(client, "post", f"/api/v1/learners/{ada['learner_id']}/next", ada["token"]).json()["item_id"]
        for _ in range(3)
    }
    draft_ids = {d["id"] for d in listed}
    assert not served & draft_ids
    assert all(c[0] not in draft_ids for c in Decision.objects.last().candidates)
    # Learners cannot review; teachers approve one and reject the other; a reviewed item is no longer a draft.
    assert call(client, "post", f"/api/v1/items/{a}/approve", ada["token"]).status_code == 403
    assert call(client, "post", f"/api/v1/items/{a}/approve", tess["token"]).json()["status"] == "approved"
    assert call(client, "post", f"/api/v1/items/{b}/reject", tess["token"]).json()["status"] == "rejected"
    again = call(client, "post", f"/api/v1/items/{a}/approve", tess["token"])
    assert again.status_code == 409 and again.json()["errors"][0]["field"] == "item_id"
    assert call(client, "post", f"/api/v1/items/{b}/approve", tess["token"]).status_code == 409
    assert Decision.objects.count() == 3
    call(client, "post", f"/api/v1/learners/{ada['learner_id']}/next", ada["token"])
    candidates = {c[0] for c in Decision.objects.last().candidates}
    assert a in candidates and b not in candidates
    left = {d["id"] for d in call(client, "get", "/api/v1/items/drafts", root["token"]).json()}
    assert left == draft_ids - {a, b}  # the listing shows drafts by default
    approved = call(client, "get", "/api/v1/items/drafts?status=approved", tess["token"]).json()
    assert [d["id"] for d in approved] == [a]


def test_draft_edits_keep_the_template_key_and_checks_gate_approval(
    client, people, course, django_capture_on_commit_callbacks
):
    _demo_skills()
    tess, ada = people["tess"], people["ada"]
    with django_capture_on_commit_callbacks(execute=True):
        call(client, "post", "/api/v1/items/drafts", tess["token"], {"skill": "add-whole", "count": 3})
    a, b, c = (d["id"] for d in call(client, "get", "/api/v1/items/drafts", tess["token"]).json()[:3])
    key = Item.objects.get(pk=a).answer
    refused = call(
        client, "patch", f"/api/v1/items/{a}", tess["token"], {"answer": {"type": "number", "value": "1"}}
    )
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "answer"
    assert Item.objects.get(pk=a).answer == key
    # An edit that drops the template's numbers is recorded as failing and blocks approval.
    edited = call(
        client, "patch", f"/api/v1/items/{a}", tess["token"], {"prompt": "How many apples are there now?"}
    )
    assert edited.status_code == 200
    assert (
        edited.json()["checks"]["passed"] is False and "missing_number" in edited.json()["checks"]["reasons"]
    )
    blocked = call(client, "post", f"/api/v1/items/{a}/approve", tess["token"])
    assert blocked.status_code == 409 and blocked.json()["errors"][0]["field"] == "prompt"
    # A wording fix that keeps the numbers passes and can be approved.
    original = ItemOrigin.objects.get(item_id=b)
    fixed = call(
        client,
        "patch",
        f"/api/v1/items/{b}",
        tess["token"],
        {"prompt": original.story + "\n\nWrite your answer as a number.", "solution": "Add the columns."},
    )
    assert fixed.json()["checks"]["passed"] is True and fixed.json()["solution"] == "Add the columns."
    assert call(client, "post", f"/api/v1/items/{b}/approve", tess["token"]).status_code == 200
    # A key that differs from the template's is never approved, however it got there.
    Item.objects.filter(pk=c).update(answer={"type": "number", "value": "1"})
    tampered = call(client, "post", f"/api/v1/items/{c}/approve", tess["token"])
    assert tampered.status_code == 409 and tampered.json()["errors"][0]["field"] == "answer"
    assert Item.objects.get(pk=c).status == "draft"
    assert call(client, "patch", f"/api/v1/items/{b}", ada["token"], {"prompt": "x"}).status_code == 403
    # Imported items have no template to re-derive their key from: admins only.
    imported = course["items"]["add-2"]
    denied = call(client, "patch", f"/api/v1/items/{imported.pk}", tess["token"], {"prompt": "7 + 6 = ?"})
    assert denied.status_code == 403 and denied.json()["errors"][0]["field"] == "item_id"
    root = people["root"]
    fixed_key = {"prompt": "7 + 6 = ?", "answer": {"type": "number", "value": "13"}}
    edited = call(client, "patch", f"/api/v1/items/{imported.pk}", root["token"], fixed_key).json()
    assert (edited["prompt"], edited["answer"], edited["source"]) == (
        "7 + 6 = ?",
        {"type": "number", "value": "13"},
        "import",
    )
    bad = call(client, "patch", f"/api/v1/items/{imported.pk}", root["token"], {"answer": {"type": "number"}})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "answer"


def test_draft_requests_are_validated(client, people, course, settings):
    _demo_skills()
    tess, ada = people["tess"], people["ada"]

    def field(r: Any) -> tuple[int, str]:
        return r.status_code, r.json()["errors"][0]["field"]

    assert field(
        call(client, "post", "/api/v1/items/drafts", ada["token"], {"skill": "add-whole", "count": 1})
    ) == (403, "role")
    assert field(
        call(client, "post", "/api/v1/items/drafts", tess["token"], {"skill": "add-whole", "count": 0})
    ) == (422, "count")
    assert field(
        call(client, "post", "/api/v1/items/drafts", tess["token"], {"skill": "nope", "count": 1})
    ) == (404, "skill")
    assert field(
        call(client, "post", "/api/v1/items/drafts", tess["token"], {"skill": "count", "count": 1})
    ) == (400, "skill")
    settings.TUTOR_LLM_BACKEND = "off"
    assert field(
        call(client, "post", "/api/v1/items/drafts", tess["token"], {"skill": "add-whole", "count": 1})
    ) == (409, "backend")


def test_a_confirmed_goal_changes_the_schedulers_focus(client, people, course):
    ada, tess, ben = people["ada"], people["tess"], people["ben"]
    shapes = SkillFactory(
        code="shapes", name="Shapes", description="Name flat shapes: triangles, squares, circles"
    )
    ItemFactory(
        code="shape-1",
        skills=[shapes],
        prompt="How many sides has a triangle?",
        answer={"type": "number", "value": "3"},
    )
    lid = ada["learner_id"]

    def focus() -> str:
        served = call(client, "post", f"/api/v1/learners/{lid}/next", ada["token"]).json()
        return served["skills"][0]

    assert focus() == "count"  # both roots are open; without a goal the first in topological order wins
    text = "Get the class ready for shapes by Friday"
    r = call(client, "post", f"/api/v1/classrooms/{ada['classroom_id']}/goals", tess["token"], {"text": text})
    assert r.status_code == 201, r.content
    goal = r.json()
    due = parse_due(text, timezone.localdate())
    assert (goal["status"], goal["targets"], goal["due"], goal["due_text"]) == (
        "proposed",
        ["shapes"],
        due.due.isoformat(),
        due.text,
    )
    assert focus() == "count"  # a proposal does not steer anything
    assert call(client, "post", f"/api/v1/goals/{goal['id']}/confirm", ada["token"], {}).status_code == 403
    confirmed = call(client, "post", f"/api/v1/goals/{goal['id']}/confirm", tess["token"], {})
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    assert {focus() for _ in range(3)} == {"shapes"}
    # Other classes are unaffected, and a goal past its date stops steering.
    assert (
        call(
            client, "post", f"/api/v1/learners/{ben['learner_id']}/goals", tess["token"], {"text": text}
        ).status_code
        == 404
    )
    Goal.objects.filter(pk=goal["id"]).update(due=timezone.localdate() - timedelta(days=1))
    goals_changed()  # a write past the services is seen within a second (the cache of live goals); now here
    assert focus() == "count"


def test_goal_confirmation_validates_skills_and_access(client, people, course):
    ada, tess, tom = people["ada"], people["tess"], people["tom"]
    r = call(
        client,
        "post",
        f"/api/v1/learners/{ada['learner_id']}/goals",
        tess["token"],
        {"text": "Fractions within two weeks"},
    )
    assert r.status_code == 201
    goal = r.json()
    assert goal["learner_id"] == ada["learner_id"] and goal["targets"] == ["frac"]
    bad = call(
        client, "post", f"/api/v1/goals/{goal['id']}/confirm", tess["token"], {"skills": ["frac", "nope"]}
    )
    assert bad.status_code == 400 and bad.json()["errors"][0] == {
        "field": "skills",
        "message": "unknown skill codes: nope",
    }
    empty = call(client, "post", f"/api/v1/goals/{goal['id']}/confirm", tess["token"], {"skills": []})
    assert empty.status_code == 400 and empty.json()["errors"][0]["field"] == "skills"
    assert call(client, "post", f"/api/v1/goals/{goal['id']}/confirm", tom["token"], {}).status_code == 404
    own = call(
        client, "post", f"/api/v1/goals/{goal['id']}/confirm", tess["token"], {"skills": ["sub", "add"]}
    )
    assert (own.json()["targets"], own.json()["status"]) == (["add", "sub"], "confirmed")
    listed = call(client, "get", f"/api/v1/learners/{ada['learner_id']}/goals", tess["token"]).json()
    assert [g["id"] for g in listed] == [goal["id"]]
    too_long = call(
        client, "post", f"/api/v1/classrooms/{ada['classroom_id']}/goals", tess["token"], {"text": "x" * 501}
    )
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["field"] == "text"


def test_reward_model_endpoints_are_for_admins(client, people, django_capture_on_commit_callbacks):
    tess, root = people["tess"], people["root"]
    assert call(client, "get", "/api/v1/reward-models", tess["token"]).status_code == 403
    assert call(client, "post", "/api/v1/reward-models/train", tess["token"]).status_code == 403
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        r = call(client, "post", "/api/v1/reward-models/train", root["token"])
    assert r.status_code == 202 and r.json()["state"] == "PENDING" and len(callbacks) == 1
    assert call(client, "get", "/api/v1/reward-models", root["token"]).json() == []  # no feedback: no version


def test_openapi_lists_the_llm_endpoints(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    for p in [
        "/api/v1/items/{item_id}/hint",
        "/api/v1/attempts/{attempt_id}/explanation",
        "/api/v1/explanations/{explanation_id}/feedback",
        "/api/v1/items/drafts",
        "/api/v1/items/{item_id}/approve",
        "/api/v1/items/{item_id}/reject",
        "/api/v1/items/{item_id}",
        "/api/v1/classrooms/{classroom_id}/goals",
        "/api/v1/learners/{learner_id}/goals",
        "/api/v1/goals/{goal_id}/confirm",
    ]:
        assert p in paths, p
