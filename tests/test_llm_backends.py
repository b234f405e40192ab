"""The backend interface, the registry and the template backend."""

from __future__ import annotations

import json

import pytest

from tutor.llm.backends import BACKENDS, get_backend
from tutor.llm.backends.base import StopScanner, approx_tokens, cut_at_stop
from tutor.llm.backends.template import TemplateBackend
from tutor.llm.prompts import ExplainRequest, explain_messages, goal_messages, scene_messages

REQ = ExplainRequest(
    kind="explanation",
    item_prompt="What is 1/2 + 1/3?",
    answer_text="5/6",
    solution="Use the common denominator 6.\n1/2 = 3/6 and 1/3 = 2/6.\n3/6 + 2/6 = 5/6.",
    response="2/5",
    misconception="add_across",
    diagnosis_text="It looks like you added the numerators together and the denominators together.",
    level="beginner",
    style="worked_example",
)


def test_registry_names_and_off() -> None:
    assert set(BACKENDS) == {"template", "local", "openai"}
    assert get_backend(None) is None
    assert get_backend("off") is None
    assert get_backend(" OFF ") is None
    assert isinstance(get_backend("template"), TemplateBackend)
    with pytest.raises(ValueError, match="unknown LLM backend 'gpt'"):
        get_backend("gpt")


def test_template_backend_explains_from_the_tagged_prompt() -> None:
    done = TemplateBackend().generate(explain_messages(REQ))
    assert done.text == (
        "You answered 2/5, but the correct answer is 5/6. It looks like you added the numerators together and "
        "the denominators together.\nHere is how to solve it:\nUse the common denominator 6.\n"
        "1/2 = 3/6 and 1/3 = 2/6.\n3/6 + 2/6 = 5/6.\nAnswer: 5/6"
    )
    assert (done.backend, done.model, done.finish_reason) == ("template", "template-v1", "stop")
    assert done.completion_tokens == approx_tokens(done.text)
    assert done.prompt_tokens > 100


def test_template_backend_is_deterministic_and_streams_the_same_text() -> None:
    backend = TemplateBackend()
    first = backend.generate(explain_messages(REQ)).text
    stream = backend.stream(explain_messages(REQ))
    chunks = list(stream)
    assert len(chunks) > 10
    assert "".join(chunks) == first
    assert stream.completion is not None and stream.completion.text == first


def test_template_backend_honours_stop_and_max_tokens() -> None:
    backend = TemplateBackend()
    assert backend.generate(explain_messages(REQ), stop=["correct"]).text == "You answered 2/5, but the "
    short = backend.generate(explain_messages(REQ), max_tokens=6)
    assert short.text == "You answered 2/5,"
    assert short.finish_reason == "length"


def test_template_backend_constrained_outputs_always_match() -> None:
    backend = TemplateBackend()
    msgs = scene_messages(
        exercise="What is 3 + 4?",
        brief="find the total of 3 and 4",
        name="Lena",
        theme="baking",
        opening="Lena is making",
    )
    schema = {"type": "object", "properties": {"scene": {"type": "string", "minLength": 5}}}
    out = json.loads(backend.generate(msgs, json_schema=schema).text)
    assert out == {"scene": "Lena is making cakes for the school fair."}
    # A schema the template cannot fill still gets a valid (shortest) instance.
    odd = {"type": "object", "properties": {"n": {"type": "integer"}}}
    assert backend.generate(msgs, json_schema=odd).text == '{"n": 0}'
    assert backend.generate(msgs, regex=r"(yes|no)").text == "no"


def test_template_backend_goal_picks_skills_by_word_overlap() -> None:
    msgs = goal_messages(
        goal="be ready for fractions by Friday",
        skills={"add_fractions": "Adding fractions with unlike denominators", "place_value": "Place value"},
    )
    schema = {
        "type": "object",
        "properties": {"skills": {"type": "array", "items": {"enum": ["add_fractions", "place_value"]}}},
    }
    assert json.loads(TemplateBackend().generate(msgs, json_schema=schema).text) == {
        "skills": ["add_fractions"]
    }


def test_stop_scanner_never_emits_a_partial_stop_string() -> None:
    scanner = StopScanner(["END"])
    assert scanner.feed("abc E") == "abc "
    assert scanner.feed("N") == ""
    assert scanner.feed("x") == "ENx"
    assert scanner.feed("yEND tail") == "y"
    assert scanner.stopped
    assert cut_at_stop("one two", ["tw"]) == ("one ", True)
    assert cut_at_stop("one two", None) == ("one two", False)


def test_messages_are_validated() -> None:
    with pytest.raises(ValueError, match="empty"):
        TemplateBackend().generate([])
    with pytest.raises(ValueError, match=r"messages\[0\].role"):
        TemplateBackend().generate([{"role": "tool", "content": "x"}])
