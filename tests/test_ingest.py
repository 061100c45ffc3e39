"""POST /api/v1/responses through the Litestar test client."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import TestClient

from officepulse.app import create_app
from officepulse.languages import LANGUAGES
from officepulse.responses import coarsen_time
from officepulse.scrub import scrub_comment

from .conftest import make_settings, stored_rows, valid_response

URL = "/api/v1/responses"
Client = TestClient[Litestar]


def count(app: Litestar) -> int:
    return int(stored_rows(app, "SELECT count(*) FROM responses")[0][0])


def test_valid_response_is_stored_once_with_coarse_time(client: Client, app: Litestar) -> None:
    body = valid_response()
    answer = client.post(URL, json=body)
    assert answer.status_code == 201
    assert answer.json() == {"id": body["id"]}
    rows = stored_rows(
        app,
        "SELECT id::VARCHAR, office_id, survey_id, survey_version, channel, placement, lang,"
        " received_at, answers, comment FROM responses",
    )
    assert len(rows) == 1
    row = rows[0]
    assert row[:7] == (body["id"], "mh-u25", "atmosphere", 1, "qr", "waiting", "de")
    received: dt.datetime = row[7]
    assert (received.minute, received.second, received.microsecond) == (0, 0, 0)
    now = dt.datetime.now(ZoneInfo("Europe/Berlin")).replace(tzinfo=None)
    assert dt.timedelta(0) <= now - received < dt.timedelta(hours=1, minutes=1)
    assert row[8] == body["answers"]
    assert row[9] == "Sehr freundlich."


def test_identical_retry_answers_200_and_adds_nothing(client: Client, app: Litestar) -> None:
    body = valid_response()
    assert client.post(URL, json=body).status_code == 201
    again = client.post(URL, json=body)
    assert again.status_code == 200
    assert again.json() == {"id": body["id"]}
    assert count(app) == 1


def test_conflicting_retry_answers_409(client: Client, app: Litestar) -> None:
    body = valid_response()
    assert client.post(URL, json=body).status_code == 201
    changed = dict(body, answers={**body["answers"], "stress_now": 5})
    answer = client.post(URL, json=changed)
    assert answer.status_code == 409
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["status"] == 409
    assert problem["errors"] == [
        {"pointer": "#/id", "detail": "already used for different content"}
    ]
    assert stored_rows(app, "SELECT answers['stress_now'] FROM responses") == [(2,)]


def test_concurrent_retries_of_one_id_store_one_row(client: Client, app: Litestar) -> None:
    body = valid_response()
    statuses: list[int] = []

    def send() -> None:
        statuses.append(client.post(URL, json=body).status_code)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] * 7 + [201]
    assert count(app) == 1


def test_comment_is_scrubbed_before_it_is_stored(client: Client, app: Litestar) -> None:
    body = valid_response(
        comment="Bitte melden: max.mustermann@example.de oder 0176 123 456 78, Kd-Nr 123A456789"
    )
    assert client.post(URL, json=body).status_code == 201
    (comment,) = stored_rows(app, "SELECT comment FROM responses")[0]
    assert "example.de" not in comment
    assert "0176" not in comment
    assert "456789" not in comment
    assert "[entfernt]" in comment


def test_optional_fields_may_be_left_out(client: Client, app: Litestar) -> None:
    body = valid_response()
    del body["placement"], body["comment"]
    assert client.post(URL, json=body).status_code == 201
    assert stored_rows(app, "SELECT placement, comment FROM responses") == [(None, None)]


def test_extra_items_are_accepted(client: Client) -> None:
    body = valid_response()
    body["answers"].update({"heard": 4, "next_steps": 3, "wayfinding": 5})
    assert client.post(URL, json=body).status_code == 201


BAD_FIELDS: list[tuple[str, dict[str, Any], list[str]]] = [
    ("unknown office", {"office": "nowhere"}, ["#/office"]),
    ("unknown survey", {"survey": "nope"}, ["#/survey"]),
    ("unknown version", {"version": 99}, ["#/version"]),
    ("version not a number", {"version": "1"}, ["#/version"]),
    ("unknown item", {"answers_extra": {"mood": 3}}, ["#/answers/mood"]),
    ("value above scale", {"answers_extra": {"respect": 6}}, ["#/answers/respect"]),
    ("value below scale", {"answers_extra": {"respect": 0}}, ["#/answers/respect"]),
    ("value as string", {"answers_extra": {"respect": "5"}}, ["#/answers/respect"]),
    ("value as float", {"answers_extra": {"respect": 4.5}}, ["#/answers/respect"]),
    ("value as boolean", {"answers_extra": {"respect": True}}, ["#/answers/respect"]),
    ("text item as answer", {"answers_extra": {"comment": 3}}, ["#/answers/comment"]),
    ("missing core item", {"answers_drop": "stress_now"}, ["#/answers/stress_now"]),
    ("answers not an object", {"answers": [1, 2, 3]}, ["#/answers"]),
    ("answers empty", {"answers": {}}, ["#/answers"]),
    ("comment too long", {"comment": "x" * 501}, ["#/comment"]),
    ("comment not a string", {"comment": 12}, ["#/comment"]),
    ("bad uuid", {"id": "not-a-uuid"}, ["#/id"]),
    ("uuid as number", {"id": 12345}, ["#/id"]),
    ("unknown channel", {"channel": "email"}, ["#/channel"]),
    ("unknown language", {"lang": "xx"}, ["#/lang"]),
    ("placement with spaces", {"placement": "Zimmer von Frau X"}, ["#/placement"]),
    ("unknown field", {"ip": "1.2.3.4"}, ["#/ip"]),
    ("missing id", {"drop": "id"}, ["#/id"]),
    ("missing office", {"drop": "office"}, ["#/office"]),
    ("missing lang", {"drop": "lang"}, ["#/lang"]),
    (
        "several at once",
        {"office": "nowhere", "lang": "xx", "channel": "fax", "answers_extra": {"rooms": 9}},
        ["#/office", "#/lang", "#/channel", "#/answers/rooms"],
    ),
]


@pytest.mark.parametrize(
    ("changes", "pointers"),
    [pytest.param(changes, pointers, id=name) for name, changes, pointers in BAD_FIELDS],
)
def test_bad_field_answers_422_naming_every_field_and_stores_nothing(
    client: Client, app: Litestar, changes: dict[str, Any], pointers: list[str]
) -> None:
    changes = dict(changes)
    body = valid_response()
    body["answers"] = dict(body["answers"], **changes.pop("answers_extra", {}))
    if "answers_drop" in changes:
        del body["answers"][changes.pop("answers_drop")]
    if "drop" in changes:
        del body[changes.pop("drop")]
    body.update(changes)
    answer = client.post(URL, json=body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["type"] == "/problems/invalid-response"
    assert problem["title"] == "Unprocessable Content" or problem["title"].startswith(
        "Unprocessable"
    )
    assert problem["status"] == 422
    assert sorted(error["pointer"] for error in problem["errors"]) == sorted(pointers)
    assert all(error["detail"] for error in problem["errors"])
    assert count(app) == 0


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        pytest.param(b'{"id": ', "application/json", 400, id="malformed-json"),
        pytest.param(b"[1, 2]", "application/json", 422, id="json-array"),
        pytest.param(b"id=1&office=x", "application/x-www-form-urlencoded", 415, id="form"),
        pytest.param(b"hello", "text/plain", 415, id="text"),
        pytest.param(b"{}", "", 415, id="no-content-type"),
        pytest.param(b"x" * (16 * 1024 + 1), "application/json", 413, id="too-large"),
    ],
)
def test_bad_bodies_answer_problem_details_and_store_nothing(
    client: Client, app: Litestar, content: bytes, content_type: str, status: int
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    answer = client.post(URL, content=content, headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["status"] == status
    assert problem["title"]
    assert count(app) == 0


def test_body_of_exactly_16_kib_is_not_refused_for_size(client: Client) -> None:
    body = valid_response(comment="x")
    raw = (str(body).replace("'", '"').replace("True", "true")).encode()
    padded = raw[:-1] + b" " * (16 * 1024 - len(raw)) + b"}"
    assert len(padded) == 16 * 1024
    answer = client.post(URL, content=padded, headers={"content-type": "application/json"})
    assert answer.status_code == 201, answer.text


def test_unknown_route_is_problem_details(client: Client) -> None:
    answer = client.get("/api/v1/nothing-here")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["status"] == 404


def test_wrong_method_is_problem_details(client: Client) -> None:
    answer = client.get(URL)
    assert answer.status_code == 405
    assert answer.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("granularity", "moment", "expected"),
    [
        ("hour", "2026-03-29T00:59:59+00:00", "2026-03-29T01:00:00"),  # CET, before DST
        ("hour", "2026-03-29T01:30:00+00:00", "2026-03-29T03:00:00"),  # CEST, after DST
        ("hour", "2026-07-01T09:17:42.123+00:00", "2026-07-01T11:00:00"),
        ("day", "2026-07-01T22:30:00+00:00", "2026-07-02T00:00:00"),  # already 2 July in Berlin
        ("day", "2026-01-15T10:00:00+00:00", "2026-01-15T00:00:00"),
    ],
)
def test_coarsen_time_truncates_in_local_time(granularity: str, moment: str, expected: str) -> None:
    result = coarsen_time(dt.datetime.fromisoformat(moment), granularity, ZoneInfo("Europe/Berlin"))
    assert result == dt.datetime.fromisoformat(expected)


def test_day_granularity_is_applied_to_stored_rows(tmp_path: Any) -> None:
    app = create_app(make_settings(tmp_path / "d", time_granularity="day"))
    with TestClient(app=app) as client:
        runtime = app.state.runtime
        from officepulse.offices import Office, insert_offices

        office = Office(id="mh-u25", name="U-25", kind="pilot")
        runtime.store.write(lambda cur: insert_offices(cur, [office])).result()
        runtime.refresh_offices()
        assert client.post(URL, json=valid_response()).status_code == 201
        (received,) = stored_rows(app, "SELECT received_at FROM responses")[0]
        assert (received.hour, received.minute) == (0, 0)


def test_openapi_document_lists_the_public_routes(client: Client) -> None:
    answer = client.get("/schema/openapi.json")
    assert answer.status_code == 200
    paths = answer.json()["paths"]
    assert "/api/v1/responses" in paths
    assert "/healthz" in paths
    assert not any("admin" in path for path in paths)


def test_schema_has_no_page_that_loads_third_party_scripts(client: Client) -> None:
    for path in ("/schema", "/schema/swagger", "/schema/redoc", "/schema/elements"):
        answer = client.get(path)
        assert "cdn" not in answer.text.lower(), path


def test_healthz(client: Client) -> None:
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"
    assert answer.json()["storage"] == "ok"


def test_each_response_id_is_a_new_row(client: Client, app: Litestar) -> None:
    for _ in range(20):
        assert client.post(URL, json=valid_response(id=str(uuid.uuid4()))).status_code == 201
    assert count(app) == 20


LANGS = sorted(LANGUAGES)
OPTIONAL_ITEMS = ("heard", "next_steps", "wayfinding")


@pytest.fixture(scope="module")
def shared_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Litestar, Client]]:
    """One app for all Hypothesis examples (a fresh app per example would dominate the run)."""
    from officepulse.offices import Office, insert_offices

    app = create_app(make_settings(tmp_path_factory.mktemp("roundtrip") / "data"))
    with TestClient(app=app) as client:
        runtime = app.state.runtime
        office = Office(id="mh-u25", name="U-25", kind="pilot")
        runtime.store.write(lambda cur: insert_offices(cur, [office])).result()
        runtime.refresh_offices()
        yield app, client


@settings(max_examples=60, deadline=None)
@given(
    core=st.fixed_dictionaries(
        {
            item: st.integers(1, 5)
            for item in ("stress_now", "respect", "rooms", "effort", "overall")
        }
    ),
    extra=st.dictionaries(st.sampled_from(OPTIONAL_ITEMS), st.integers(1, 5)),
    lang=st.sampled_from(LANGS),
    channel=st.sampled_from(["qr", "kiosk", "web"]),
    placement=st.none() | st.from_regex(r"[a-z][a-z0-9_-]{0,31}", fullmatch=True),
    comment=st.none() | st.text(max_size=500),
)
def test_any_valid_response_round_trips(
    shared_app: tuple[Litestar, Client],
    core: dict[str, int],
    extra: dict[str, int],
    lang: str,
    channel: str,
    placement: str | None,
    comment: str | None,
) -> None:
    app, client = shared_app
    body = valid_response(
        answers={**core, **extra}, lang=lang, channel=channel, placement=placement, comment=comment
    )
    answer = client.post(URL, json=body)
    assert answer.status_code == 201, answer.text
    (row,) = stored_rows(
        app,
        "SELECT answers, lang, channel, placement, comment FROM responses WHERE id = ?",
        [body["id"]],
    )
    assert row[0] == {**core, **extra}
    # the office has no registered placements here: any given one is stored as 'unknown'
    assert row[1:4] == (lang, channel, None if placement is None else "unknown")
    expected = scrub_comment(comment) if comment else None
    assert row[4] == (expected or None)
    assert client.post(URL, json=body).status_code == 200


def test_api_stores_unregistered_placements_as_unknown(client: Client, app: Litestar) -> None:
    assert client.post(URL, json=valid_response(placement="waiting")).status_code == 201
    assert client.post(URL, json=valid_response(placement="behind-desk-3")).status_code == 201
    rows = stored_rows(app, "SELECT placement FROM responses ORDER BY placement")
    assert rows == [("unknown",), ("waiting",)]
