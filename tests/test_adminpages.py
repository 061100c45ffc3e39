"""The administrator pages through the test client: access, every change, its audit entry,
refused input (with nothing stored) and the QR downloads, decoded by a real QR decoder."""

from __future__ import annotations

import datetime as dt
import gc
import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from officepulse import accounts
from officepulse.adminpages.users import Refused, disable_account
from officepulse.auth import SESSION_COOKIE
from officepulse.operations import OPERATIONS, KioskAdd, KioskCreated
from officepulse.runtime import Runtime
from officepulse.settings import Settings

from .conftest import OFFICES, STAFF_PASSWORD, add_user, app_with_offices, login, make_settings
from .test_qr import decode, rasterise

Client = TestClient[Litestar]
BASE = "http://feedback.example.org"

OFFICES_CSV = """\
id,name,kind,type,city,district,opened_on
ess-nord,Stadtteilbüro Essen-Nord,pilot,Stadtteilbüro,Essen,Altenessen,2021-03-01
ess-main,Jobcenter Essen,conventional,Hauptstelle,Essen,Stadtkern,
"""
DISTRICTS_CSV = """\
city,district_id,district_name,year,indicator,value,unit,source
Mülheim an der Ruhr,01,Altstadt I,2023,unemployment_rate,"9,5",%,BA
Mülheim an der Ruhr,01,Altstadt I,2023,pop_total,12000,,Stadt
"""
CHANGE_TABLES = (
    "SELECT id FROM offices",
    "SELECT office_id, placement FROM office_placements",
    "SELECT office_id, happened_on, kind FROM events",
    "SELECT city, district_id, year, indicator, value FROM district_indicators",
    "SELECT office_id, city, district_id FROM office_districts",
    "SELECT id, paired_at IS NULL, revoked_at IS NULL FROM kiosks",
    "SELECT name, role, disabled_at IS NULL FROM users",
    "SELECT actor, action, target FROM audit_log WHERE action NOT LIKE 'login%'",
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data", public_url=BASE)


@pytest.fixture
def staff(settings: Settings) -> Iterator[tuple[Litestar, Client]]:
    """Offices mh-u25 (placement waiting) and mh-main; an admin, an evaluator, a manager."""
    with app_with_offices(settings, list(OFFICES), [("mh-u25", "waiting")]) as (app, client):
        add_user(app, "root", "admin")
        add_user(app, "eva", "evaluator")
        add_user(app, "mara", "manager", ("mh-u25",))
        yield app, client


@pytest.fixture(scope="module")
def unchanging(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Litestar, Client, str]]:
    """The same, shared by tests that change nothing; the administrator is logged in."""
    settings = make_settings(tmp_path_factory.mktemp("admin") / "data", public_url=BASE)
    with app_with_offices(settings, list(OFFICES), [("mh-u25", "waiting")]) as (app, client):
        add_user(app, "root", "admin")
        add_user(app, "eva", "evaluator")
        token = login(client, "root")
        yield app, client, token


def rows(app: Litestar, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    runtime: Runtime = app.state.runtime
    return runtime.store.read(lambda cur: cur.execute(sql, params or []).fetchall())


def snapshot(app: Litestar) -> list[list[tuple[Any, ...]]]:
    """Everything an administrator page could change (sorted, so comparable)."""
    return [sorted(rows(app, sql), key=repr) for sql in CHANGE_TABLES]


def audited(app: Litestar, action: str) -> list[tuple[Any, ...]]:
    return rows(
        app, "SELECT actor, target, detail FROM audit_log WHERE action = ? ORDER BY id", [action]
    )


def add_kiosk(app: Litestar) -> KioskCreated:
    runtime: Runtime = app.state.runtime
    created: KioskCreated = OPERATIONS["kiosk.add"].run(
        runtime, KioskAdd(office="mh-u25", name="Eingang", placement="waiting")
    )
    return created


def page_text(answer: Any) -> str:
    """The page's text with entities resolved, so messages compare as written."""
    return html.unescape(str(answer.text))


def csv_file(name: str, text: str) -> dict[str, tuple[str, bytes, str]]:
    return {"file": (name, text.encode("utf-8"), "text/csv")}


# -- access ------------------------------------------------------------------------------------

PAGES = (
    "/admin",
    "/admin/offices",
    "/admin/offices/mh-u25",
    "/admin/events",
    "/admin/events?office=mh-u25",
    "/admin/districts",
    "/admin/kiosks",
    "/admin/users",
    "/admin/audit",
    "/admin/audit?actor=root&action=login",
)


def changes(kiosk_id: str) -> list[tuple[str, dict[str, Any], dict[str, Any] | None]]:
    """One valid form per change route: (path, fields, files)."""
    return [
        ("/admin/offices", {"id": "ess-west", "name": "Essen-West", "kind": "pilot"}, None),
        ("/admin/offices/import", {}, csv_file("offices.csv", OFFICES_CSV)),
        ("/admin/offices/mh-u25/placements", {"placement": "entrance"}, None),
        ("/admin/events", {"office": "mh-u25", "date": "2024-05-02", "kind": "redesign"}, None),
        ("/admin/districts/import", {}, csv_file("districts.csv", DISTRICTS_CSV)),
        (
            "/admin/districts/map",
            {"office": "mh-u25", "city": "Mülheim", "district_id": "01"},
            None,
        ),
        ("/admin/kiosks", {"office": "mh-u25", "name": "Wartebereich"}, None),
        (f"/admin/kiosks/{kiosk_id}/revoke", {}, None),
        (
            "/admin/users",
            {
                "name": "neu",
                "role": "evaluator",
                "password": STAFF_PASSWORD,
                "password_confirm": STAFF_PASSWORD,
            },
            None,
        ),
        ("/admin/users/eva/disable", {}, None),
    ]


def test_every_page_opens_for_an_administrator(unchanging: tuple[Litestar, Client, str]) -> None:
    _, client, _ = unchanging
    for path in PAGES:
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text)
        assert answer.headers["content-type"].startswith("text/html")
        assert "'unsafe-inline'" not in answer.headers["content-security-policy"]
        assert answer.headers["cache-control"] == "no-store"
        assert '<nav class="admin-nav" aria-label="Verwaltung">' in answer.text
        # no inline script or style anywhere (the policy would block them)
        assert "<script" not in answer.text
        assert "style=" not in answer.text
        assert "<style" not in answer.text


@pytest.mark.parametrize("name", ["eva", "mara"])
def test_evaluators_and_managers_get_403_and_change_nothing(
    staff: tuple[Litestar, Client], name: str
) -> None:
    app, client = staff
    kiosk = add_kiosk(app)
    token = login(client, name)
    for path in (*PAGES, "/admin/offices/mh-u25/poster?format=svg"):
        answer = client.get(path)
        assert answer.status_code == 403, path
        assert "Kein Zugriff" in answer.text
    before = snapshot(app)
    for path, data, files in changes(kiosk.id):
        answer = client.post(path, data={**data, "csrf_token": token}, files=files)
        assert answer.status_code == 403, path
    assert snapshot(app) == before


def test_anonymous_visitors_are_sent_to_the_login(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    kiosk = add_kiosk(app)
    for path in (*PAGES, "/admin/offices/mh-u25/poster?format=pdf"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login?next=/admin")
    before = snapshot(app)
    for path, data, files in changes(kiosk.id):
        answer = client.post(path, data=data, files=files, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login")
    assert snapshot(app) == before


def test_changes_without_the_csrf_token_are_refused(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    kiosk = add_kiosk(app)
    login(client, "root")
    before = snapshot(app)
    for path, data, files in changes(kiosk.id):
        answer = client.post(path, data=data, files=files)
        assert answer.status_code == 403, path
        wrong = client.post(path, data={**data, "csrf_token": "forged"}, files=files)
        assert wrong.status_code == 403, path
    assert snapshot(app) == before
    # Refused uploads were closed by the guard: collecting them warns of no open file.
    gc.collect()


def test_every_change_works_with_the_token(staff: tuple[Litestar, Client]) -> None:
    """The same forms as above, with the token: each one changes what it should."""
    app, client = staff
    kiosk = add_kiosk(app)
    token = login(client, "root")
    for path, data, files in changes(kiosk.id):
        answer = client.post(path, data={**data, "csrf_token": token}, files=files)
        assert answer.status_code == 200, (path, page_text(answer))
        assert 'class="notice"' in answer.text or 'id="pairing-code"' in answer.text, path
    actions = [row[0] for row in rows(app, "SELECT action FROM audit_log WHERE actor = 'root'")]
    assert actions == [
        "login",
        "office.add",
        "office.import",
        "placement.add",
        "event.add",
        "districts.import",
        "districts.map",
        "kiosk.add",
        "kiosk.revoke",
        "user.add",
        "user.disable",
    ]


# -- offices and placements --------------------------------------------------------------------


def test_add_an_office(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    token = login(client, "root")
    answer = client.post(
        "/admin/offices",
        data={
            "csrf_token": token,
            "id": "ess-nord",
            "name": "Stadtteilbüro Essen-Nord",
            "kind": "pilot",
            "type": "Stadtteilbüro",
            "city": "Essen",
            "district": "Altenessen",
            "opened_on": "2021-03-01",
            "lang": "tr",
        },
    )
    assert answer.status_code == 200
    assert "Die Dienststelle ess-nord (Stadtteilbüro Essen-Nord) ist angelegt." in answer.text
    assert '<a href="/admin/offices/ess-nord">ess-nord</a>' in answer.text
    assert rows(app, "SELECT * EXCLUDE (synthetic) FROM offices WHERE id = 'ess-nord'") == [
        (
            "ess-nord",
            "Stadtteilbüro Essen-Nord",
            "pilot",
            "Stadtteilbüro",
            "Essen",
            "Altenessen",
            dt.date(2021, 3, 1),
            "tr",
        )
    ]
    assert audited(app, "office.add") == [("root", "ess-nord", "pilot")]
    runtime: Runtime = app.state.runtime
    assert "ess-nord" in runtime.office_ids  # the caches know it at once
    detail = client.get("/admin/offices/ess-nord")
    assert detail.status_code == 200
    assert "Stadtteilbüro Essen-Nord" in detail.text


def test_import_offices_from_csv(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    token = login(client, "root")
    answer = client.post(
        "/admin/offices/import",
        data={"csrf_token": token},
        files=csv_file("offices.csv", "\ufeff" + OFFICES_CSV),
    )
    assert answer.status_code == 200, page_text(answer)
    assert "2 Dienststellen aus offices.csv importiert." in answer.text
    assert rows(app, "SELECT id, kind FROM offices WHERE id LIKE 'ess-%' ORDER BY id") == [
        ("ess-main", "conventional"),
        ("ess-nord", "pilot"),
    ]
    assert audited(app, "office.import") == [("root", "offices.csv", "2 offices")]


def test_placement_is_registered_and_shown(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    token = login(client, "root")
    answer = client.post(
        "/admin/offices/mh-main/placements", data={"csrf_token": token, "placement": "entrance"}
    )
    assert answer.status_code == 200
    assert "<code>entrance</code>" in answer.text
    assert rows(app, "SELECT placement FROM office_placements WHERE office_id = 'mh-main'") == [
        ("entrance",)
    ]
    assert audited(app, "placement.add") == [("root", "mh-main", "entrance")]
    runtime: Runtime = app.state.runtime
    assert runtime.placement_for("mh-main", "entrance") == "entrance"


def test_unknown_office_pages_are_404(staff: tuple[Litestar, Client]) -> None:
    _, client = staff
    token = login(client, "root")
    assert client.get("/admin/offices/nope").status_code == 404
    assert client.get("/admin/offices/nope/poster?format=svg").status_code == 404
    answer = client.post(
        "/admin/offices/nope/placements", data={"csrf_token": token, "placement": "entrance"}
    )
    assert answer.status_code == 404
    assert "Nicht gefunden" in answer.text


# -- refused input: 422, the message next to its field, nothing stored -------------------------

BAD_FORMS: list[tuple[str, dict[str, Any], dict[str, Any] | None, str, str]] = [
    (
        "/admin/offices",
        {"id": "Bad Id", "name": "X", "kind": "pilot"},
        None,
        "office-id",
        "id: 'Bad Id' is not a lowercase slug",
    ),
    (
        "/admin/offices",
        {"id": "mh-u25", "name": "Noch einmal", "kind": "pilot"},
        None,
        "office-id",
        "id: office 'mh-u25' already exists",
    ),
    (
        "/admin/offices",
        {"id": "ok-id", "name": "X", "kind": "pilot", "opened_on": "1.3.2021"},
        None,
        "office-opened",
        "'1.3.2021' ist kein Datum",
    ),
    (
        "/admin/offices",
        {"id": "ok-id", "name": "X", "kind": "pilot", "lang": "xx"},
        None,
        "office-lang",
        "default_lang: 'xx' is not a supported language",
    ),
    (
        "/admin/offices/import",
        {},
        csv_file(
            "offices.csv",
            OFFICES_CSV + "ess-west,Essen-West,pilott,,Essen,,\n",
        ),
        "import-file",
        "offices.csv: line 4: kind: 'pilott' is not one of 'pilot', 'conventional'",
    ),
    (
        "/admin/offices/import",
        {},
        csv_file("offices.csv", OFFICES_CSV + "mh-u25,Doppelt,pilot,,,,\n"),
        "import-file",
        "offices.csv: line 4: id: office 'mh-u25' already exists",
    ),
    (
        "/admin/offices/import",
        {},
        csv_file("offices.csv", "id;name\nx;y\n"),
        "import-file",
        "offices.csv: line 1: header is 'id;name'",
    ),
    ("/admin/offices/import", {}, None, "import-file", "Bitte wählen Sie eine CSV-Datei aus."),
    (
        "/admin/offices/mh-u25/placements",
        {"placement": "Warte Bereich"},
        None,
        "placement-name",
        "placement: 'Warte Bereich' is not a short lowercase name",
    ),
    (
        "/admin/offices/mh-u25/placements",
        {"placement": "waiting"},
        None,
        "placement-name",
        "placement: 'waiting' is already registered for 'mh-u25'",
    ),
    (
        "/admin/events",
        {"office": "mh-u25", "date": "2024-13-01", "kind": "redesign"},
        None,
        "event-date",
        "--date: '2024-13-01' is not a date YYYY-MM-DD",
    ),
    (
        "/admin/events",
        {"office": "nope", "date": "2024-05-01", "kind": "redesign"},
        None,
        "event-office",
        "office: unknown office 'nope'",
    ),
    (
        "/admin/events",
        {"office": "mh-u25", "date": "2024-05-01", "kind": "party"},
        None,
        "event-kind",
        "--kind: 'party' is not one of",
    ),
    (
        "/admin/events",
        {"office": "mh-u25", "date": "2024-05-01", "kind": "move", "note": "x" * 501},
        None,
        "event-note",
        "--note: longer than 500 characters",
    ),
    (
        "/admin/districts/import",
        {},
        csv_file(
            "districts.csv", DISTRICTS_CSV + "Mülheim an der Ruhr,02,,2023,sgb2_quota,140,%,\n"
        ),
        "districts-file",
        "districts.csv: line 4: value: 140 is outside 0 to 100 for sgb2_quota",
    ),
    (
        "/admin/districts/map",
        {"office": "nope", "city": "Mülheim", "district_id": "01"},
        None,
        "map-office",
        "office: unknown office 'nope'",
    ),
    (
        "/admin/districts/map",
        {"office": "mh-u25", "city": "", "district_id": "01"},
        None,
        "map-city",
        "Stadt: darf nicht leer sein.",
    ),
    (
        "/admin/kiosks",
        {"office": "mh-u25", "name": "Eingang", "placement": "entrance"},
        None,
        "kiosk-placement",
        "--placement: 'entrance' is not registered for 'mh-u25'",
    ),
    (
        "/admin/kiosks",
        {"office": "mh-u25", "name": "  "},
        None,
        "kiosk-name",
        "--name: must not be empty",
    ),
    (
        "/admin/kiosks",
        {"office": "nope", "name": "Eingang"},
        None,
        "kiosk-office",
        "office: unknown office 'nope'",
    ),
    ("/admin/kiosks/nope-123/revoke", {}, None, "kiosks", "kiosk: unknown kiosk 'nope-123'"),
    (
        "/admin/users",
        {"name": "neu", "role": "admin", "password": "kurz", "password_confirm": "kurz"},
        None,
        "user-password",
        "password: shorter than 12 characters",
    ),
    (
        "/admin/users",
        {
            "name": "neu",
            "role": "admin",
            "password": STAFF_PASSWORD,
            "password_confirm": STAFF_PASSWORD + "x",
        },
        None,
        "user-password-confirm",
        "Die beiden Passwörter stimmen nicht überein.",
    ),
    (
        "/admin/users",
        {
            "name": "neu",
            "role": "manager",
            "offices": ["mh-u25", "nope"],
            "password": STAFF_PASSWORD,
            "password_confirm": STAFF_PASSWORD,
        },
        None,
        "user-offices",
        "office: no office with id 'nope'",
    ),
    (
        "/admin/users",
        {
            "name": "neu",
            "role": "manager",
            "password": STAFF_PASSWORD,
            "password_confirm": STAFF_PASSWORD,
        },
        None,
        "user-offices",
        "office: a manager needs at least one office",
    ),
    (
        "/admin/users",
        {
            "name": "eva",
            "role": "evaluator",
            "password": STAFF_PASSWORD,
            "password_confirm": STAFF_PASSWORD,
        },
        None,
        "user-name",
        "name: an account 'eva' exists already",
    ),
    ("/admin/users/root/disable", {}, None, "users", "Ihr eigenes Konto können Sie hier nicht"),
    ("/admin/users/nobody/disable", {}, None, "users", "name: no account 'nobody'"),
]


@pytest.mark.parametrize(
    ("path", "data", "files", "field", "message"),
    BAD_FORMS,
    ids=[f"{case[0]}:{case[3]}:{index}" for index, case in enumerate(BAD_FORMS)],
)
def test_refused_input_is_shown_next_to_the_field_and_nothing_is_stored(
    unchanging: tuple[Litestar, Client, str],
    path: str,
    data: dict[str, Any],
    files: dict[str, Any] | None,
    field: str,
    message: str,
) -> None:
    app, client, token = unchanging
    before = snapshot(app)
    answer = client.post(path, data={**data, "csrf_token": token}, files=files)
    assert answer.status_code == 422, page_text(answer)
    text = page_text(answer)
    assert message in text
    # the summary links to the field, and the message stands next to it
    assert f'<a href="#{field}">' in answer.text
    error = re.search(rf'<span class="field-error" id="{field}-error">(.*?)</span>\n', text, re.S)
    if field in ("kiosks", "users"):  # a row action: the summary points at the table
        assert f'id="{field}" tabindex="-1"' in answer.text
    else:
        assert error is not None
        assert message in error.group(1)
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', answer.text)
    assert snapshot(app) == before


def test_a_bad_csv_reports_every_bad_line_and_imports_none(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    token = login(client, "root")
    bad = OFFICES_CSV + "Ess West,Essen-West,pilot,,,,\nok-one,,conventional,,,,2020-02-30\n"
    answer = client.post(
        "/admin/offices/import", data={"csrf_token": token}, files=csv_file("neu.csv", bad)
    )
    assert answer.status_code == 422
    text = page_text(answer)
    assert "neu.csv: line 4: id: 'Ess West' is not a lowercase slug" in text
    assert "neu.csv: line 5: opened_on: '2020-02-30' is not a date YYYY-MM-DD" in text
    assert "neu.csv: line 5: name: must not be empty" in text
    assert "/tmp" not in text  # the temporary file's path never shows
    assert rows(app, "SELECT id FROM offices ORDER BY id") == [("mh-main",), ("mh-u25",)]
    assert audited(app, "office.import") == []


def test_last_active_administrator_is_never_disabled(staff: tuple[Litestar, Client]) -> None:
    """Two administrators disabling each other at once: the second change is refused."""
    app, _ = staff
    runtime: Runtime = app.state.runtime
    add_user(app, "second", "admin")
    runtime.store.write(lambda cur: disable_account(cur, "root", "second")).result()
    with pytest.raises(Refused, match="letzte aktive Administrationskonto"):
        runtime.store.write(lambda cur: disable_account(cur, "second", "root")).result()
    assert runtime.store.read(accounts.admin_count) == 1
    assert audited(app, "user.disable") == [("root", "second", None)]


# -- events and districts ----------------------------------------------------------------------


def test_events_are_recorded_listed_and_filtered(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    token = login(client, "root")
    for office, date, kind in (
        ("mh-u25", "2024-05-02", "redesign"),
        ("mh-main", "2024-06-01", "move"),
    ):
        answer = client.post(
            "/admin/events",
            data={"csrf_token": token, "office": office, "date": date, "kind": kind, "note": " "},
        )
        assert answer.status_code == 200
    assert rows(
        app, "SELECT office_id, happened_on::VARCHAR, kind, note FROM events ORDER BY 1"
    ) == [
        ("mh-main", "2024-06-01", "move", None),
        ("mh-u25", "2024-05-02", "redesign", None),
    ]
    only = client.get("/admin/events?office=mh-u25").text
    assert "Umgestaltung der Räume" in only
    assert "Umzug" not in only.split("<caption>", 1)[1].split("</table>", 1)[0]
    assert client.get("/admin/events?office=nope").status_code == 422
    assert [row[1] for row in audited(app, "event.add")] == ["mh-u25", "mh-main"]


def test_districts_import_and_map(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    token = login(client, "root")
    answer = client.post(
        "/admin/districts/import",
        data={"csrf_token": token},
        files=csv_file("districts.csv", DISTRICTS_CSV),
    )
    assert answer.status_code == 200, page_text(answer)
    assert "2 Indikatorwerte für 1 Stadtteile aus districts.csv importiert." in answer.text
    mapped = client.post(
        "/admin/districts/map",
        data={
            "csrf_token": token,
            "office": "mh-u25",
            "city": "Mülheim an der Ruhr",
            "district_id": "01",
        },
    )
    assert mapped.status_code == 200
    text = page_text(mapped)
    assert "mh-u25 ist Mülheim an der Ruhr / 01 zugeordnet." in text
    assert "Arbeitslosenquote (official, BA)" in text
    assert "9,5" in text
    assert "2023" in text
    assert rows(app, "SELECT office_id, city, district_id FROM office_districts") == [
        ("mh-u25", "Mülheim an der Ruhr", "01")
    ]
    assert audited(app, "districts.import") == [("root", "districts.csv", "2 values")]
    assert audited(app, "districts.map") == [("root", "mh-u25", "Mülheim an der Ruhr / 01")]
    # re-importing replaces, and says so
    again = client.post(
        "/admin/districts/import",
        data={"csrf_token": token},
        files=csv_file("districts.csv", DISTRICTS_CSV),
    )
    assert "davon 2 ersetzt" in again.text
    assert len(rows(app, "SELECT * FROM district_indicators")) == 2


# -- kiosks ------------------------------------------------------------------------------------


def test_kiosk_is_created_paired_and_revoked(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    token = login(client, "root")
    answer = client.post(
        "/admin/kiosks",
        data={"csrf_token": token, "office": "mh-u25", "name": "Eingang", "placement": "waiting"},
    )
    assert answer.status_code == 200
    code = re.search(r'id="pairing-code">([A-Z0-9]{4}-[A-Z0-9]{4})<', answer.text)
    assert code is not None
    assert f"{BASE}/kiosk/" in answer.text
    assert "gültig" in answer.text or "gilt" in answer.text
    (kiosk_id,) = [row[0] for row in rows(app, "SELECT id FROM kiosks")]
    # the code is never kept in the audit log
    assert audited(app, "kiosk.add") == [("root", kiosk_id, "mh-u25")]
    assert code.group(1) not in str(rows(app, "SELECT * FROM audit_log"))
    paired = client.post("/api/v1/kiosk/pair", json={"code": code.group(1)})
    assert paired.status_code == 201
    device = {"Authorization": f"Bearer {paired.json()['token']}"}
    beat = {"app_version": "k1", "queue_length": 3}
    assert client.post("/api/v1/kiosk/heartbeat", json=beat, headers=device).status_code == 204
    listing = page_text(client.get("/admin/kiosks"))
    assert "gekoppelt, meldet sich" in listing
    revoked = client.post(f"/admin/kiosks/{kiosk_id}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 200
    assert f"Das Kiosk-Tablet {kiosk_id} ist widerrufen" in revoked.text
    assert "widerrufen</td>" in revoked.text
    assert client.post("/api/v1/kiosk/heartbeat", json=beat, headers=device).status_code == 401
    assert audited(app, "kiosk.revoke") == [("root", kiosk_id, None)]


def test_silent_kiosks_are_marked_in_colour_and_in_words(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    created = add_kiosk(app)
    paired = client.post("/api/v1/kiosk/pair", json={"code": created.pairing_code})
    device = {"Authorization": f"Bearer {paired.json()['token']}"}
    beat = {"app_version": "k1", "queue_length": 0}
    assert client.post("/api/v1/kiosk/heartbeat", json=beat, headers=device).status_code == 204
    add_kiosk(app)  # a second one, never paired: waiting, not silent
    runtime: Runtime = app.state.runtime
    runtime.store.write(
        lambda cur: cur.execute(
            "UPDATE kiosks SET last_heartbeat = TIMESTAMPTZ '2024-03-12 13:05:00+00' WHERE id = ?",
            [created.id],
        )
    ).result()
    login(client, "root")
    text = page_text(client.get("/admin/kiosks"))
    row = text.split(f'<tr id="kiosk-{created.id}"', 1)[1].split("</tr>", 1)[0]
    assert row.startswith(' class="silent"')
    assert "stumm seit 12.03.2024 14:05" in row  # Europe/Berlin
    assert "1 Tablet ist stumm" in text
    assert "wartet auf Kopplung" in text
    index = page_text(client.get("/admin"))
    assert "1 Tablet ist stumm" in index


# -- accounts ----------------------------------------------------------------------------------


def test_add_a_manager_who_can_then_log_in(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    token = login(client, "root")
    password = "ein langes Passwort 123"
    answer = client.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "name": "Leila",
            "role": "manager",
            "offices": ["mh-u25", "mh-main"],
            "password": password,
            "password_confirm": password,
        },
    )
    assert answer.status_code == 200, page_text(answer)
    assert "Das Konto leila (Leitung) ist angelegt." in answer.text
    assert password not in answer.text
    assert rows(app, "SELECT name, role, offices FROM users WHERE name = 'leila'") == [
        ("leila", "manager", ["mh-main", "mh-u25"])
    ]
    assert audited(app, "user.add")[-1] == ("root", "leila", "manager mh-main mh-u25")
    client.cookies.clear()
    login(client, "leila", password)


def test_disabling_a_user_ends_their_session(staff: tuple[Litestar, Client]) -> None:
    app, client = staff
    login(client, "mara")
    mara = client.cookies.get(SESSION_COOKIE)
    assert mara is not None
    client.cookies.clear()
    token = login(client, "root")
    root = client.cookies.get(SESSION_COOKIE)
    answer = client.post("/admin/users/mara/disable", data={"csrf_token": token})
    assert answer.status_code == 200
    assert "Das Konto mara ist deaktiviert" in answer.text
    assert rows(app, "SELECT disabled_at IS NOT NULL FROM users WHERE name = 'mara'") == [(True,)]
    assert audited(app, "user.disable") == [("root", "mara", None)]
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, mara)
    after = client.get("/dashboard", follow_redirects=False)
    assert after.status_code == 303
    assert after.headers["location"].startswith("/login")
    # the administrator's own session goes on
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, str(root))
    assert client.get("/admin/users").status_code == 200


def test_audit_log_newest_first_and_filtered(staff: tuple[Litestar, Client]) -> None:
    _, client = staff
    token = login(client, "root")
    client.post("/admin/offices/mh-u25/placements", data={"csrf_token": token, "placement": "a1"})
    client.post("/admin/offices/mh-u25/placements", data={"csrf_token": token, "placement": "b2"})
    text = page_text(client.get("/admin/audit?action=placement."))
    assert text.index("<td>b2</td>") < text.index("<td>a1</td>")
    assert "<code>login</code>" not in text
    only_eva = page_text(client.get("/admin/audit?actor=eva"))
    assert "<code>placement.add</code>" not in only_eva
    assert "Keine Einträge." in only_eva


# -- QR codes and posters ----------------------------------------------------------------------


def test_png_code_decodes_to_the_survey_url(staff: tuple[Litestar, Client], tmp_path: Path) -> None:
    app, client = staff
    login(client, "root")
    answer = client.get("/admin/offices/mh-u25/poster?format=png&placement=waiting&lang=de")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/png"
    assert (
        answer.headers["content-disposition"] == 'attachment; filename="qr-mh-u25-waiting-de.png"'
    )
    image = tmp_path / "code.png"
    image.write_bytes(answer.content)
    assert decode(image) == [f"{BASE}/s/mh-u25?p=waiting&lang=de"]
    assert audited(app, "qr.download") == [
        ("root", "mh-u25", f"qr-mh-u25-waiting-de.png {BASE}/s/mh-u25?p=waiting&lang=de")
    ]


def test_svg_code_parses_and_names_its_url(staff: tuple[Litestar, Client]) -> None:
    _, client = staff
    login(client, "root")
    answer = client.get("/admin/offices/mh-main/poster?format=svg")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("image/svg+xml")
    assert answer.headers["content-disposition"] == 'attachment; filename="qr-mh-main.svg"'
    root = ET.fromstring(answer.content)  # noqa: S314 - our own server's output
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("aria-label") == f"QR code: {BASE}/s/mh-main"


def test_pdf_poster_and_sticker(staff: tuple[Litestar, Client], tmp_path: Path) -> None:
    _, client = staff
    login(client, "root")
    poster = client.get("/admin/offices/mh-u25/poster?format=pdf&placement=waiting&lang=de&lang=ar")
    assert poster.status_code == 200
    assert poster.content.startswith(b"%PDF")
    assert poster.headers["content-type"] == "application/pdf"
    assert (
        poster.headers["content-disposition"]
        == 'attachment; filename="qr-mh-u25-waiting-de-ar-a4.pdf"'
    )
    pdf = tmp_path / "poster.pdf"
    pdf.write_bytes(poster.content)
    # two languages: the URL carries no language
    assert decode(rasterise(pdf, 100)) == [f"{BASE}/s/mh-u25?p=waiting"]
    sticker = client.get("/admin/offices/mh-u25/poster?format=pdf&size=sticker&lang=de")
    assert sticker.status_code == 200
    assert sticker.content.startswith(b"%PDF")
    assert sticker.headers["content-disposition"].endswith('filename="qr-mh-u25-de-sticker.pdf"')


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("format=gif", "format: 'gif' ist keines von pdf, svg, png."),
        ("format=pdf&placement=entrance", "placement: 'entrance' ist für diese Dienststelle"),
        ("format=pdf&lang=xx", "lang: unknown language 'xx'"),
        ("format=pdf&size=a3", "size: 'a3' ist keines von a4, sticker."),
        (
            "format=pdf&size=sticker&lang=de,de-x-ls,en,uk,ru,ar,fa,ps,tr,kmr,ro,bg,pl",
            "lang: 13 languages leave no room for a code",
        ),
    ],
)
def test_bad_poster_options_are_422_naming_the_field(
    unchanging: tuple[Litestar, Client, str], query: str, message: str
) -> None:
    app, client, _ = unchanging
    answer = client.get(f"/admin/offices/mh-u25/poster?{query}")
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("text/html")
    assert message in page_text(answer)
    assert audited(app, "qr.download") == []


def test_office_page_builds_the_poster_links(staff: tuple[Litestar, Client]) -> None:
    _, client = staff
    login(client, "root")
    text = client.get("/admin/offices/mh-u25").text
    assert 'action="/admin/offices/mh-u25/poster"' in text
    assert (
        'href="/admin/offices/mh-u25/poster?format=pdf&amp;size=a4&amp;placement=waiting"' in text
    )
    for link in re.findall(r'href="(/admin/offices/mh-u25/poster\?[^"]+)"', text):
        assert client.get(html.unescape(link)).status_code == 200, link
