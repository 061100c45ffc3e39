"""An evaluator in real Chromium against a real `officepulse serve` on small demo data."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page

from .conftest import STAFF_PASSWORD, axe_violations, browser_login
from .serverproc import run_cli, server_process

REPORT = "office-before-after"
# Report pages compute statistics and render charts: seconds on a loaded two-core machine.
SLOW = 60_000


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server on 2,000 synthetic responses, with an evaluator made on the command line."""
    data = tmp_path_factory.mktemp("evaluate-browser") / "data"
    demo = run_cli(["demo", "--data-dir", str(data), "--responses", "2000", "--no-serve"])
    assert demo.returncode == 0, demo.stderr
    user = ["user", "add", "eva", "--role", "evaluator", "--password-stdin"]
    added = run_cli([*user, "--data-dir", str(data)], input=STAFF_PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    with server_process(data) as (base, _process):
        yield base


def watch(page: Page, base: str) -> tuple[list[str], list[str]]:
    """Requests to other origins, and the console's Content-Security-Policy complaints."""
    foreign: list[str] = []
    refused: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            refused.append(message.text)

    page.on(
        "request",
        lambda request: (
            None if request.url.startswith((base, "data:")) else foreign.append(request.url)
        ),
    )
    page.on("console", on_console)
    return foreign, refused


def test_evaluator_views_and_downloads_a_report(
    browser: Browser, live: str, tmp_path: Path
) -> None:
    base = live
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(SLOW)
    foreign, refused = watch(page, base)
    browser_login(page, base, "eva")
    assert page.url == f"{base}/dashboard/offices"
    assert page.locator("h1").inner_text() == "Standorte"
    assert page.locator(".demo-marker").is_visible()
    assert page.locator("table.offices tbody tr").count() == 6

    page.click("nav >> text=Berichte")
    page.click(f"a[href='/dashboard/reports/{REPORT}']")
    assert page.locator("h1").inner_text().startswith("Vorher und nachher")
    start = (dt.date.today() - dt.timedelta(days=300)).isoformat()
    page.fill("#f-from", start)
    page.fill("#f-a_label", "Mit Umbau")
    page.select_option("#f-b_by", "type:Hauptstelle")
    page.click("button:text('Bericht anzeigen')")
    page.wait_for_selector("figure.chart img")
    assert "/view?" in page.url
    assert page.locator(".demo-marker").is_visible()
    assert page.locator("dl.report-facts").first.inner_text().count("Mit Umbau") == 1
    charts = page.locator("figure.chart img")
    assert charts.count() >= 2
    # the SVG images really render (a broken image has no natural width)
    assert charts.first.evaluate("image => image.naturalWidth") > 0

    with page.expect_download(timeout=SLOW) as pdf_download:
        page.click("nav[aria-label='Bericht herunterladen'] >> text=PDF")
    pdf = pdf_download.value
    assert pdf.suggested_filename == f"officepulse-{REPORT}-{start}-bis-heute.pdf"
    pdf_file = tmp_path / pdf.suggested_filename
    pdf.save_as(pdf_file)
    assert pdf_file.read_bytes().startswith(b"%PDF")

    # the form's own download buttons carry the same parameters
    page.click("text=Parameter ändern")
    assert page.locator("#f-a_label").input_value() == "Mit Umbau"
    with page.expect_download(timeout=SLOW) as csv_download:
        page.click("button:text('Tabellen als CSV')")
    table = tmp_path / csv_download.value.suggested_filename
    csv_download.value.save_as(table)
    header, *lines = table.read_text(encoding="utf-8").splitlines()
    assert header.startswith("section,item,grp,period,")
    assert lines

    assert foreign == []
    assert refused == []
    context.close()


def test_evaluator_pages_have_no_axe_violations(browser: Browser, live: str) -> None:
    base = live
    # The policy forbids inline scripts; only this context lifts it to inject axe-core.
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(SLOW)
    browser_login(page, base, "eva")
    form = f"{base}/dashboard/reports/{REPORT}"
    pages = {
        "overview": f"{base}/dashboard/offices",
        "reports": f"{base}/dashboard/reports",
        "form": form,
        "form with errors": f"{form}?sent=1&from=2025-02-01&to=2025-01-01&a_by=offices",
        "report": f"{form}/view",
        "tokens": f"{base}/dashboard/tokens",
    }
    for name, url in pages.items():
        page.goto(url, timeout=SLOW)
        assert page.locator("h1").count() == 1, name
        assert axe_violations(page) == [], name
    context.close()
