"""The prerequisite graph of skills, as pure code.

Skills are identified by any hashable key (database ids in the service, codes in documents). The graph refuses
cycles at construction, naming one, because a cycle makes "prerequisites first" unsatisfiable for every skill on it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class GraphError(ValueError):
    """A prerequisite graph that cannot be used: unknown skill or a cycle."""


class CycleError(GraphError):
    def __init__(self, cycle: list[object]) -> None:
        self.cycle = cycle
        path = " -> ".join(str(c) for c in cycle)
        super().__init__(f"prerequisite cycle: {path}")


class SkillGraph(Generic[K]):
    """Directed acyclic graph: an edge (a, b) means a is a prerequisite of b."""

    def __init__(self, skills: Iterable[K], edges: Iterable[tuple[K, K]]) -> None:
        self.skills: tuple[K, ...] = tuple(dict.fromkeys(skills))
        known = set(self.skills)
        self._prereqs: dict[K, list[K]] = {s: [] for s in self.skills}
        self._dependents: dict[K, list[K]] = {s: [] for s in self.skills}
        for pre, post in edges:
            for s in (pre, post):
                if s not in known:
                    raise GraphError(f"unknown skill in prerequisite: {s}")
            if pre == post:
                raise CycleError([pre, post])
            if pre not in self._prereqs[post]:
                self._prereqs[post].append(pre)
                self._dependents[pre].append(post)
        self.order: tuple[K, ...] = self._topological_order()
        self._rank = {s: i for i, s in enumerate(self.order)}

    def _topological_order(self) -> tuple[K, ...]:
        # Depth-first search with colours; a grey node met again closes a cycle, which we report.
        white, grey, black = 0, 1, 2
        colour = dict.fromkeys(self.skills, white)
        order: list[K] = []
        for root in self.skills:
            if colour[root] != white:
                continue
            stack: list[tuple[K, int]] = [(root, 0)]
            path: list[K] = [root]
            colour[root] = grey
            while stack:
                node, i = stack[-1]
                deps = self._prereqs[node]
                if i < len(deps):
                    stack[-1] = (node, i + 1)
                    nxt = deps[i]
                    if colour[nxt] == grey:
                        start = path.index(nxt)
                        cycle = path[start:] + [nxt]
                        raise CycleError(list(reversed(cycle)))
                    if colour[nxt] == white:
                        colour[nxt] = grey
                        stack.append((nxt, 0))
                        path.append(nxt)
                else:
                    colour[node] = black
                    order.append(node)
                    stack.pop()
                    path.pop()
        return tuple(order)

    def prerequisites(self, skill: K) -> tuple[K, ...]:
        return tuple(self._prereqs[skill])

    def dependents(self, skill: K) -> tuple[K, ...]:
        return tuple(self._dependents[skill])

    def ancestors(self, skill: K) -> set[K]:
        """All direct and indirect prerequisites of a skill."""
        seen: set[K] = set()
        todo = list(self._prereqs[skill])
        while todo:
            s = todo.pop()
            if s not in seen:
                seen.add(s)
                todo.extend(self._prereqs[s])
        return seen

    def rank(self, skill: K) -> int:
        """Position in a fixed topological order (prerequisites come first)."""
        return self._rank[skill]

    def unlocked(self, mastery: Mapping[K, float], threshold: float) -> list[K]:
        """Skills whose direct prerequisites are all mastered, in topological order."""
        return [s for s in self.order if all(mastery.get(p, 0.0) >= threshold for p in self._prereqs[s])]

    def edges(self) -> list[tuple[K, K]]:
        return [(p, s) for s in self.skills for p in self._prereqs[s]]

    def __len__(self) -> int:
        return len(self.skills)

    def __contains__(self, skill: object) -> bool:
        return skill in self._prereqs
