"""The evaluator pages through the test client: offices overview, reports, downloads, tokens."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from officepulse.demo import DemoParams, load_demo
from officepulse.evaluate import shown_count
from officepulse.offices import Office
from officepulse.operations import OPERATIONS, TokenCreate
from officepulse.responses import StoredResponse, commit_responses
from officepulse.runtime import Runtime

from .conftest import add_user, app_with_offices, login, make_settings

Client = TestClient[Litestar]

SMALL_OFFICES = [
    Office(id="a-pilot", name="Stadtteilbüro A", kind="pilot", type_label="Stadtteilbüro"),
    Office(id="b-main", name="Jobcenter B", kind="conventional", city="Essen", district="Mitte"),
    Office(id="c-new", name="Jobcenter C", kind="conventional"),
]
BEFORE_AFTER = "/dashboard/reports/office-before-after"
COMPARISON = "/dashboard/reports/pilot-vs-conventional"


def login_as(client: Client, name: str) -> str:
    """Log in as ``name`` from a fresh start (the tests switch accounts on one client)."""
    client.cookies.clear()
    return login(client, name)


def rows(app: Litestar, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    runtime: Runtime = app.state.runtime
    return runtime.store.read(lambda cur: cur.execute(sql, params or []).fetchall())


def response_at(office: str, when: dt.datetime, flags: tuple[str, ...] = ()) -> StoredResponse:
    return StoredResponse(
        id=uuid.uuid4(),
        office_id=office,
        survey_id="atmosphere",
        survey_version=1,
        channel="qr",
        placement=None,
        kiosk_id=None,
        lang="de",
        received_at=when,
        answers={"stress_now": 2, "respect": 4, "rooms": 4, "effort": 4, "overall": 4},
        comment=None,
        flags=flags,
    )


def store_responses(app: Litestar, responses: list[StoredResponse]) -> None:
    runtime: Runtime = app.state.runtime
    runtime.store.write(lambda cur: commit_responses(cur, responses)).result()


@pytest.fixture
def small(tmp_path: Path) -> Iterator[tuple[Litestar, Client]]:
    """Three offices; a manager of a-pilot, a manager of b-main, an evaluator and an admin."""
    with app_with_offices(make_settings(tmp_path / "data"), SMALL_OFFICES, []) as (app, client):
        add_user(app, "mara", "manager", ("a-pilot",))
        add_user(app, "moritz", "manager", ("b-main",))
        add_user(app, "eva", "evaluator")
        add_user(app, "adam", "admin")
        yield app, client


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Litestar, Client]]:
    """Small synthetic demo data (shared by the report tests, which only read it)."""
    settings = make_settings(tmp_path_factory.mktemp("evaluate") / "data")
    with app_with_offices(settings, [], []) as (app, client):
        runtime: Runtime = app.state.runtime
        load_demo(runtime, DemoParams(responses=1500, days=150))
        runtime.changed()
        add_user(app, "eva", "evaluator")
        add_user(app, "mara", "manager", ("demo-essen-katernberg",))
        yield app, client


def office_cells(html: str, office_id: str) -> list[str]:
    """The number and week cells of one office's row in the overview."""
    row = re.search(
        rf'<tr>\s*<th scope="row"><a href="/dashboard/office/{office_id}">.*?</tr>', html, re.S
    )
    assert row, f"no row for {office_id}"
    return [
        re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row.group(0))
    ]


# -- offices overview --------------------------------------------------------------------------


def test_shown_count_hides_small_numbers() -> None:
    assert shown_count(0, 5) == "< 5"
    assert shown_count(4, 5) == "< 5"
    assert shown_count(5, 5) == "5"
    assert shown_count(1234, 10) == "1234"


def test_overview_counts_hide_small_groups_and_follow_the_role(
    small: tuple[Litestar, Client],
) -> None:
    app, client = small
    zone = app.state.runtime.settings.zone
    # stored times are local wall-clock hours
    now = dt.datetime.now(zone).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    old = now - dt.timedelta(days=60)
    store_responses(
        app,
        [response_at("a-pilot", now - dt.timedelta(hours=i)) for i in range(3)]
        + [response_at("a-pilot", old - dt.timedelta(days=i)) for i in range(6)]
        # flagged responses do not count
        + [response_at("a-pilot", now, flags=("burst",)) for _ in range(4)]
        + [response_at("b-main", now - dt.timedelta(days=1)) for _ in range(2)],
    )
    login_as(client, "eva")
    page = client.get("/dashboard/offices")
    assert page.status_code == 200
    html = page.text
    for office in SMALL_OFFICES:
        assert f'href="/dashboard/office/{office.id}"' in html
    first_week = (old - dt.timedelta(days=5)).strftime("KW %V/%G")
    last_week = now.strftime("KW %V/%G")
    # a-pilot: 9 in all (shown), 3 in the last four weeks (hidden)
    assert office_cells(html, "a-pilot")[3:] == ["9", "&lt; 5", first_week, last_week]
    # b-main: 2 responses: neither the number nor the weeks that would date them
    assert office_cells(html, "b-main")[3:] == ["&lt; 5", "&lt; 5", "–", "–"]
    assert office_cells(html, "b-main")[2] == "Essen / Mitte"
    assert office_cells(html, "c-new")[3:] == ["&lt; 5", "&lt; 5", "–", "–"]
    assert ("eva", "view.dashboard", "offices") in rows(
        app, "SELECT actor, action, target FROM audit_log"
    )

    login_as(client, "mara")
    html = client.get("/dashboard/offices").text
    assert "a-pilot" in html
    assert "b-main" not in html
    assert "Jobcenter C" not in html
    assert 'href="/dashboard/reports"' not in html  # no report link in a manager's menu


def test_overview_needs_a_login(small: tuple[Litestar, Client]) -> None:
    _, client = small
    answer = client.get("/dashboard/offices", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=/dashboard/offices")


# -- reports: access, list, form ---------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/reports",
        BEFORE_AFTER,
        f"{BEFORE_AFTER}/view",
        f"{BEFORE_AFTER}/download?format=json",
    ],
)
def test_report_pages_are_for_evaluators_only(demo: tuple[Litestar, Client], path: str) -> None:
    app, client = demo
    login_as(client, "mara")
    before = rows(app, "SELECT count(*) FROM audit_log WHERE action LIKE '%.report'")
    answer = client.get(path)
    assert answer.status_code == 403
    assert "Kein Zugriff" in answer.text
    assert rows(app, "SELECT count(*) FROM audit_log WHERE action LIKE '%.report'") == before


def test_report_list_links_every_specification(demo: tuple[Litestar, Client]) -> None:
    _, client = demo
    login_as(client, "eva")
    page = client.get("/dashboard/reports")
    assert page.status_code == 200
    assert f'href="{COMPARISON}"' in page.text
    assert f'href="{BEFORE_AFTER}"' in page.text
    assert "Pilot-Standorte im Vergleich mit herkömmlichen Standorten" in page.text
    # the description is the specification's leading comment
    assert "difference-in-differences" in page.text


def test_report_form_starts_from_the_specification(demo: tuple[Litestar, Client]) -> None:
    _, client = demo
    login_as(client, "eva")
    page = client.get(COMPARISON)
    assert page.status_code == 200
    html = page.text
    assert 'value="Pilot"' in html
    assert '<option value="kind:pilot" selected>' in html
    assert '<option value="kind:conventional" selected>' in html
    assert '<option value="type:U-25 Haus">' in html
    assert 'value="demo-essen-katernberg"' in html
    assert 'id="f-include_flagged" name="include_flagged" value="1">' in html  # unticked
    assert 'formaction="/dashboard/reports/pilot-vs-conventional/download"' in html
    assert "Demonstration" in html
    assert "field-error" not in html


@pytest.mark.parametrize(
    "name", ["no-such-report", "..%2Fsecret", "pilot-vs-conventional.toml", "A"]
)
def test_unknown_report_is_a_404_page(demo: tuple[Litestar, Client], name: str) -> None:
    _, client = demo
    login_as(client, "eva")
    for suffix in ("", "/view", "/download?format=json"):
        answer = client.get(f"/dashboard/reports/{name}{suffix}")
        assert answer.status_code == 404, (name, suffix)
        assert "Nicht gefunden" in answer.text


GOOD = {"sent": "1", "a_label": "Pilot", "a_by": "kind:pilot", "b_label": "Andere"}
GOOD_B = {"b_by": "kind:conventional"}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"from": "2024-13-01"}, "from", "gültiges Datum"),
        ({"from": "gestern"}, "from", "gültiges Datum"),
        ({"to": "31.12.2024"}, "to", "gültiges Datum"),
        ({"to": "9999-12-31"}, "to", "zwischen 2000 und 2099"),
        ({"from": "2025-06-02", "to": "2025-06-01"}, "to", "vor seinem Anfang"),
        ({"a_by": "offices", "a_office": "no-such-office"}, "a_office", "unbekannter Standort"),
        ({"a_by": "offices"}, "a_office", "mindestens einen Standort"),
        ({"a_by": "kind:nonsense"}, "a_by", "Auswahl aus der Liste"),
        ({"b_by": "type:Schloss"}, "b_by", "Auswahl aus der Liste"),
        ({"a_label": ""}, "a_label", "Bezeichnung"),
        ({"b_label": "Pilot"}, "b_label", "verschiedene Bezeichnungen"),
        ({"channel": "fax"}, "channel", "Kanal"),
        ({"lang": "xx"}, "lang", "Sprache"),
        ({"placement": "roof"}, "placement", "Aufstellort"),
    ],
)
@pytest.mark.parametrize("action", ["", "/view", "/download"])
def test_bad_parameters_rerender_the_form_with_the_message(
    demo: tuple[Litestar, Client],
    change: dict[str, str],
    field: str,
    message: str,
    action: str,
) -> None:
    app, client = demo
    login_as(client, "eva")
    params = {**GOOD, **GOOD_B, "format": "json", **change}
    before = rows(app, "SELECT count(*) FROM audit_log WHERE action LIKE '%.report'")
    answer = client.get(f"{COMPARISON}{action}", params=params)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("text/html")
    html = answer.text
    # the message sits next to its field, and the summary links to it
    assert re.search(rf'<span class="field-error" id="e-{field}">[^<]*{message}', html), html
    assert f'href="#f-{field}"' in html
    assert f'id="f-{field}' in html
    assert 'class="error-summary"' in html
    # what was typed comes back
    for key, value in change.items():
        if key in ("from", "to", "a_label", "b_label"):
            assert f'value="{value}"' in html
    assert rows(app, "SELECT count(*) FROM audit_log WHERE action LIKE '%.report'") == before


@pytest.mark.parametrize("fmt", ["", "docx", "../etc"])
def test_download_needs_a_known_format(demo: tuple[Litestar, Client], fmt: str) -> None:
    _, client = demo
    login_as(client, "eva")
    answer = client.get(f"{BEFORE_AFTER}/download", params={"format": fmt})
    assert answer.status_code == 422
    assert 'id="e-format"' in answer.text


# -- reports: view and downloads ---------------------------------------------------------------


def test_view_shows_tables_svg_charts_and_the_demo_marker(demo: tuple[Litestar, Client]) -> None:
    app, client = demo
    login_as(client, "eva")
    start = (dt.date.today() - dt.timedelta(days=120)).isoformat()
    params = {**GOOD, **GOOD_B, "from": start, "channel": "kiosk"}
    answer = client.get(f"{COMPARISON}/view", params=params)
    assert answer.status_code == 200, answer.text
    html = answer.text
    assert "<h1>Pilot-Standorte im Vergleich mit herkömmlichen Standorten</h1>" in html
    assert 'class="demo-marker"' in html
    assert "k = 5" in html
    assert f"{start} bis heute" in html
    # numbers in tables, charts as SVG images, each with a table of its own numbers
    assert "<caption>Pilot gegenüber Andere je Frage</caption>" in html
    images = re.findall(
        r'<img src="data:image/svg\+xml;base64,[^"]+" alt="Diagramm: ([^"]+)"', html
    )
    assert "Mittelwerte je Frage. Die Zahlen stehen in der Tabelle unter dem Diagramm." in images
    assert html.count("<details>") == len(images) >= 3
    assert "Zahlen zum Diagramm „Mittelwerte je Frage“" in html
    # the page obeys the policy: no inline script or style
    assert "<script" not in html
    assert "<style" not in html
    assert "style=" not in html
    assert "Content-Security-Policy" in answer.headers
    assert "'unsafe-inline'" not in answer.headers["Content-Security-Policy"]
    # links to change the parameters and to download keep them
    assert f'href="{COMPARISON}?sent=1&amp;from={start}' in html
    assert "channel=kiosk&amp;lang=&amp;placement=&amp;format=pdf" in html
    (detail,) = rows(
        app,
        "SELECT detail FROM audit_log WHERE actor = 'eva' AND action = 'view.report'"
        " AND target = 'pilot-vs-conventional'",
    )[-1:]
    assert "channel=kiosk" in str(detail[0])


def test_view_with_spec_defaults_and_office_lists(demo: tuple[Litestar, Client]) -> None:
    _, client = demo
    login_as(client, "eva")
    params = {
        "sent": "1",
        "a_label": "Styrum",
        "a_by": "offices",
        "a_office": ["demo-muelheim-styrum"],
        "b_label": "Hauptstellen",
        "b_by": "type:Hauptstelle",
    }
    answer = client.get(f"{BEFORE_AFTER}/view", params=params)
    assert answer.status_code == 200, answer.text
    assert "Styrum</dt><dd>1 Standorte: demo-muelheim-styrum" in answer.text
    assert "<h2>Vorher und nachher</h2>" in answer.text


def download(client: Client, fmt: str) -> httpx.Response:
    params = {"format": fmt, "from": (dt.date.today() - dt.timedelta(days=140)).isoformat()}
    return client.get(f"{BEFORE_AFTER}/download", params=params)


@pytest.mark.parametrize(
    ("fmt", "media_type"),
    [
        ("html", "text/html; charset=utf-8"),
        ("pdf", "application/pdf"),
        ("json", "application/json"),
        ("csv", "text/csv; charset=utf-8"),
        ("parquet", "application/vnd.apache.parquet"),
    ],
)
def test_download_formats(
    demo: tuple[Litestar, Client], tmp_path: Path, fmt: str, media_type: str
) -> None:
    app, client = demo
    login_as(client, "eva")
    before = rows(app, "SELECT count(*) FROM audit_log WHERE action = 'export.report'")[0][0]
    answer = download(client, fmt)
    assert answer.status_code == 200, answer.text[:500]
    assert answer.headers["content-type"] == media_type
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="officepulse-office-before-after-')
    assert disposition.endswith(f'-bis-heute.{fmt}"')
    # whatever the file is, it never runs on our origin
    assert answer.headers["content-security-policy"] == "sandbox"
    assert answer.headers["x-content-type-options"] == "nosniff"
    body = answer.content
    if fmt == "html":
        assert body.startswith(b"<!doctype html>")
        assert b"Vorher und nachher" in body
    elif fmt == "pdf":
        assert body.startswith(b"%PDF")
    elif fmt == "json":
        data = json.loads(body)
        assert {"title", "k", "groups", "counts", "events", "trends", "methods"} <= set(data)
        assert data["counts"]["synthetic"] == data["counts"]["responses"] > 0
    elif fmt == "csv":
        header, *lines = body.decode("utf-8").splitlines()
        assert header.startswith("section,item,grp,period,weekday,hour,answer,n,count,mean,")
        assert lines
        assert {line.split(",", 1)[0] for line in lines} <= {"trend", "before_after"}
    else:
        path = tmp_path / "report.parquet"
        path.write_bytes(body)
        with duckdb.connect() as conn:
            found = conn.execute(
                "SELECT section, min(n) FILTER (NOT suppressed), count(*) FILTER (suppressed AND"
                " (n IS NOT NULL OR mean IS NOT NULL)) FROM read_parquet(?) GROUP BY ALL",
                [str(path)],
            ).fetchall()
        sections = {row[0]: row for row in found}
        assert set(sections) == {"trend", "before_after"}
        # never a number below k, and suppressed rows carry none
        assert sections["trend"][1] >= 5
        assert all(row[2] == 0 for row in found)
    after = rows(app, "SELECT actor, target, detail FROM audit_log WHERE action = 'export.report'")
    assert len(after) == before + 1
    assert after[-1] == ("eva", "office-before-after", fmt)


def test_report_tables_keep_suppressed_cells_empty(demo: tuple[Litestar, Client]) -> None:
    _, client = demo
    login_as(client, "eva")
    # One office, Ukrainian answers only: most cells fall below k.
    params = {
        "sent": "1",
        "a_label": "Eins",
        "a_by": "offices",
        "a_office": "demo-essen-katernberg",
        "b_label": "Zwei",
        "b_by": "offices",
        "b_office": "demo-muelheim-styrum",
        "lang": "uk",
        "format": "csv",
    }
    answer = client.get(f"{COMPARISON}/download", params=params)
    assert answer.status_code == 200
    reader = io.StringIO(answer.text)
    header = reader.readline().strip().split(",")
    lines = [dict(zip(header, line.strip().split(","), strict=False)) for line in reader]
    hidden = [line for line in lines if line["suppressed"] == "true"]
    assert hidden
    assert all(line["n"] == "" and line["mean"] == "" for line in hidden)
    assert all(int(line["n"]) >= 5 for line in lines if line["n"])


# -- API tokens --------------------------------------------------------------------------------


def create_token(client: Client, csrf: str, label: str) -> httpx.Response:
    return client.post("/dashboard/tokens", data={"label": label, "csrf_token": csrf})


def offices_with_token(client: Client, token: str) -> tuple[int, list[str] | None]:
    """GET /api/v1/offices with the token alone (the session cookie set aside meanwhile)."""
    session = dict(client.cookies)
    client.cookies.clear()
    try:
        answer = client.get("/api/v1/offices", headers={"Authorization": f"Bearer {token}"})
    finally:
        client.cookies.update(session)
    ids = [o["id"] for o in answer.json()] if answer.status_code == 200 else None
    return answer.status_code, ids


def secret_in(html: str) -> str:
    found = re.search(r'<p class="secret" id="new-token">(opt_[^<]+)</p>', html)
    assert found, "no token on the page"
    return found.group(1)


def test_token_is_shown_once_works_and_can_be_revoked(small: tuple[Litestar, Client]) -> None:
    app, client = small
    csrf = login_as(client, "mara")
    created = create_token(client, csrf, "Tabellenblatt")
    assert created.status_code == 201
    token = secret_in(created.text)
    assert f'curl -H "Authorization: Bearer {token}"' in created.text
    assert "/api/v1/offices/a-pilot/summary" in created.text
    # never again
    page = client.get("/dashboard/tokens")
    assert page.status_code == 200
    assert token not in page.text
    assert "Tabellenblatt" in page.text
    assert "aktiv" in page.text
    assert rows(
        app, "SELECT actor, action, detail FROM audit_log WHERE action = 'token.create'"
    ) == [("mara", "token.create", "Tabellenblatt")]

    assert offices_with_token(client, token) == (200, ["a-pilot"])
    (token_id,) = (row[0] for row in rows(app, "SELECT id FROM api_tokens"))
    answer = client.post(f"/dashboard/tokens/{token_id}/revoke", data={"csrf_token": csrf})
    assert answer.status_code == 200
    assert "ist widerrufen" in answer.text
    assert "widerrufen</td>" in answer.text
    assert offices_with_token(client, token) == (401, None)
    assert ("mara", "token.revoke", token_id) in rows(
        app, "SELECT actor, action, target FROM audit_log"
    )


def test_a_manager_cannot_revoke_another_accounts_token(small: tuple[Litestar, Client]) -> None:
    app, client = small
    csrf = login_as(client, "moritz")
    token = secret_in(create_token(client, csrf, "Moritz' Skript").text)
    (token_id,) = (row[0] for row in rows(app, "SELECT id FROM api_tokens"))

    csrf = login_as(client, "mara")
    assert "Moritz" not in client.get("/dashboard/tokens").text
    answer = client.post(f"/dashboard/tokens/{token_id}/revoke", data={"csrf_token": csrf})
    assert answer.status_code == 404
    assert rows(app, "SELECT revoked_at FROM api_tokens") == [(None,)]
    assert offices_with_token(client, token) == (200, ["b-main"])
    assert not rows(app, "SELECT 1 FROM audit_log WHERE action = 'token.revoke'")

    # an administrator sees every account's tokens and may revoke them
    csrf = login_as(client, "adam")
    page = client.get("/dashboard/tokens").text
    assert '<th scope="col">Konto</th>' in page
    assert "<td>moritz</td>" in page
    answer = client.post(f"/dashboard/tokens/{token_id}/revoke", data={"csrf_token": csrf})
    assert answer.status_code == 200
    assert rows(app, "SELECT revoked_at IS NOT NULL FROM api_tokens") == [(True,)]
    assert rows(app, "SELECT actor, detail FROM audit_log WHERE action = 'token.revoke'") == [
        ("adam", "user=moritz")
    ]


@pytest.mark.parametrize("csrf", [None, "forged"])
def test_token_forms_need_the_csrf_token(small: tuple[Litestar, Client], csrf: str | None) -> None:
    app, client = small
    real = login_as(client, "eva")
    data = {"label": "ohne Schutz"} if csrf is None else {"label": "x", "csrf_token": csrf}
    answer = client.post("/dashboard/tokens", data=data)
    assert answer.status_code == 403
    assert rows(app, "SELECT count(*) FROM api_tokens") == [(0,)]
    secret_in(create_token(client, real, "echt").text)
    (token_id,) = (row[0] for row in rows(app, "SELECT id FROM api_tokens"))
    revoke = {} if csrf is None else {"csrf_token": csrf}
    assert client.post(f"/dashboard/tokens/{token_id}/revoke", data=revoke).status_code == 403
    assert rows(app, "SELECT revoked_at FROM api_tokens") == [(None,)]


@pytest.mark.parametrize("label", ["", "   ", "x" * 101])
def test_bad_token_label_is_refused_next_to_the_field(
    small: tuple[Litestar, Client], label: str
) -> None:
    app, client = small
    csrf = login_as(client, "eva")
    answer = create_token(client, csrf, label)
    assert answer.status_code == 422
    assert re.search(r'<span class="field-error" id="e-label">[^<]*1 bis 100 Zeichen', answer.text)
    assert 'aria-describedby="e-label"' in answer.text
    assert rows(app, "SELECT count(*) FROM api_tokens") == [(0,)]
    assert not rows(app, "SELECT 1 FROM audit_log WHERE action = 'token.create'")


def test_token_operations_match_the_cli(small: tuple[Litestar, Client]) -> None:
    """A token created on the command line shows up on the page and can be revoked there."""
    app, client = small
    runtime: Runtime = app.state.runtime
    OPERATIONS["token.create"].run(runtime, TokenCreate(user="eva", label="vom Terminal"))
    csrf = login_as(client, "eva")
    page = client.get("/dashboard/tokens").text
    assert "vom Terminal" in page
    (token_id,) = (row[0] for row in rows(app, "SELECT id FROM api_tokens"))
    assert (
        client.post(f"/dashboard/tokens/{token_id}/revoke", data={"csrf_token": csrf}).status_code
        == 200
    )
