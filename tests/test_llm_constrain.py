"""Constrained decoding: the regex DFA agrees with Python's `re`, schemas compile, tokens are masked exactly."""

from __future__ import annotations

import json
import random
import re

import pytest

from tutor.llm.constrain import (
    DEAD,
    CompiledConstraint,
    RegexDFA,
    RegexSyntaxError,
    TokenVocabulary,
    constraint_pattern,
    schema_to_regex,
)

PATTERNS = [
    r"ab|cd",
    r"a*b+",
    r'\{"x": "[^"\\]+"\}',
    r"[A-Z][a-z]{2,4}\.",
    r"-?(?:0|[1-9][0-9]{0,3})",
    r"(ab|a)*c?",
    r"\d+(\.\d+)?",
    r"[^\"\\\x00-\x1f]*",
    r"x{3}",
    r"[a\-z]+",
]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_dfa_matches_like_python_re(pattern: str) -> None:
    rnd = random.Random(0)
    alphabet = 'abcdxyzA.Z019-"{} :\\'
    dfa, ref = RegexDFA(pattern), re.compile(pattern)
    for _ in range(1500):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 8)))
        assert dfa.fullmatch(text) == bool(ref.fullmatch(text)), text
    assert ref.fullmatch(dfa.example())


def test_shortest_completion_and_final_state() -> None:
    dfa = RegexDFA(r'\{"a": "[^"]+"\}')
    state = dfa.walk(dfa.start, '{"a": "hel')
    assert dfa.shortest_completion(state) == '"}'
    end = dfa.walk(dfa.start, '{"a": "x"}')
    assert dfa.final(end)
    assert dfa.walk(dfa.start, "[") == DEAD


@pytest.mark.parametrize("bad", ["(ab", "a{3,1}", "*a", "[ab", "ab\\"])
def test_syntax_errors_are_reported(bad: str) -> None:
    with pytest.raises(RegexSyntaxError):
        RegexDFA(bad)


def test_schema_to_regex_accepts_valid_and_rejects_invalid() -> None:
    schema = {
        "type": "object",
        "properties": {
            "context": {"type": "string", "minLength": 3},
            "n": {"type": "integer"},
            "ok": {"type": "boolean"},
            "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 3},
        },
    }
    dfa = RegexDFA(schema_to_regex(schema))
    good = {"context": "hello", "n": -12, "ok": True, "tags": ["a", "b", "a"]}
    assert dfa.fullmatch(json.dumps(good))
    assert not dfa.fullmatch(json.dumps({**good, "tags": ["a", "b", "a", "b"]}))
    assert not dfa.fullmatch(json.dumps({**good, "context": "hi"}))
    assert not dfa.fullmatch(json.dumps({**good, "tags": ["c"]}))
    assert json.loads(dfa.example()) == {"context": "aaa", "n": 0, "ok": True, "tags": []}


def test_schema_refuses_what_it_cannot_constrain() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        schema_to_regex({"type": "object", "properties": {"x": {"anyOf": [{"type": "string"}]}}})
    with pytest.raises(ValueError, match="not both"):
        constraint_pattern({"type": "integer"}, r"\d+")


def test_token_masks_follow_the_dfa() -> None:
    strings = ["<eos>", "{", '{"', "a", "ab", '"', '"}', "}", "\ufffd", "", "b"]
    vocab = TokenVocabulary(strings, eos_ids=[0])
    guide = CompiledConstraint(r'\{"a+"\}', vocab).guide()
    assert sorted(guide.allowed()) == [1, 2]
    guide.advance(2)
    assert sorted(guide.allowed()) == [3]  # "ab" would leave the language
    guide.advance(3)
    assert sorted(guide.allowed()) == [3, 5, 6]
    guide.advance(6)
    assert guide.done()
    assert guide.allowed() == [0]  # only end-of-sequence once the match is complete
    with pytest.raises(ValueError, match="violates"):
        CompiledConstraint(r"a", vocab).guide().advance(10)
