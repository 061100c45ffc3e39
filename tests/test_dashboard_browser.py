"""The office dashboard in real headless Chromium against a real `officepulse serve`.

One server with the synthetic demo data for the whole module; the manager account is made
with the CLI and logs in through the login form.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import pytest
from playwright.sync_api import Browser, Page

from .conftest import STAFF_PASSWORD, axe_violations, browser_login
from .serverproc import run_cli, server_process

OWN: Final = "demo-muelheim-u25"
OTHER: Final = "demo-essen-mitte"
TIMEOUT_MS: Final = 20_000


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A served demo data directory with a manager of one demo office."""
    data = tmp_path_factory.mktemp("dashboard") / "data"
    demo = run_cli(["demo", "--data-dir", str(data), "--responses", "4000", "--no-serve"])
    assert demo.returncode == 0, demo.stderr
    user = ["user", "add", "mona", "--role", "manager", "--office", OWN]
    added = run_cli(
        [*user, "--password-stdin", "--data-dir", str(data)], input=STAFF_PASSWORD + "\n"
    )
    assert added.returncode == 0, added.stderr
    with server_process(data) as (base, _process):
        yield base


def watch_requests(page: Page, base: str) -> list[str]:
    foreign: list[str] = []
    page.on(
        "request",
        lambda request: (
            None if request.url.startswith((base, "data:")) else foreign.append(request.url)
        ),
    )
    return foreign


def test_manager_lands_on_an_accessible_dashboard(browser: Browser, live: str) -> None:
    context = browser.new_context(bypass_csp=True, locale="de-DE")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    foreign = watch_requests(page, live)
    browser_login(page, live, "mona")
    # a manager of one office lands on its dashboard
    page.wait_for_url(f"{live}/dashboard/office/{OWN}", timeout=TIMEOUT_MS)
    assert page.locator("h1").inner_text() == "U-25 Haus Mülheim an der Ruhr (Demo)"
    assert "synthetisch" in page.locator("p.synthetic").inner_text()
    for heading in ("h-alerts", "h-week", "h-heat", "h-dist", "h-comments", "h-kiosks"):
        assert page.locator(f"#{heading}").is_visible()
    # the charts are images that rendered (server-side SVG, no script)
    images = page.locator("main figure.chart img")
    assert images.count() >= 3
    for index in range(images.count()):
        width = images.nth(index).evaluate("img => img.naturalWidth")
        assert width > 0
    assert page.locator("script").count() == 0
    # the week form goes to the previous week
    page.click("text=Vorige Woche")
    page.wait_for_load_state()
    assert "?week=" in page.url
    assert page.locator("h1").inner_text() == "U-25 Haus Mülheim an der Ruhr (Demo)"
    assert axe_violations(page) == []
    assert foreign == []
    context.close()


def test_manager_gets_a_forbidden_page_for_another_office(browser: Browser, live: str) -> None:
    context = browser.new_context(locale="de-DE")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    foreign = watch_requests(page, live)
    browser_login(page, live, "mona")
    answer = page.goto(f"{live}/dashboard/office/{OTHER}")
    assert answer is not None
    assert answer.status == 403
    assert page.locator("h1").inner_text() == "Kein Zugriff"
    assert "Jobcenter Essen Mitte" not in page.content()
    assert foreign == []
    context.close()
