import numpy as np

from curriculum.document import parse_document
from tutor.sim.course import course_document, course_from_document, synthetic_course


def test_synthetic_course_is_a_seeded_dag_with_spread_difficulties():
    a = synthetic_course(10, 5, random_state=4)
    b = synthetic_course(10, 5, random_state=4)
    assert a.graph.edges() == b.graph.edges()
    assert np.array_equal(a.difficulty, b.difficulty)
    assert a.n_items == 50 and a.n_skills == 10
    assert a.graph.prerequisites(0) == ()
    assert all(a.graph.prerequisites(s) for s in range(1, 10))
    for s in range(10):
        d = np.sort(a.difficulty[a.primary_skill == s])
        assert np.allclose(d, np.linspace(-1, 1, 5))
    assert a.depth().max() >= 3
    assert a.q_matrix.sum() == 50
    p = a.prerequisite_matrix()
    assert p.sum() == len(a.graph.edges())
    assert all(p[post, pre] for pre, post in a.graph.edges())


def test_course_from_document():
    doc = {
        "skills": [
            {"code": "add", "name": "Add", "prerequisites": []},
            {"code": "mul", "name": "Multiply", "prerequisites": ["add"]},
        ],
        "items": [
            {"code": "i1", "skills": ["add"], "difficulty": 1},
            {"code": "i2", "skills": ["mul"], "difficulty": 3},
            {"code": "i3", "skills": ["add", "mul"], "difficulty": 5},
        ],
    }
    c = course_from_document(doc)
    assert c.graph.edges() == [(0, 1)]
    assert c.item_skills == ((0,), (1,), (0, 1))
    assert c.difficulty.tolist() == [-1.0, 0.0, 1.0]
    assert c.skill_names == ("add", "mul")


def test_course_document_is_read_back_as_the_same_course():
    course = synthetic_course(8, 4, random_state=3)
    doc = course_document(course)
    parsed = parse_document(doc)  # the service's importer accepts it
    assert len(parsed.skills) == 8 and len(parsed.items) == 32
    back = course_from_document(doc)
    assert sorted(back.graph.edges()) == sorted(course.graph.edges())
    assert back.item_skills == course.item_skills
    assert np.allclose(back.difficulty, course.difficulty)  # -1..1, centred: read as written
    assert back.skill_names == tuple(f"skill-{s}" for s in range(8))
