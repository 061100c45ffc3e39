"""RFC 9457 problem details for every HTTP error of the API.

Every error leaves the server as ``application/problem+json`` with ``type``, ``title``,
``status`` and ``detail``; validation errors add ``errors``: one entry per bad field with a
JSON pointer into the request body, so a client can fix everything in one round trip.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, Final

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON: Final = "application/problem+json"
# Relative type URIs: the problem types are the project's own and resolve against the server.
TYPE_BASE: Final = "/problems/"


class FieldError(msgspec.Struct, frozen=True):
    """One bad field: where (JSON pointer into the body) and what is wrong."""

    pointer: str
    detail: str


class Problem(msgspec.Struct, omit_defaults=True):
    """The problem-details body (RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] | None = None


class ProblemError(Exception):
    """Raised anywhere in a request to answer with a problem-details response."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug or HTTPStatus(status).phrase.lower().replace(" ", "-")
        self.errors = errors
        self.headers = headers or {}

    def to_problem(self) -> Problem:
        return Problem(
            type=TYPE_BASE + self.slug,
            title=HTTPStatus(self.status).phrase,
            status=self.status,
            detail=self.detail,
            errors=self.errors,
        )


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> Response[Any]:
    """A problem as a Litestar response with the problem media type."""
    return Response(
        content=msgspec.json.encode(problem),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def handle_problem(_: Request[Any, Any, Any], exc: ProblemError) -> Response[Any]:
    return problem_response(exc.to_problem(), exc.headers)


def handle_http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    phrase = HTTPStatus(status).phrase
    detail = exc.detail if exc.detail and exc.detail != phrase else None
    errors: list[FieldError] | None = None
    if isinstance(exc.extra, list) and exc.extra:
        errors = [
            FieldError(pointer=_pointer(item.get("key")), detail=str(item.get("message", "")))
            for item in exc.extra
            if isinstance(item, dict)
        ]
    problem = Problem(
        type=TYPE_BASE + phrase.lower().replace(" ", "-"),
        title=phrase,
        status=status,
        detail=detail,
        errors=errors or None,
    )
    return problem_response(problem, dict(exc.headers) if exc.headers else None)


def handle_unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    # The log line names the exception only: request details (addresses, headers, bodies) must
    # never reach a log, and a traceback's locals could hold them.
    log.error("unexpected error: %s: %s", type(exc).__name__, exc)
    problem = Problem(
        type=TYPE_BASE + "internal-server-error",
        title="Internal Server Error",
        status=500,
        detail="The server could not handle the request; nothing was stored.",
    )
    return problem_response(problem)


def _pointer(key: object) -> str:
    if not key:
        return "#"
    return "#/" + str(key).replace(".", "/")


EXCEPTION_HANDLERS: Final[dict[type[Exception] | int, Any]] = {
    ProblemError: handle_problem,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
