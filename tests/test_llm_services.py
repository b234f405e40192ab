"""Services of the LLM tutor against the database: item info, the explanation cache, levels, goals, outcomes and
the reward model's training set."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pytest

from curriculum.generation.answers import AnswerSpec, canonical
from curriculum.generation.demo import SKILLS
from curriculum.generation.templates import TEMPLATES
from curriculum.models import Item
from curriculum.services import curriculum_import
from learners.models import Classroom, Learner, User
from learners.services import attempt_record, user_create
from tutor.llm.checks import states_answer
from tutor.llm.prompts import LEVELS
from tutor.models import Explanation, ExplanationFeedback, Goal, StyleDecision
from tutor.services.explanations import explanation_fast, hint_for_item, level_of, make_case
from tutor.services.feedback import next_outcomes, reward_training_set
from tutor.services.goals import goal_confirm, goal_propose, goal_targets_for_learner
from tutor.services.items import item_info, item_template_origin

pytestmark = pytest.mark.django_db


def _demo_slice(per_template: int = 1) -> list[tuple[str, dict[str, Any]]]:
    """One rendered item per template, imported; returns (template code, params) per item code order."""
    rng = np.random.default_rng(7)
    items, origins = [], []
    for template in TEMPLATES.values():
        for _ in range(per_template):
            params = template.draw(rng)
            items.append(template.render(params).to_dict())
            origins.append((template.code, params))
    skills = [{"code": c, "name": n, "description": d, "prerequisites": list(p)} for c, n, d, p in SKILLS]
    curriculum_import(document={"skills": skills, "items": items})
    return origins


def test_item_info_recovers_the_template_of_an_imported_template_item(db: Any) -> None:
    origins = _demo_slice()
    recovered = 0
    for template_code, params in origins:
        template = TEMPLATES[template_code]
        item = Item.objects.get(code=template.item_code(params))
        found = item_template_origin(item=item)
        if found is None:
            continue
        recovered += 1
        assert (found[0].code, found[1]) == (template_code, params)
        assert item_info(item=item).known_wrong == tuple(template.wrong_answers(params))
    assert recovered >= len(origins) - 2  # pv-order's comma lists cannot be read back from the code
    # An edited prompt no longer matches its template: the template's wrong answers are not claimed.
    code, params = origins[0]
    item = Item.objects.get(code=TEMPLATES[code].item_code(params))
    item.prompt += " (edited)"
    item.save()
    assert item_template_origin(item=item) is None and item_info(item=item).known_wrong == ()


def test_hints_of_every_template_and_level_never_state_the_answer(db: Any) -> None:
    _demo_slice()
    n = 0
    for item in Item.objects.all():
        spec = AnswerSpec.from_dict(item.answer)
        for level in LEVELS:
            hint = hint_for_item(item=item, level=level)
            assert not states_answer(hint["text"], spec, item.prompt), (item.code, hint["text"])
            assert "Answer" not in hint["text"]
            n += 1
    assert n == 3 * len(TEMPLATES)


def test_the_cache_returns_the_same_explanation_and_an_edit_invalidates_it(course: dict[str, Any]) -> None:
    item = course["items"]["frac-1"]
    case = make_case(item=item, response="2/4x", level="beginner", style="worked_example")
    first, existed = explanation_fast(case)
    again, existed_again = explanation_fast(
        make_case(item=item, response="2/4x", level="beginner", style="worked_example")
    )
    assert (existed, existed_again, again.pk, again.text) == (False, True, first.pk, first.text)
    assert first.text.endswith("Answer: 1/2")
    assert (first.kind, first.source, first.level, first.style, first.response) == (
        "explanation",
        "template",
        "beginner",
        "worked_example",
        "2/4x",
    )
    # Level and style are part of the key.
    other, _ = explanation_fast(
        make_case(item=item, response="2/4x", level="advanced", style="worked_example")
    )
    assert other.pk != first.pk
    # Editing the item's content changes its hash, so the stale text is not served.
    item.solution = "Split the whole into 2 equal parts; one part is 1/2."
    item.save()
    item.refresh_from_db()
    edited, existed = explanation_fast(
        make_case(item=item, response="2/4x", level="beginner", style="worked_example")
    )
    assert (existed, edited.pk != first.pk) == (False, True)
    assert "Split the whole into 2 equal parts" in edited.text
    assert Explanation.objects.count() == 3


def test_level_is_the_mean_mastery_of_the_items_skills() -> None:
    assert [level_of(m) for m in ([0.1], [0.3, 0.5], [0.5, 0.9], [0.8, 0.9], [])] == [
        "beginner",
        "intermediate",
        "intermediate",
        "advanced",
        "beginner",
    ]


def test_goal_targets_are_confirmed_unexpired_goals_of_the_learner_and_their_classes(
    course: dict[str, Any],
) -> None:
    tess = User.objects.get(pk=user_create(username="tess", role="teacher", classroom="A")["user_id"])
    ada = user_create(username="ada", role="learner", classroom="A")
    lid = ada["learner_id"]
    room = Classroom.objects.get(name="A")
    today = date(2025, 3, 5)  # a Wednesday
    skills = course["skills"]
    for_room = goal_propose(
        user=tess, text="Be ready for fractions by Friday", classroom_id=room.pk, today=today
    )
    assert (for_room.due, [s.code for s in for_room.targets.all()], for_room.status) == (
        date(2025, 3, 7),
        ["frac"],
        "proposed",
    )
    assert goal_targets_for_learner(learner_id=lid, today=today) == frozenset()
    goal_confirm(user=tess, goal_id=for_room.pk)
    assert goal_targets_for_learner(learner_id=lid, today=today) == {skills["frac"].pk}
    assert goal_targets_for_learner(learner_id=lid, today=date(2025, 3, 7)) == {skills["frac"].pk}
    assert goal_targets_for_learner(learner_id=lid, today=date(2025, 3, 8)) == frozenset()
    personal = goal_propose(user=tess, text="Subtraction, no date", learner_id=lid, today=today)
    goal_confirm(user=tess, goal_id=personal.pk, skills=["sub"])
    assert personal.due is None
    assert goal_targets_for_learner(learner_id=lid, today=date(2030, 1, 1)) == {skills["sub"].pk}
    assert goal_targets_for_learner(learner_id=lid, today=today) == {skills["sub"].pk, skills["frac"].pk}
    other = Learner.objects.create(display_name="other")
    assert goal_targets_for_learner(learner_id=other.pk, today=today) == frozenset()
    assert Goal.objects.filter(status="confirmed").count() == 2


def test_todays_goals_are_read_once_and_a_confirmation_is_seen_at_once(
    course: dict[str, Any], django_assert_num_queries: Any
) -> None:
    """`/next` asks for the goal targets on every decision: today's goals come from a per-process cache, so a
    learner without classroom goals costs no query, and a goal confirmed in this process counts at once."""
    tess = User.objects.get(pk=user_create(username="tess", role="teacher", classroom="A")["user_id"])
    lid = user_create(username="ada", role="learner", classroom="A")["learner_id"]
    room = Classroom.objects.get(name="A")
    skills = course["skills"]
    assert goal_targets_for_learner(learner_id=lid) == frozenset()
    with django_assert_num_queries(0):
        assert goal_targets_for_learner(learner_id=lid) == frozenset()
    personal = goal_propose(user=tess, text="Subtraction, no date", learner_id=lid)
    assert goal_targets_for_learner(learner_id=lid) == frozenset()  # proposed only
    goal_confirm(user=tess, goal_id=personal.pk, skills=["sub"])
    assert goal_targets_for_learner(learner_id=lid) == {skills["sub"].pk}
    with django_assert_num_queries(0):
        assert goal_targets_for_learner(learner_id=lid) == {skills["sub"].pk}
    for_room = goal_propose(user=tess, text="Fractions, no date", classroom_id=room.pk)
    goal_confirm(user=tess, goal_id=for_room.pk, skills=["frac"])
    assert goal_targets_for_learner(learner_id=lid) == {skills["sub"].pk, skills["frac"].pk}
    with django_assert_num_queries(1):  # which of the goals' classrooms the learner is in
        assert goal_targets_for_learner(learner_id=lid) == {skills["sub"].pk, skills["frac"].pk}
    outsider = Learner.objects.create(display_name="outsider")
    assert goal_targets_for_learner(learner_id=outsider.pk) == frozenset()


def _answer(lid: int, item: Item, response: str, key: str) -> Any:
    return attempt_record(learner_id=lid, item_id=item.pk, response=response, client_attempt_id=key)


def test_outcome_is_the_next_attempt_on_a_skill_of_the_same_item(course: dict[str, Any]) -> None:
    lid = user_create(username="ada", role="learner")["learner_id"]
    items = course["items"]
    w1 = _answer(lid, items["add-1"], "5", "a").result["attempt_id"]  # wrong, skill add
    _answer(lid, items["count-1"], "3", "b")  # another skill: not the outcome
    w2 = _answer(lid, items["sub-expr"], "x+3", "c").result["attempt_id"]  # wrong; sub-expr has sub and add
    r3 = _answer(lid, items["add-2"], "12", "d").result["attempt_id"]  # right, skill add
    w4 = _answer(lid, items["frac-1"], "1/3", "e").result["attempt_id"]  # wrong, nothing after it
    decisions = [(1, lid, w1), (2, lid, w2), (3, lid, w4)]
    assert next_outcomes(decisions) == {1: (w2, False), 2: (r3, True)}
    assert next_outcomes(decisions, through_attempt_id=r3 - 1) == {1: (w2, False)}
    assert StyleDecision.objects.filter(learner_id=lid).count() == 3  # one per wrong answer


def test_reward_training_set_labels(course: dict[str, Any]) -> None:
    ada = user_create(username="ada", role="learner")
    tess = User.objects.get(pk=user_create(username="tess", role="teacher")["user_id"])
    lid = ada["learner_id"]
    items = course["items"]
    wrong = _answer(lid, items["add-1"], "5", "a").result
    _answer(lid, items["add-2"], "12", "b")
    e = Explanation.objects.get(pk=wrong["feedback"]["explanation"]["id"])
    ExplanationFeedback.objects.create(
        explanation=e, user=User.objects.get(pk=ada["user_id"]), role="learner", helpful=False
    )
    ExplanationFeedback.objects.create(
        explanation=e, user=tess, role="teacher", rating=3, corrected_text="Two and two make four.\nAnswer: 4"
    )
    data = reward_training_set()
    fb = list(ExplanationFeedback.objects.order_by("id"))
    d = StyleDecision.objects.get()
    assert data.keys == [f"f{fb[0].pk}", f"c{fb[1].pk}", f"d{d.pk}"]
    assert data.labels == [0, 1, 1]
    assert [c.text for c in data.candidates] == [e.text, "Two and two make four.\nAnswer: 4", e.text]
    assert {(c.level, c.style, c.item_text) for c in data.candidates} == {(e.level, e.style, "2 + 2 = ?")}
    assert reward_training_set(through_feedback_id=0).labels == [1]


def test_canonical_key_shown_in_explanations_matches_the_item(course: dict[str, Any]) -> None:
    lid = user_create(username="ada", role="learner")["learner_id"]
    for code, response in (("add-mc", "A"), ("sub-expr", "x + 4"), ("frac-text", "numerator")):
        item = course["items"][code]
        brief = _answer(lid, item, response, code).result["feedback"]["explanation"]
        assert brief["text"].endswith(f"Answer: {canonical(AnswerSpec.from_dict(item.answer))}"), brief[
            "text"
        ]
    assert Item.objects.filter(status="approved").count() == len(course["items"])
