"""Curriculum import/export for admins."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Body, Router

from curriculum.selectors import curriculum_export
from curriculum.services import curriculum_import
from learners.errors import Forbidden

router = Router(tags=["curriculum"])


def _require_admin(request: HttpRequest) -> None:
    user: Any = request.user
    if getattr(user, "role", None) != "admin" and not getattr(user, "is_superuser", False):
        raise Forbidden("role", "only admins may import or export the curriculum")


@router.post("/import")
def import_curriculum(request: HttpRequest, document: dict[str, Any] = Body(...)) -> dict[str, int]:  # noqa: B008
    _require_admin(request)
    return curriculum_import(document=document).as_dict()


@router.get("/export")
def export_curriculum(request: HttpRequest) -> dict[str, Any]:
    _require_admin(request)
    return curriculum_export()
