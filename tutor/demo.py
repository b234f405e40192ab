"""Demo setup service: the demo course, a teacher, a classroom of learners and an admin, with fresh tokens."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from curriculum.services import curriculum_import
from learners.models import Classroom, Learner, User
from learners.services import token_create, user_create, user_describe

DEMO_CLASSROOM = "Demo class"
DEMO_LEARNERS = ("ada", "ben", "chloe")


@transaction.atomic
def demo_setup(*, seed: int = 0) -> dict[str, Any]:
    """Idempotent: existing demo users are kept and get a new token (the old ones stay valid)."""
    from curriculum.generation.demo import demo_course

    report = curriculum_import(document=demo_course(seed=seed))
    users: dict[str, dict[str, Any]] = {}
    wanted = [("admin", User.Role.ADMIN, None), ("teacher", User.Role.TEACHER, DEMO_CLASSROOM)] + [
        (name, User.Role.LEARNER, DEMO_CLASSROOM) for name in DEMO_LEARNERS
    ]
    for username, role, room in wanted:
        user = User.objects.filter(username=username).first()
        if user is None:
            info = user_create(username=username, role=role, classroom=room, password=f"{username}-demo")
        else:
            info = user_describe(user=user)
            info["token"] = token_create(user=user)
        users[username] = info
    classroom = Classroom.objects.get(name=DEMO_CLASSROOM)
    return {
        "curriculum": report.as_dict(),
        "classroom_id": classroom.pk,
        "users": users,
        "learner_ids": list(
            Learner.objects.filter(user__username__in=DEMO_LEARNERS).order_by("id").values_list("id", flat=True)
        ),
    }
