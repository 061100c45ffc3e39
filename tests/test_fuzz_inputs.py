"""Raw-bytes and structure fuzzing of the ingest and kiosk parsers (Hypothesis).

tests/test_fuzz.py generates requests from the OpenAPI document, so what it sends is JSON that
some schema describes. This file aims below the document, at the parsers: arbitrary bytes,
invalid UTF-8 inside otherwise valid JSON strings, numbers no decoder should trust (2**64,
10**400, NaN), wrong types field by field, duplicate and unknown keys, nesting thousands of
levels deep, bodies just over and far over each endpoint's limit (also with a Content-Length
that lies), wrong media types, kiosk batches of hundreds of mixed items, and phone forms that
are url-encoded, multipart or neither.

After every example:

- the server answers below 500;
- an API error is application/problem+json whose ``status`` is the HTTP status, and a phone
  page is HTML in the client's language;
- the responses table holds exactly the ids acknowledged so far (201/200, "created" or
  "duplicate" in a kiosk batch, the thank-you page), each with what was sent: a rejected
  request stores nothing and nothing is half-written;
- a rejected heartbeat or pairing changes no kiosk.

At the end the same server still takes a valid submission on every channel. Generation is
derandomized (the same examples in every run) and bounded (3,700 examples in all).
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import json
import re
import sys
import traceback
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.testing import TestClient

from officepulse import kiosk, pages, responses
from officepulse.i18n import choose_language
from officepulse.kiosk import MAX_BATCH, PairingThrottle
from officepulse.languages import LANGUAGES
from officepulse.offices import Office
from officepulse.operations import OPERATIONS, KioskAdd
from officepulse.runtime import Runtime

from .conftest import app_with_offices, make_settings

OFFICES: Final = [
    Office(id="mh-u25", name="U-25 Haus Mülheim", kind="pilot"),
    Office(id="mh-main", name="Jobcenter Mülheim", kind="conventional"),
]
OFFICE_IDS: Final = [office.id for office in OFFICES]
KIOSK_OFFICE: Final = "mh-u25"
PLACEMENT: Final = "waiting"
CORE: Final = ("stress_now", "respect", "rooms", "effort", "overall")
MORE: Final = ("heard", "next_steps", "wayfinding")
PROBLEM_JSON: Final = "application/problem+json"
JSON_TYPE: Final = {"content-type": "application/json"}
FORM_TYPE: Final = "application/x-www-form-urlencoded"
HTML_ROOT: Final = re.compile(r'<html lang="([^"]+)" dir="(ltr|rtl)">')


def body_limit(handler: HTTPRouteHandler) -> int:
    """An endpoint's own body limit, as its route declares it."""
    limit = handler.request_max_body_size
    assert isinstance(limit, int)
    return limit


RESPONSE_LIMIT: Final = body_limit(responses.post_response)
BATCH_LIMIT: Final = body_limit(kiosk.kiosk_responses)
HEARTBEAT_LIMIT: Final = body_limit(kiosk.heartbeat)
PAIR_LIMIT: Final = body_limit(kiosk.pair)
FORM_LIMIT: Final = body_limit(pages.submit_survey)


def fuzz_settings(examples: int) -> Callable[[Any], Any]:
    """Reproducible (derandomized) and bounded; a request is slow next to a pure function.

    No shrinking: the examples share one server whose state moves on, so a smaller replay is
    another experiment; a failure is reported as it first happened.
    """
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    )


def shows_first_failure(test: Callable[..., None]) -> Callable[..., None]:
    """Print the first failure's traceback (pytest shows it as captured stderr).

    Hypothesis replays a failing example to report it; here the replay meets a server whose
    state has moved on, draws other data and ends as FlakyStrategyDefinition, hiding the
    assertion that failed. The traceback printed here is that assertion.
    """

    @functools.wraps(test)
    def reporting(*args: Any, **kwargs: Any) -> None:
        try:
            test(*args, **kwargs)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            raise

    return reporting


# -- JSON as it should not be written ------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """Bytes put into the JSON text as they are: what no well-behaved encoder writes."""

    text: bytes


@dataclass(frozen=True)
class Members:
    """A JSON object as a sequence of members, so that a key can occur twice."""

    pairs: tuple[tuple[str | Raw, Any], ...]


def to_json(value: Any, *, ascii_only: bool = True) -> bytes:
    """JSON text of ``value``; without ``ascii_only`` a lone surrogate becomes invalid UTF-8."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Members | dict):
        pairs = value.pairs if isinstance(value, Members) else tuple(value.items())
        members = (
            to_json(key, ascii_only=ascii_only) + b":" + to_json(item, ascii_only=ascii_only)
            for key, item in pairs
        )
        return b"{" + b",".join(members) + b"}"
    if isinstance(value, list | tuple):
        return b"[" + b",".join(to_json(item, ascii_only=ascii_only) for item in value) + b"]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    return json.dumps(value).encode()  # numbers (NaN and Infinity as Python writes them) ...


NUMBER_LITERALS: Final = [
    b"18446744073709551616",  # 2**64
    b"-9223372036854775809",  # -2**63 - 1
    b"1" + b"0" * 400,  # 10**400
    b"9" * 4300,  # the longest integer Python turns into text
    b"9" * 4301,
    b"-" + b"9" * 5000,
    b"1e400",
    b"-1e400",
    b"1e-400",
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"-0",
    b"4.0",
    b"4e0",
    b"04",
    b"+4",
    b".5",
    b"0x4",
    b"4.",
    b"1_000",
]
STRING_LITERALS: Final = [
    b'"\xff"',  # not UTF-8 at all
    b'"ok \xc3"',  # a truncated sequence
    b'"\xed\xa0\x80"',  # an encoded surrogate (CESU-8)
    b'"\xf4\x90\x80\x80"',  # beyond U+10FFFF
    b'"\xc0\xaf"',  # overlong
    b'"\\ud800"',  # escaped lone surrogates
    b'"\\udc00\\ud800"',
    b'"\\u00"',
    b'"\\x41"',
    b'"tab\there"',  # a raw control character
    b'"nul\x00"',
    b'"unterminated',
]
SPECIAL_TEXT: Final = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\u202eevil\u202c",  # right-to-left override
    "\u200f\u200e",
    "\ufeff",
    "\U0001f600",
    "مرحبا",
    "\r\n",
    "<script>alert(1)</script>",
    "'; DROP TABLE responses; --",
    "%s%n{0}",
    "{{ 7 * 7 }}",
    "../../etc/passwd",
    "A" * 501,  # one more than a comment may have
]
BIG_INTS: Final = [2**64, 2**63, -(2**63) - 1, 2**31, 2**32, -1, 0, 6, 256, 10**30]


def raw_literals(literals: list[bytes]) -> st.SearchStrategy[Raw]:
    """One of ``literals``, drawn by position: a strategy that holds the long literals
    themselves would be too long to print (Hypothesis warns, and warnings are errors here)."""
    return st.integers(0, len(literals) - 1).map(lambda index: Raw(literals[index]))


any_text = st.text(st.characters(exclude_categories=()), max_size=40)  # surrogates included
plain_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
texts = st.one_of(any_text, st.sampled_from(SPECIAL_TEXT))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(BIG_INTS),
    st.floats(),
    texts,
    raw_literals(NUMBER_LITERALS + STRING_LITERALS),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=8,
)
keys = st.one_of(texts, raw_literals(STRING_LITERALS))
# Values any JSON reader takes, for the fields a valid body may fill with anything.
readable_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | plain_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(plain_text, inner, max_size=4),
    max_leaves=8,
)


# The request builders below draw from ``data`` instead of being composite strategies, whose
# printed form includes their arguments: a 500-response batch is far too long to print.


def mutated(data: st.DataObject, valid: dict[str, Any]) -> Members:
    """``valid`` with a few members replaced, removed, repeated or added, inside the answers
    too. Drawing no change at all gives the valid body itself."""
    draw = data.draw
    pairs: list[tuple[str | Raw, Any]] = list(valid.items())
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["replace", "remove", "repeat", "unknown", "answers"]))
        index = draw(st.integers(0, max(len(pairs) - 1, 0)))
        if action == "unknown" or not pairs:
            pairs.insert(index, (draw(keys), draw(json_values)))
        elif action == "replace":
            pairs[index] = (pairs[index][0], draw(json_values))
        elif action == "remove":
            del pairs[index]
        elif action == "repeat":  # the same key twice, the strange value first or last
            twin = (pairs[index][0], draw(json_values))
            pairs.insert(draw(st.sampled_from([index, len(pairs)])), twin)
        else:
            answers = dict(valid.get("answers") or {})
            item = draw(st.sampled_from([*CORE, *MORE, "comment", "", "a/b~c", "x" * 300]))
            if draw(st.booleans()):
                answers.pop(item, None)
            else:
                answers[item] = draw(json_values)
            pairs.append(("answers", answers))
    return Members(tuple(pairs))


def document_for(data: st.DataObject, valid: dict[str, Any]) -> Members | dict[str, Any]:
    """The valid document itself (the very object, to recognise it) or a mutation of it."""
    return valid if data.draw(st.booleans()) else mutated(data, valid)


def damaged(data: st.DataObject, content: bytes) -> bytes:
    """Mostly ``content`` as it is; sometimes cut short or with bytes inserted or replaced."""
    draw = data.draw
    action = draw(st.sampled_from(["none"] * 6 + ["cut", "insert", "replace"]))
    if action == "none":
        return content
    at = len(content) * draw(st.integers(0, 256)) // 256
    if action == "cut":
        return content[:at]
    junk = draw(st.binary(min_size=1, max_size=4))
    return content[:at] + junk + content[at + (len(junk) if action == "replace" else 0) :]


@dataclass(frozen=True)
class Sent:
    """One request body with its headers; ``pristine`` when the valid body was sent properly."""

    content: bytes
    headers: dict[str, str]
    pristine: bool


def deep_nesting(depth: int, prefix: bytes, shape: str) -> bytes:
    """``depth`` levels of arrays or of objects after ``prefix``."""
    if shape == "array":
        return prefix + b"[" * depth + b"]" * depth
    return prefix + b'{"a":' * depth + b"1" + b"}" * depth


# Nesting around the interpreter's recursion limit (1000) and far beyond it.
DEPTHS: Final = [100, 500, 900, 950, 980, 990, 1000, 1010, 2000, 10_000, 100_000]
MEDIA_TYPES: Final = [
    "text/plain",
    FORM_TYPE,
    "multipart/form-data; boundary=x",
    "application/json; charset=latin-1",
    "APPLICATION/JSON",
    "application/problem+json",
    "application/jsonx",
    "application/xml",
    "json",
    "",
]


def lying_length(data: st.DataObject, content: bytes, limit: int) -> str | None:
    """Mostly no Content-Length of our own (the client's true one); sometimes a lie."""
    lies = ["0", "1", str(len(content) - 1), str(len(content) + 1), str(limit + 1)]
    return data.draw(st.sampled_from([None] * 8 + lies + [str(10**12), "abc", "-1"]))


def request_body(
    data: st.DataObject, document: Members | dict[str, Any], limit: int, prefixes: Sequence[bytes]
) -> Sent:
    """How ``document`` reaches an endpoint: well or badly encoded JSON, other bytes, deep
    nesting, too large, with a wrong media type, with a Content-Length that lies."""
    draw = data.draw
    kind = draw(st.sampled_from(["json"] * 6 + ["bytes", "deep", "oversized", "media"]))
    headers = dict(JSON_TYPE)
    text = to_json(document, ascii_only=draw(st.booleans()))
    if kind == "json":
        content = damaged(data, text)
    elif kind == "bytes":
        content = draw(st.binary(max_size=2048))
    elif kind == "deep":
        content = deep_nesting(
            draw(st.sampled_from(DEPTHS)),
            draw(st.sampled_from([b"", *prefixes])),
            draw(st.sampled_from(["array", "object"])),
        )
        if draw(st.booleans()):
            content = content[: len(content) // 2 + 1]  # never closed
    elif kind == "oversized":
        size = draw(st.sampled_from([limit + 1, limit + 2, 2 * limit + 7, 16 * limit]))
        filler = draw(st.sampled_from([b" ", b"[", b"\xff"]))  # a padded document, or junk
        content = (text + filler * size)[:size] if filler == b" " else filler * size
    else:
        content = text
        headers["content-type"] = draw(st.sampled_from(MEDIA_TYPES))
    length = lying_length(data, content, limit)
    if length is not None:
        headers["content-length"] = length
    honest = length is None or length == str(len(content))
    return Sent(content, headers, kind == "json" and content == text and honest)


# -- the app under test --------------------------------------------------------------------------


@dataclass
class Fuzzed:
    """The running app, its paired kiosk, and what the server acknowledged so far."""

    app: Litestar
    client: TestClient[Litestar]
    kiosk_token: str
    kiosk_id: str
    config_tag: str
    acknowledged: set[str] = field(default_factory=set)
    api_bodies: dict[str, bytes] = field(default_factory=dict)  # acknowledged with 201
    statuses: dict[str, Counter[int | str]] = field(default_factory=lambda: defaultdict(Counter))
    _serial: Iterator[int] = field(default_factory=itertools.count)

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    def serial(self) -> int:
        return next(self._serial)

    def new_id(self) -> str:
        """A response id not used before in this run (deterministic, unlike uuid4)."""
        return str(uuid.UUID(int=(0xF0 << 120) + self.serial()))

    def read(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return self.runtime.store.read(lambda cur: cur.execute(sql, params or []).fetchall())

    def stored_ids(self) -> set[str]:
        return {row[0] for row in self.read("SELECT id::VARCHAR FROM responses")}

    def stored_rows(self, ids: set[str]) -> dict[str, tuple[Any, ...]]:
        rows = self.read(
            "SELECT id::VARCHAR, office_id, channel, kiosk_id, lang, answers, survey_version"
            " FROM responses WHERE id = ANY($1::UUID[])",
            [sorted(ids)],
        )
        return {row[0]: row[1:] for row in rows}

    def kiosks(self) -> list[tuple[Any, ...]]:
        return self.read(
            "SELECT id, token_hash, paired_at, pairing_code_hash, last_heartbeat, queue_length,"
            " app_version FROM kiosks ORDER BY id"
        )

    def send(
        self, method: str, path: str, content: bytes | None, headers: dict[str, Any]
    ) -> httpx.Response:
        request = self.client.build_request(method, path, content=content, headers=headers)
        if "content-length" in headers:  # httpx put the true length back
            request.headers["content-length"] = headers["content-length"]
        answer = self.client.send(request)
        self.statuses[path.split("?")[0]][answer.status_code] += 1
        return answer

    def post(self, path: str, sent: Sent, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.send("POST", path, sent.content, {**sent.headers, **(headers or {})})


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    settings = make_settings(tmp_path_factory.mktemp("fuzz-inputs") / "data")
    with app_with_offices(settings, OFFICES, [(KIOSK_OFFICE, PLACEMENT)]) as (app, client):
        runtime: Runtime = app.state.runtime
        added = OPERATIONS["kiosk.add"].run(
            runtime, KioskAdd(office=KIOSK_OFFICE, name="Eingang", placement=PLACEMENT)
        )
        paired = client.post("/api/v1/kiosk/pair", json={"code": added.pairing_code})
        assert paired.status_code == 201, paired.text
        # Thousands of wrong codes come from the one test client address: the throttle (tested
        # in test_kiosk_api.py) would answer 429 before the parser saw another body.
        app.state.kiosks.throttle = PairingThrottle(limit=10**9)
        token = paired.json()["token"]
        config = client.get("/api/v1/kiosk/config", headers=bearer(token))
        yield Fuzzed(app, client, token, added.id, config.headers["etag"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- what every answer must be -------------------------------------------------------------------


def assert_api_answer(answer: httpx.Response, sent: bytes | None = None) -> None:
    """Below 500; an error is RFC 9457 problem details for exactly this status."""
    assert answer.status_code < 500, (answer.status_code, answer.text[:300], (sent or b"")[:300])
    if answer.status_code < 400:
        return
    media_type = answer.headers.get("content-type", "").split(";")[0].strip()
    assert media_type == PROBLEM_JSON, f"{answer.status_code} as {media_type!r}: {answer.text}"
    problem = answer.json()
    assert problem["status"] == answer.status_code, problem
    assert isinstance(problem["type"], str), problem
    assert isinstance(problem["title"], str), problem


def assert_only_acknowledged_stored(fuzzed: Fuzzed) -> None:
    stored = fuzzed.stored_ids()
    assert stored - fuzzed.acknowledged == set(), "stored without an acknowledgement"
    assert fuzzed.acknowledged - stored == set(), "acknowledged but not stored"


def parsed_json(content: bytes) -> Any:
    """The body as Python's JSON reader sees it (None where it cannot read it).

    Integers too long for ``int()`` (over 4,300 digits) are still JSON: a kiosk batch holding
    one is answered 200 with that response rejected, so they are read as infinity here.
    """
    try:
        return json.loads(content, parse_int=_long_int)
    except ValueError:
        return None


def _long_int(text: str) -> int | float:
    return int(text) if len(text.lstrip("-")) <= 4000 else float("inf")


def assert_stored_as_sent(
    fuzzed: Fuzzed,
    sent: dict[str, list[dict[str, Any]]],
    office: str,
    channel: str,
    kiosk_id: str | None = None,
) -> None:
    """Each new row holds what was sent: office, channel, language and every answer (from
    one of the bodies that carried its id)."""
    rows = fuzzed.stored_rows(set(sent))
    assert set(rows) == set(sent)
    for response_id, bodies in sent.items():
        row_office, row_channel, row_kiosk, lang, answers, version = rows[response_id]
        assert (row_office, row_channel, row_kiosk, version) == (office, channel, kiosk_id, 1)
        assert (lang, answers) in [(body.get("lang"), body.get("answers")) for body in bodies]


def is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


# -- POST /api/v1/responses ----------------------------------------------------------------------

valid_answers = st.fixed_dictionaries(
    dict.fromkeys(CORE, st.integers(1, 5)), optional=dict.fromkeys(MORE, st.integers(1, 5))
)
# Without surrogates, which JSON cannot carry, and within the survey's 500 characters.
comments = st.one_of(
    st.none(),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=500),
    st.sampled_from([text for text in SPECIAL_TEXT if len(text) <= 500]),
)


def valid_response(data: st.DataObject, response_id: str, comment: str | None) -> dict[str, Any]:
    body = {
        "id": response_id,
        "office": data.draw(st.sampled_from(OFFICE_IDS)),
        "survey": "atmosphere",
        "version": 1,
        "channel": data.draw(st.sampled_from(["qr", "kiosk", "web"])),
        "lang": data.draw(st.sampled_from(sorted(LANGUAGES))),
        "answers": data.draw(valid_answers),
        "comment": comment,
    }
    placement = data.draw(st.sampled_from([None, PLACEMENT, "entrance"]))
    return body if placement is None else {**body, "placement": placement}


def earlier(data: st.DataObject, ids: set[str] | dict[str, Any]) -> str | None:
    """One of the ids acknowledged so far, if any.

    Drawn as a plain number: what Hypothesis draws must not depend on what the server did in
    earlier examples, or it cannot replay an example.
    """
    pick = data.draw(st.integers(0, 2**16), label="earlier")
    return sorted(ids)[pick % len(ids)] if ids else None


@fuzz_settings(1000)
@given(data=st.data())
@shows_first_failure
def test_response_api_under_fuzzing(fuzzed: Fuzzed, data: st.DataObject) -> None:
    reuse = data.draw(st.sampled_from(["new"] * 6 + ["drawn"] + ["retry", "conflict"] * 2))
    previous = earlier(data, fuzzed.api_bodies)
    drawn = str(data.draw(st.uuids()))
    comment: str | None = data.draw(comments)
    response_id = drawn if reuse == "drawn" else previous
    if response_id is None or reuse == "new":  # nothing acknowledged yet to retry
        reuse, response_id = "new", fuzzed.new_id()
    if reuse == "conflict":  # an acknowledged id with another comment
        comment = f"#{fuzzed.serial()}"
    valid = valid_response(data, response_id, comment)
    document = document_for(data, valid)
    sent = request_body(data, document, RESPONSE_LIMIT, [b'{"answers":', b'{"id":'])
    sent = Sent(sent.content, sent.headers, sent.pristine and document is valid)
    if reuse == "retry":  # the acknowledged bytes once more
        sent = Sent(fuzzed.api_bodies[response_id], dict(JSON_TYPE), pristine=True)

    before = set(fuzzed.acknowledged)
    answer = fuzzed.post("/api/v1/responses", sent)
    assert_api_answer(answer, sent.content)
    if sent.pristine and reuse != "drawn":
        expected = {"new": 201, "retry": 200, "conflict": 409}[reuse]
        assert answer.status_code == expected, answer.text
    if answer.status_code in (200, 201):
        acknowledged = answer.json()["id"]
        assert (acknowledged in before) == (answer.status_code == 200)
        fuzzed.acknowledged.add(acknowledged)
        if answer.status_code == 201:
            body = parsed_json(sent.content)
            assert isinstance(body, dict), sent.content[:300]
            assert_stored_as_sent(fuzzed, {acknowledged: [body]}, body["office"], body["channel"])
            fuzzed.api_bodies[acknowledged] = sent.content
    assert_only_acknowledged_stored(fuzzed)


# -- POST /api/v1/kiosk/responses ----------------------------------------------------------------

COMPLETED_AT: Final = [
    "2024-13-01T00:00:00+00:00",
    "Z",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "2024-01-01T00:00:00",
    "now",
    "",
]


def kiosk_item(data: st.DataObject, response_id: str) -> dict[str, Any]:
    """A valid response of a kiosk's queue (partial, or with a strange completion time)."""
    answers = data.draw(valid_answers)
    partial = data.draw(st.booleans())
    if partial:
        answers = dict(list(answers.items())[: data.draw(st.integers(1, len(answers)))])
    completed = data.draw(
        st.one_of(
            st.just(dt.datetime.now(dt.UTC).isoformat()),
            st.sampled_from(COMPLETED_AT),
            readable_values,
        )
    )
    item = {
        "id": response_id,
        "survey": "atmosphere",
        "version": 1,
        "lang": data.draw(st.sampled_from(sorted(LANGUAGES))),
        "answers": answers,
        "comment": data.draw(comments),
        "completed_at": completed,
        "partial": partial,
    }
    # What the body says about where it comes from is ignored: the token decides.
    for ignored in data.draw(st.sets(st.sampled_from(["office", "channel", "placement", "kiosk"]))):
        item[ignored] = data.draw(readable_values)
    return item


def large_batch(data: st.DataObject, fuzzed: Fuzzed) -> list[Any]:
    """Hundreds of responses around the batch limit, every n-th of them invalid."""
    count = data.draw(st.sampled_from([100, 300, MAX_BATCH, MAX_BATCH + 1]))
    every = data.draw(st.sampled_from([2, 7, count + 1]))
    return [
        {
            "id": fuzzed.new_id(),
            "survey": "atmosphere",
            "version": 1,
            "lang": "de",
            "answers": {"overall": 9} if index % every == 1 else dict.fromkeys(CORE, 3),
        }
        for index in range(count)
    ]


def kiosk_batch(data: st.DataObject, fuzzed: Fuzzed) -> tuple[list[Any], bool]:
    """A few valid, broken and repeated responses, once in a while hundreds; and whether the
    batch is JSON that any reader takes."""
    if data.draw(st.integers(0, 24)) == 0:
        return large_batch(data, fuzzed), True
    items: list[Any] = []
    readable = True
    for _ in range(data.draw(st.integers(0, 6))):
        kind = data.draw(st.sampled_from(["valid"] * 3 + ["mutated"] * 2 + ["junk", "twin", "old"]))
        if kind == "twin" and items:  # an id twice in one batch, with the same or other content
            twin = data.draw(st.sampled_from(items))
            if isinstance(twin, dict) and "id" in twin and data.draw(st.booleans()):
                twin = kiosk_item(data, twin["id"])
            items.append(twin)
        elif kind == "old":
            items.append(kiosk_item(data, earlier(data, fuzzed.acknowledged) or fuzzed.new_id()))
        elif kind == "junk":
            items.append(data.draw(json_values))
            readable = False
        else:
            item = kiosk_item(data, fuzzed.new_id())
            items.append(mutated(data, item) if kind == "mutated" else item)
            readable = readable and kind == "valid"
    return items, readable


@fuzz_settings(600)
@given(data=st.data())
@shows_first_failure
def test_kiosk_batches_under_fuzzing(fuzzed: Fuzzed, data: st.DataObject) -> None:
    items, readable = kiosk_batch(data, fuzzed)
    valid = {"responses": items}
    document = document_for(data, valid)
    prefixes = [b'{"responses":', b'{"responses":[{"id":', b'{"responses":[{"answers":']
    sent = request_body(data, document, BATCH_LIMIT, prefixes)
    token = data.draw(st.sampled_from([fuzzed.kiosk_token] * 8 + ["", "not-a-token"]))
    before = set(fuzzed.acknowledged)
    answer = fuzzed.post("/api/v1/kiosk/responses", sent, bearer(token))
    assert_api_answer(answer, sent.content)
    if answer.status_code != 200:
        assert fuzzed.stored_ids() == before, "a rejected batch stored something"
        proper = sent.pristine and document is valid and readable and len(items) <= MAX_BATCH
        assert not (proper and token == fuzzed.kiosk_token), answer.text
        return
    body = parsed_json(sent.content)
    assert isinstance(body, dict), sent.content[:300]
    batch: list[Any] = body["responses"]
    results: list[dict[str, Any]] = answer.json()["results"]
    assert len(results) == len(batch), "one verdict per response, in the batch's order"
    verdicts: dict[str, set[str]] = defaultdict(set)
    carried: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item, result in zip(batch, results, strict=True):
        fuzzed.statuses["kiosk verdicts"][result["status"]] += 1
        verdicts[result["status"]].add(result["id"])
        if result["status"] == "rejected":
            assert result["errors"], result
        else:
            assert is_uuid(item["id"]), (item, result)
            assert uuid.UUID(item["id"]) == uuid.UUID(result["id"])
            carried[result["id"]].append(item)
    assert set(verdicts) <= {"created", "duplicate", "rejected"}
    created, duplicate = verdicts["created"], verdicts["duplicate"]
    assert created.isdisjoint(before), "created a second time"
    assert duplicate <= before | created, "a duplicate of nothing"
    assert fuzzed.stored_ids() == before | created, "the verdicts differ from the table"
    created_from = {response_id: carried[response_id] for response_id in created}
    assert_stored_as_sent(fuzzed, created_from, KIOSK_OFFICE, "kiosk", fuzzed.kiosk_id)
    fuzzed.acknowledged |= created
    assert_only_acknowledged_stored(fuzzed)


# -- POST /api/v1/kiosk/heartbeat and /api/v1/kiosk/pair -----------------------------------------


@fuzz_settings(500)
@given(data=st.data())
@shows_first_failure
def test_heartbeat_under_fuzzing(fuzzed: Fuzzed, data: st.DataObject) -> None:
    valid = {
        "app_version": data.draw(st.one_of(st.just("1.4.2"), plain_text, st.just("v" * 100))),
        "queue_length": data.draw(
            st.one_of(st.integers(0, 2**31 - 1), st.sampled_from([0, 2**31 - 1]))
        ),
    }
    document = document_for(data, valid)
    prefixes = [b'{"app_version":', b'{"queue_length":']
    sent = request_body(data, document, HEARTBEAT_LIMIT, prefixes)
    token = data.draw(st.sampled_from([fuzzed.kiosk_token] * 8 + ["", "not-a-token"]))
    before = fuzzed.kiosks()
    answer = fuzzed.post("/api/v1/kiosk/heartbeat", sent, bearer(token))
    assert_api_answer(answer, sent.content)
    after = fuzzed.kiosks()
    if sent.pristine and document is valid and token == fuzzed.kiosk_token:
        assert answer.status_code == 204, answer.text
    if answer.status_code != 204:
        assert after == before, "a rejected heartbeat changed a kiosk"
        return
    body = parsed_json(sent.content)
    assert isinstance(body, dict), sent.content[:300]
    ours = next(row for row in after if row[0] == fuzzed.kiosk_id)
    assert ours[5:] == (body["queue_length"], body["app_version"][:64])
    assert [row for row in after if row != ours] == [row for row in before if row[0] != ours[0]]


CODE_SPELLINGS: Final[list[Callable[[str], str]]] = [
    str,
    str.lower,
    lambda code: code.replace("-", ""),
    lambda code: f"  {code.lower().replace('-', ' ')}\t",
    lambda code: code.replace("-", "\u2010"),
]


@fuzz_settings(500)
@given(data=st.data())
@shows_first_failure
def test_pairing_under_fuzzing(fuzzed: Fuzzed, data: st.DataObject) -> None:
    code = data.draw(st.one_of(texts, st.sampled_from(["AAAA-AAAA", "aaaa-aaaa", "ABCD"])))
    fresh = data.draw(st.integers(0, 9)) == 0
    if fresh:  # a real code of a new kiosk, spelled as a person might type it
        added = OPERATIONS["kiosk.add"].run(
            fuzzed.runtime, KioskAdd(office="mh-main", name=f"Fuzz {fuzzed.serial()}")
        )
        code = data.draw(st.sampled_from(CODE_SPELLINGS))(added.pairing_code)
    valid = {"code": code}
    document = document_for(data, valid)
    sent = request_body(data, document, PAIR_LIMIT, [b'{"code":'])
    before = fuzzed.kiosks()
    answer = fuzzed.post("/api/v1/kiosk/pair", sent)
    assert_api_answer(answer, sent.content)
    after = fuzzed.kiosks()
    if answer.status_code != 201:
        assert after == before, "a rejected pairing changed a kiosk"
        assert not (fresh and sent.pristine and document is valid and code.isascii())
        return
    assert fresh, "paired with a made-up code"
    changed = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert len(changed) == 1
    old, new = changed[0]
    # the code is used up and the token's hash is kept instead
    assert (old[1] is None, old[3] is None) == (True, False)
    assert (new[1] is None, new[3] is None) == (False, True)
    assert answer.json()["kiosk"]["id"] == new[0]


# -- GET /api/v1/kiosk/config and /api/v1/kiosk/phone-code ---------------------------------------

latin1_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=80)


@fuzz_settings(300)
@given(data=st.data())
@shows_first_failure
def test_kiosk_config_under_fuzzing(fuzzed: Fuzzed, data: st.DataObject) -> None:
    token = fuzzed.kiosk_token
    path = data.draw(st.sampled_from(["/api/v1/kiosk/config", "/api/v1/kiosk/phone-code"]))
    near_misses = [f"Bearer  {token} ", f"bearer {token}", f"Bearer {token}x"]
    near_misses += [f"Bearer {token[:-1]}", token, "Bearer ", "Basic dXNlcjpwdw=="]
    authorization = data.draw(
        st.one_of(
            st.just(f"Bearer {token}"),
            st.sampled_from(near_misses),
            latin1_text.map(lambda text: "Bearer " + text),
            latin1_text,
        )
    )
    tag = fuzzed.config_tag
    if_none_match = data.draw(
        st.sampled_from([None, tag, f"W/{tag}", f'"x", {tag}', "*", '"0"']) | latin1_text
    )
    headers = {"Authorization": authorization.encode("latin-1")}
    if if_none_match is not None:
        headers["If-None-Match"] = if_none_match.encode("latin-1")
    answer = fuzzed.send("GET", path, None, headers)
    assert_api_answer(answer)
    if token not in authorization:
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
    elif authorization == f"Bearer {token}":
        listed = [part.strip() for part in (if_none_match or "").split(",")]
        fresh = path.endswith("config") and tag in listed
        assert answer.status_code == (304 if fresh else 200)
        assert fresh or answer.json()


# -- POST /s/{office}: the phone form ------------------------------------------------------------

FORM_FIELDS: Final = {"id", "lang", "p", "k", "comment", *(f"answer-{i}" for i in CORE + MORE)}
FORM_LANGS: Final = [*sorted(LANGUAGES), "AR", "de_DE", "fa-AF", "prs", "ku", "*", "xx", " uk "]
# Office ids that stay one path segment: /s/a/b is another route, not a survey.
office_names = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="/"), min_size=1, max_size=40
).filter(lambda name: name not in (".", ".."))
NOT_FORM_TYPES: Final = [t for t in MEDIA_TYPES if not t.startswith((FORM_TYPE, "multipart/"))]
ACCEPT_LANGUAGES: Final = ["ar,de;q=0.5", "de-x-ls", "fa-AF", "ku", "*", "en;q=nan", "tr;q=inf"]
bad_answers = st.one_of(
    st.sampled_from([" 4 ", "٣", "0", "6", "-1", "+2", "4.0", "1e0", "", "x", "9" * 5000]),
    plain_text,
)


def form_fields(data: st.DataObject, fuzzed: Fuzzed) -> list[tuple[str, str | bytes]]:
    """The fields a phone sends, some left out, some garbled, some unknown."""
    fields: list[tuple[str, str | bytes]] = []
    response_id = data.draw(st.sampled_from(["new"] * 3 + ["old", "garbage", "none"]))
    if response_id == "new":
        fields.append(("id", fuzzed.new_id()))
    elif response_id == "old":
        fields.append(("id", earlier(data, fuzzed.acknowledged) or fuzzed.new_id()))
    elif response_id == "garbage":
        fields.append(("id", data.draw(plain_text)))
    lang = data.draw(st.none() | st.sampled_from(FORM_LANGS) | plain_text)
    if lang is not None:
        fields.append(("lang", lang))
    for item in CORE + MORE:
        # A form with every core answer must come up often: it is the one that is stored.
        presence, garbage = data.draw(st.tuples(st.integers(0, 19), st.integers(0, 19)))
        if presence < (19 if item in CORE else 6):
            answer = data.draw(bad_answers if garbage == 0 else st.sampled_from("12345"))
            fields.append((f"answer-{item}", answer))
    for name, values in [("comment", comments), ("p", st.sampled_from([PLACEMENT, "<b>"]))]:
        value = data.draw(st.none() | values)
        if value is not None:
            fields.append((name, value))
    extra_names = any_text.filter(lambda name: name not in FORM_FIELDS)
    extra_values = any_text | st.binary(max_size=20)
    fields += data.draw(st.lists(st.tuples(extra_names, extra_values), max_size=2))
    if data.draw(st.integers(0, 9)) == 0:  # a raw byte string where text belongs
        index = data.draw(st.integers(0, max(len(fields) - 1, 0)))
        if fields:
            fields[index] = (fields[index][0], data.draw(st.binary(max_size=8)))
    return fields


# Charsets a form part may name: real ones, unknown ones, and codecs that are not text at all.
PART_CHARSETS: Final = [b"utf-8", b"latin-1", b"utf-16", b"no-such-charset", b"rot13"]
PART_CHARSETS.extend([b"unicode_escape", b"idna", b"punycode", b"zlib_codec"])
# After a part's name: nothing, a file name (a file, not a field), or a charset of its own.
PART_EXTRAS: Final = [
    b"",
    b'; filename="a.txt"',
    *(b"\r\nContent-Type: text/plain; charset=" + charset for charset in PART_CHARSETS),
]


def multipart(fields: list[tuple[str, str | bytes]], boundary: bytes, extra: bytes) -> bytes:
    def raw(text: str | bytes) -> bytes:
        return text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")

    parts = [
        b"--"
        + boundary
        + b'\r\nContent-Disposition: form-data; name="'
        + raw(name)
        + b'"'
        + extra
        + b"\r\n\r\n"
        + raw(value)
        + b"\r\n"
        for name, value in fields
    ]
    return b"".join(parts) + b"--" + boundary + b"--\r\n"


def form_language(fields: list[tuple[str, str | bytes]]) -> str | None:
    langs = [value for name, value in fields if name == "lang"]
    return langs[-1] if langs and isinstance(langs[-1], str) else None


def form_id(fields: list[tuple[str, str | bytes]]) -> str | None:
    """The id the server keeps: the form's own when it is a UUID, otherwise a fresh one."""
    ids = [value for name, value in fields if name == "id"]
    if not ids or not isinstance(ids[-1], str):
        return None
    try:
        return str(uuid.UUID(ids[-1]))
    except ValueError:
        return None


@fuzz_settings(800)
@given(data=st.data())
@shows_first_failure
def test_phone_form_under_fuzzing(fuzzed: Fuzzed, data: st.DataObject) -> None:
    fields = form_fields(data, fuzzed)
    office = data.draw(st.sampled_from([*OFFICE_IDS, "nowhere"]) | office_names)
    query_lang = data.draw(st.none() | st.sampled_from(FORM_LANGS))
    path = f"/s/{quote(office, safe='')}" + (f"?lang={quote(query_lang)}" if query_lang else "")
    encoding = data.draw(
        st.sampled_from(["urlencoded"] * 5 + ["multipart"] * 2 + ["bytes", "oversized", "media"])
    )
    content_type = FORM_TYPE
    urlencoded = urlencode(fields, encoding="utf-8", errors="surrogatepass").encode()
    if encoding == "urlencoded":
        content = urlencoded
    elif encoding == "multipart":
        boundary = data.draw(st.sampled_from([b"x", b"----fuzz", b"\xff"]))
        extra = data.draw(st.sampled_from(PART_EXTRAS))
        content = damaged(data, multipart(fields, b"----fuzz", extra))
        content_type = "multipart/form-data; boundary=" + boundary.decode("latin-1")
    elif encoding == "bytes":
        content = data.draw(st.binary(max_size=2048))
        content_type = data.draw(st.sampled_from([FORM_TYPE, "multipart/form-data; boundary=x"]))
    elif encoding == "oversized":
        size = data.draw(st.sampled_from([FORM_LIMIT + 1, 4 * FORM_LIMIT]))
        content = (urlencoded + b"&pad=" + b"x" * size)[:size]
    else:
        content = urlencoded
        content_type = data.draw(st.sampled_from(NOT_FORM_TYPES))
    headers: dict[str, Any] = {"content-type": content_type.encode("latin-1")}
    if not content_type:
        del headers["content-type"]
    length = lying_length(data, content, FORM_LIMIT)
    if length is not None:
        headers["content-length"] = length
    accept = data.draw(st.none() | st.sampled_from(ACCEPT_LANGUAGES) | latin1_text)
    if accept is not None:
        headers["accept-language"] = accept.encode("latin-1")
    # A new phone in most examples, so that the repeat limiter refuses only some of them.
    one_phone = data.draw(st.integers(0, 2)) == 0
    headers["user-agent"] = "fuzz phone" if one_phone else f"fuzz phone {fuzzed.serial()}"

    before = set(fuzzed.acknowledged)
    answer = fuzzed.send("POST", path, content, headers)
    assert answer.status_code < 500, (path, headers, content[:300], answer.text[:300])
    assert answer.headers["content-type"].startswith("text/html"), (path, answer.text[:300])
    root = HTML_ROOT.search(answer.text)
    assert root, answer.text[:400]
    lang, direction = root.groups()
    assert lang in LANGUAGES
    assert direction == LANGUAGES[lang].direction
    if answer.status_code in (400, 413):  # the form was never read: the page's own language
        assert lang == choose_language(query_lang, accept, "de")
    elif encoding == "media":
        assert lang == choose_language(None, accept, "de")
    elif encoding == "urlencoded" and length is None:
        assert lang == choose_language(form_language(fields), accept, "de")

    stored = fuzzed.stored_ids()
    new = stored - before
    if answer.status_code != 200:
        assert new == set(), f"{answer.status_code} but stored {new}"
        return
    # Thanked: the form's id is stored (now, or by an earlier submission with that id); a form
    # without a usable id is stored under a fresh one.
    kept = form_id(fields) if encoding == "urlencoded" else None
    if kept is not None:
        assert new <= {kept}
        assert kept in stored
    else:
        assert len(new) == 1 or (new == set() and encoding != "urlencoded")
    for row_office, channel, kiosk_id, row_lang, answers, _ in fuzzed.stored_rows(new).values():
        assert (row_office, channel, kiosk_id, row_lang) == (office, "qr", None, lang)
        assert set(answers) >= set(CORE)
        assert set(answers.values()) <= {1, 2, 3, 4, 5}
    fuzzed.acknowledged |= new
    assert_only_acknowledged_stored(fuzzed)


# -- after the fuzzing ---------------------------------------------------------------------------


def test_server_still_takes_valid_submissions(fuzzed: Fuzzed) -> None:
    """No crash, no stuck writer: every channel still stores (alone, on a fresh app, too)."""
    client = fuzzed.client
    body: dict[str, Any] = {
        "id": fuzzed.new_id(),
        "office": "mh-main",
        "survey": "atmosphere",
        "version": 1,
        "channel": "web",
        "lang": "de",
        "answers": dict.fromkeys(CORE, 2),
    }
    assert client.post("/api/v1/responses", json=body).status_code == 201
    item = {key: body[key] for key in ("survey", "version", "lang", "answers")}
    batch = {"responses": [{**item, "id": fuzzed.new_id()}]}
    answer = client.post("/api/v1/kiosk/responses", json=batch, headers=bearer(fuzzed.kiosk_token))
    assert answer.status_code == 200
    assert answer.json()["results"][0]["status"] == "created"
    beat = {"app_version": "1", "queue_length": 0}
    beat_answer = client.post(
        "/api/v1/kiosk/heartbeat", json=beat, headers=bearer(fuzzed.kiosk_token)
    )
    assert beat_answer.status_code == 204
    form = {"id": fuzzed.new_id(), "lang": "ar", **{f"answer-{i}": "3" for i in CORE}}
    page = client.post("/s/mh-u25", data=form, headers={"user-agent": "after the fuzzing"})
    assert page.status_code == 200
    assert '<html lang="ar" dir="rtl">' in page.text
    fuzzed.acknowledged |= {body["id"], batch["responses"][0]["id"], form["id"]}
    assert_only_acknowledged_stored(fuzzed)


def test_fuzzing_reached_the_answers_behind_the_parsers(fuzzed: Fuzzed) -> None:
    """The generators are not stuck in front of the parsers: every kind of answer came up.

    (Runs after the fuzz tests on the same app; alone it has nothing to look at.)
    """
    if "/api/v1/responses" not in fuzzed.statuses:
        pytest.skip("runs after the fuzz tests")
    reached = {path: set(counts) for path, counts in fuzzed.statuses.items()}
    assert {200, 201, 400, 409, 413, 415, 422} <= reached["/api/v1/responses"]
    assert {200, 400, 401, 413, 415, 422} <= reached["/api/v1/kiosk/responses"]
    assert {"created", "duplicate", "rejected"} <= reached["kiosk verdicts"]
    assert {204, 400, 401, 413, 415, 422} <= reached["/api/v1/kiosk/heartbeat"]
    assert {201, 400, 403, 413, 415, 422} <= reached["/api/v1/kiosk/pair"]
    assert {200, 304, 401} <= reached["/api/v1/kiosk/config"]
    assert {200, 400, 404, 413, 422, 429} <= reached["/s/mh-u25"] | reached["/s/nowhere"]


# -- inputs that once broke a parser -------------------------------------------------------------

INVALID_UTF8_RESPONSE: Final = b'{"id": "\xff\xfe", "office": "mh-u25"}'
DEEP: Final = b"[" * 100_000


@pytest.mark.parametrize(
    ("path", "content"),
    [
        pytest.param("/api/v1/responses", INVALID_UTF8_RESPONSE, id="response-utf8"),
        pytest.param("/api/v1/responses", b'{"answers":' + b"[" * 5000, id="response-deep"),
        pytest.param("/api/v1/responses", b'{"comment": "\xed\xa0\x80"}', id="response-cesu8"),
        pytest.param(
            "/api/v1/kiosk/responses",
            b'{"responses": [' + INVALID_UTF8_RESPONSE + b"]}",
            id="batch-utf8",
        ),
        pytest.param("/api/v1/kiosk/responses", DEEP, id="batch-deep"),
        # nested just about as deep as the decoder goes, where a rejected item's id is echoed
        pytest.param(
            "/api/v1/kiosk/responses",
            b'{"responses": [{"id": ' + b"[" * 990 + b"]" * 990 + b"}]}",
            id="batch-deep-id",
        ),
        pytest.param(
            "/api/v1/kiosk/heartbeat",
            b'{"app_version": "\xff", "queue_length": 1}',
            id="heartbeat-utf8",
        ),
        pytest.param(
            "/api/v1/kiosk/heartbeat", b'{"app_version": ' + b"[" * 2000, id="heartbeat-deep"
        ),
        pytest.param("/api/v1/kiosk/pair", b'{"code": "\xc3"}', id="pair-utf8"),
        pytest.param("/api/v1/kiosk/pair", b'{"code": ' + b'{"a":' * 800, id="pair-deep"),
    ],
)
def test_malformed_json_is_a_client_error(fuzzed: Fuzzed, path: str, content: bytes) -> None:
    before = set(fuzzed.acknowledged)
    answer = fuzzed.post(path, Sent(content, dict(JSON_TYPE), False), bearer(fuzzed.kiosk_token))
    assert_api_answer(answer, content)
    assert answer.status_code in (400, 413, 422) or path == "/api/v1/kiosk/responses", answer.text
    assert fuzzed.stored_ids() == before


@pytest.mark.parametrize(
    "part",
    [
        pytest.param(b'name="comment"\r\n\r\n\xff\xfe', id="invalid-utf8"),
        pytest.param(
            b'name="comment"\r\nContent-Type: text/plain; charset=no-such\r\n\r\nok',
            id="unknown-charset",
        ),
        pytest.param(
            b'name="comment"\r\nContent-Type: text/plain; charset=rot13\r\n\r\nok',
            id="not-a-text-codec",
        ),
    ],
)
def test_undecodable_multipart_form_is_a_page(fuzzed: Fuzzed, part: bytes) -> None:
    """A form part the server cannot decode is a friendly 400 page; nothing is stored."""
    answers = b"".join(
        b'--b\r\nContent-Disposition: form-data; name="answer-%s"\r\n\r\n4\r\n' % item.encode()
        for item in CORE
    )
    content = answers + b"--b\r\nContent-Disposition: form-data; " + part + b"\r\n--b--\r\n"
    before = fuzzed.stored_ids()
    multipart_type = {"content-type": "multipart/form-data; boundary=b"}
    answer = fuzzed.send("POST", "/s/mh-u25?lang=uk", content, multipart_type)
    assert answer.status_code == 400
    assert '<html lang="uk" dir="ltr">' in answer.text
    assert fuzzed.stored_ids() == before
