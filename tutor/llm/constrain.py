"""Constrained decoding: a regular expression (or a small JSON-schema subset compiled to one) limits which tokens
a model may emit, so its output always parses.

Why our own and not `outlines`: we need three things only (a regex DFA, the set of vocabulary tokens each DFA
state allows, and the shortest way to finish a match when the token budget runs out), and owning them keeps the
dependency list and the transformers-version coupling small. The regex dialect is a subset: literals, escapes
(``\\d \\w \\s`` and escaped metacharacters), ``.``, classes ``[...]``/``[^...]``, groups ``(...)``/``(?:...)``,
alternation and the quantifiers ``* + ? {m} {m,} {m,n}``. No anchors, lookaround or backreferences: a pattern
always has to match the whole output.

Counted repetition is expanded into copies, so keep counts small (a free-text field is ``[^"]+``, with the
length enforced by the token budget and checked afterwards); each DFA state costs one walk over the vocabulary
trie the first time it is reached (about 0.1-0.3 s for a 49k-token vocabulary), then it is cached.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DEAD = -1

# ---------------------------------------------------------------------------------------------------------------
# Character sets and the regex syntax tree


@dataclass(frozen=True)
class CharSet:
    """A set of characters: listed chars and inclusive ranges, possibly negated."""

    chars: frozenset[str] = frozenset()
    ranges: tuple[tuple[str, str], ...] = ()
    negated: bool = False

    def match(self, ch: str) -> bool:
        inside = ch in self.chars or any(lo <= ch <= hi for lo, hi in self.ranges)
        return inside != self.negated

    def representative(self) -> str | None:
        """A character in the set, preferring readable ones (used to build a shortest completion)."""
        if not self.negated:
            if self.chars:
                return min(self.chars)
            if self.ranges:
                return self.ranges[0][0]
            return None
        for ch in "a etoinsrhldcum.,x0":
            if self.match(ch):
                return ch
        for code in range(32, 0x2FF):
            if self.match(chr(code)):
                return chr(code)
        return None


_DIGIT = (("0", "9"),)
_WORD = (("a", "z"), ("A", "Z"), ("0", "9"))
_SPACE = frozenset(" \t\n\r\f\v")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v"}

Node = tuple[Any, ...]  # ("set", CharSet) | ("cat", [nodes]) | ("alt", [nodes]) | ("rep", node, lo, hi|None)


class RegexSyntaxError(ValueError):
    pass


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0

    def parse(self) -> Node:
        node = self._alt()
        if self.i != len(self.p):
            raise RegexSyntaxError(f"unexpected {self.p[self.i]!r} at {self.i} in {self.p!r}")
        return node

    def _peek(self) -> str | None:
        return self.p[self.i] if self.i < len(self.p) else None

    def _alt(self) -> Node:
        branches = [self._cat()]
        while self._peek() == "|":
            self.i += 1
            branches.append(self._cat())
        return branches[0] if len(branches) == 1 else ("alt", branches)

    def _cat(self) -> Node:
        parts: list[Node] = []
        while (c := self._peek()) is not None and c not in "|)":
            parts.append(self._repeat())
        return ("cat", parts)

    def _repeat(self) -> Node:
        node = self._atom()
        while (c := self._peek()) is not None and c in "*+?{":
            if c == "{":
                m = re.compile(r"\{(\d+)(?:(,)(\d*))?\}").match(self.p, self.i)
                if m is None:
                    raise RegexSyntaxError(f"bad quantifier at {self.i} in {self.p!r}")
                lo = int(m.group(1))
                hi: int | None = lo if m.group(2) is None else (int(m.group(3)) if m.group(3) else None)
                if hi is not None and hi < lo:
                    raise RegexSyntaxError(f"bad quantifier range in {self.p!r}")
                self.i = m.end()
            else:
                lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
                self.i += 1
            node = ("rep", node, lo, hi)
        return node

    def _atom(self) -> Node:
        c = self.p[self.i]
        if c == "(":
            self.i += 1
            if self.p.startswith("?:", self.i):
                self.i += 2
            node = self._alt()
            if self._peek() != ")":
                raise RegexSyntaxError(f"missing ) in {self.p!r}")
            self.i += 1
            return node
        if c == "[":
            return ("set", self._class())
        if c == ".":
            self.i += 1
            return ("set", CharSet(frozenset("\n"), negated=True))
        if c == "\\":
            return ("set", self._escape())
        if c in "*+?{)":
            raise RegexSyntaxError(f"nothing to repeat at {self.i} in {self.p!r}")
        self.i += 1
        return ("set", CharSet(frozenset(c)))

    def _escape(self) -> CharSet:
        if self.i + 1 >= len(self.p):
            raise RegexSyntaxError(f"trailing backslash in {self.p!r}")
        e = self.p[self.i + 1]
        self.i += 2
        if e == "d":
            return CharSet(ranges=_DIGIT)
        if e == "D":
            return CharSet(ranges=_DIGIT, negated=True)
        if e == "w":
            return CharSet(frozenset("_"), _WORD)
        if e == "W":
            return CharSet(frozenset("_"), _WORD, negated=True)
        if e == "s":
            return CharSet(_SPACE)
        if e == "S":
            return CharSet(_SPACE, negated=True)
        if e == "x":
            code = self.p[self.i : self.i + 2]
            self.i += 2
            return CharSet(frozenset(chr(int(code, 16))))
        return CharSet(frozenset(_ESCAPES.get(e, e)))

    def _class(self) -> CharSet:
        self.i += 1  # [
        negated = self._peek() == "^"
        if negated:
            self.i += 1
        chars: set[str] = set()
        ranges: list[tuple[str, str]] = []
        first = True
        while True:
            c = self._peek()
            if c is None:
                raise RegexSyntaxError(f"missing ] in {self.p!r}")
            if c == "]" and not first:
                self.i += 1
                break
            first = False
            if c == "\\":
                sub = self._escape()
                if len(sub.chars) == 1 and not sub.ranges and not sub.negated:
                    lo = next(iter(sub.chars))
                else:
                    if sub.negated:
                        raise RegexSyntaxError(f"negated escape inside a class is not supported: {self.p!r}")
                    chars |= sub.chars
                    ranges.extend(sub.ranges)
                    continue
            else:
                lo = c
                self.i += 1
            if self._peek() == "-" and self.i + 1 < len(self.p) and self.p[self.i + 1] != "]":
                self.i += 1
                hi_c = self.p[self.i]
                if hi_c == "\\":
                    sub = self._escape()
                    hi = next(iter(sub.chars))
                else:
                    hi = hi_c
                    self.i += 1
                ranges.append((lo, hi))
            else:
                chars.add(lo)
        return CharSet(frozenset(chars), tuple(ranges), negated)


# ---------------------------------------------------------------------------------------------------------------
# Thompson NFA and a lazily built DFA


@dataclass
class _NFA:
    eps: list[list[int]] = field(default_factory=list)
    edges: list[list[tuple[CharSet, int]]] = field(default_factory=list)

    def new(self) -> int:
        self.eps.append([])
        self.edges.append([])
        return len(self.eps) - 1

    def build(self, node: Node) -> tuple[int, int]:
        kind = node[0]
        if kind == "set":
            a, b = self.new(), self.new()
            self.edges[a].append((node[1], b))
            return a, b
        if kind == "cat":
            start = end = self.new()
            for part in node[1]:
                s, e = self.build(part)
                self.eps[end].append(s)
                end = e
            return start, end
        if kind == "alt":
            start, end = self.new(), self.new()
            for branch in node[1]:
                s, e = self.build(branch)
                self.eps[start].append(s)
                self.eps[e].append(end)
            return start, end
        _, sub, lo, hi = node
        start = end = self.new()
        for _ in range(lo):
            s, e = self.build(sub)
            self.eps[end].append(s)
            end = e
        if hi is None:
            s, e = self.build(sub)
            out = self.new()
            self.eps[end] += [s, out]
            self.eps[e] += [s, out]
            return start, out
        for _ in range(hi - lo):
            s, e = self.build(sub)
            nxt = self.new()
            self.eps[end].append(s)
            self.eps[end].append(nxt)
            self.eps[e].append(nxt)
            end = nxt
        return start, end


class RegexDFA:
    """A whole-string matcher whose states are integers, built lazily from the NFA (subset construction)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._nfa = _NFA()
        start, self._accept = self._nfa.build(_Parser(pattern).parse())
        self._sets: list[frozenset[int]] = []
        self._ids: dict[frozenset[int], int] = {}
        self._memo: dict[tuple[int, str], int] = {}
        self.start = self._intern(self._closure([start]))

    def _closure(self, states: Iterable[int]) -> frozenset[int]:
        seen = set(states)
        todo = list(seen)
        while todo:
            for t in self._nfa.eps[todo.pop()]:
                if t not in seen:
                    seen.add(t)
                    todo.append(t)
        return frozenset(seen)

    def _intern(self, states: frozenset[int]) -> int:
        if not states:
            return DEAD
        sid = self._ids.get(states)
        if sid is None:
            sid = len(self._sets)
            self._sets.append(states)
            self._ids[states] = sid
        return sid

    def step(self, state: int, ch: str) -> int:
        key = (state, ch)
        nxt = self._memo.get(key)
        if nxt is None:
            if state == DEAD:
                return DEAD
            targets = [t for s in self._sets[state] for cs, t in self._nfa.edges[s] if cs.match(ch)]
            nxt = self._intern(self._closure(targets)) if targets else DEAD
            self._memo[key] = nxt
        return nxt

    def walk(self, state: int, text: str) -> int:
        for ch in text:
            state = self.step(state, ch)
            if state == DEAD:
                return DEAD
        return state

    def accepting(self, state: int) -> bool:
        return state != DEAD and self._accept in self._sets[state]

    def final(self, state: int) -> bool:
        """Accepting with no way to continue: generation must stop here."""
        return self.accepting(state) and not any(self._nfa.edges[s] for s in self._sets[state])

    def fullmatch(self, text: str) -> bool:
        return self.accepting(self.walk(self.start, text))

    def _moves(self, state: int) -> list[str]:
        reps: list[str] = []
        for s in self._sets[state]:
            for cs, _ in self._nfa.edges[s]:
                ch = cs.representative()
                if ch is not None and ch not in reps:
                    reps.append(ch)
        return reps

    def shortest_completion(self, state: int) -> str:
        """The shortest string that takes `state` to acceptance (breadth first over representative chars)."""
        if state == DEAD:
            raise ValueError("no completion from the dead state")
        prev: dict[int, tuple[int, str] | None] = {state: None}
        queue = deque([state])
        while queue:
            s = queue.popleft()
            if self.accepting(s):
                out: list[str] = []
                while (link := prev[s]) is not None:
                    s, ch = link
                    out.append(ch)
                return "".join(reversed(out))
            for ch in self._moves(s):
                t = self.step(s, ch)
                if t != DEAD and t not in prev:
                    prev[t] = (s, ch)
                    queue.append(t)
        raise ValueError(f"pattern {self.pattern!r} cannot be completed")

    def example(self) -> str:
        return self.shortest_completion(self.start)


# ---------------------------------------------------------------------------------------------------------------
# JSON schema (subset) -> regex

# Inside a JSON string we allow any character but the quote, the backslash and control characters, so the output
# parses with json.loads without escape handling.
JSON_STRING_CHAR = r'[^"\\\x00-\x1f]'


def regex_escape(text: str) -> str:
    return re.sub(r"([\\.^$|?*+()\[\]{}-])", r"\\\1", text)


def _counted(unit: str, lo: int, hi: int | None, *, expand_limit: int = 24) -> str:
    if hi is not None and hi > expand_limit:
        hi = None  # long bounds are left to the token budget and the checks afterwards
    if lo > expand_limit:
        lo = expand_limit
    if hi is None:
        return f"(?:{unit}){{{lo},}}" if lo else f"(?:{unit})*"
    return f"(?:{unit}){{{lo},{hi}}}"


def schema_to_regex(schema: Mapping[str, Any]) -> str:
    """Compile a JSON-schema subset to a regex of its compact serialisation (``", "`` and ``": "`` separators).

    Supported: object (properties emitted in declared order, all present), string (enum, const, pattern,
    minLength/maxLength), integer, number, boolean, null, array (items, minItems/maxItems) and enum/const of
    scalars. Anything else raises ValueError rather than silently producing an unconstrained field.
    """
    if "const" in schema:
        return regex_escape(json.dumps(schema["const"]))
    if "enum" in schema:
        return "(?:" + "|".join(regex_escape(json.dumps(v)) for v in schema["enum"]) + ")"
    kind = schema.get("type")
    if kind == "object":
        props: Mapping[str, Any] = schema.get("properties", {})
        if not props:
            return r"\{\}"
        parts = [regex_escape(json.dumps(name)) + ": " + schema_to_regex(sub) for name, sub in props.items()]
        return r"\{" + ", ".join(parts) + r"\}"
    if kind == "string":
        if "pattern" in schema:
            return '"' + str(schema["pattern"]) + '"'
        lo = int(schema.get("minLength", 0))
        hi = schema.get("maxLength")
        return '"' + _counted(JSON_STRING_CHAR, lo, None if hi is None else int(hi)) + '"'
    if kind == "integer":
        return r"-?(?:0|[1-9][0-9]{0,11})"
    if kind == "number":
        return r"-?(?:0|[1-9][0-9]{0,11})(?:\.[0-9]{1,8})?"
    if kind == "boolean":
        return "(?:true|false)"
    if kind == "null":
        return "null"
    if kind == "array":
        item = schema_to_regex(schema.get("items", {"type": "string"}))
        lo = int(schema.get("minItems", 0))
        hi = schema.get("maxItems")
        if hi is not None and int(hi) == 0:
            return r"\[\]"
        rest_hi = None if hi is None else int(hi) - 1
        body = f"{item}" + _counted(f", {item}", max(lo - 1, 0), rest_hi, expand_limit=8)
        return r"\[" + (body if lo >= 1 else f"(?:{body})?") + r"\]"
    raise ValueError(f"unsupported JSON schema fragment: {dict(schema)!r}")


# ---------------------------------------------------------------------------------------------------------------
# Token level: which vocabulary entries each DFA state allows


class TokenVocabulary:
    """The decoded text of every token, in a character trie so a DFA state's allowed set is one walk.

    Tokens whose text is empty, contains a replacement character (a partial UTF-8 sequence) or is a special token
    are never allowed under a constraint; the end-of-sequence tokens are allowed exactly in accepting states.
    """

    def __init__(
        self, strings: Sequence[str], eos_ids: Iterable[int], special_ids: Iterable[int] = ()
    ) -> None:
        self.size = len(strings)
        self.strings = list(strings)
        self.eos_ids = sorted(set(eos_ids))
        skip = set(special_ids) | set(self.eos_ids)
        self._root: tuple[dict[str, Any], list[int]] = ({}, [])
        for tid, text in enumerate(strings):
            if tid in skip or not text or "\ufffd" in text:
                continue
            node = self._root
            for ch in text:
                nxt = node[0].get(ch)
                if nxt is None:
                    nxt = ({}, [])
                    node[0][ch] = nxt
                node = nxt
            node[1].append(tid)

    def allowed(self, dfa: RegexDFA, state: int) -> list[int]:
        out: list[int] = []
        stack = [(self._root, state)]
        while stack:
            (children, _), s = stack.pop()
            for ch, child in children.items():
                t = dfa.step(s, ch)
                if t != DEAD:
                    out.extend(child[1])
                    stack.append((child, t))
        if dfa.accepting(state):
            out.extend(self.eos_ids)
        return out


class CompiledConstraint:
    """A pattern's DFA and the allowed token ids of each state reached so far, shared by every request that uses
    the same pattern with the same vocabulary (the expensive part is computed once per state, not per request)."""

    def __init__(self, pattern: str, vocab: TokenVocabulary) -> None:
        self.dfa = RegexDFA(pattern)
        self.vocab = vocab
        self._allowed: dict[int, list[int]] = {}

    def allowed(self, state: int) -> list[int]:
        ids = self._allowed.get(state)
        if ids is None:
            ids = self.vocab.allowed(self.dfa, state)
            self._allowed[state] = ids
        return ids

    def guide(self) -> TokenConstraint:
        return TokenConstraint(self)


class TokenConstraint:
    """One request's position in a compiled constraint."""

    def __init__(self, compiled: CompiledConstraint) -> None:
        self.compiled = compiled
        self.state = compiled.dfa.start

    def allowed(self) -> list[int]:
        return self.compiled.allowed(self.state)

    def advance(self, token_id: int) -> None:
        vocab = self.compiled.vocab
        if token_id in vocab.eos_ids:
            return
        self.state = self.compiled.dfa.walk(self.state, vocab.strings[token_id])
        if self.state == DEAD:
            raise ValueError(f"token {token_id} ({vocab.strings[token_id]!r}) violates the constraint")

    def done(self) -> bool:
        return self.compiled.dfa.final(self.state)

    def accepting(self) -> bool:
        return self.compiled.dfa.accepting(self.state)

    def completion(self) -> str:
        return self.compiled.dfa.shortest_completion(self.state)


def constraint_pattern(json_schema: Mapping[str, Any] | None, regex: str | None) -> str | None:
    if json_schema is not None and regex is not None:
        raise ValueError("give json_schema or regex, not both")
    if json_schema is not None:
        return schema_to_regex(json_schema)
    return regex
