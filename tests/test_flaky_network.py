"""Retries through a flaky network: a proxy drops, delays and cuts requests between clients and
the real server process, before and after the server commits; nothing is stored twice.

The proxy and the retrying clients are in ``faults.py``. First each fault on its own, with the
answer the retry must get (a response the server stored before the cut is answered 200 or
"duplicate"; one it never received in full, 201 or "created"); then API clients, kiosks and
phones retrying through random faults; then a real kiosk in Chromium whose uploads are cut.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Response as PageResponse

from .conftest import valid_response
from .faults import (
    AFTER_REQUEST,
    Fault,
    FaultProxy,
    Ledger,
    api_client,
    kiosk_client,
    phone_client,
    run_clients,
)
from .serverproc import db_rows, run_cli, server_process
from .test_kiosk_browser import TIMINGS, complete_survey, queue_length, wait_until

OFFICE = "mh-u25"


def prepared(data: Path, kiosks: int) -> list[str]:
    """A data directory with one office; the pairing codes of ``kiosks`` new kiosks."""
    for command in (
        ["init"],
        ["office", "add", OFFICE, "--name", "U-25 Haus Mülheim", "--kind", "pilot"],
    ):
        done = run_cli([*command, "--data-dir", str(data)])
        assert done.returncode == 0, done.stderr
    codes = []
    for number in range(kiosks):
        done = run_cli(
            ["kiosk", "add", OFFICE, "--name", f"Kiosk {number}", "--json", "--data-dir", str(data)]
        )
        assert done.returncode == 0, done.stderr
        codes.append(json.loads(done.stdout)["pairing_code"])
    return codes


def pair(base: str, code: str) -> str:
    """Pair straight with the server (a lost pairing answer would use the code up)."""
    answer = httpx.post(f"{base}/api/v1/kiosk/pair", json={"code": code})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


def port_of(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """One server for the single-fault cases: (base URL, a paired kiosk's token)."""
    data = tmp_path_factory.mktemp("faults") / "data"
    (code,) = prepared(data, kiosks=1)
    with server_process(data) as (base, _process):
        yield base, pair(base, code)


# The first attempt goes through the proxy with one fault; the retry goes straight to the server.
# None: the client hears no acknowledgement. A set: either answer is right (the server may or
# may not have committed when the connection closed; the primary key keeps it at one row).
SINGLE_FAULTS: dict[Fault, tuple[int | None, set[int]]] = {
    Fault.PASS: (201, {200}),
    Fault.DELAY: (201, {200}),
    Fault.DROP: (None, {201}),
    Fault.CUT_REQUEST: (None, {201}),
    Fault.CUT_AFTER_REQUEST: (None, {200, 201}),
    Fault.LOSE_RESPONSE: (None, {200}),
    Fault.CUT_RESPONSE: (None, {200}),
}
KIOSK_STATUS = {200: "duplicate", 201: "created"}


@pytest.mark.parametrize("fault", list(Fault), ids=[fault.value for fault in Fault])
def test_each_fault_on_its_own_then_the_retry(live: tuple[str, str], fault: Fault) -> None:
    base, token = live
    first, retry_answers = SINGLE_FAULTS[fault]
    body = valid_response()
    batch = [
        {k: v for k, v in valid_response().items() if k not in ("office", "channel", "placement")}
        for _ in range(3)
    ]
    kiosk = {"Authorization": f"Bearer {token}"}
    with FaultProxy(port_of(base), seed=1, script=[fault, fault]) as proxy:
        try:
            status: int | None = httpx.post(
                f"{proxy.base}/api/v1/responses", json=body, timeout=10
            ).status_code
        except httpx.HTTPError:
            status = None
        try:
            answer = httpx.post(
                f"{proxy.base}/api/v1/kiosk/responses",
                json={"responses": batch},
                headers=kiosk,
                timeout=10,
            )
            kiosk_results = [r["status"] for r in answer.json()["results"]]
        except (httpx.HTTPError, ValueError):
            kiosk_results = None
    assert proxy.counts == {fault: 2}
    assert status == first
    expected_first = None if first is None else [KIOSK_STATUS[first]] * 3
    assert kiosk_results == expected_first
    # The retry (same id, same body) straight to the server; a third time is always "stored".
    retry = httpx.post(f"{base}/api/v1/responses", json=body).status_code
    assert retry in retry_answers
    assert httpx.post(f"{base}/api/v1/responses", json=body).status_code == 200
    again = httpx.post(f"{base}/api/v1/kiosk/responses", json={"responses": batch}, headers=kiosk)
    statuses = {r["status"] for r in again.json()["results"]}
    assert statuses <= {KIOSK_STATUS[status] for status in retry_answers}
    again = httpx.post(f"{base}/api/v1/kiosk/responses", json={"responses": batch}, headers=kiosk)
    assert {r["status"] for r in again.json()["results"]} == {"duplicate"}


def test_a_changed_body_under_a_lost_ack_is_a_conflict(live: tuple[str, str]) -> None:
    """A retry must be the same response: a changed body under a stored id is refused (409)."""
    base, _token = live
    body = valid_response()
    with (
        FaultProxy(port_of(base), seed=2, script=[Fault.LOSE_RESPONSE]) as proxy,
        pytest.raises(httpx.HTTPError),
    ):
        httpx.post(f"{proxy.base}/api/v1/responses", json=body, timeout=10)
    changed = dict(body, answers=dict(body["answers"], overall=1))
    conflict = httpx.post(f"{base}/api/v1/responses", json=changed)
    assert conflict.status_code == 409
    assert conflict.headers["content-type"].startswith("application/problem+json")
    assert httpx.post(f"{base}/api/v1/responses", json=body).status_code == 200


def test_clients_retrying_through_random_faults_store_each_response_once(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    codes = prepared(data, kiosks=2)
    ledger = Ledger()
    with server_process(data, log_level="warning") as (base, _process):
        tokens = [pair(base, code) for code in codes]
        with FaultProxy(port_of(base), seed=8) as proxy:
            clients = [
                *(partial(api_client, proxy.base, ledger, 30, n, OFFICE) for n in range(4)),
                *(
                    partial(kiosk_client, proxy.base, ledger, token, 40, 10 + n)
                    for n, token in enumerate(tokens)
                ),
                *(partial(phone_client, proxy.base, ledger, 8, 20 + n, OFFICE) for n in range(2)),
            ]
            still_running = run_clients(ledger, clients)
    assert still_running == 0
    assert ledger.errors == []
    generated = ledger.generated
    assert len(generated) == 4 * 30 + 2 * 40 + 2 * 8
    assert ledger.acknowledged == generated
    # Every kind of fault happened, and retries of responses stored before a cut were
    # recognised: 200 for the API, "duplicate" in kiosk batches.
    assert set(proxy.counts) == set(Fault), proxy.counts
    assert sum(proxy.counts[fault] for fault in AFTER_REQUEST) > 0
    assert ledger.answers["200"] > 0, ledger.answers
    assert ledger.answers["duplicate"] > 0, ledger.answers
    assert ledger.attempts > len(generated)
    # The file, with the server stopped: each generated id exactly once, nothing else.
    rows = db_rows(data, "SELECT id::VARCHAR, count(*) FROM responses GROUP BY ALL")
    assert {row[0] for row in rows} == generated
    assert {row[1] for row in rows} == {1}
    assert db_rows(data, "SELECT count(*), count(DISTINCT id) FROM responses") == [
        (len(generated), len(generated))
    ]


def test_kiosk_in_chromium_keeps_its_queue_through_cut_uploads(
    browser: Browser, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    (code,) = prepared(data, kiosks=1)
    uploads: list[PageResponse] = []
    # The first uploads meet every fault in turn (only the delayed one gets through), the
    # rest at random; the pages and every other call pass untouched.
    script = [
        Fault.LOSE_RESPONSE,
        Fault.CUT_RESPONSE,
        Fault.DROP,
        Fault.CUT_REQUEST,
        Fault.CUT_AFTER_REQUEST,
        Fault.DELAY,
    ]
    with (
        server_process(data, env=TIMINGS) as (base, _process),
        FaultProxy(
            port_of(base),
            seed=9,
            faulty=lambda line: line.startswith(b"POST /api/v1/kiosk/responses "),
            script=script,
        ) as proxy,
    ):
        context = browser.new_context(viewport={"width": 1024, "height": 768})
        try:
            page = context.new_page()
            page.on(
                "response",
                lambda r: uploads.append(r) if r.url.endswith("/api/v1/kiosk/responses") else None,
            )
            page.goto(f"{proxy.base}/kiosk/")
            page.wait_for_selector("#screen-pair", state="visible")
            page.fill("#pair-code", code.lower())
            page.click("#pair-form button[type=submit]")
            page.wait_for_selector("#screen-start", state="visible")
            for value in (1, 3, 5, 2):
                complete_survey(page, value=value)

            def drained() -> bool:
                page.evaluate("window.officepulseKiosk.flush()")
                return queue_length(page) == 0

            wait_until(drained, timeout=60, what="the kiosk queue to drain through the proxy")
            statuses = [result["status"] for result in _results(uploads)]
        finally:
            context.close()
    assert all(proxy.counts[fault] >= 1 for fault in script), proxy.counts
    # The first upload was stored but its answer lost: a later one was told "duplicate".
    assert "duplicate" in statuses, statuses
    assert set(statuses) <= {"created", "duplicate"}, statuses
    rows = db_rows(data, "SELECT count(*), count(DISTINCT id), min(channel) FROM responses")
    assert rows == [(4, 4, "kiosk")]
    answers = db_rows(data, "SELECT answers['overall'] FROM responses ORDER BY 1")
    assert answers == [(1,), (2,), (3,), (5,)]


def _results(uploads: list[PageResponse]) -> list[dict[str, Any]]:
    """The per-response results of every upload whose answer reached the kiosk in full."""
    results: list[dict[str, Any]] = []
    for upload in uploads:
        try:
            results.extend(upload.json()["results"])
        except (PlaywrightError, ValueError, KeyError):
            continue  # an answer the proxy cut
    return results
