"""The JSON API root: authentication, error format, and the routers of each app. OpenAPI at /api/v1/openapi.json,
interactive docs at /api/v1/docs."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import HttpBearer, SessionAuth

from curriculum.api import router as curriculum_router
from curriculum.document import DocumentError
from learners.api import router as learners_router
from learners.errors import ServiceError
from learners.selectors import user_from_token


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = user_from_token(key=token)
        if user is not None:
            request.user = user
        return user


api = NinjaAPI(
    title="Tutor API",
    version="1",
    description="Next-exercise scheduling, the attempt log and mastery. Authenticate with `Authorization: Bearer <token>`.",
    auth=[BearerToken(), SessionAuth()],
    urls_namespace="api",
)


def _error(request: HttpRequest, status: int, detail: str, errors: list[dict[str, str]]) -> HttpResponse:
    return api.create_response(request, {"detail": detail, "errors": errors}, status=status)


@api.exception_handler(ServiceError)
def service_error(request: HttpRequest, exc: ServiceError) -> HttpResponse:
    return _error(request, exc.status, str(exc), [{"field": exc.field, "message": exc.message}])


@api.exception_handler(DocumentError)
def document_error(request: HttpRequest, exc: DocumentError) -> HttpResponse:
    errors = [{"field": p.split(":", 1)[0], "message": p.split(":", 1)[-1].strip()} for p in exc.problems]
    return _error(request, 400, str(exc), errors)


@api.exception_handler(NinjaValidationError)
def validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    errors = []
    for e in exc.errors:
        loc = [str(x) for x in e.get("loc", ()) if x not in ("body", "payload", "query", "path")]
        errors.append({"field": ".".join(loc) or "body", "message": str(e.get("msg", "invalid"))})
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return _error(request, 422, detail, errors)


@api.exception_handler(AuthenticationError)
def auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _error(request, 401, "authentication required: send 'Authorization: Bearer <token>'",
                  [{"field": "Authorization", "message": "missing or invalid token"}])


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return _error(request, exc.status_code, str(exc), [])


api.add_router("/", learners_router)
api.add_router("/curriculum", curriculum_router)
api.add_router("/", "tutor.llm_api.router")  # the LLM tutor (issue 5)
