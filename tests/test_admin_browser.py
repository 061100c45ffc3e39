"""The administrator pages in real headless Chromium against a real ``officepulse serve``:
a kiosk created, paired, seen and revoked from /admin/kiosks, and axe-core on every page.

Skipped only where Chromium is missing and CI is unset; under CI=true a missing browser fails.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page

from .conftest import STAFF_PASSWORD, axe_violations, browser_login
from .serverproc import run_cli, server_process

OFFICES_CSV = """\
id,name,kind,type,city,district,opened_on
mh-u25,U-25 Haus Mülheim,pilot,U-25 Haus,Mülheim an der Ruhr,Innenstadt,2019-09-01
"""
# Shortened kiosk timings, as in the kiosk's own browser tests.
TIMINGS = {
    "OFFICEPULSE_KIOSK_IDLE_SECONDS": "2",
    "OFFICEPULSE_KIOSK_PROMPT_SECONDS": "5",
    "OFFICEPULSE_KIOSK_THANKS_SECONDS": "1",
}
TIMEOUT = 20_000  # ms: the machine is small and shared


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real server with one office (placement entrance) and an administrator ``root``."""
    root = tmp_path_factory.mktemp("admin-browser")
    data = root / "data"
    csv_file = root / "offices.csv"
    csv_file.write_text(OFFICES_CSV, encoding="utf-8")
    data_dir = ["--data-dir", str(data)]
    assert run_cli(["init", *data_dir]).returncode == 0
    assert run_cli(["office", "import", str(csv_file), *data_dir]).returncode == 0
    placement = run_cli(["office", "placement", "add", "mh-u25", "entrance", *data_dir])
    assert placement.returncode == 0, placement.stderr
    admin = run_cli(
        ["user", "add", "root", "--role", "admin", "--password-stdin", *data_dir],
        input=STAFF_PASSWORD + "\n",
    )
    assert admin.returncode == 0, admin.stderr
    with server_process(data, env=TIMINGS) as (base, _process):
        yield base


def watch_foreign(page: Page, base: str) -> list[str]:
    """Every request the page makes to another origin (there must be none)."""
    foreign: list[str] = []
    page.on(
        "request",
        lambda request: None if request.url.startswith(base) else foreign.append(request.url),
    )
    return foreign


def wait_until(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def kiosk_state(page: Page, base: str, kiosk_id: str) -> str:
    page.goto(f"{base}/admin/kiosks")
    return page.locator(f"#kiosk-{kiosk_id} .kiosk-state").inner_text().strip()


def test_admin_pairs_and_revokes_a_kiosk(browser: Browser, live: str) -> None:
    base = live
    admin_context = browser.new_context(viewport={"width": 1280, "height": 900})
    admin = admin_context.new_page()
    admin.set_default_timeout(TIMEOUT)
    admin_foreign = watch_foreign(admin, base)
    browser_login(admin, base, "root")
    admin.goto(f"{base}/admin/kiosks")
    admin.select_option("#kiosk-office", "mh-u25")
    admin.fill("#kiosk-name", "Eingang")
    admin.select_option("#kiosk-placement", "entrance")
    admin.click("main form button:has-text('Tablet anlegen')")
    code = admin.locator("#pairing-code").inner_text().strip()
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", code)
    assert admin.locator("#kiosk-url").inner_text().endswith("/kiosk/")
    title = admin.locator("#pairing-title").inner_text()
    found = re.search(r"Tablet (mh-u25-[0-9a-f]+) ist angelegt", title)
    assert found is not None
    kiosk_id = found.group(1)
    assert kiosk_state(admin, base, kiosk_id) == "wartet auf Kopplung"

    tablet_context = browser.new_context(viewport={"width": 1024, "height": 768})
    tablet = tablet_context.new_page()
    tablet.set_default_timeout(TIMEOUT)
    tablet_foreign = watch_foreign(tablet, base)
    tablet.goto(f"{base}/kiosk/")
    tablet.wait_for_selector("#screen-pair", state="visible")
    tablet.fill("#pair-code", code)
    tablet.click("#pair-form button[type=submit]")
    tablet.wait_for_selector("#screen-start", state="visible")

    # the tablet's first heartbeat follows the pairing at once
    wait_until(
        lambda: kiosk_state(admin, base, kiosk_id) == "gekoppelt, meldet sich",
        "the kiosk to show as paired",
    )
    admin.click(f"#kiosk-{kiosk_id} button:has-text('Widerrufen')")
    assert f"Das Kiosk-Tablet {kiosk_id} ist widerrufen" in admin.locator(".notice").inner_text()
    assert admin.locator(f"#kiosk-{kiosk_id} .kiosk-state").inner_text().strip() == "widerrufen"

    tablet.reload()
    tablet.wait_for_selector("#screen-pair", state="visible")
    assert tablet.locator("#pair-status").is_visible()
    assert tablet.locator("#pair-status").inner_text().strip()

    assert admin_foreign == []
    assert tablet_foreign == []
    tablet_context.close()
    admin_context.close()


def test_axe_finds_no_violation_on_the_admin_pages(browser: Browser, live: str) -> None:
    base = live
    # The policy forbids inline scripts; only this context lifts it to inject axe-core.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    foreign = watch_foreign(page, base)
    page.goto(f"{base}/login")
    assert axe_violations(page) == [], "/login"
    browser_login(page, base, "root")
    for path in (
        "/admin",
        "/admin/offices",
        "/admin/offices/mh-u25",
        "/admin/events",
        "/admin/districts",
        "/admin/kiosks",
        "/admin/users",
        "/admin/audit",
    ):
        page.goto(f"{base}{path}")
        assert page.locator("h1").count() == 1, path
        assert axe_violations(page) == [], path
    # a form with problems next to its fields
    page.goto(f"{base}/admin/users")
    page.fill("#user-name", "neu")
    page.select_option("#user-role", "manager")
    page.fill("#user-password", "kurz")
    page.fill("#user-password-confirm", "anders")
    page.click("main form button:has-text('Konto anlegen')")
    assert page.locator("#user-password-error").is_visible()
    assert page.locator("#user-password-confirm-error").is_visible()
    assert page.locator(".error-summary a[href='#user-password']").count() == 1
    assert axe_violations(page) == [], "users form with errors"
    assert foreign == []
    context.close()


def test_buttons_and_fields_are_large_enough_to_touch(browser: Browser, live: str) -> None:
    """Every button and text field of the admin forms is at least 44 px high."""
    base = live
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    browser_login(page, base, "root")
    for path in ("/admin/offices", "/admin/offices/mh-u25", "/admin/kiosks", "/admin/users"):
        page.goto(f"{base}{path}")
        heights = page.eval_on_selector_all(
            "main button, main input:not([type=hidden]):not([type=checkbox]):not([type=radio]),"
            " main select",
            "nodes => nodes.map(n =>"
            " [n.id || n.textContent.trim(), n.getBoundingClientRect().height])",
        )
        assert heights, path
        small = [(name, height) for name, height in heights if height < 44]
        assert small == [], path
    context.close()
