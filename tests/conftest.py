"""Shared fixtures: every test builds its own app on its own data directory."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from playwright.sync_api import Browser, Page, sync_playwright

from officepulse.app import create_app
from officepulse.offices import Office, insert_offices, insert_placement
from officepulse.runtime import Runtime
from officepulse.settings import Settings

SECRET = "test-secret-key-that-is-long-enough-0123456789"

OFFICES = (
    Office(id="mh-u25", name="U-25 Haus Mülheim", kind="pilot", type_label="U-25 Haus"),
    Office(id="mh-main", name="Jobcenter Mülheim", kind="conventional"),
)


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    return Settings(data_dir=data_dir, secret_key=SECRET, **overrides)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture
def client(app: Litestar) -> Iterator[TestClient[Litestar]]:
    with TestClient(app=app) as test_client:
        runtime: Runtime = app.state.runtime

        def setup(cur: Any) -> None:
            insert_offices(cur, OFFICES)
            insert_placement(cur, "mh-u25", "waiting")

        runtime.store.write(setup).result()
        runtime.refresh_offices()
        yield test_client


def valid_response(**changes: Any) -> dict[str, Any]:
    """A complete, valid submission of the default survey; ``changes`` replace fields."""
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "office": "mh-u25",
        "survey": "atmosphere",
        "version": 1,
        "channel": "qr",
        "placement": "waiting",
        "lang": "de",
        "answers": {"stress_now": 2, "respect": 5, "rooms": 4, "effort": 4, "overall": 5},
        "comment": "Sehr freundlich.",
    }
    body.update(changes)
    return body


def stored_rows(
    app: Litestar, sql: str = "SELECT * FROM responses", params: list[Any] | None = None
) -> list[tuple[Any, ...]]:
    runtime: Runtime = app.state.runtime
    return runtime.store.read(lambda cur: cur.execute(sql, params or []).fetchall())


# -- real Chromium (Debian's package) through Playwright ---------------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # without these, Chromium tries to reach Google's hosts, which this network refuses
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the whole run; skipped only where it is missing outside CI."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing but CI is set: install Debian's chromium")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


def axe_violations(page: Page) -> list[tuple[str, str]]:
    """axe-core's WCAG 2.1 A/AA and best-practice violations on the page (id, first node)."""
    import axe_playwright_python

    if not page.evaluate("typeof window.axe !== 'undefined'"):
        script = Path(axe_playwright_python.__file__).with_name("axe.min.js").read_text("utf-8")
        page.add_script_tag(content=script)
    violations: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document, {runOnly: {type: 'tag',"
        " values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})).violations"
    )
    return [(v["id"], v["nodes"][0]["html"][:120]) for v in violations]


@contextmanager
def app_with_offices(
    settings: Settings, offices: list[Office], placements: list[tuple[str, str]]
) -> Iterator[tuple[Litestar, TestClient[Litestar]]]:
    """An app on ``settings`` with these offices and placements, inside its test client."""
    app = create_app(settings)
    with TestClient(app=app) as test_client:
        runtime: Runtime = app.state.runtime

        def setup(cur: Any) -> None:
            insert_offices(cur, offices)
            for office_id, placement in placements:
                insert_placement(cur, office_id, placement)

        runtime.store.write(setup).result()
        runtime.changed()
        yield app, test_client


# -- staff accounts ----------------------------------------------------------------------------

STAFF_PASSWORD = "correct horse battery"


def add_user(
    app: Litestar,
    name: str,
    role: str,
    offices: tuple[str, ...] = (),
    password: str = STAFF_PASSWORD,
) -> None:
    """Create a staff account through the same operation as `officepulse user add`."""
    from officepulse.operations import OPERATIONS, UserAdd

    runtime: Runtime = app.state.runtime
    OPERATIONS["user.add"].run(
        runtime, UserAdd(name=name, role=role, offices=list(offices), password=password)
    )


def csrf_token_in(html: str) -> str:
    """The CSRF token of the first form on a page."""
    import re

    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def submit_login(
    client: httpx.Client, name: str, password: str = STAFF_PASSWORD, **extra: str
) -> httpx.Response:
    """Fill in and send the real login form (test client or a real server); no redirect."""
    form = client.get("/login")
    data = {"name": name, "password": password, "csrf_token": csrf_token_in(form.text), **extra}
    return client.post("/login", data=data, follow_redirects=False)


def login(client: TestClient[Litestar], name: str, password: str = STAFF_PASSWORD) -> str:
    """Log the test client in as ``name``; returns the session's CSRF token for forms."""
    answer = submit_login(client, name, password)
    assert answer.status_code == 303, answer.text
    # Every staff page (even an error page) carries the logout form with the session's token.
    return csrf_token_in(client.get("/dashboard/no-such-page").text)


def browser_login(page: Page, base: str, name: str, password: str = STAFF_PASSWORD) -> None:
    """Log a browser page in through the real login form."""
    page.goto(f"{base}/login")
    page.fill("#name", name)
    page.fill("#password", password)
    page.click("main button[type=submit]")
    page.wait_for_load_state()
