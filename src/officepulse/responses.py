"""Responses: validation, anonymisation and the durable, exactly-once ingest API.

``POST /api/v1/responses`` answers 201 only after the row is committed (group commit on the
one writer thread), 200 for an identical retry, 409 for a conflicting reuse of an id, and a
problem-details 4xx listing every bad field otherwise — with nothing stored.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import uuid
from collections.abc import Sequence
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

import duckdb
import msgspec
from litestar import Request, Response, Router, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec

from officepulse.languages import LANGUAGES
from officepulse.offices import PLACEMENT_RE
from officepulse.problems import (
    FieldError,
    ProblemError,
    json_body,
    problem_responses,
    unavailable,
)
from officepulse.runtime import Runtime
from officepulse.scrub import scrub_comment
from officepulse.storage import Batch, Cursor, StoreClosedError, StoreUnavailableError
from officepulse.surveys import Survey

MAX_BODY_BYTES: Final = 16 * 1024
Channel = Literal["qr", "kiosk", "web"]
CHANNELS: Final = ("qr", "kiosk", "web")


class ResponseIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One client's answers, as a phone, kiosk or web form submits them."""

    id: uuid.UUID
    office: str
    survey: str
    version: int
    channel: Channel
    lang: str
    answers: dict[str, int]
    placement: str | None = None
    comment: str | None = None


class Ack(msgspec.Struct, frozen=True):
    """The acknowledgement: the response with this id is durably stored."""

    id: uuid.UUID


class StoredResponse(msgspec.Struct, frozen=True, kw_only=True):
    """A validated, anonymised response, ready for the writer.

    It holds no address, agent, header or exact time: only what the row will contain.
    """

    id: uuid.UUID
    office_id: str
    survey_id: str
    survey_version: int
    channel: Channel
    placement: str | None
    kiosk_id: str | None
    lang: str
    received_at: dt.datetime
    answers: dict[str, int]
    comment: str | None
    flags: tuple[str, ...] = ()
    synthetic: bool = False

    @property
    def content_digest(self) -> str:
        """Digest of what the client submitted (not of the coarsened time).

        A retry may arrive in a later hour than the first attempt; it is still the same response.
        """
        content = (
            self.office_id,
            self.survey_id,
            self.survey_version,
            self.channel,
            self.placement,
            self.kiosk_id,
            self.lang,
            sorted(self.answers.items()),
            self.comment,
        )
        return hashlib.sha256(msgspec.json.encode(content)).hexdigest()


class Outcome(enum.Enum):
    CREATED = "created"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"


# -- anonymisation -----------------------------------------------------------------------------


def coarsen_time(moment: dt.datetime, granularity: str, zone: ZoneInfo) -> dt.datetime:
    """The local wall-clock time of ``moment``, truncated to the hour or the day.

    Coarse times are a privacy promise: a response stamped to the minute could be matched
    against the office's appointment calendar.
    """
    local = moment.astimezone(zone).replace(tzinfo=None)
    if granularity == "day":
        return local.replace(hour=0, minute=0, second=0, microsecond=0)
    return local.replace(minute=0, second=0, microsecond=0)


# -- validation --------------------------------------------------------------------------------


_FIELDS: Final = {f.name: f for f in msgspec.structs.fields(ResponseIn)}
_DECODER: Final = msgspec.json.Decoder(ResponseIn)
# What msgspec raises for a body that is not JSON: besides DecodeError, invalid UTF-8 inside a
# string surfaces as UnicodeDecodeError and nesting deeper than the interpreter's recursion
# limit as RecursionError. All three are the client's error (400), never a 500.
MALFORMED_JSON: Final = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)


def decode_response(body: bytes) -> tuple[dict[str, Any], list[FieldError]]:
    """The fields of a JSON body, or every problem with their shapes.

    Well-formed bodies take msgspec's fast path; only a body that fails it is decoded again
    field by field, to name every bad field at once. Raises one of ``MALFORMED_JSON`` for a
    body that is not JSON at all.
    """
    try:
        typed = _DECODER.decode(body)
    except msgspec.ValidationError:
        return check_shape(msgspec.json.decode(body))
    return {name: getattr(typed, name) for name in _FIELDS}, []


def validate_response(
    raw: object, runtime: Runtime, now: dt.datetime
) -> tuple[StoredResponse | None, list[FieldError]]:
    """Check every field of a decoded body; return the row to store or all the problems."""
    values, errors = check_shape(raw)
    return check_response(values, errors, runtime, now)


def check_shape(raw: object) -> tuple[dict[str, Any], list[FieldError]]:
    """Convert each field of a decoded body on its own, collecting every problem."""
    if not isinstance(raw, dict):
        return {}, [FieldError("#", "the body must be a JSON object")]
    errors: list[FieldError] = []
    values: dict[str, Any] = {}
    for key in raw:
        if key not in _FIELDS:
            errors.append(FieldError(f"#/{key}", "unknown field"))
    for name, spec in _FIELDS.items():
        if name not in raw:
            if spec.required:
                errors.append(FieldError(f"#/{name}", "required field is missing"))
            continue
        if name == "answers":
            answers_value, answer_errors = _convert_answers(raw[name])
            errors.extend(answer_errors)
            if answers_value is not None and not answer_errors:
                values[name] = answers_value
            continue
        try:
            values[name] = msgspec.convert(raw[name], spec.type)
        except msgspec.ValidationError as exc:
            errors.append(FieldError(f"#/{name}", _convert_message(exc, name)))
    return values, errors


def check_response(
    values: dict[str, Any],
    errors: list[FieldError],
    runtime: Runtime,
    now: dt.datetime,
    *,
    partial: bool = False,
    kiosk_id: str | None = None,
) -> tuple[StoredResponse | None, list[FieldError]]:
    """Check field values against the offices and the survey; build the anonymised row.

    ``now`` is the moment the response counts for (coarsened before it is kept). A ``partial``
    response (a kiosk reset mid-survey) may lack core items but not every answer.
    """
    errors = list(errors)
    survey: Survey | None = None
    office = values.get("office")
    if office is not None and office not in runtime.office_ids:
        errors.append(FieldError("#/office", f"unknown office {office!r}"))
    survey_id, version = values.get("survey"), values.get("version")
    if survey_id is not None:
        if runtime.surveys.latest(survey_id) is None:
            errors.append(FieldError("#/survey", f"unknown survey {survey_id!r}"))
        elif version is not None:
            survey = runtime.surveys.get(survey_id, version)
            if survey is None:
                errors.append(
                    FieldError("#/version", f"survey {survey_id!r} has no version {version}")
                )
    lang = values.get("lang")
    if lang is not None and lang not in LANGUAGES:
        errors.append(FieldError("#/lang", f"unsupported language {lang!r}"))
    placement = values.get("placement")
    if placement is not None and not PLACEMENT_RE.match(placement):
        errors.append(FieldError("#/placement", "must be a short lowercase name such as 'waiting'"))
    answers: dict[str, int] | None = values.get("answers")
    if survey is not None and answers is not None:
        errors.extend(_answer_errors(survey, answers, require_core=not partial))
    comment: str | None = values.get("comment")
    if comment is not None and survey is not None:
        comment_item = survey.comment_item
        if comment_item is None:
            errors.append(FieldError("#/comment", "this survey has no comment field"))
        elif comment_item.max_length is not None and len(comment) > comment_item.max_length:
            errors.append(
                FieldError(
                    "#/comment",
                    f"longer than {comment_item.max_length} characters ({len(comment)})",
                )
            )
    if errors or survey is None or answers is None:
        return None, errors

    scrubbed = scrub_comment(comment) if comment else None
    return (
        StoredResponse(
            id=values["id"],
            office_id=values["office"],
            survey_id=survey.id,
            survey_version=survey.version,
            channel=values["channel"],
            placement=runtime.placement_for(values["office"], placement),
            kiosk_id=kiosk_id,
            lang=values["lang"],
            received_at=coarsen_time(now, runtime.settings.time_granularity, runtime.settings.zone),
            answers=answers,
            comment=scrubbed or None,
            flags=("partial",) if partial else (),
        ),
        [],
    )


def _answer_pointer(item_id: str) -> str:
    return "#/answers/" + item_id.replace("~", "~0").replace("/", "~1")


def _convert_answers(value: object) -> tuple[dict[str, int] | None, list[FieldError]]:
    # Checked value by value (not with one msgspec.convert) so that every bad answer is named.
    if not isinstance(value, dict):
        return None, [FieldError("#/answers", "must be an object of item id to number")]
    if not value:
        return None, [FieldError("#/answers", "must not be empty")]
    errors = [
        FieldError(_answer_pointer(key), f"must be a whole number, got {type(item).__name__}")
        for key, item in value.items()
        if type(item) is not int
    ]
    return (None if errors else dict(value)), errors


def _answer_errors(
    survey: Survey, answers: dict[str, int], *, require_core: bool = True
) -> list[FieldError]:
    if not answers:
        return [FieldError("#/answers", "must not be empty")]
    errors: list[FieldError] = []
    for item_id, value in answers.items():
        item = survey.item(item_id)
        pointer = _answer_pointer(item_id)
        if item is None:
            errors.append(FieldError(pointer, f"unknown item {item_id!r}"))
        elif not item.is_rating:
            errors.append(FieldError(pointer, "a free-text item goes into 'comment'"))
        elif not 1 <= value <= 5:
            errors.append(FieldError(pointer, f"{value} is outside the scale 1 to 5"))
    for item_id in survey.core_items if require_core else ():
        if item_id not in answers:
            errors.append(FieldError(f"#/answers/{item_id}", "core item is missing"))
    return errors


def _convert_message(exc: msgspec.ValidationError, name: str) -> str:
    message = str(exc)
    for suffix in (" - at `$`", f" - at `$.{name}`"):
        message = message.replace(suffix, "")
    if name == "id" and "uuid" in message.lower():
        return "must be a UUID such as 3f9c2a7e-8d6b-4c1a-9e2f-0a1b2c3d4e5f"
    if name == "channel":
        return "must be one of 'qr', 'kiosk', 'web'"
    return message


# -- the writer's batch ------------------------------------------------------------------------


_WIRE_ENCODER: Final = msgspec.json.Encoder()
_WIRE_TYPES: Final = msgspec.json.encode(
    [
        {
            "id": "UUID",
            "office_id": "VARCHAR",
            "survey_id": "VARCHAR",
            "survey_version": "INTEGER",
            "channel": "VARCHAR",
            "placement": "VARCHAR",
            "kiosk_id": "VARCHAR",
            "lang": "VARCHAR",
            "received_at": "TIMESTAMP",
            "answers": "MAP(VARCHAR, UTINYINT)",
            "comment": "VARCHAR",
            "flags": "VARCHAR[]",
            "synthetic": "BOOLEAN",
        }
    ]
).decode()

# The group travels as one JSON text (the StoredResponse structs as msgspec encodes them) that
# DuckDB parses itself, the digests beside it in the same order. Handing it over as Python lists
# cost about 25 µs per row of conversion while holding the GIL, which the event loop then waits
# for; encoding with msgspec costs about 1 µs, and DuckDB parses with the GIL released.
_INSERT_RESPONSES: Final = """
INSERT INTO responses (id, office_id, survey_id, survey_version, channel, placement, kiosk_id,
                       lang, received_at, answers, comment, flags, content_digest, synthetic)
SELECT r.id, r.office_id, r.survey_id, r.survey_version, r.channel, r.placement, r.kiosk_id,
       r.lang, r.received_at, r.answers, r.comment, r.flags, digest, r.synthetic
FROM (SELECT unnest(from_json($rows::JSON, $types)) AS r, unnest($digests::VARCHAR[]) AS digest)
"""


def _insert(cur: Cursor, rows: Sequence[StoredResponse], digests: Sequence[str]) -> None:
    cur.execute(
        _INSERT_RESPONSES,
        {
            "rows": _WIRE_ENCODER.encode(rows).decode(),
            "types": _WIRE_TYPES,
            "digests": list(digests),
        },
    )


def commit_responses(cur: Cursor, rows: Sequence[StoredResponse]) -> list[Outcome]:
    """Insert the new rows of a group in one statement; tell retries and conflicts apart.

    Runs on the writer thread inside its transaction, so no other write can interleave between
    the lookup of existing ids and the insert.

    Retries are rare, so the group is first inserted as it is and the primary key decides: a
    lookup of existing ids would cost every commit a second statement. Only when the key
    refuses the group is it rolled back and sorted out id by id.
    """
    digests = [row.content_digest for row in rows]
    ids = [str(row.id) for row in rows]
    if len(set(ids)) == len(ids):
        try:
            _insert(cur, rows, digests)
        except duckdb.ConstraintException:
            # DuckDB has no savepoints: the failed statement spoiled the transaction, so start
            # a new one for the careful path (the writer commits whatever is open on return).
            cur.execute("ROLLBACK")
            cur.execute("BEGIN TRANSACTION")
        else:
            return [Outcome.CREATED] * len(rows)
    existing = dict(
        cur.execute(
            "SELECT id::VARCHAR, content_digest FROM responses WHERE id = ANY($1::UUID[])",
            [ids],
        ).fetchall()
    )
    outcomes: list[Outcome] = []
    fresh: list[int] = []
    for index, (row_id, digest) in enumerate(zip(ids, digests, strict=True)):
        known = existing.get(row_id)
        if known is None:
            existing[row_id] = digest
            fresh.append(index)
            outcomes.append(Outcome.CREATED)
        else:
            outcomes.append(Outcome.DUPLICATE if known == digest else Outcome.CONFLICT)
    if fresh:
        _insert(cur, [rows[i] for i in fresh], [digests[i] for i in fresh])
    return outcomes


def attempt_responses(cur: Cursor, rows: Sequence[StoredResponse]) -> list[Outcome] | None:
    """The group as one self-committing INSERT: durable when it returns, nothing when it fails.

    None sends the group down :func:`commit_responses`' careful path: an id twice in the
    group, or one already stored (a retry or a conflict, which the primary key refuses).
    """
    if len({row.id for row in rows}) != len(rows):
        return None
    try:
        _insert(cur, rows, [row.content_digest for row in rows])
    except duckdb.ConstraintException:
        return None
    return [Outcome.CREATED] * len(rows)


RESPONSE_BATCH: Final[Batch[StoredResponse, Outcome]] = Batch(
    "responses", commit_responses, attempt_responses
)


async def store_response(runtime: Runtime, row: StoredResponse) -> Outcome:
    """Hand a row to the writer and wait until its group has committed."""
    try:
        waiter = runtime.store.submit_grouped(RESPONSE_BATCH, row)
    except StoreClosedError:
        raise ProblemError(503, "The server is shutting down; please retry.") from None
    try:
        return await waiter
    except StoreUnavailableError:
        # The disk is full or the database is being reopened: not a matter of a second.
        raise unavailable(
            "The server cannot store responses right now; nothing was kept. Retry later."
        ) from None
    except Exception:
        raise ProblemError(
            503,
            "The response could not be stored; nothing was kept. Please retry.",
            headers={"Retry-After": "1"},
        ) from None


# -- HTTP --------------------------------------------------------------------------------------


def require_json(request: Request[Any, Any, Any], what: str) -> None:
    """415 problem details unless the body is declared as JSON (``application/json`` or
    ``application/*+json``); a form or text post is never read as JSON by accident."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    json_like = media.startswith("application/") and media.endswith("+json")
    if media != "application/json" and not json_like:
        raise ProblemError(415, f"Send {what} as application/json.")


@post(
    "/api/v1/responses",
    tags=["responses"],
    request_max_body_size=MAX_BODY_BYTES,
    status_code=201,
    operation_class=json_body(ResponseIn, "One client's answers"),
    response_description="Stored: the response with this id is durably committed",
    responses={
        200: ResponseSpec(
            Ack,
            description="Identical retry: already stored, nothing added",
            generate_examples=False,
        ),
        **problem_responses(
            {
                400: "The body is not valid JSON",
                409: "The id is stored with different content",
                413: "Body larger than 16 KiB",
                415: "Body is not JSON",
                422: "Every bad field, with a JSON pointer",
                503: "Nothing was stored (the server is shutting down or storing failed); retry",
            }
        ),
    },
)
async def post_response(request: Request[Any, Any, Any], state: State) -> Response[Ack]:
    """Store one response (JSON body as described by ``ResponseIn``), exactly once."""
    require_json(request, "the response")
    body = await request.body()
    try:
        values, shape_errors = decode_response(body)
    except MALFORMED_JSON as exc:
        raise ProblemError(400, f"The body is not valid JSON: {exc}") from None
    runtime: Runtime = state.runtime
    row, errors = check_response(values, shape_errors, runtime, dt.datetime.now(dt.UTC))
    if row is None:
        raise ProblemError(
            422,
            "The response has invalid fields; nothing was stored.",
            slug="invalid-response",
            errors=errors,
        )
    outcome = await store_response(runtime, row)
    if outcome is Outcome.CONFLICT:
        raise ProblemError(
            409,
            "A different response with this id is already stored; use a new id.",
            slug="response-id-conflict",
            errors=[FieldError("#/id", "already used for different content")],
        )
    status = 201 if outcome is Outcome.CREATED else 200
    return Response(Ack(id=row.id), status_code=status)


router = Router(path="/", route_handlers=[post_response], opt={"access": "public"})
