"""A full disk: submissions answer 503, nothing is half-written, and writes resume by themselves.

Each test mounts a small tmpfs of its own for the data directory and fills it with a file, as
a log or a backup would fill a real disk. Mounting needs root (or CAP_SYS_ADMIN): outside CI
the tests skip with that reason where it is refused; under CI they fail.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from playwright.sync_api import Browser

from officepulse.offices import Office
from officepulse.runtime import Runtime

from .conftest import add_user, make_settings, stored_rows, submit_login, valid_response
from .serverproc import cli_env, one_error_line, run_cli
from .test_kiosk_api import auth, kiosk_response, paired
from .test_kiosk_browser import (
    complete_survey,
    drain,
    live_server,
    new_kiosk_page,
    queue_length,
    wait_until,
)

MIB = 1024 * 1024
OFFICES = [Office(id="mh-u25", name="U-25 Haus Mülheim", kind="pilot")]


@contextmanager
def small_filesystem(where: Path, size_mb: int) -> Iterator[Path]:
    """A tmpfs of ``size_mb`` MiB mounted at ``where`` for the duration of the block."""
    where.mkdir()
    try:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(where)],
            capture_output=True,
            text=True,
            check=False,
        )
        refused = result.stderr.strip() if result.returncode else None
    except FileNotFoundError:
        refused = "there is no mount command"
    if refused is not None:
        reason = f"cannot mount a small tmpfs for the full-disk test (needs root): {refused}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(fs: Path, leave_bytes: int) -> Path:
    """Take all but ``leave_bytes`` of the file system's free space with one file."""
    filler = fs / "filler"
    stat = os.statvfs(fs)
    size = stat.f_bavail * stat.f_frsize - leave_bytes
    assert size > 0, "the file system is already fuller than asked"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.posix_fallocate(fd, 0, size)
    finally:
        os.close(fd)
    return filler


def free_bytes(fs: Path) -> int:
    stat = os.statvfs(fs)
    return stat.f_bavail * stat.f_frsize


@contextmanager
def app_on(data_dir: Path, **overrides: Any) -> Iterator[tuple[Litestar, TestClient[Litestar]]]:
    from .conftest import app_with_offices

    settings = make_settings(data_dir, **overrides)
    with app_with_offices(settings, OFFICES, [("mh-u25", "entrance")]) as app_and_client:
        yield app_and_client


def stored_ids(app: Litestar) -> list[str]:
    return [str(row[0]) for row in stored_rows(app, "SELECT id FROM responses")]


def test_full_disk_answers_503_keeps_nothing_and_recovers_without_restart(
    tmp_path: Path,
) -> None:
    with (
        small_filesystem(tmp_path / "fs", 64) as fs,
        app_on(fs / "data", min_free_mb=16) as (
            app,
            client,
        ),
    ):
        token, _ = paired(app, client)
        add_user(app, "leitung", "manager", ("mh-u25",))
        first = valid_response()
        assert client.post("/api/v1/responses", json=first).status_code == 201

        filler = fill(fs, leave_bytes=8 * MIB)  # below the reserve of 16 MiB
        refused = [valid_response() for _ in range(3)]
        for body in refused:
            answer = client.post("/api/v1/responses", json=body)
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert answer.json()["status"] == 503
            assert "nothing was kept" in answer.json()["detail"]
            assert int(answer.headers["retry-after"]) >= 1

        # The kiosk gets no acknowledgement for its batch, so it keeps the queue.
        queued = [kiosk_response() for _ in range(4)]
        batch = client.post(
            "/api/v1/kiosk/responses", json={"responses": queued}, headers=auth(token)
        )
        assert batch.status_code == 503, batch.text
        assert batch.headers["content-type"].startswith("application/problem+json")
        assert "results" not in batch.json()

        # The phone form says, in the client's language, to try again.
        form = {f"answer-{k}": str(v) for k, v in valid_response()["answers"].items()}
        page = client.post("/s/mh-u25", data={**form, "lang": "de", "p": "entrance"})
        assert page.status_code == 503
        assert page.headers["content-type"].startswith("text/html")
        assert "Ihre Antworten konnten nicht gespeichert werden" in page.text

        # Other writes (a heartbeat) are refused alike; reading goes on.
        heartbeat = client.post(
            "/api/v1/kiosk/heartbeat",
            json={"app_version": "1", "queue_length": 4},
            headers=auth(token),
        )
        assert heartbeat.status_code == 503, heartbeat.text
        assert heartbeat.headers["content-type"].startswith("application/problem+json")
        # A staff login (it writes a session) gets a German page saying to try later.
        refused_login = submit_login(client, "leitung")
        assert refused_login.status_code == 503
        assert refused_login.headers["content-type"].startswith("text/html")
        assert "Vorübergehend nicht möglich" in refused_login.text

        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.json()["status"] == "degraded"
        assert health.json()["storage"].startswith("the data directory's file system is full")
        assert stored_ids(app) == [first["id"]]

        filler.unlink()  # space is freed: the same server takes writes again
        assert client.get("/healthz").json() | {"version": ""} == {
            "status": "ok",
            "storage": "ok",
            "version": "",
        }
        for body in refused:
            assert client.post("/api/v1/responses", json=body).status_code == 201
        batch = client.post(
            "/api/v1/kiosk/responses", json={"responses": queued}, headers=auth(token)
        )
        assert batch.status_code == 200, batch.text
        assert [r["status"] for r in batch.json()["results"]] == ["created"] * 4
        expected = {first["id"], *(b["id"] for b in refused), *(q["id"] for q in queued)}
        ids = stored_ids(app)
        assert sorted(ids) == sorted(expected)
        assert submit_login(client, "leitung").status_code == 303


def test_storage_errors_inside_duckdb_reopen_the_database_and_lose_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Without the reserve, DuckDB itself runs into the full disk.

    A failed WAL write fails the commit; a failed checkpoint invalidates the whole database
    in DuckDB. The store must then open the file again by itself, and every acknowledged
    response must be there exactly once, also in the file after the server has stopped.
    """
    caplog.set_level(logging.WARNING, logger="officepulse.storage.store")
    acknowledged: set[str] = set()
    refused: list[dict[str, Any]] = []
    with small_filesystem(tmp_path / "fs", 32) as fs:
        data_dir = fs / "data"
        with app_on(data_dir, min_free_mb=0) as (app, client):
            runtime: Runtime = app.state.runtime
            # Checkpoint after every commit, so that a checkpoint meets the full disk.
            runtime.store.read(lambda cur: cur.execute("SET GLOBAL checkpoint_threshold='1KB'"))
            filler = fill(fs, leave_bytes=192 * 1024)
            for _ in range(60):
                body = valid_response(comment="x" * 400)
                answer = client.post("/api/v1/responses", json=body)
                if answer.status_code in (200, 201):
                    acknowledged.add(body["id"])
                    continue
                assert answer.status_code == 503, answer.text
                assert answer.headers["content-type"].startswith("application/problem+json")
                refused.append(body)
            assert refused, "the disk never filled up"
            messages = [record.getMessage() for record in caplog.records]
            assert any("the database failed" in m for m in messages), messages

            filler.unlink()
            # Writes resume without a restart; a refused response sent again is stored once.
            for body in refused:
                answer = client.post("/api/v1/responses", json=body)
                assert answer.status_code in (200, 201), answer.text
                acknowledged.add(body["id"])
            for _ in range(5):
                body = valid_response()
                assert client.post("/api/v1/responses", json=body).status_code == 201
                acknowledged.add(body["id"])
            ids = stored_ids(app)
            assert len(ids) == len(set(ids))
            assert set(ids) == acknowledged
            messages = [record.getMessage() for record in caplog.records]
            assert any("open again" in m for m in messages), messages

        # Stopped: the file opens cleanly and holds exactly the acknowledged rows, once each.
        with duckdb.connect(str(data_dir / "officepulse.duckdb"), read_only=True) as conn:
            rows = conn.execute("SELECT id::VARCHAR FROM responses").fetchall()
        assert sorted(str(row[0]) for row in rows) == sorted(acknowledged)


def test_a_command_on_a_full_disk_fails_with_one_line(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "fs", 16) as fs:
        data_dir = fs / "data"
        assert (
            run_cli(["init", "--data-dir", str(data_dir)], env=cli_env(**RESERVE_1)).returncode == 0
        )
        fill(fs, leave_bytes=512 * 1024)
        args = ["office", "add", "x", "--name", "X", "--kind", "pilot", "--data-dir", str(data_dir)]
        result = run_cli(args, env=cli_env(**RESERVE_1))
        assert one_error_line(result).startswith(
            "officepulse: error: the data directory's file system is full"
        )
        # Reading works on a full disk.
        listed = run_cli(["office", "list", "--data-dir", str(data_dir)], env=cli_env(**RESERVE_1))
        assert listed.returncode == 0, listed.stderr


RESERVE_1 = {"OFFICEPULSE_MIN_FREE_MB": "1"}


def test_kiosk_keeps_its_queue_and_the_phone_page_asks_to_retry(
    browser: Browser, tmp_path: Path
) -> None:
    """Real Chromium against a real server whose data directory fills up, then frees."""
    with (
        small_filesystem(tmp_path / "fs", 128) as fs,
        live_server(tmp_path, fs / "data", {"OFFICEPULSE_MIN_FREE_MB": "16"}) as live,
    ):
        context, page = new_kiosk_page(browser, live)
        batches: list[int] = []
        page.on(
            "response",
            lambda r: batches.append(r.status) if "/kiosk/responses" in r.url else None,
        )
        filler = fill(fs, leave_bytes=8 * MIB)
        for value in (2, 4):
            complete_survey(page, value=value)

        def refused() -> bool:
            page.evaluate("window.officepulseKiosk.flush()")
            return batches.count(503) >= 2

        wait_until(refused, what="the server to refuse two batches")
        assert 200 not in batches
        assert queue_length(page) == 2
        indicator = page.locator("#status-indicator")
        assert indicator.get_attribute("data-queue") == "2"
        assert "offline" in (indicator.get_attribute("class") or "")

        phone = context.new_page()
        phone.goto(f"{live.base}/s/mh-u25?p=entrance&lang=de")
        for item in ("stress_now", "respect", "rooms", "effort", "overall"):
            phone.check(f"input[name='answer-{item}'][value='3']")
        phone.click("form button[type=submit]")
        phone.wait_for_selector("h1")
        assert "Ihre Antworten konnten nicht gespeichert werden" in phone.inner_text("h1")
        assert live.responses() == 0

        filler.unlink()
        drain(page, timeout=30)
        assert live.responses() == 2
        context.close()
