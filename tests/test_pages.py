"""The phone survey pages through the Litestar test client (the browser tests add Chromium)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from officepulse.app import create_app
from officepulse.i18n import choose_language, gettext_for, parse_accept_language
from officepulse.languages import LANGUAGES
from officepulse.limiter import FLAG_AFTER, REFUSE_AFTER, RepeatLimiter
from officepulse.offices import Office
from officepulse.runtime import Runtime
from officepulse.settings import Settings

from .conftest import app_with_offices, make_settings, stored_rows

Client = TestClient[Litestar]
CORE = ("stress_now", "respect", "rooms", "effort", "overall")


@pytest.fixture
def page_app(settings: Settings) -> Iterator[tuple[Litestar, Client]]:
    with app_with_offices(
        settings,
        [
            Office(id="mh-u25", name="U-25 Haus Mülheim", kind="pilot"),
            Office(id="ess-en", name="English Desk", kind="pilot", default_lang="en"),
            Office(id="demo-x", name="Demo Office", kind="pilot", synthetic=True),
        ],
        [("mh-u25", "waiting")],
    ) as app_and_client:
        yield app_and_client


def form_of(html: str) -> dict[str, str]:
    """The hidden fields of the rendered survey form."""
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


def full_answers(**changes: str) -> dict[str, str]:
    answers = {f"answer-{item}": "4" for item in CORE}
    answers.update(changes)
    return answers


def submit(client: Client, path: str, fields: dict[str, str], **headers: str) -> Any:
    return client.post(path, data=fields, headers=headers or None)


def test_survey_page_in_german_by_default(page_app: tuple[Litestar, Client]) -> None:
    _, client = page_app
    page = client.get("/s/mh-u25?p=waiting")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<html lang="de" dir="ltr">' in html
    assert "Wie angespannt fühlen Sie sich jetzt gerade?" in html
    for item in CORE:
        assert f'id="q-{item}"' in html
        assert html.count(f'name="answer-{item}"') == 5
    assert html.count("<fieldset") == 8  # 5 core + 3 more questions
    assert html.count("<legend>") == 8
    assert "<details" in html  # the extra questions, usable without JavaScript
    assert 'dir="auto"' in html  # free text in any direction
    hidden = form_of(html)
    uuid.UUID(hidden["id"])
    assert hidden["p"] == "waiting"
    assert hidden["lang"] == "de"


def test_security_headers_and_no_cookie(page_app: tuple[Litestar, Client]) -> None:
    _, client = page_app
    page = client.get("/s/mh-u25")
    csp = page.headers["content-security-policy"]
    assert "unsafe-inline" not in csp
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert "set-cookie" not in page.headers
    assert page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text  # no inline script
    assert " style=" not in page.text  # no inline style
    for url in re.findall(r'(?:href|src|action)="([^"]+)"', page.text):
        assert not url.startswith(("http:", "https:", "//")), url


def test_page_and_stylesheet_stay_small(page_app: tuple[Litestar, Client]) -> None:
    _, client = page_app
    html = client.get("/s/mh-u25?lang=ar").content
    css = client.get("/static/survey.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert len(html) + len(css.content) < 30 * 1024


def test_every_language_renders_with_direction_and_switcher(
    page_app: tuple[Litestar, Client],
) -> None:
    _, client = page_app
    for tag, language in LANGUAGES.items():
        html = client.get(f"/s/mh-u25?lang={tag}").text
        assert f'<html lang="{tag}" dir="{language.direction}">' in html
        # the switcher names each language in its own script, with links that keep the office
        for other in LANGUAGES.values():
            assert f">{other.native_name}</a>" in html
        assert 'aria-current="true"' in html
        assert "<img" not in html  # no flags, no images


def test_language_from_accept_language_then_office_default(
    page_app: tuple[Litestar, Client],
) -> None:
    _, client = page_app
    html = client.get("/s/mh-u25", headers={"accept-language": "tr-TR,tr;q=0.9,de;q=0.8"}).text
    assert '<html lang="tr"' in html
    html = client.get("/s/ess-en", headers={"accept-language": "xx-YY"}).text
    assert '<html lang="en"' in html
    html = client.get("/s/ess-en?lang=ar", headers={"accept-language": "tr"}).text
    assert '<html lang="ar" dir="rtl"' in html


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", ["de", "en"]),
        ("fa-AF", ["fa"]),
        ("prs", ["fa"]),
        ("ku", ["kmr"]),
        ("en;q=0.2, ar;q=0.9", ["ar", "en"]),
        ("zh-CN, *;q=0.1", []),
        ("uk;q=0", []),
        ("de-x-ls", ["de-x-ls"]),
        ("garbage;;;q=x", []),
    ],
)
def test_accept_language_parsing(header: str, expected: list[str]) -> None:
    assert parse_accept_language(header) == expected


def test_unsupported_query_language_falls_back() -> None:
    assert choose_language("xx", None, "de") == "de"
    assert choose_language("AR", None, "de") == "ar"


def test_unknown_office_is_a_friendly_404_in_the_client_language(
    page_app: tuple[Litestar, Client],
) -> None:
    _, client = page_app
    page = client.get("/s/nowhere?lang=en")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "We could not find this survey" in page.text
    assert "Traceback" not in page.text
    german = client.get("/s/nowhere", headers={"accept-language": "de"})
    assert german.status_code == 404
    assert gettext_for("de")("We could not find this survey") in german.text


@pytest.mark.parametrize("path", ["/s", "/s/", "/s/mh-u25/extra", "/s/mh-u25%2Fx", "/s/a/b/c"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_mangled_survey_addresses_get_the_friendly_page(
    page_app: tuple[Litestar, Client], path: str, method: str
) -> None:
    """A cut-off or garbled QR address is a client's page, not the API's problem JSON."""
    app, client = page_app
    page = client.request(
        method, path, headers={"accept-language": "uk"}, data={"lang": "ar", "answer-overall": "4"}
    )
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert gettext_for("uk")("We could not find this survey") in page.text
    assert 'lang="uk"' in page.text
    assert stored_rows(app, "SELECT count(*) FROM responses") == [(0,)]


def test_submit_stores_the_response_and_thanks_in_the_same_language(
    page_app: tuple[Litestar, Client],
) -> None:
    app, client = page_app
    hidden = form_of(client.get("/s/mh-u25?p=waiting&lang=uk").text)
    answer = submit(client, "/s/mh-u25", {**hidden, **full_answers(), "comment": "Добре"})
    assert answer.status_code == 200
    assert '<html lang="uk"' in answer.text
    assert gettext_for("uk")("Thank you for your answers!") in answer.text
    rows = stored_rows(
        app,
        "SELECT id::VARCHAR, channel, placement, lang, answers, comment, flags FROM responses",
    )
    assert rows == [(hidden["id"], "qr", "waiting", "uk", dict.fromkeys(CORE, 4), "Добре", [])]


def test_resubmitting_the_same_form_stores_one_row(page_app: tuple[Litestar, Client]) -> None:
    app, client = page_app
    hidden = form_of(client.get("/s/mh-u25").text)
    for _ in range(3):
        assert submit(client, "/s/mh-u25", {**hidden, **full_answers()}).status_code == 200
    assert stored_rows(app, "SELECT count(*) FROM responses") == [(1,)]


@pytest.mark.parametrize(
    ("lang", "heading"),
    [
        ("de", "Ihre ersten Antworten waren schon gespeichert"),
        ("ar", "تم حفظ إجاباتك الأولى بالفعل"),
    ],
)
def test_changed_answers_sent_again_with_the_same_form_are_not_claimed_saved(
    page_app: tuple[Litestar, Client], lang: str, heading: str
) -> None:
    """Back, change an answer, send again: the first answers stay, and the page says so."""
    app, client = page_app
    hidden = form_of(client.get(f"/s/mh-u25?lang={lang}").text)
    first = submit(client, "/s/mh-u25", {**hidden, **full_answers()})
    assert first.status_code == 200
    assert heading not in first.text
    changed = submit(client, "/s/mh-u25", {**hidden, **full_answers(**{"answer-rooms": "1"})})
    assert changed.status_code == 200
    assert heading in changed.text
    assert f'lang="{lang}"' in changed.text
    rows = stored_rows(app, "SELECT answers['rooms'] FROM responses")
    assert rows == [(4,)]


@pytest.mark.parametrize(
    ("query", "stored"),
    [
        ("?p=waiting", "waiting"),
        ("?p=chef-office", "unknown"),
        ("?p=<script>", "unknown"),
        ("", None),
    ],
)
def test_unregistered_placement_is_stored_as_unknown(
    page_app: tuple[Litestar, Client], query: str, stored: str | None
) -> None:
    app, client = page_app
    hidden = form_of(client.get(f"/s/mh-u25{query}").text)
    fields = {**hidden, **full_answers()}
    if query == "?p=<script>":
        fields["p"] = "<script>alert(1)</script>"  # a tampered hidden field
    assert submit(client, "/s/mh-u25", fields).status_code == 200
    assert stored_rows(app, "SELECT placement FROM responses") == [(stored,)]


def test_validation_error_keeps_the_answers_and_names_the_fields(
    page_app: tuple[Litestar, Client],
) -> None:
    app, client = page_app
    hidden = form_of(client.get("/s/mh-u25?lang=en").text)
    fields = {**hidden, "answer-stress_now": "2", "answer-respect": "5", "comment": "Zu laut"}
    answer = submit(client, "/s/mh-u25", fields)
    assert answer.status_code == 422
    html = answer.text
    assert "Please check your answers" in html
    for missing in ("rooms", "effort", "overall"):
        assert f'id="err-{missing}"' in html
        assert f'href="#q-{missing}"' in html
    assert 'id="err-stress_now"' not in html
    assert re.search(r'name="answer-stress_now" value="2" checked', html)
    assert re.search(r'name="answer-respect" value="5" checked', html)
    assert ">Zu laut</textarea>" in html
    assert form_of(html)["id"] == hidden["id"]  # the retry keeps the same id
    assert stored_rows(app, "SELECT count(*) FROM responses") == [(0,)]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"answer-rooms": "9"}, "rooms"),
        ({"answer-rooms": "viel"}, "rooms"),
        ({"comment": "x" * 501}, "comment"),
    ],
)
def test_bad_values_are_shown_next_to_the_field(
    page_app: tuple[Litestar, Client], changes: dict[str, str], field: str
) -> None:
    app, client = page_app
    hidden = form_of(client.get("/s/mh-u25?lang=de").text)
    answer = submit(client, "/s/mh-u25", {**hidden, **full_answers(**changes)})
    assert answer.status_code == 422
    assert f'id="err-{field}"' in answer.text
    assert stored_rows(app, "SELECT count(*) FROM responses") == [(0,)]


def test_tampered_form_is_refused_without_a_crash(page_app: tuple[Litestar, Client]) -> None:
    app, client = page_app
    hidden = form_of(client.get("/s/mh-u25").text)
    fields = {**hidden, **full_answers(), "id": "not-a-uuid", "survey": "other", "lang": "xx"}
    answer = submit(client, "/s/mh-u25", fields)
    assert answer.status_code == 200  # survey, language and id come from the server's side
    assert stored_rows(app, "SELECT lang FROM responses") == [("de",)]


def test_oversized_form_is_refused(page_app: tuple[Litestar, Client]) -> None:
    app, client = page_app
    answer = client.post("/s/mh-u25", data={"comment": "x" * 20_000})
    assert answer.status_code == 413
    assert answer.headers["content-type"].startswith("text/html")
    assert stored_rows(app, "SELECT count(*) FROM responses") == [(0,)]


def test_demo_office_is_labelled_synthetic(page_app: tuple[Litestar, Client]) -> None:
    _, client = page_app
    html = client.get("/s/demo-x?lang=en").text
    assert "synthetic" in html


def test_accessibility_statement(page_app: tuple[Litestar, Client]) -> None:
    _, client = page_app
    survey = client.get("/s/mh-u25?lang=en").text
    assert 'href="/accessibility?lang=en&amp;office=mh-u25"' in survey
    page = client.get("/accessibility?lang=en&office=mh-u25")
    assert page.status_code == 200
    assert "Accessibility statement" in page.text
    assert "Report a barrier" in page.text
    assert 'href="/s/mh-u25?lang=en"' in page.text


def test_accessibility_contact_setting(tmp_path: Any) -> None:
    app = create_app(make_settings(tmp_path / "d", accessibility_contact="barrieren@example.org"))
    with TestClient(app=app) as client:
        page = client.get("/accessibility?lang=de")
        assert 'href="mailto:barrieren@example.org"' in page.text


def _phone_submits(client: Client, agent: str, count: int, office: str = "mh-u25") -> list[int]:
    statuses = []
    for _ in range(count):
        hidden = form_of(client.get(f"/s/{office}").text)
        answer = submit(
            client, f"/s/{office}", {**hidden, **full_answers()}, **{"user-agent": agent}
        )
        statuses.append(answer.status_code)
    return statuses


def test_repeat_limiter_flags_then_refuses_and_forgets_at_midnight(
    page_app: tuple[Litestar, Client],
) -> None:
    app, client = page_app
    limiter: RepeatLimiter = app.state.limiter
    now = [dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.UTC)]
    limiter.clock = lambda: now[0]
    phone_a, phone_b = "Phone A (Android 14)", "Phone B (iOS 18)"

    assert _phone_submits(client, phone_a, REFUSE_AFTER) == [200] * REFUSE_AFTER
    assert _phone_submits(client, phone_b, 2) == [200, 200]
    refused = _phone_submits(client, phone_a, 1)
    assert refused == [429]
    flags = [row[0] for row in stored_rows(app, "SELECT flags FROM responses ORDER BY rowid")]
    assert flags[:FLAG_AFTER] == [[]] * FLAG_AFTER
    assert flags[FLAG_AFTER:REFUSE_AFTER] == [["repeat"]] * (REFUSE_AFTER - FLAG_AFTER)
    assert flags[REFUSE_AFTER:] == [[], []]  # the other phone is not affected
    assert stored_rows(app, "SELECT count(*) FROM responses") == [(REFUSE_AFTER + 2,)]

    now[0] += dt.timedelta(days=1)  # a new day: new salt, counts forgotten
    assert _phone_submits(client, phone_a, 1) == [200]
    last = stored_rows(app, "SELECT flags FROM responses ORDER BY rowid DESC LIMIT 1")
    assert last == [([],)]
    assert limiter.phones_today == 1

    # the limiter's inputs never reach the database
    runtime: Runtime = app.state.runtime

    def contents() -> list[tuple[str, bytes]]:
        files = runtime.settings.data_dir.rglob("*")
        return [(path.name, path.read_bytes()) for path in files if path.is_file()]

    before = contents()  # the write-ahead log, before a checkpoint folds it into the file
    runtime.store.write(lambda cur: cur.execute("CHECKPOINT")).result()
    for name, content in before + contents():
        for needle in (b"Phone A", b"Phone B", b"testclient"):
            assert needle not in content, (needle, name)


def test_limiter_key_changes_with_the_day() -> None:
    from zoneinfo import ZoneInfo

    now = [dt.datetime(2026, 11, 26, 22, 59, tzinfo=dt.UTC)]  # 23:59 in Berlin
    limiter = RepeatLimiter(zone=ZoneInfo("Europe/Berlin"), clock=lambda: now[0])
    first = limiter.key("10.0.0.1", "agent", "mh-u25")
    assert limiter.key("10.0.0.1", "agent", "mh-u25") == first
    assert limiter.key("10.0.0.2", "agent", "mh-u25") != first
    assert limiter.key("10.0.0.1", "agent", "other") != first
    now[0] += dt.timedelta(minutes=2)  # 00:01 in Berlin: a new day
    assert limiter.key("10.0.0.1", "agent", "mh-u25") != first
