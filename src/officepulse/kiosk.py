"""Kiosk tablets: pairing, the device API, misuse flags and the rotating phone code.

A kiosk is paired once with a short one-time code from ``officepulse kiosk add``; it then holds
a long random device token, which the server keeps only as a keyed hash. Office, channel and
placement of every kiosk response come from that token, never from the request body.

Anonymity: the tablet sends each response's completion time so that a response queued through
a Wi-Fi outage is dated when it was given, and so that bursts can be recognised. That exact time
is used in memory only: it is coarsened like every other time before it is stored.
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Annotated, Any, Final

import anyio.to_thread
import msgspec
from litestar import MediaType, Request, Response, Router, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.static_files import create_static_files_router

from officepulse.content import content_dir
from officepulse.i18n import gettext_for
from officepulse.languages import LANGUAGES
from officepulse.offices import get_office
from officepulse.problems import FieldError, ProblemError, json_body, problem_responses
from officepulse.qr import qr_svg, survey_url
from officepulse.responses import (
    MALFORMED_JSON,
    Outcome,
    StoredResponse,
    check_response,
    check_shape,
    require_json,
    store_response,
)
from officepulse.runtime import Runtime
from officepulse.storage import Cursor
from officepulse.surveys import Survey

PAIRING_ALPHABET: Final = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: easy to type
PAIRING_VALID: Final = dt.timedelta(hours=24)
# How long a tablet whose pairing answer was lost may ask again with the same code and attempt.
PAIRING_RETRY_WINDOW: Final = dt.timedelta(minutes=10)
SILENT_AFTER: Final = dt.timedelta(minutes=10)
PHONE_WINDOW_SECONDS: Final = 300  # a new phone code every 5 minutes ...
PHONE_WINDOWS_ACCEPTED: Final = 3  # ... accepted for 15 minutes
HEARTBEAT_SECONDS: Final = 60
MAX_BATCH: Final = 500
MAX_QUEUE_LENGTH: Final = 2**31 - 1
# A tablet's clock may be off, and a queue may wait through a long outage; outside these
# bounds the server's receive time is used instead.
MAX_QUEUED_AGE: Final = dt.timedelta(days=14)
MAX_CLOCK_AHEAD: Final = dt.timedelta(minutes=5)


def keyed_hash(secret_key: str, purpose: str, value: str) -> str:
    """A keyed hash (HMAC-SHA256): what the database keeps instead of codes and tokens."""
    message = f"{purpose}\x00{value}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def new_pairing_code() -> str:
    """Eight characters from an unambiguous alphabet, shown as XXXX-XXXX."""
    raw = "".join(secrets.choice(PAIRING_ALPHABET) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


def normalise_code(code: str) -> str:
    """Case and separators do not matter when the code is typed on a tablet."""
    raw = "".join(ch for ch in code.upper() if ch.isalnum())
    return f"{raw[:4]}-{raw[4:]}" if len(raw) == 8 else raw


# -- records and SQL --------------------------------------------------------------------------


class KioskInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A kiosk as ``officepulse kiosk list`` shows it."""

    id: str
    office: str
    name: str
    placement: str | None
    paired: bool
    revoked: bool
    last_heartbeat: dt.datetime | None
    queue_length: int | None
    app_version: str | None
    silent: bool


class KioskAuth(msgspec.Struct, frozen=True):
    """What a device token stands for."""

    id: str
    office: str
    placement: str | None


def list_kiosks(cur: Cursor, now: dt.datetime) -> list[KioskInfo]:
    """Every kiosk; paired ones without a heartbeat for 10 minutes are marked silent."""
    rows = cur.execute(
        "SELECT id, office_id, name, placement, paired_at IS NOT NULL, revoked_at IS NOT NULL,"
        " last_heartbeat, queue_length, app_version FROM kiosks ORDER BY office_id, id"
    ).fetchall()
    result = []
    for row in rows:
        heartbeat: dt.datetime | None = row[6]
        paired, revoked = bool(row[4]), bool(row[5])
        silent = paired and not revoked and (heartbeat is None or now - heartbeat > SILENT_AFTER)
        result.append(
            KioskInfo(
                id=row[0],
                office=row[1],
                name=row[2],
                placement=row[3],
                paired=paired,
                revoked=revoked,
                last_heartbeat=heartbeat,
                queue_length=row[7],
                app_version=row[8],
                silent=silent,
            )
        )
    return result


def insert_kiosk(
    cur: Cursor,
    *,
    office: str,
    name: str,
    placement: str | None,
    secret_key: str,
    now: dt.datetime,
) -> tuple[str, str]:
    """Add a kiosk waiting to be paired; returns its id and its one-time pairing code.

    Ids are short (the office and six hex digits) so staff can read them out, which makes a
    clash with an existing kiosk possible; the id and the code are therefore drawn again until
    neither is in use. This runs on the single writer, so nothing can take them in between.
    """
    for _ in range(100):
        kiosk_id = f"{office}-{secrets.token_hex(3)}"
        code = new_pairing_code()
        code_hash = keyed_hash(secret_key, "pairing-code", code)
        taken = cur.execute(
            "SELECT 1 FROM kiosks WHERE id = ? OR pairing_code_hash = ?", [kiosk_id, code_hash]
        ).fetchone()
        if taken is None:
            break
    else:  # pragma: no cover - 100 clashes in a row would need millions of kiosks
        raise RuntimeError("no free kiosk id after 100 tries")
    cur.execute(
        "INSERT INTO kiosks (id, office_id, name, placement, pairing_code_hash, pairing_expires,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [kiosk_id, office, name, placement, code_hash, now + PAIRING_VALID, now],
    )
    return kiosk_id, code


def claim_pairing(
    cur: Cursor,
    code_hash: str,
    token_hash: str,
    now: dt.datetime,
    retry_hash: str | None = None,
) -> KioskAuth | None:
    """Use a pairing code once: bind the new token to its kiosk, or None if it is not valid.

    With ``retry_hash`` (the code and the tablet's attempt id, keyed), the same tablet may ask
    again within :data:`PAIRING_RETRY_WINDOW` when the answer was lost on a flaky network: it
    gets a new token, and the one it never received stops working.
    """
    row = cur.execute(
        "SELECT id, office_id, placement FROM kiosks WHERE pairing_code_hash = ?"
        " AND pairing_expires > ? AND revoked_at IS NULL",
        [code_hash, now],
    ).fetchone()
    if row is not None:
        cur.execute(
            "UPDATE kiosks SET token_hash = ?, paired_at = ?, pairing_code_hash = NULL,"
            " pairing_expires = NULL, pairing_retry_hash = ?, pairing_retry_expires = ?"
            " WHERE id = ?",
            [
                token_hash,
                now,
                retry_hash,
                None if retry_hash is None else now + PAIRING_RETRY_WINDOW,
                row[0],
            ],
        )
        return KioskAuth(id=row[0], office=row[1], placement=row[2])
    if retry_hash is None:
        return None
    row = cur.execute(
        "SELECT id, office_id, placement FROM kiosks WHERE pairing_retry_hash = ?"
        " AND pairing_retry_expires > ? AND revoked_at IS NULL",
        [retry_hash, now],
    ).fetchone()
    if row is None:
        return None
    cur.execute(
        "UPDATE kiosks SET token_hash = ?, paired_at = ? WHERE id = ?", [token_hash, now, row[0]]
    )
    return KioskAuth(id=row[0], office=row[1], placement=row[2])


def kiosk_tokens(cur: Cursor) -> dict[str, KioskAuth]:
    """Token hash -> kiosk, for every paired kiosk that is not revoked."""
    rows = cur.execute(
        "SELECT token_hash, id, office_id, placement FROM kiosks"
        " WHERE token_hash IS NOT NULL AND revoked_at IS NULL"
    ).fetchall()
    return {row[0]: KioskAuth(id=row[1], office=row[2], placement=row[3]) for row in rows}


def revoke(cur: Cursor, kiosk_id: str, now: dt.datetime) -> bool:
    found = cur.execute("SELECT 1 FROM kiosks WHERE id = ?", [kiosk_id]).fetchone()
    if found is None:
        return False
    cur.execute(
        "UPDATE kiosks SET revoked_at = coalesce(revoked_at, ?), token_hash = NULL,"
        " pairing_code_hash = NULL WHERE id = ?",
        [now, kiosk_id],
    )
    return True


# -- misuse -----------------------------------------------------------------------------------


@dataclass
class BurstDetector:
    """Flags responses completed too close together on one kiosk (in memory only).

    Completion times arrive out of order (a queue drains after an outage, a batch is retried),
    so each kiosk keeps a sorted list of recent times and every response is judged against its
    neighbours in time, not against whatever arrived last.
    """

    gap_seconds: float
    window_seconds: float
    window_count: int
    _times: dict[str, list[float]] = field(default_factory=dict)
    _seen: dict[str, deque[tuple[float, str]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def judge(self, kiosk_id: str, response_id: str, completed: float) -> bool:
        """Record one response; True when it is part of a burst."""
        with self._lock:
            times = self._times.setdefault(kiosk_id, [])
            seen = self._seen.setdefault(kiosk_id, deque())
            if any(rid == response_id for _, rid in seen):
                return False  # a retry of a response already judged
            index = bisect.bisect_left(times, completed)
            previous = times[index - 1] if index > 0 else None
            times.insert(index, completed)
            seen.append((completed, response_id))
            in_window = bisect.bisect_right(times, completed) - bisect.bisect_right(
                times, completed - self.window_seconds
            )
            self._forget(kiosk_id)
        too_soon = previous is not None and completed - previous < self.gap_seconds
        return too_soon or in_window > self.window_count

    def _forget(self, kiosk_id: str) -> None:
        times, seen = self._times[kiosk_id], self._seen[kiosk_id]
        horizon = times[-1] - max(self.window_seconds, self.gap_seconds) * 10
        while times and times[0] < horizon:
            times.pop(0)
        while seen and seen[0][0] < horizon:
            seen.popleft()


@dataclass
class PairingThrottle:
    """Too many wrong pairing codes from one address answer 429 for a while (in memory)."""

    limit: int = 5
    window_seconds: float = 900
    _salt: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    _failures: dict[bytes, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _key(self, client: str) -> bytes:
        return hmac.new(self._salt, client.encode(), hashlib.sha256).digest()

    def blocked(self, client: str, now: float) -> bool:
        with self._lock:
            failures = self._failures.get(self._key(client), deque())
            while failures and failures[0] <= now - self.window_seconds:
                failures.popleft()
            return len(failures) >= self.limit

    def fail(self, client: str, now: float) -> None:
        with self._lock:
            self._failures.setdefault(self._key(client), deque()).append(now)


# -- the rotating phone code ------------------------------------------------------------------


def phone_window(moment: float) -> int:
    return int(moment // PHONE_WINDOW_SECONDS)


def phone_token(secret_key: str, kiosk_id: str, window: int) -> str:
    """``kiosk.window.mac``: proves that the phone saw this kiosk's screen recently."""
    mac = keyed_hash(secret_key, "phone", f"{kiosk_id}\x00{window}")[:16]
    return f"{kiosk_id}.{window}.{mac}"


def verify_phone_token(
    secret_key: str, token: str, office_id: str, kiosks: dict[str, KioskAuth], moment: float
) -> bool:
    """A token of a live kiosk of this office, issued less than 15 minutes ago."""
    try:
        kiosk_id, window_text, mac = token.split(".")
        window = int(window_text)
    except ValueError:
        return False
    expected = phone_token(secret_key, kiosk_id, window)
    if not hmac.compare_digest(expected, token) or not mac:
        return False
    if not 0 <= phone_window(moment) - window < PHONE_WINDOWS_ACCEPTED:
        return False
    return any(k.id == kiosk_id and k.office == office_id for k in kiosks.values())


# -- what the tablet needs --------------------------------------------------------------------


def _(message: str) -> str:
    """Marks a message for extraction into the catalogues; it is translated per language later."""
    return message


# The kiosk's interface strings, sent to the tablet in every language (see kiosk_config).
UI_MESSAGES: Final = {
    "pair_title": _("Pair this tablet"),
    "pair_label": _("Pairing code"),
    "pair_button": _("Pair"),
    "pair_wrong": _("This code is not valid. Please check it or create a new one."),
    "pair_throttled": _("Too many wrong codes. Please wait a few minutes."),
    "not_paired": _("This tablet is not paired (any more)."),
    "start_hint": _("Tap a face. Anonymous, 30 seconds."),
    "choose_language": _("Choose your language"),
    "phone_hint": _("Prefer your own phone? Scan this code."),
    "back": _("Back"),
    "comment_send": _("Send"),
    "comment_skip": _("Skip"),
    "thanks_title": _("Thank you for your answers!"),
    "thanks_text": _("Your answers have been saved anonymously."),
    "still_there": _("Are you still there?"),
    "still_there_text": _("The survey will start again for the next person soon."),
    "continue": _("Continue"),
    "offline": _("Offline"),
    "queued": _("waiting to be sent"),
    "demo_label": _("Demonstration: this office and all its figures are synthetic."),
}


def kiosk_config(runtime: Runtime, survey: Survey, default_lang: str, synthetic: bool) -> Any:
    """Survey, languages, interface strings and timings, with German filled in where missing."""
    items = []
    for item in survey.items:
        entry: dict[str, Any] = {
            "id": item.id,
            "kind": item.kind,
            "polarity": item.polarity,
            "core": item.core,
            "max_length": item.max_length,
            "text": {lang: item.text_for(lang, survey.default_lang).text for lang in LANGUAGES},
        }
        if item.is_rating:
            entry["labels"] = {
                lang: list(item.labels_for(lang, survey.default_lang).labels) for lang in LANGUAGES
            }
        hints = {lang: item.hint_for(lang, survey.default_lang) for lang in LANGUAGES}
        entry["hint"] = {lang: hint.text for lang, hint in hints.items() if hint is not None}
        items.append(entry)
    core = [item.id for item in survey.rating_items if item.core]
    flow = (["overall"] if "overall" in core else []) + [i for i in core if i != "overall"]
    settings = runtime.settings
    return {
        "survey": {"id": survey.id, "version": survey.version, "items": items},
        "flow": flow,
        "comment_item": survey.comment_item.id if survey.comment_item else None,
        "languages": [
            {"tag": tag, "name": lang.native_name, "direction": lang.direction}
            for tag, lang in LANGUAGES.items()
        ],
        "default_lang": default_lang,
        "ui": {
            lang: {key: gettext_for(lang)(text) for key, text in UI_MESSAGES.items()}
            for lang in LANGUAGES
        },
        "timings": {
            "idle_seconds": settings.kiosk_idle_seconds,
            "prompt_seconds": settings.kiosk_prompt_seconds,
            "thanks_seconds": settings.kiosk_thanks_seconds,
            "heartbeat_seconds": HEARTBEAT_SECONDS,
            "phone_qr_seconds": PHONE_WINDOW_SECONDS,
        },
        "synthetic": synthetic,
    }


# -- HTTP -------------------------------------------------------------------------------------


class PairRequest(msgspec.Struct, forbid_unknown_fields=True):
    code: str
    # The tablet's random id for this pairing attempt: sent again with the same code when the
    # answer was lost, it gets a fresh token instead of "code used".
    attempt: (
        Annotated[str, msgspec.Meta(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
        | None
    ) = None


class Heartbeat(msgspec.Struct, forbid_unknown_fields=True):
    """The tablet's health report."""

    app_version: str
    # Bounded by the database column (INTEGER): a larger number is refused with 422 instead of
    # failing in the UPDATE.
    queue_length: Annotated[int, msgspec.Meta(ge=0, le=MAX_QUEUE_LENGTH)]


class KioskResponseIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One queued response of a kiosk (documents the batch body; items are checked one by one).

    Office, channel and placement come from the device token; ``completed_at`` is used in
    memory only, and coarsened like every other time before it is stored.
    """

    id: uuid.UUID
    survey: str
    version: int
    lang: str
    answers: dict[str, int]
    comment: str | None = None
    completed_at: dt.datetime | None = None
    partial: bool = False


class KioskBatch(msgspec.Struct, forbid_unknown_fields=True):
    """What a kiosk sends from its queue: a 200 answer reports each response on its own."""

    responses: Annotated[list[KioskResponseIn], msgspec.Meta(max_length=MAX_BATCH)]


class KioskResult(msgspec.Struct, omit_defaults=True):
    id: str
    status: str
    errors: list[FieldError] = []


class BatchResult(msgspec.Struct):
    results: list[KioskResult]


@dataclass
class KioskState:
    """The in-memory side of the kiosk API: token cache, burst detector, pairing throttle."""

    runtime: Runtime
    bursts: BurstDetector
    throttle: PairingThrottle = field(default_factory=PairingThrottle)
    tokens: dict[str, KioskAuth] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.runtime.on_change(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """Reload the token cache (after pairing, revoking or adding a kiosk)."""
        self.tokens = self.runtime.store.read(kiosk_tokens)

    def authenticate(self, request: Request[Any, Any, Any]) -> KioskAuth:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        secret = self.runtime.settings.secret_key or ""
        kiosk = self.tokens.get(keyed_hash(secret, "kiosk-token", token)) if token else None
        if kiosk is None:
            raise ProblemError(
                401,
                "This tablet is not paired (any more); pair it again with a new code.",
                slug="kiosk-not-paired",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return kiosk


def _state(state: State) -> KioskState:
    kiosk_state: KioskState = state.kiosks
    return kiosk_state


def _decode(body: bytes, kind: type[Any]) -> Any:
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise ProblemError(422, f"Invalid request: {exc}") from None
    except MALFORMED_JSON as exc:
        raise ProblemError(400, f"The body is not valid JSON: {exc}") from None


async def _config_for(runtime: Runtime, kiosk: KioskAuth) -> Any:
    office = await anyio.to_thread.run_sync(
        lambda: runtime.store.read(lambda cur: get_office(cur, kiosk.office))
    )
    survey = runtime.surveys.latest(runtime.settings.default_survey)
    if office is None or survey is None:
        raise ProblemError(409, "The kiosk's office or survey no longer exists.")
    return office, kiosk_config(runtime, survey, office.default_lang, office.synthetic)


_NOT_PAIRED: Final = "No valid device token: the tablet must be paired (again)"


@post(
    "/api/v1/kiosk/pair",
    tags=["kiosk"],
    status_code=201,
    request_max_body_size=4096,
    operation_class=json_body(PairRequest, "The one-time pairing code"),
    responses=problem_responses(
        {
            400: "The body is not valid JSON",
            403: "The pairing code is wrong, used or expired",
            409: "The kiosk's office or survey no longer exists",
            413: "Body larger than 4 KiB",
            415: "Body is not declared as application/json",
            422: "The body is not of the documented shape",
            429: "Too many wrong codes from this address; wait (Retry-After)",
        }
    ),
)
async def pair(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    """Exchange a one-time pairing code for a device token and the kiosk's configuration."""
    kiosks = _state(state)
    runtime = kiosks.runtime
    client = request.client.host if request.client else ""
    if kiosks.throttle.blocked(client, time.monotonic()):
        raise ProblemError(
            429, "Too many wrong pairing codes; wait a few minutes.", headers={"Retry-After": "900"}
        )
    require_json(request, "the pairing code")
    params: PairRequest = _decode(await request.body(), PairRequest)
    secret = runtime.settings.secret_key or ""
    code_hash = keyed_hash(secret, "pairing-code", normalise_code(params.code))
    token = secrets.token_urlsafe(32)
    token_hash = keyed_hash(secret, "kiosk-token", token)
    now = dt.datetime.now(dt.UTC)
    retry_hash = (
        None
        if params.attempt is None
        else keyed_hash(
            secret, "pairing-retry", normalise_code(params.code) + "\0" + params.attempt
        )
    )
    claimed = await asyncio.wrap_future(
        runtime.store.write(lambda cur: claim_pairing(cur, code_hash, token_hash, now, retry_hash))
    )
    if claimed is None:
        kiosks.throttle.fail(client, time.monotonic())
        raise ProblemError(
            403, "The pairing code is wrong, used or expired.", slug="pairing-code-invalid"
        )
    kiosks.refresh()
    office, config = await _config_for(runtime, claimed)
    body = {
        "token": token,
        "kiosk": {
            "id": claimed.id,
            "office": claimed.office,
            "office_name": office.name,
            "placement": claimed.placement,
            "synthetic": office.synthetic,
        },
        "config": config,
    }
    return Response(body, status_code=201, headers={"Cache-Control": "no-store"})


@get(
    "/api/v1/kiosk/config",
    tags=["kiosk"],
    responses={
        304: ResponseSpec(None, description="Unchanged since the ETag in If-None-Match"),
        **problem_responses(
            {401: _NOT_PAIRED, 409: "The kiosk's office or survey no longer exists"}
        ),
    },
)
async def config(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    """The kiosk's current configuration (survey, languages, texts, timings)."""
    kiosks = _state(state)
    kiosk = kiosks.authenticate(request)
    _office, body = await _config_for(kiosks.runtime, kiosk)
    # A tablet asks after every heartbeat; the answer (37 KB) rarely changes. The tablet sends
    # the ETag of the config it holds and gets an empty 304 instead of the whole thing.
    content = msgspec.json.encode(body)
    tag = '"' + hashlib.sha256(content).hexdigest()[:32] + '"'
    headers = {"Cache-Control": "no-cache", "ETag": tag}
    if tag in (part.strip() for part in request.headers.get("if-none-match", "").split(",")):
        return Response(b"", status_code=304, headers=headers)
    return Response(content, media_type=MediaType.JSON, headers=headers)


@post(
    "/api/v1/kiosk/heartbeat",
    tags=["kiosk"],
    status_code=204,
    request_max_body_size=4096,
    operation_class=json_body(Heartbeat, "App version and queue length of the tablet"),
    responses=problem_responses(
        {
            400: "The body is not valid JSON",
            401: _NOT_PAIRED,
            413: "Body larger than 4 KiB",
            415: "Body is not declared as application/json",
            422: "The body is not of the documented shape",
        }
    ),
)
async def heartbeat(request: Request[Any, Any, Any], state: State) -> None:
    """The tablet's health: app version and how many responses wait in its queue."""
    kiosks = _state(state)
    kiosk = kiosks.authenticate(request)
    require_json(request, "the heartbeat")
    beat: Heartbeat = _decode(await request.body(), Heartbeat)
    now = dt.datetime.now(dt.UTC)
    await asyncio.wrap_future(
        kiosks.runtime.store.write(
            lambda cur: cur.execute(
                "UPDATE kiosks SET last_heartbeat = ?, queue_length = ?, app_version = ?"
                " WHERE id = ?",
                [now, beat.queue_length, beat.app_version[:64], kiosk.id],
            )
        )
    )


@get(
    "/api/v1/kiosk/phone-code",
    tags=["kiosk"],
    responses=problem_responses({401: _NOT_PAIRED}),
)
async def phone_code(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    """The QR code for clients who prefer their own phone; it changes every 5 minutes."""
    kiosks = _state(state)
    kiosk = kiosks.authenticate(request)
    settings = kiosks.runtime.settings
    moment = time.time()
    token = phone_token(settings.secret_key or "", kiosk.id, phone_window(moment))
    url = (
        survey_url(settings.base_url, kiosk.office, kiosk.placement, None)
        + ("&" if kiosk.placement else "?")
        + f"k={token}"
    )
    remaining = PHONE_WINDOW_SECONDS - int(moment % PHONE_WINDOW_SECONDS)
    return Response(
        {"url": url, "svg": qr_svg(url).decode(), "expires_in": remaining},
        headers={"Cache-Control": "no-store"},
    )


def _completed_at(raw: object, received: dt.datetime) -> dt.datetime:
    if isinstance(raw, str):
        try:
            moment = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            return received
        if moment.tzinfo is None:
            return received
        if received - MAX_QUEUED_AGE <= moment <= received + MAX_CLOCK_AHEAD:
            return moment
    return received


@post(
    "/api/v1/kiosk/responses",
    tags=["kiosk"],
    status_code=200,
    request_max_body_size=1024 * 1024,
    operation_class=json_body(KioskBatch, "Responses from the kiosk's queue"),
    responses=problem_responses(
        {
            400: "The body is not valid JSON",
            401: _NOT_PAIRED,
            413: f"More than {MAX_BATCH} responses, or a body larger than 1 MiB",
            415: "Body is not declared as application/json",
            422: 'The body is not {"responses": [...]}',
            503: "Storing failed; nothing was acknowledged. Retry",
        }
    ),
)
async def kiosk_responses(request: Request[Any, Any, Any], state: State) -> BatchResult:
    """A batch from a kiosk's queue; each response is created, duplicate or rejected."""
    kiosks = _state(state)
    kiosk = kiosks.authenticate(request)
    require_json(request, "the batch")
    runtime = kiosks.runtime
    body = await request.body()
    try:
        # The envelope only skips over the responses and any unknown member, which checks
        # their syntax but not their text: the UTF-8 is checked here, for the whole body.
        body.decode()
        batch = msgspec.json.decode(body, type=_Batch).responses
    except msgspec.ValidationError:
        raise ProblemError(422, 'Send {"responses": [...]}.', slug="invalid-batch") from None
    except MALFORMED_JSON as exc:
        raise ProblemError(400, f"The body is not valid JSON: {exc}") from None
    if len(batch) > MAX_BATCH:
        raise ProblemError(413, f"At most {MAX_BATCH} responses per batch.")
    received = dt.datetime.now(dt.UTC)
    results: list[KioskResult | None] = [None] * len(batch)
    valid: list[tuple[dt.datetime, int, StoredResponse]] = []
    for index, raw_item in enumerate(batch):
        try:
            item = msgspec.json.decode(raw_item)
        except msgspec.ValidationError as exc:
            # Well-formed JSON that no decoder takes (a number like 1e400): this one response
            # is rejected, under its id where it has one, and the rest of the batch goes on.
            results[index] = KioskResult(
                id=_id_of(raw_item), status="rejected", errors=[FieldError("#", str(exc))]
            )
            continue
        except MALFORMED_JSON as exc:  # pragma: no cover - the envelope checked all of it
            raise ProblemError(400, f"The body is not valid JSON: {exc}") from None
        row, errors, item_id, completed = _kiosk_row(item, kiosk, runtime, received)
        if row is None:
            results[index] = KioskResult(id=item_id, status="rejected", errors=errors)
        else:
            valid.append((completed, index, row))
    # Judged in the order the responses were completed, not the order the queue sent them.
    pending: list[tuple[int, StoredResponse]] = []
    for completed, index, row in sorted(valid, key=lambda entry: (entry[0], entry[1])):
        if kiosks.bursts.judge(kiosk.id, str(row.id), completed.timestamp()):
            row = msgspec.structs.replace(row, flags=(*row.flags, "burst"))
        pending.append((index, row))
    outcomes = await asyncio.gather(
        *(store_response(runtime, row) for _, row in pending), return_exceptions=True
    )
    for (index, row), outcome in zip(pending, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            # The writer failed for this one: leave it out of the answer's "done" states so the
            # tablet keeps it and sends it again.
            raise ProblemError(503, "Storing failed; nothing was acknowledged. Retry.")
        status = {
            Outcome.CREATED: "created",
            Outcome.DUPLICATE: "duplicate",
            Outcome.CONFLICT: "rejected",
        }[outcome]
        errors = (
            [FieldError("#/id", "already used for a different response")]
            if outcome is Outcome.CONFLICT
            else []
        )
        results[index] = KioskResult(id=str(row.id), status=status, errors=errors)
    return BatchResult(results=[r for r in results if r is not None])


class _Batch(msgspec.Struct):
    """A batch as sent; each response is decoded on its own, so one cannot sink the rest."""

    responses: list[msgspec.Raw]


class _IdOnly(msgspec.Struct):
    id: str = ""


def _id_of(raw_item: msgspec.Raw) -> str:
    try:
        return msgspec.json.decode(raw_item, type=_IdOnly).id
    except MALFORMED_JSON:
        return ""


def _kiosk_row(
    item: object,
    kiosk: KioskAuth,
    runtime: Runtime,
    received: dt.datetime,
) -> tuple[StoredResponse | None, list[FieldError], str, dt.datetime]:
    if not isinstance(item, dict):
        return None, [FieldError("#", "a response must be an object")], "", received
    item_id = str(item.get("id", ""))
    # The token decides where a response comes from: whatever the body says is ignored.
    ignored = {"completed_at", "partial", "office", "channel", "placement", "kiosk"}
    raw = {key: value for key, value in item.items() if key not in ignored}
    raw.update({"office": kiosk.office, "channel": "kiosk"})
    values, errors = check_shape(raw)
    if kiosk.placement:
        values["placement"] = kiosk.placement
    completed = _completed_at(item.get("completed_at"), received)
    row, problems = check_response(
        values, errors, runtime, completed, partial=item.get("partial") is True, kiosk_id=kiosk.id
    )
    return row, problems if row is None else [], item_id, completed


def kiosk_static_headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
            " connect-src 'self'; worker-src 'self'; manifest-src 'self'; base-uri 'none';"
            " form-action 'self'; frame-ancestors 'none'"
        ),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        # The service worker does the caching; the browser must always ask for a new shell.
        "Cache-Control": "no-cache",
    }


async def _static_headers(response: Any) -> Any:
    response.headers.update(kiosk_static_headers())
    return response


router = Router(
    path="/",
    route_handlers=[pair, config, heartbeat, phone_code, kiosk_responses],
    # Public to the guard: each kiosk endpoint checks its own device token or pairing code.
    opt={"access": "public"},
)

static_router = create_static_files_router(
    path="/kiosk",
    directories=[content_dir("kiosk")],
    html_mode=True,
    include_in_schema=False,
    name="kiosk",
    opt={"access": "public"},
    after_request=_static_headers,
)
