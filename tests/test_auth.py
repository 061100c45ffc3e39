"""Accounts, sessions, CSRF, login throttling and API tokens, through HTTP and the CLI."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from officepulse.auth import LoginThrottle, safe_next
from officepulse.operations import OPERATIONS, TokenCreate
from officepulse.runtime import Runtime
from officepulse.settings import Settings
from tests.conftest import (
    OFFICES,
    STAFF_PASSWORD,
    add_user,
    app_with_offices,
    csrf_token_in,
    login,
    make_settings,
    submit_login,
)
from tests.serverproc import db_rows, one_error_line, run_cli, server_process

Client = TestClient[Litestar]


@pytest.fixture
def staff(settings: Settings) -> Iterator[tuple[Litestar, Client]]:
    """Offices mh-u25 and mh-main; a manager of mh-u25, an evaluator and an admin."""
    with app_with_offices(settings, list(OFFICES), []) as (app, client):
        add_user(app, "mara", "manager", ("mh-u25",))
        add_user(app, "eva", "evaluator")
        add_user(app, "adam", "admin")
        yield app, client


def rows(app: Litestar, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    runtime: Runtime = app.state.runtime
    return runtime.store.read(lambda cur: cur.execute(sql, params or []).fetchall())


# -- login and sessions ------------------------------------------------------------------------


def test_login_sets_a_strict_http_only_session_cookie(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    answer = submit_login(client, "mara", STAFF_PASSWORD, next="/dashboard/office/mh-u25")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/office/mh-u25"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if "officepulse_session=" in c)
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain http base URL
    # only a keyed hash of the cookie value is stored
    value = cookie.split("officepulse_session=", 1)[1].split(";", 1)[0]
    stored = rows(app, "SELECT id_hash, user_name FROM sessions")
    assert [user for _, user in stored] == ["mara"]
    assert value not in {id_hash for id_hash, _ in stored}
    assert rows(app, "SELECT actor, action FROM audit_log WHERE action = 'login'") == [
        ("mara", "login")
    ]


def test_session_cookie_is_secure_behind_https(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", public_url="https://feedback.example")
    with app_with_offices(settings, list(OFFICES), []) as (app, _):
        add_user(app, "eva", "evaluator")
        # Secure cookies travel only over https, so this browser speaks https.
        client = TestClient(app=app, base_url="https://testserver.local")
        answer = submit_login(client, "eva", STAFF_PASSWORD)
        cookies = answer.headers.get_list("set-cookie")
        assert any("officepulse_session=" in c and "Secure" in c for c in cookies)


@pytest.mark.parametrize(
    ("name", "password"),
    [("mara", "wrong password!"), ("nobody", STAFF_PASSWORD), ("", ""), ("MARA", "x")],
)
def test_wrong_credentials_say_so_and_start_no_session(
    staff: tuple[Litestar, Client], name: str, password: str
) -> None:
    app, client = staff
    answer = submit_login(client, name, password)
    assert answer.status_code == 401
    assert "Name oder Passwort ist falsch" in answer.text
    assert rows(app, "SELECT count(*) FROM sessions") == [(0,)]
    assert client.get("/api/v1/offices").status_code == 401


def test_the_login_form_prepares_the_stand_in_hash(staff: tuple[Litestar, Client]) -> None:
    """An unknown name is checked against a stand-in hash, made when the form is first shown
    (a login needs the form's token), so not even the first unknown name answers faster."""
    from officepulse import accounts

    _, client = staff
    accounts._dummy_hash.cache_clear()
    assert accounts._dummy_hash.cache_info().currsize == 0
    assert client.get("/login").status_code == 200
    assert accounts._dummy_hash.cache_info().currsize == 1
    assert accounts._dummy_hash().startswith("$argon2id$")


def test_names_are_case_insensitive(staff: tuple[Litestar, Client]) -> None:
    _, client = staff
    assert submit_login(client, " MARA ", STAFF_PASSWORD).status_code == 303


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/dashboard/office/x?week=2026-W01", "/dashboard/office/x?week=2026-W01"),
        ("//evil.example/", "/dashboard"),
        ("https://evil.example/", "/dashboard"),
        ("/\\evil.example", "/dashboard"),
        ("dashboard", "/dashboard"),
        (None, "/dashboard"),
    ],
)
def test_next_never_leaves_the_site(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_anonymous_pages_redirect_to_login_and_api_answers_401(
    staff: tuple[Litestar, Client],
) -> None:
    _, client = staff
    page = client.get("/dashboard/office/mh-u25?week=2026-W01", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/dashboard/office/mh-u25%3Fweek%3D2026-W01"
    api = client.get("/api/v1/offices")
    assert api.status_code == 401
    assert api.headers["content-type"].startswith("application/problem+json")
    assert api.headers["www-authenticate"].startswith("Bearer")
    assert api.json()["status"] == 401


def test_logout_needs_the_csrf_token_and_ends_the_session(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    csrf = login(client, "eva")
    refused = client.post("/logout", data={}, follow_redirects=False)
    assert refused.status_code == 403
    wrong = client.post("/logout", data={"csrf_token": csrf[::-1]}, follow_redirects=False)
    assert wrong.status_code == 403
    assert client.get("/api/v1/offices").status_code == 200  # still logged in
    done = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert client.get("/api/v1/offices").status_code == 401
    assert rows(app, "SELECT count(*) FROM sessions") == [(0,)]


def test_csrf_token_in_a_header_is_accepted(staff: tuple[Litestar, Client]) -> None:
    _, client = staff
    csrf = login(client, "eva")
    done = client.post("/logout", headers={"X-CSRF-Token": csrf}, follow_redirects=False)
    assert done.status_code == 303


def test_login_form_needs_its_own_token(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    no_token = client.post(
        "/login", data={"name": "eva", "password": STAFF_PASSWORD}, follow_redirects=False
    )
    assert no_token.status_code == 403
    # a token from another browser's form (another login cookie) does not fit either
    other = TestClient(app=app)
    foreign = csrf_token_in(other.get("/login").text)
    client.get("/login")
    forged = client.post(
        "/login",
        data={"name": "eva", "password": STAFF_PASSWORD, "csrf_token": foreign},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    assert rows(app, "SELECT count(*) FROM sessions") == [(0,)]


def test_idle_session_expires(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    login(client, "mara")
    assert client.get("/api/v1/offices").status_code == 200
    runtime: Runtime = app.state.runtime
    idle = runtime.settings.session_idle_minutes
    runtime.store.write(
        lambda cur: cur.execute(
            "UPDATE sessions SET last_seen = last_seen - to_minutes(CAST(? AS BIGINT))",
            [idle + 1],
        )
    ).result()
    page = client.get("/dashboard", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/dashboard&expired=1"
    form = client.get(page.headers["location"])
    assert "Sitzung ist abgelaufen" in form.text
    assert rows(app, "SELECT count(*) FROM sessions") == [(0,)]


def test_session_ends_after_its_maximum_age_even_when_busy(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    login(client, "mara")
    runtime: Runtime = app.state.runtime
    hours = runtime.settings.session_max_hours
    runtime.store.write(
        lambda cur: cur.execute(
            "UPDATE sessions SET created_at = created_at - to_hours(CAST(? AS BIGINT))", [hours]
        )
    ).result()
    answer = client.get("/login", follow_redirects=False)
    assert answer.status_code == 200
    assert "Sitzung ist abgelaufen" in answer.text
    assert client.get("/api/v1/offices").status_code == 401


def test_activity_keeps_a_session_alive(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    login(client, "mara")
    runtime: Runtime = app.state.runtime
    runtime.store.write(
        lambda cur: cur.execute("UPDATE sessions SET last_seen = last_seen - INTERVAL 5 MINUTE")
    ).result()
    before = rows(app, "SELECT last_seen FROM sessions")[0][0]
    assert client.get("/api/v1/offices").status_code == 200
    runtime.store.write(lambda cur: None).result()  # the touch went through the writer
    after = rows(app, "SELECT last_seen FROM sessions")[0][0]
    assert after > before + dt.timedelta(minutes=4)


def test_disabled_account_loses_session_and_login(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    login(client, "mara")
    assert client.get("/api/v1/offices").status_code == 200
    runtime: Runtime = app.state.runtime
    from officepulse.operations import UserName

    OPERATIONS["user.disable"].run(runtime, UserName(name="mara"))
    assert client.get("/api/v1/offices").status_code == 401
    assert submit_login(client, "mara", STAFF_PASSWORD).status_code == 401


# -- throttling --------------------------------------------------------------------------------


def test_five_failures_then_429_even_with_the_right_password(
    staff: tuple[Litestar, Client],
) -> None:
    app, client = staff
    for _ in range(5):
        assert submit_login(client, "eva", "not the password").status_code == 401
    blocked = submit_login(client, "eva", STAFF_PASSWORD)
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert "Zu viele fehlgeschlagene Anmeldungen" in blocked.text
    # the same client is blocked for other accounts too
    assert submit_login(client, "adam", STAFF_PASSWORD).status_code == 429
    assert rows(app, "SELECT count(*) FROM sessions") == [(0,)]
    failed = rows(app, "SELECT actor FROM audit_log WHERE action = 'login.failed'")
    assert failed == [("eva",)] * 5


def test_throttle_per_account_across_clients_and_its_window() -> None:
    now = [1000.0]
    throttle = LoginThrottle(clock=lambda: now[0])
    for attempt in range(5):
        keys = throttle.keys(f"192.0.2.{attempt}", "eva")  # a new address every time
        assert throttle.retry_after(keys) == 0
        throttle.failed(keys)
    # the account is blocked from any address; another account from a fresh address is not
    assert throttle.retry_after(throttle.keys("198.51.100.7", "EVA")) > 0
    assert throttle.retry_after(throttle.keys("198.51.100.7", "adam")) == 0
    now[0] += 15 * 60
    assert throttle.retry_after(throttle.keys("198.51.100.7", "eva")) == 0
    # nothing readable is kept: only HMAC digests under a salt that lives in memory
    kept = b"".join(throttle._failures)
    assert b"192.0.2" not in kept
    assert b"eva" not in kept


# -- API tokens --------------------------------------------------------------------------------


def test_api_token_reads_and_stops_when_revoked(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    runtime: Runtime = app.state.runtime
    created = OPERATIONS["token.create"].run(runtime, TokenCreate(user="mara", label="nightly"))
    assert created.token.startswith("opt_")
    stored = rows(app, "SELECT token_hash FROM api_tokens")
    assert created.token not in str(stored)
    bearer = {"Authorization": f"Bearer {created.token}"}
    offices = client.get("/api/v1/offices", headers=bearer)
    assert offices.status_code == 200
    assert [o["id"] for o in offices.json()] == ["mh-u25"]  # a manager sees only its office
    runtime.store.write(lambda cur: None).result()  # the last-used day went through the writer
    assert rows(app, "SELECT last_used_on IS NOT NULL FROM api_tokens") == [(True,)]
    # tokens are for reading only
    assert client.post("/logout", headers=bearer).status_code == 403
    from officepulse.operations import TokenId

    OPERATIONS["token.revoke"].run(runtime, TokenId(id=created.id))
    refused = client.get("/api/v1/offices", headers=bearer)
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")


def test_a_token_id_clash_draws_again(
    staff: tuple[Litestar, Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, client = staff
    runtime: Runtime = app.state.runtime
    first = OPERATIONS["token.create"].run(runtime, TokenCreate(user="mara", label="one"))
    draws = iter([first.id, "0badc0de"])
    monkeypatch.setattr(secrets, "token_hex", lambda _n: next(draws))
    second = OPERATIONS["token.create"].run(runtime, TokenCreate(user="eva", label="two"))
    monkeypatch.undo()
    assert second.id == "0badc0de"
    assert rows(app, "SELECT id, label FROM api_tokens ORDER BY label") == [
        (first.id, "one"),
        ("0badc0de", "two"),
    ]
    for created in (first, second):
        bearer = {"Authorization": f"Bearer {created.token}"}
        assert client.get("/api/v1/offices", headers=bearer).status_code == 200


@pytest.mark.parametrize(
    "header", ["Bearer opt_not-a-token", "Bearer ", "Basic ZXZhOnh4eA==", "Bearer x" + "y" * 500]
)
def test_bad_authorization_headers_are_401(staff: tuple[Litestar, Client], header: str) -> None:
    _, client = staff
    answer = client.get("/api/v1/offices", headers={"Authorization": header})
    assert answer.status_code == 401
    assert answer.json()["status"] == 401


def test_token_of_a_disabled_account_stops(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    runtime: Runtime = app.state.runtime
    created = OPERATIONS["token.create"].run(runtime, TokenCreate(user="eva", label="x"))
    from officepulse.operations import UserName

    OPERATIONS["user.disable"].run(runtime, UserName(name="eva"))
    answer = client.get("/api/v1/offices", headers={"Authorization": f"Bearer {created.token}"})
    assert answer.status_code == 401


# -- the command line --------------------------------------------------------------------------


def cli(data: Path, *args: str, password: str | None = None) -> Any:
    return run_cli([*args, "--data-dir", str(data)], input=password)


def test_user_and_token_commands(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert cli(data, "init").returncode == 0
    assert cli(data, "office", "add", "mh-u25", "--name", "U25", "--kind", "pilot").returncode == 0
    added = cli(
        data,
        "user",
        "add",
        "Mara",
        "--role",
        "manager",
        "--office",
        "mh-u25",
        "--password-stdin",
        password=STAFF_PASSWORD + "\n",
    )
    assert added.returncode == 0, added.stderr
    assert "added manager mara for mh-u25" in added.stdout
    listed = json.loads(cli(data, "user", "list", "--json").stdout)
    assert listed == [
        {
            "name": "mara",
            "role": "manager",
            "offices": ["mh-u25"],
            "disabled": False,
            "created_at": listed[0]["created_at"],
        }
    ]
    (stored_hash,) = db_rows(data, "SELECT password_hash FROM users")[0]
    assert str(stored_hash).startswith("$argon2id$")
    created = json.loads(
        cli(data, "token", "create", "mara", "--label", "nightly", "--json").stdout
    )
    tokens = json.loads(cli(data, "token", "list", "--json").stdout)
    assert [(t["id"], t["revoked"]) for t in tokens] == [(created["id"], False)]
    assert created["token"] not in cli(data, "token", "list").stdout
    assert cli(data, "token", "revoke", created["id"]).returncode == 0
    assert json.loads(cli(data, "token", "list", "--json").stdout)[0]["revoked"] is True
    disabled = cli(data, "user", "disable", "mara")
    assert disabled.returncode == 0
    assert "disabled" in cli(data, "user", "list").stdout
    actions = [r[0] for r in db_rows(data, "SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["user.add", "token.create", "token.revoke", "user.disable"]


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (["--role", "admin"], "short\n", "password: shorter than 12 characters"),
        (["--role", "manager"], STAFF_PASSWORD + "\n", "office: a manager needs"),
        (["--role", "manager", "--office", "nope"], STAFF_PASSWORD + "\n", "no office with id"),
        (["--role", "evaluator", "--office", "mh-u25"], STAFF_PASSWORD + "\n", "only managers"),
        (["--role", "admin"], "\n", "password: shorter"),
    ],
)
def test_user_add_refusals_are_one_line(
    tmp_path: Path, args: list[str], password: str, message: str
) -> None:
    data = tmp_path / "data"
    assert cli(data, "init").returncode == 0
    assert cli(data, "office", "add", "mh-u25", "--name", "U25", "--kind", "pilot").returncode == 0
    result = cli(data, "user", "add", "someone", *args, "--password-stdin", password=password)
    assert message in one_error_line(result)
    assert db_rows(data, "SELECT count(*) FROM users") == [(0,)]


def test_user_add_refuses_bad_names_and_duplicates(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert cli(data, "init").returncode == 0
    pw = STAFF_PASSWORD + "\n"
    bad = cli(data, "user", "add", "no spaces", "--role", "admin", "--password-stdin", password=pw)
    assert "name:" in one_error_line(bad)
    assert cli(data, "user", "add", "adam", "--role", "admin", "--password-stdin", password=pw)
    again = cli(data, "user", "add", "ADAM", "--role", "admin", "--password-stdin", password=pw)
    assert "exists already" in one_error_line(again)
    missing = cli(data, "user", "disable", "nobody")
    assert "no account" in one_error_line(missing)
    unknown = cli(data, "token", "revoke", "feedbeef")
    assert "no API token" in one_error_line(unknown)


def test_users_through_a_running_server_can_log_in(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert cli(data, "init").returncode == 0
    with server_process(data) as (base, _process):
        added = cli(
            data, "user", "add", "adam", "--role", "admin", "--password-stdin",
            password=STAFF_PASSWORD + "\n",
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        with httpx.Client(base_url=base) as browser:
            assert submit_login(browser, "adam").status_code == 303
            assert browser.get("/api/v1/offices").status_code == 200
