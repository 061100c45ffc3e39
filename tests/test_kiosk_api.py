"""The kiosk API through the Litestar test client: pairing, batches, misuse flags, revocation."""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from officepulse.kiosk import (
    PHONE_WINDOW_SECONDS,
    KioskState,
    phone_token,
    verify_phone_token,
)
from officepulse.offices import Office
from officepulse.operations import OPERATIONS, KioskAdd, KioskId, NoParams
from officepulse.runtime import Runtime
from officepulse.settings import Settings

from .conftest import SECRET, app_with_offices, stored_rows

Client = TestClient[Litestar]
CORE = ("stress_now", "respect", "rooms", "effort", "overall")


@pytest.fixture
def kiosk_app(settings: Settings) -> Iterator[tuple[Litestar, Client]]:
    with app_with_offices(
        settings,
        [
            Office(id="mh-u25", name="U-25 Haus", kind="pilot"),
            Office(id="mh-main", name="Hauptstelle", kind="conventional"),
        ],
        [("mh-u25", "entrance")],
    ) as app_and_client:
        yield app_and_client


def add_kiosk(app: Litestar, office: str = "mh-u25", placement: str | None = "entrance") -> Any:
    runtime: Runtime = app.state.runtime
    return OPERATIONS["kiosk.add"].run(
        runtime, KioskAdd(office=office, name="Eingang", placement=placement)
    )


def paired(app: Litestar, client: Client, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    return paired_with(client, add_kiosk(app, **kwargs).pairing_code.lower())


def paired_with(client: Client, code: str) -> tuple[str, dict[str, Any]]:
    answer = client.post("/api/v1/kiosk/pair", json={"code": code})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    return body["token"], body


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def kiosk_response(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "survey": "atmosphere",
        "version": 1,
        "lang": "de",
        "answers": dict.fromkeys(CORE, 4),
        "completed_at": dt.datetime.now(dt.UTC).isoformat(),
        "partial": False,
    }
    body.update(changes)
    return body


def send(client: Client, token: str, *responses: Any) -> list[dict[str, Any]]:
    answer = client.post(
        "/api/v1/kiosk/responses", json={"responses": list(responses)}, headers=auth(token)
    )
    assert answer.status_code == 200, answer.text
    results: list[dict[str, Any]] = answer.json()["results"]
    return results


def test_pairing_gives_a_token_and_the_configuration(kiosk_app: tuple[Litestar, Client]) -> None:
    app, client = kiosk_app
    token, body = paired(app, client)
    assert len(token) >= 40
    assert body["kiosk"]["office"] == "mh-u25"
    assert body["kiosk"]["placement"] == "entrance"
    config = body["config"]
    assert config["flow"][0] == "overall"
    assert set(config["flow"]) == set(CORE)
    assert len(config["languages"]) == 13
    items = {item["id"]: item for item in config["survey"]["items"]}
    for lang in ("de", "ar", "uk", "de-x-ls"):
        assert items["overall"]["text"][lang]
        assert len(items["overall"]["labels"][lang]) == 5
        assert config["ui"][lang]["still_there"]
    assert config["timings"]["idle_seconds"] == 30
    # only a keyed hash of the token is stored
    stored = stored_rows(app, "SELECT token_hash, pairing_code_hash FROM kiosks")
    assert stored[0][0]
    assert token not in stored[0][0]
    assert stored[0][1] is None  # the code is used up


@pytest.mark.parametrize("case", ["wrong", "used", "expired", "revoked"])
def test_bad_pairing_codes_are_403(kiosk_app: tuple[Litestar, Client], case: str) -> None:
    app, client = kiosk_app
    created = add_kiosk(app)
    code = created.pairing_code
    runtime: Runtime = app.state.runtime
    if case == "wrong":
        code = "AAAA-AAAA"
    elif case == "used":
        assert client.post("/api/v1/kiosk/pair", json={"code": code}).status_code == 201
    elif case == "expired":
        runtime.store.write(
            lambda cur: cur.execute("UPDATE kiosks SET pairing_expires = now() - INTERVAL 1 MINUTE")
        ).result()
    else:
        OPERATIONS["kiosk.revoke"].run(runtime, KioskId(id=created.id))
    answer = client.post("/api/v1/kiosk/pair", json={"code": code})
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"] == "/problems/pairing-code-invalid"


ATTEMPT = "a1b2c3d4e5f60718293a4b5c"


def test_a_lost_pairing_answer_can_be_asked_again_with_the_same_attempt(
    kiosk_app: tuple[Litestar, Client],
) -> None:
    """On a flaky network the tablet may never see its token: the retry gets a new one."""
    app, client = kiosk_app
    created = add_kiosk(app)
    request = {"code": created.pairing_code, "attempt": ATTEMPT}
    lost = client.post("/api/v1/kiosk/pair", json=request)  # the tablet never sees this
    assert lost.status_code == 201
    again = client.post(
        "/api/v1/kiosk/pair", json={**request, "code": created.pairing_code.lower()}
    )
    assert again.status_code == 201, again.text
    assert again.json()["kiosk"]["id"] == created.id
    assert again.json()["token"] != lost.json()["token"]
    # The token nobody received no longer works; the new one does.
    assert client.get("/api/v1/kiosk/config", headers=auth(lost.json()["token"])).status_code == 401
    assert (
        client.get("/api/v1/kiosk/config", headers=auth(again.json()["token"])).status_code == 200
    )
    assert len(stored_rows(app, "SELECT id FROM kiosks WHERE token_hash IS NOT NULL")) == 1
    # Nothing else gets in with the used code: another attempt id, or none at all.
    for other in ({"code": created.pairing_code}, {**request, "attempt": "f" * 24}):
        refused = client.post("/api/v1/kiosk/pair", json=other)
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"] == "/problems/pairing-code-invalid"


@pytest.mark.parametrize("case", ["late", "revoked", "no-attempt-first"])
def test_pairing_retries_end(kiosk_app: tuple[Litestar, Client], case: str) -> None:
    app, client = kiosk_app
    runtime: Runtime = app.state.runtime
    created = add_kiosk(app)
    request = {"code": created.pairing_code, "attempt": ATTEMPT}
    first = {"code": created.pairing_code} if case == "no-attempt-first" else request
    assert client.post("/api/v1/kiosk/pair", json=first).status_code == 201
    if case == "late":  # the retry window (minutes) is over
        runtime.store.write(
            lambda cur: cur.execute(
                "UPDATE kiosks SET pairing_retry_expires = now() - INTERVAL 1 SECOND"
            )
        ).result()
    elif case == "revoked":
        OPERATIONS["kiosk.revoke"].run(runtime, KioskId(id=created.id))
    answer = client.post("/api/v1/kiosk/pair", json=request)
    assert answer.status_code == 403, answer.text


@pytest.mark.parametrize("attempt", ["short", "x" * 65, "not allowed!" * 2, 12345678901234567])
def test_malformed_pairing_attempts_are_422(
    kiosk_app: tuple[Litestar, Client], attempt: object
) -> None:
    app, client = kiosk_app
    created = add_kiosk(app)
    answer = client.post(
        "/api/v1/kiosk/pair", json={"code": created.pairing_code, "attempt": attempt}
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    # The code is not used up by a refused request.
    assert client.post("/api/v1/kiosk/pair", json={"code": created.pairing_code}).status_code == 201


def test_too_many_wrong_codes_are_throttled(kiosk_app: tuple[Litestar, Client]) -> None:
    app, client = kiosk_app
    created = add_kiosk(app)
    statuses = [
        client.post("/api/v1/kiosk/pair", json={"code": f"WRNG-{i:04d}"}).status_code
        for i in range(5)
    ]
    assert statuses == [403] * 5
    blocked = client.post("/api/v1/kiosk/pair", json={"code": created.pairing_code})
    assert blocked.status_code == 429
    assert blocked.headers["retry-after"]


@pytest.mark.parametrize("body", [b"{}", b"[]", b'{"code": 5}', b"nope"])
def test_malformed_pairing_requests(kiosk_app: tuple[Litestar, Client], body: bytes) -> None:
    _, client = kiosk_app
    answer = client.post(
        "/api/v1/kiosk/pair", content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code in (400, 422)
    assert answer.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_kiosk_bodies_not_declared_as_json_are_415_and_change_nothing(
    kiosk_app: tuple[Litestar, Client], content_type: str | None
) -> None:
    """Like /api/v1/responses: a body is read as JSON only when it says it is JSON."""
    app, client = kiosk_app
    created = add_kiosk(app)
    headers = {} if content_type is None else {"content-type": content_type}

    def post(path: str, body: Any, extra: dict[str, str]) -> Any:
        answer = client.post(path, content=json.dumps(body), headers={**headers, **extra})
        assert answer.status_code == 415, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["status"] == 415
        return answer

    post("/api/v1/kiosk/pair", {"code": created.pairing_code}, {})
    # the code was not used up: the same code, sent as JSON, still pairs
    token, _ = paired_with(client, created.pairing_code)
    post("/api/v1/kiosk/responses", {"responses": [kiosk_response()]}, auth(token))
    post("/api/v1/kiosk/heartbeat", {"app_version": "kiosk-2", "queue_length": 7}, auth(token))
    assert stored_rows(app, "SELECT count(*) FROM responses") == [(0,)]
    assert stored_rows(app, "SELECT queue_length, app_version FROM kiosks") == [(None, None)]
    # a missing token is still the first thing a tablet hears about
    unpaired = client.post("/api/v1/kiosk/heartbeat", content=b"{}", headers=headers)
    assert unpaired.status_code == 401


def test_batch_with_new_duplicate_and_invalid_responses(kiosk_app: tuple[Litestar, Client]) -> None:
    app, client = kiosk_app
    token, _ = paired(app, client)
    first = kiosk_response()
    assert send(client, token, first) == [{"id": first["id"], "status": "created"}]
    new = kiosk_response(office="mh-main", placement="behind-the-desk", channel="qr")
    bad_value = kiosk_response(answers={**dict.fromkeys(CORE, 4), "rooms": 9})
    missing_core = kiosk_response(answers={"overall": 5})
    not_object = "just a string"
    conflict = dict(first, answers=dict.fromkeys(CORE, 1))
    results = send(client, token, first, new, bad_value, missing_core, not_object, conflict)
    statuses = [(r["id"], r["status"]) for r in results]
    assert statuses == [
        (first["id"], "duplicate"),
        (new["id"], "created"),
        (bad_value["id"], "rejected"),
        (missing_core["id"], "rejected"),
        ("", "rejected"),
        (first["id"], "rejected"),
    ]
    assert results[2]["errors"][0]["pointer"] == "#/answers/rooms"
    assert {e["pointer"] for e in results[3]["errors"]} == {f"#/answers/{i}" for i in CORE[:-1]}
    rows = stored_rows(
        app,
        "SELECT id::VARCHAR, office_id, channel, placement, kiosk_id FROM responses ORDER BY 1",
    )
    assert len(rows) == 2
    for row in rows:
        # office, channel and placement come from the token, never from the body
        assert row[1:4] == ("mh-u25", "kiosk", "entrance")
        assert row[4].startswith("mh-u25-")


def test_an_undecodable_response_is_rejected_alone(kiosk_app: tuple[Litestar, Client]) -> None:
    """Well-formed JSON no decoder takes (1e400, 4,301 digits) sinks only its own response."""
    app, client = kiosk_app
    token, _ = paired(app, client)
    before, after = kiosk_response(), kiosk_response()
    huge = kiosk_response()
    huge_text = json.dumps(huge).replace('"rooms": 4', '"rooms": 1e400')
    assert "1e400" in huge_text
    long = kiosk_response()
    long_text = json.dumps(long).replace('"overall": 4', '"overall": ' + "9" * 4301)
    items = [json.dumps(before), huge_text, "[-1e400]", long_text, json.dumps(after)]
    body = '{"responses": [' + ", ".join(items) + "]}"
    answer = client.post(
        "/api/v1/kiosk/responses",
        content=body,
        headers={**auth(token), "content-type": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [(r["id"], r["status"]) for r in results] == [
        (before["id"], "created"),
        (huge["id"], "rejected"),
        ("", "rejected"),
        (long["id"], "rejected"),
        (after["id"], "created"),
    ]
    assert "out of range" in results[1]["errors"][0]["detail"]
    stored = stored_rows(app, "SELECT id::VARCHAR FROM responses ORDER BY 1")
    assert stored == sorted([(before["id"],), (after["id"],)])


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"responses": {}}', 422),
        (b'{"responses": null}', 422),
        (b"[]", 422),
        (b"1e400", 422),
        (b'{"responses": [1,]}', 400),
        (b'{"responses": [{"id": "a"}, {"id": "\xff"}]}', 400),
        (b'{"\xc0\xaf": 1, "responses": []}', 400),
        (b'{"responses": [' + b"[" * 5000 + b"]" * 5000 + b"]}", 400),
    ],
)
def test_batches_of_the_wrong_shape(
    kiosk_app: tuple[Litestar, Client], body: bytes, status: int
) -> None:
    app, client = kiosk_app
    token, _ = paired(app, client)
    answer = client.post(
        "/api/v1/kiosk/responses",
        content=body,
        headers={**auth(token), "content-type": "application/json"},
    )
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert stored_rows(app, "SELECT count(*) FROM responses") == [(0,)]


def test_partial_responses(kiosk_app: tuple[Litestar, Client]) -> None:
    app, client = kiosk_app
    token, _ = paired(app, client)
    partial = kiosk_response(answers={"overall": 2}, partial=True)
    empty = kiosk_response(answers={}, partial=True)
    results = send(client, token, partial, empty)
    assert [r["status"] for r in results] == ["created", "rejected"]
    assert stored_rows(app, "SELECT answers, flags FROM responses") == [
        ({"overall": 2}, ["partial"])
    ]


def test_completion_time_dates_queued_responses(kiosk_app: tuple[Litestar, Client]) -> None:
    app, client = kiosk_app
    token, _ = paired(app, client)
    now = dt.datetime.now(dt.UTC)
    earlier = now - dt.timedelta(hours=5, minutes=17)
    queued = kiosk_response(completed_at=earlier.isoformat())
    future = kiosk_response(completed_at=(now + dt.timedelta(days=2)).isoformat())
    garbage = kiosk_response(completed_at="yesterday")
    assert [r["status"] for r in send(client, token, queued, future, garbage)] == ["created"] * 3
    rows = dict(stored_rows(app, "SELECT id::VARCHAR, received_at FROM responses"))
    runtime: Runtime = app.state.runtime
    zone = runtime.settings.zone
    expected = earlier.astimezone(zone).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    assert rows[queued["id"]] == expected
    this_hour = now.astimezone(zone).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    assert rows[future["id"]] in (this_hour, this_hour + dt.timedelta(hours=1))
    assert rows[garbage["id"]] in (this_hour, this_hour + dt.timedelta(hours=1))
    for value in rows.values():
        assert (value.minute, value.second) == (0, 0)


def test_burst_flags(kiosk_app: tuple[Litestar, Client]) -> None:
    app, client = kiosk_app
    token, _ = paired(app, client)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)

    def at(seconds: float) -> dict[str, Any]:
        return kiosk_response(completed_at=(start + dt.timedelta(seconds=seconds)).isoformat())

    # 1 s after the previous one: burst; 5 s apart: fine until the 11th within 60 s
    quick = [at(0), at(1)]
    steady = [at(100 + 5 * i) for i in range(12)]
    later = at(1000)
    batch = [*quick, *steady, later]
    send(client, token, *reversed(batch))  # arrival order does not matter
    flags = dict(stored_rows(app, "SELECT id::VARCHAR, flags FROM responses"))
    assert flags[quick[0]["id"]] == []
    assert flags[quick[1]["id"]] == ["burst"]
    assert [flags[r["id"]] for r in steady[:10]] == [[]] * 10
    assert [flags[r["id"]] for r in steady[10:]] == [["burst"], ["burst"]]
    assert flags[later["id"]] == []
    # a retry of the same batch changes nothing
    results = send(client, token, *batch)
    assert {r["status"] for r in results} == {"duplicate"}
    assert dict(stored_rows(app, "SELECT id::VARCHAR, flags FROM responses")) == flags


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/v1/kiosk/responses", {"responses": []}),
        ("post", "/api/v1/kiosk/heartbeat", {"app_version": "k1", "queue_length": 0}),
        ("get", "/api/v1/kiosk/config", None),
        ("get", "/api/v1/kiosk/phone-code", None),
    ],
)
def test_revoked_or_missing_tokens_get_401(
    kiosk_app: tuple[Litestar, Client], method: str, path: str, body: Any
) -> None:
    app, client = kiosk_app
    token, pairing = paired(app, client)

    def call(headers: dict[str, str]) -> Any:
        if method == "get":
            return client.get(path, headers=headers)
        return client.post(path, json=body, headers=headers)

    assert call(auth(token)).status_code in (200, 204)
    assert call({}).status_code == 401
    assert call(auth("not-a-token")).status_code == 401
    runtime: Runtime = app.state.runtime
    OPERATIONS["kiosk.revoke"].run(runtime, KioskId(id=pairing["kiosk"]["id"]))
    answer = call(auth(token))
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"] == "/problems/kiosk-not-paired"


def test_heartbeat_and_kiosk_list(kiosk_app: tuple[Litestar, Client]) -> None:
    app, client = kiosk_app
    token, pairing = paired(app, client)
    silent = add_kiosk(app, office="mh-main", placement=None)
    answer = client.post(
        "/api/v1/kiosk/heartbeat",
        json={"app_version": "kiosk-1", "queue_length": 7},
        headers=auth(token),
    )
    assert answer.status_code == 204
    runtime: Runtime = app.state.runtime
    kiosks = {k.id: k for k in OPERATIONS["kiosk.list"].run(runtime, NoParams())}
    mine = kiosks[pairing["kiosk"]["id"]]
    assert (mine.queue_length, mine.app_version, mine.silent, mine.paired) == (
        7,
        "kiosk-1",
        False,
        True,
    )
    assert kiosks[silent.id].paired is False
    runtime.store.write(
        lambda cur: cur.execute(
            "UPDATE kiosks SET last_heartbeat = now() - INTERVAL 11 MINUTE WHERE id = ?",
            [mine.id],
        )
    ).result()
    kiosks = {k.id: k for k in OPERATIONS["kiosk.list"].run(runtime, NoParams())}
    assert kiosks[mine.id].silent is True


def test_kiosk_add_refuses_unknown_office_and_placement(kiosk_app: tuple[Litestar, Client]) -> None:
    from officepulse.operations import OperationError

    app, _ = kiosk_app
    with pytest.raises(OperationError, match="unknown office"):
        add_kiosk(app, office="nowhere")
    with pytest.raises(OperationError, match="not registered"):
        add_kiosk(app, placement="roof")


def test_kiosk_add_draws_again_when_the_id_or_code_is_taken(
    kiosk_app: tuple[Litestar, Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Short ids clash now and then (six hex digits per office): the next draw is used."""
    import officepulse.kiosk as kiosk_module

    app, client = kiosk_app
    first = add_kiosk(app)
    suffix = first.id.removeprefix("mh-u25-")
    hexes = iter([suffix, "123456", "abcdef"])
    codes = iter(["AAAA-BBBB", first.pairing_code, "CCCC-DDDD"])
    monkeypatch.setattr(secrets, "token_hex", lambda _n: next(hexes))
    monkeypatch.setattr(kiosk_module, "new_pairing_code", lambda: next(codes))
    second = add_kiosk(app)
    # the first draw clashed on the id, the second on the pending code, the third is free
    assert (second.id, second.pairing_code) == ("mh-u25-abcdef", "CCCC-DDDD")
    monkeypatch.undo()
    ids = [row[0] for row in stored_rows(app, "SELECT id FROM kiosks ORDER BY created_at")]
    assert ids == [first.id, "mh-u25-abcdef"]
    for created in (first, second):
        answer = client.post("/api/v1/kiosk/pair", json={"code": created.pairing_code})
        assert answer.status_code == 201, answer.text
        assert answer.json()["kiosk"]["id"] == created.id


def test_phone_code_leads_to_a_verified_onsite_response(kiosk_app: tuple[Litestar, Client]) -> None:
    app, client = kiosk_app
    token, _ = paired(app, client)
    code = client.get("/api/v1/kiosk/phone-code", headers=auth(token)).json()
    assert code["svg"].startswith("<?xml") or code["svg"].startswith("<svg")
    assert 0 < code["expires_in"] <= PHONE_WINDOW_SECONDS
    path = code["url"].split("://", 1)[1].split("/", 1)[1]
    page = client.get("/" + path)
    assert page.status_code == 200
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    assert hidden["k"].count(".") == 2
    fields = {**hidden, **{f"answer-{i}": "4" for i in CORE}}
    assert client.post("/s/mh-u25", data=fields).status_code == 200
    # Change the code's last character (to something it is not already).
    last = "1" if hidden["k"].endswith("0") else "0"
    tampered = {**fields, "id": str(uuid.uuid4()), "k": hidden["k"][:-1] + last}
    assert client.post("/s/mh-u25", data=tampered).status_code == 200
    rows = stored_rows(app, "SELECT id::VARCHAR, channel, flags FROM responses")
    flags = {row[0]: row[2] for row in rows}
    assert flags[hidden["id"]] == ["verified_onsite"]
    assert flags[tampered["id"]] == []


def test_rotating_token_acceptance_window_at_its_edges(kiosk_app: tuple[Litestar, Client]) -> None:
    app, client = kiosk_app
    _, pairing = paired(app, client)
    kiosk_id = pairing["kiosk"]["id"]
    state: KioskState = app.state.kiosks
    tokens = state.tokens
    window = 5_000_000
    start = window * PHONE_WINDOW_SECONDS
    token = phone_token(SECRET, kiosk_id, window)

    def ok(moment: float, office: str = "mh-u25", value: str = token) -> bool:
        return verify_phone_token(SECRET, value, office, tokens, moment)

    assert not ok(start - 1)  # not yet issued
    assert ok(start)
    assert ok(start + 899)  # 15 minutes after it was first shown ...
    assert not ok(start + 900)  # ... and no longer
    assert not ok(start, office="mh-main")
    assert not ok(start, value=token.replace(str(window), str(window + 1)))
    assert not ok(start, value="garbage")
    assert not ok(
        start, value=phone_token("another-secret-key-of-enough-length-0000", kiosk_id, window)
    )
    assert re.fullmatch(r"[a-z0-9-]+\.\d+\.[0-9a-f]{16}", token)


def test_app_shell_is_small_self_contained_and_strict(kiosk_app: tuple[Litestar, Client]) -> None:
    _, client = kiosk_app
    total = 0
    for path in ("/kiosk/", "/kiosk/kiosk.js", "/kiosk/kiosk.css", "/kiosk/sw.js"):
        answer = client.get(path)
        assert answer.status_code == 200, path
        csp = answer.headers["content-security-policy"]
        assert "unsafe-inline" not in csp
        assert "unsafe-eval" not in csp
        assert "set-cookie" not in answer.headers
        text = answer.text
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in text
        total += len(answer.content)
    assert total < 100 * 1024
    assert (
        client.get("/kiosk/sw.js")
        .headers["content-type"]
        .startswith(("text/javascript", "application/javascript"))
    )
    html = client.get("/kiosk/").text
    assert "<script>" not in html
    assert " style=" not in html


def test_shell_and_pages_travel_compressed(kiosk_app: tuple[Litestar, Client]) -> None:
    _, client = kiosk_app
    for path in ("/kiosk/", "/kiosk/kiosk.js", "/kiosk/kiosk.css", "/kiosk/sw.js"):
        answer = client.get(path, headers={"accept-encoding": "gzip"})
        assert answer.status_code == 200
        if len(answer.content) > 1024:
            assert answer.headers["content-encoding"] == "gzip", path
    page = client.get("/s/mh-u25", headers={"accept-encoding": "gzip"})
    assert page.headers["content-encoding"] == "gzip"


def test_an_unchanged_configuration_is_answered_304(kiosk_app: tuple[Litestar, Client]) -> None:
    app, client = kiosk_app
    token, body = paired(app, client)
    first = client.get("/api/v1/kiosk/config", headers=auth(token))
    assert first.status_code == 200
    assert first.json() == body["config"]
    tag = first.headers["etag"]
    assert tag.startswith('"')
    assert first.headers["cache-control"] == "no-cache"
    again = client.get("/api/v1/kiosk/config", headers={**auth(token), "If-None-Match": tag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == tag
    listed = client.get(
        "/api/v1/kiosk/config", headers={**auth(token), "If-None-Match": f'"other", {tag}'}
    )
    assert listed.status_code == 304
    stale = client.get("/api/v1/kiosk/config", headers={**auth(token), "If-None-Match": '"old"'})
    assert stale.status_code == 200
    assert stale.json() == body["config"]
    # the tag is no way around pairing
    stranger = client.get("/api/v1/kiosk/config", headers={"If-None-Match": tag})
    assert stranger.status_code == 401
