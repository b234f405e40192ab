import pytest

from curriculum.graph import CycleError, GraphError, SkillGraph


def test_topological_order_puts_prerequisites_first():
    g = SkillGraph(["frac", "add", "count", "sub"], [("count", "add"), ("add", "sub"), ("add", "frac")])
    order = list(g.order)
    assert order.index("count") < order.index("add") < order.index("sub")
    assert order.index("add") < order.index("frac")
    assert g.ancestors("sub") == {"add", "count"}
    assert g.prerequisites("frac") == ("add",)
    assert g.dependents("add") == ("sub", "frac")


def test_unlocked_needs_all_direct_prerequisites_mastered():
    g = SkillGraph([1, 2, 3, 4], [(1, 3), (2, 3), (3, 4)])
    assert g.unlocked({}, 0.95) == [1, 2]
    assert g.unlocked({1: 0.99}, 0.95) == [1, 2]
    assert g.unlocked({1: 0.99, 2: 0.96}, 0.95) == [1, 2, 3]
    assert g.unlocked({1: 0.99, 2: 0.96, 3: 0.97}, 0.95) == [1, 2, 3, 4]


def test_cycle_is_refused_and_named():
    with pytest.raises(CycleError) as exc:
        SkillGraph(["a", "b", "c", "d"], [("d", "a"), ("a", "b"), ("b", "c"), ("c", "a")])
    assert str(exc.value) == "prerequisite cycle: a -> b -> c -> a"
    assert exc.value.cycle == ["a", "b", "c", "a"]


def test_self_loop_and_unknown_skill_are_refused():
    with pytest.raises(CycleError, match="a -> a"):
        SkillGraph(["a"], [("a", "a")])
    with pytest.raises(GraphError, match="unknown skill in prerequisite: z"):
        SkillGraph(["a"], [("z", "a")])
