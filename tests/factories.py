"""factory_boy factories for database rows, and a small synthetic course."""

from __future__ import annotations

from typing import Any

import factory

from curriculum.models import Item, Skill
from learners.models import Classroom, Learner, User


class SkillFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Skill
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"skill-{n}")
    name = factory.LazyAttribute(lambda o: o.code.replace("-", " ").title())
    description = "A skill."


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item
        skip_postgeneration_save = True  # `skills` only sets the many-to-many rows: nothing to save again

    code = factory.Sequence(lambda n: f"item-{n}")
    prompt = factory.LazyAttribute(lambda o: f"Question {o.code}")
    answer = factory.LazyFunction(lambda: {"type": "number", "value": "4"})
    difficulty = 0.0
    solution = "Worked solution."

    @factory.post_generation
    def skills(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create and extracted:
            self.skills.set(extracted)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n}")
    role = User.Role.LEARNER


class LearnerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Learner

    user = factory.SubFactory(UserFactory)
    display_name = factory.LazyAttribute(lambda o: o.user.username if o.user else "simulated")


class ClassroomFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Classroom

    name = factory.Sequence(lambda n: f"class {n}")


COURSE_DOC: dict[str, Any] = {
    "skills": [
        {"code": "count", "name": "Counting", "description": "Count objects", "prerequisites": []},
        {"code": "add", "name": "Addition", "description": "Add whole numbers", "prerequisites": ["count"]},
        {"code": "sub", "name": "Subtraction", "description": "Subtract", "prerequisites": ["add"]},
        {"code": "frac", "name": "Fractions", "description": "Simple fractions", "prerequisites": ["add"]},
    ],
    "items": [
        {"code": "count-1", "skills": ["count"], "prompt": "Count: * * *", "answer": {"type": "number", "value": "3"},
         "difficulty": -1.0, "solution": "There are three stars."},
        {"code": "count-2", "skills": ["count"], "prompt": "Count: * * * * *",
         "answer": {"type": "number", "value": "5"}, "difficulty": -0.5, "solution": "Five stars."},
        {"code": "add-1", "skills": ["add"], "prompt": "2 + 2 = ?", "answer": {"type": "number", "value": "4"},
         "solution": "2 + 2 = 4."},
        {"code": "add-2", "skills": ["add"], "prompt": "7 + 5 = ?", "answer": {"type": "number", "value": "12"},
         "difficulty": 0.5, "solution": "7 + 5 = 12."},
        {"code": "add-mc", "skills": ["add"], "prompt": "3 + 4 = ?",
         "answer": {"type": "choice", "value": "B", "choices": ["6", "7", "8"]}, "solution": "3 + 4 = 7."},
        {"code": "sub-1", "skills": ["sub"], "prompt": "9 - 4 = ?", "answer": {"type": "number", "value": "5"},
         "solution": "9 - 4 = 5."},
        {"code": "sub-expr", "skills": ["sub", "add"], "prompt": "Simplify (x + 3) - 1",
         "answer": {"type": "expression", "value": "x + 2"}, "solution": "(x + 3) - 1 = x + 2."},
        {"code": "frac-1", "skills": ["frac"], "prompt": "Half of one whole, as a fraction?",
         "answer": {"type": "fraction", "value": "1/2"}, "solution": "One of two equal parts: 1/2."},
        {"code": "frac-text", "skills": ["frac"], "prompt": "What is the bottom number of a fraction called?",
         "answer": {"type": "text", "value": "denominator"}, "solution": "It is the denominator."},
    ],
}


def make_course() -> dict[str, Any]:
    from curriculum.services import curriculum_import

    curriculum_import(document=COURSE_DOC)
    return {
        "skills": {s.code: s for s in Skill.objects.all()},
        "items": {i.code: i for i in Item.objects.all()},
        "doc": COURSE_DOC,
    }
