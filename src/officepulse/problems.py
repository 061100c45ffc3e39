"""RFC 9457 problem details for every HTTP error of the API.

Every error leaves the server as ``application/problem+json`` with ``type``, ``title``,
``status`` and ``detail``; validation errors add ``errors``: one entry per bad field with a
JSON pointer into the request body, so a client can fix everything in one round trip.

The OpenAPI helpers at the end declare these errors (and the JSON bodies that handlers decode
themselves) in the API's schema, so that the document describes what the server really answers.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Final

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType

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


PROBLEM_SECURITY_HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> Response[Any]:
    """A problem as a Litestar response with the problem media type.

    It carries the security headers itself: an answer to an unknown path passes no route's
    middleware, where the other answers get them.
    """
    return Response(
        content=msgspec.json.encode(problem),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers={**PROBLEM_SECURITY_HEADERS, **(headers or {})},
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


# What a client is told to wait after a 503 for storage trouble (a full disk is not freed in a
# second; a kiosk keeps its queue and a phone page asks to try again later).
UNAVAILABLE_RETRY_SECONDS: Final = 30


def unavailable(
    detail: str = "The server cannot store anything right now; nothing was stored. Retry later.",
) -> ProblemError:
    """The 503 for a store that cannot write now (disk full, or reopening after an error)."""
    return ProblemError(503, detail, headers={"Retry-After": str(UNAVAILABLE_RETRY_SECONDS)})


def handle_unavailable(request: Request[Any, Any, Any], _: Exception) -> Response[Any]:
    """The store cannot write now: 503, retry later.

    The store has logged the reason; the client learns only that nothing was stored.
    """
    return handle_problem(request, unavailable())


def _pointer(key: object) -> str:
    if not key:
        return "#"
    return "#/" + str(key).replace(".", "/")


EXCEPTION_HANDLERS: Final[dict[type[Exception] | int, Any]] = {
    ProblemError: handle_problem,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}


# -- OpenAPI declarations -----------------------------------------------------------------------


def problem_responses(described: Mapping[int, str]) -> dict[int, ResponseSpec]:
    """Declare error statuses of an operation as problem-details answers.

    Without this, Litestar documents its own error shape (``status_code``, ``detail``,
    ``extra``) as ``application/json``, which is not what the exception handlers above send.
    """
    return {
        status: ResponseSpec(
            Problem,
            description=description,
            media_type=PROBLEM_JSON,
            # Generated examples are random strings that change with every start of the server.
            generate_examples=False,
        )
        for status, description in described.items()
    }


# JSON Schema keywords -> fields of Litestar's Schema (``anyOf`` -> ``any_of``, ...).
_SCHEMA_FIELDS: Final = {
    field.metadata.get("alias", field.name): field.name for field in dataclasses.fields(Schema)
}
_SUBSCHEMA: Final = frozenset({"items", "additionalProperties", "not"})
_SUBSCHEMA_LISTS: Final = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})


def _schema_object(node: Mapping[str, Any], defs: Mapping[str, Any]) -> Schema:
    """Litestar's Schema for a JSON Schema node from msgspec, with every ``$ref`` inlined."""
    if "$ref" in node:
        target = defs[str(node["$ref"]).rsplit("/", 1)[-1]]
        node = {**target, **{key: value for key, value in node.items() if key != "$ref"}}
    values: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$defs":
            continue
        if key == "properties":
            value = {name: _schema_object(sub, defs) for name, sub in value.items()}
        elif key in _SUBSCHEMA and isinstance(value, Mapping):
            value = _schema_object(value, defs)
        elif key in _SUBSCHEMA_LISTS:
            value = [_schema_object(sub, defs) for sub in value]
        elif key == "type":
            value = (
                [OpenAPIType(t) for t in value] if isinstance(value, list) else OpenAPIType(value)
            )
        elif key == "format":
            value = OpenAPIFormat(value)
        elif key == "description":
            value = inspect.cleandoc(value)  # msgspec passes docstrings on as written
        values[_SCHEMA_FIELDS[key]] = value
    return Schema(**values)


def json_schema_of(body_type: Any) -> Schema:
    """The JSON Schema msgspec derives from ``body_type``, as a self-contained Litestar Schema."""
    generated = msgspec.json.schema(body_type)
    return _schema_object(generated, generated.get("$defs", {}))


def json_body(body_type: Any, description: str) -> type[Operation]:
    """An ``operation_class`` that documents a JSON request body of ``body_type``.

    The API's handlers read the raw body and decode it themselves (to answer with problem
    details that name every bad field), so Litestar sees no ``data`` parameter to document.
    """

    @dataclasses.dataclass
    class JsonBodyOperation(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(
                content={"application/json": OpenAPIMediaType(schema=json_schema_of(body_type))},
                description=description,
                required=True,
            )

    return JsonBodyOperation


def not_found_as_problem(response: Response[Any]) -> Response[Any]:
    """An ``after_request`` hook: a 404 that a handler *returned* becomes problem details.

    Litestar's schema router answers unknown paths below ``/schema`` with an HTML page of its
    own instead of raising, so the exception handlers above never see it.
    """
    if response.status_code == 404 and response.media_type != PROBLEM_JSON:
        return problem_response(
            Problem(
                type=TYPE_BASE + "not-found",
                title="Not Found",
                status=404,
                detail="There is no such document; the API's schema is /schema/openapi.json.",
            )
        )
    return response
