"""Word-problem drafts: the model writes words, the template keeps the key, the checks name what fails."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from curriculum.generation.itemgen import (
    ItemWriter,
    ordered_numbers,
    readability_problems,
    scene_pattern,
    story_pattern,
)
from curriculum.generation.templates import TEMPLATES
from tutor.llm.backends.base import Completion, LLMBackend, Messages
from tutor.llm.backends.template import TemplateBackend
from tutor.llm.constrain import RegexDFA

ADD = TEMPLATES["add-carry"]
PARAMS = {"a": 9827, "b": 688}


class Fixed(LLMBackend):
    """Returns the given texts in turn, recording the constraint it was asked to respect."""

    name = "fixed"
    model = "fixed"

    def __init__(self, *texts: str) -> None:
        self.texts = list(texts)
        self.regexes: list[str | None] = []

    def generate(self, messages: Messages, **kw: Any) -> Completion:
        self.regexes.append(kw.get("regex"))
        return Completion(self.texts.pop(0), 50, 12, 0.01, self.name, self.model)


def test_numbers_follow_the_brief_and_the_patterns_force_them() -> None:
    assert ADD.story_brief(PARAMS) == "find the total of 9,827 and 688"
    assert ordered_numbers(ADD, PARAMS) == ["9,827", "688"]
    mul = TEMPLATES["mul-2by1"]
    assert ordered_numbers(mul, {"a": 94, "b": 6}) == ["6", "94"]  # "6 equal groups of 94"
    story = RegexDFA(story_pattern("Maya", ["9,827", "688"]))
    assert story.fullmatch(json.dumps({"story": "Maya has 9,827 stamps and buys 688 more. How many now?"}))
    assert not story.fullmatch(json.dumps({"story": "Maya has 9,827 stamps and 5 albums and 688 more?"}))
    assert not story.fullmatch(json.dumps({"story": "Leo has 9,827 stamps and buys 688 more?"}))
    scene = RegexDFA(scene_pattern("Maya", "baking"))
    assert scene.fullmatch('{"scene": "Maya is baking bread for her class."}')
    assert not scene.fullmatch('{"scene": "Maya is baking 3 cakes."}')
    assert not scene.fullmatch('{"scene": "Maya is baking bread.  Twice."}')


def test_template_backend_drafts_pass_and_keep_the_template_key() -> None:
    writer = ItemWriter(TemplateBackend())
    draft = writer.draft(ADD, PARAMS, theme="baking", seed=3)
    assert draft.passed, draft.reasons
    assert (
        draft.story
        == "Tom is baking cakes for the school fair. Can you help Tom find the total of 9,827 and 688?"
    )
    assert draft.item is not None
    assert draft.item.answer == ADD.render(PARAMS).answer
    assert draft.item.answer.value == "10515"
    assert draft.item.prompt.startswith(draft.story)
    assert draft.item.code != ADD.render(PARAMS).code  # a story is a new item, not an overwrite
    assert writer.stats.as_dict()["pass_rate"] == 1.0


def test_model_text_that_breaks_a_rule_is_rejected_with_its_reason() -> None:
    bad = [
        '{"scene": "Omar is decorating ermensbamil ermensbamil cakes."}',
        '{"scene": "Omar is decorating the cakes and the."}',
        "not json",
    ]
    writer = ItemWriter(Fixed(*bad), attempts=3)
    draft = writer.draft(ADD, PARAMS, theme="baking", seed=3)
    assert not draft.passed
    assert draft.attempts == [["unknown_words"], ["dangling_end"], ["unparsable"]]
    assert writer.stats.as_dict()["attempt_reasons"] == {
        "unknown_words": 1,
        "dangling_end": 1,
        "unparsable": 1,
    }
    assert writer.stats.wrong_keys == 0


def test_a_later_attempt_can_pass() -> None:
    backend = Fixed(
        '{"scene": "Omar is decorating cakes and the."}', '{"scene": "Omar is decorating a big cake."}'
    )
    writer = ItemWriter(backend, attempts=3)
    draft = writer.draft(ADD, PARAMS, theme="baking", seed=3)
    assert draft.passed and len(draft.attempts) == 2
    assert backend.regexes[0] != backend.regexes[1]  # a new seed picks another opening verb
    assert writer.stats.as_dict()["first_attempt_pass_rate"] == 0.0


def test_story_mode_checks_numbers_and_the_answer() -> None:
    stories = [
        {"story": "Omar has 9,827 stamps and 688 more, so 10515 in all. How many?"},
        {"story": "Omar has 9,827 stamps and 2 albums with 688 more. How many stamps?"},
        {"story": "Omar has 9,827 red stamps and gets 688 blue stamps. How many does Omar have now?"},
    ]
    writer = ItemWriter(Fixed(*(json.dumps(s) for s in stories)), mode="story", attempts=1)
    reasons = [writer.draft(ADD, PARAMS, theme="school", seed=0).reasons for _ in stories]
    assert reasons == [["extra_number", "states_answer"], ["extra_number"], []]


def test_near_duplicates_of_existing_items_are_rejected() -> None:
    first = ItemWriter(TemplateBackend()).draft(ADD, PARAMS, theme="baking", seed=3)
    writer = ItemWriter(TemplateBackend(), existing=[first.story], attempts=1)
    assert writer.draft(ADD, PARAMS, theme="baking", seed=3).reasons == ["near_duplicate"]
    fresh = writer.draft(ADD, {"a": 1234, "b": 567}, theme="sport", seed=1)
    assert fresh.passed
    retrying = ItemWriter(TemplateBackend(), existing=[first.story], attempts=2)
    again = retrying.draft(ADD, PARAMS, theme="baking", seed=3)
    assert again.attempts == [["near_duplicate"], []]  # the next seed opens the scene differently


def test_readability_rules() -> None:
    assert readability_problems("Maya is baking. Can you help Maya find the total of 3 and 4?") == []
    assert "too_short" in readability_problems("Maya bakes. How many?")
    assert "repetitive" in readability_problems(
        "Maya bakes cakes, cakes, cakes. How many cakes does Maya bake?"
    )
    assert "no_question" in readability_problems(
        "Maya is baking bread for the whole class today and tomorrow."
    )


def test_draft_many_over_all_storyable_templates() -> None:
    writer = ItemWriter(TemplateBackend())
    drafts = writer.draft_many(30, np.random.default_rng(0))
    assert len(drafts) == 30
    assert len({d.template for d in drafts}) == 26
    assert all(d.passed for d in drafts), [d.reasons for d in drafts if not d.passed]
    for d in drafts:
        assert d.item is not None
        assert d.item.answer == TEMPLATES[d.template].render(d.params).answer
    with pytest.raises(ValueError, match="no story brief"):
        writer.draft(TEMPLATES["pv-digit-value"], {"n": 4732, "k": 2}, theme="school")
