"""Retention: old comments are deleted (command and daily run), ratings kept, runs logged."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from litestar.testing import TestClient

from officepulse import audit, retention
from officepulse.app import create_app
from officepulse.retention import months_before, purge_comments, retention_cutoff
from officepulse.runtime import Runtime
from officepulse.settings import Settings

from .conftest import make_settings
from .serverproc import cli_env, db_rows, one_error_line, run_cli, server_process

UTC = dt.UTC
# Berlin is on summer time (UTC+2) here: local 10:30, so the cutoff hour is 10:00.
NOW = dt.datetime(2026, 3, 31, 8, 30, tzinfo=UTC)
CUTOFF = dt.datetime(2024, 3, 31, 10, 0)

INSERT = """
INSERT INTO responses (id, office_id, survey_id, survey_version, channel, placement, lang,
                       received_at, answers, comment, content_digest)
VALUES (?, 'mh-u25', 'atmosphere', 1, 'qr', 'waiting', 'de', ?,
        MAP {'stress_now': 2, 'respect': 5, 'overall': 4}, ?, 'digest-' || ?)
"""


def insert(cur: Any, rows: list[tuple[dt.datetime, str | None]]) -> list[str]:
    """Store responses received at the given local times with the given comments."""
    ids = [str(uuid.uuid4()) for _ in rows]
    for row_id, (received_at, comment) in zip(ids, rows, strict=True):
        cur.execute(INSERT, [row_id, received_at, comment, row_id])
    return ids


def everything_but_comments(read: Callable[[str], list[tuple[Any, ...]]]) -> list[Any]:
    return read(
        "SELECT id, office_id, survey_id, survey_version, channel, placement, kiosk_id, lang,"
        " received_at, answers, flags, synthetic FROM responses ORDER BY id"
    )


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    opened = Runtime.open(make_settings(tmp_path / "data"))
    try:
        yield opened
    finally:
        opened.close()


def read_with(runtime: Runtime) -> Callable[[str], list[tuple[Any, ...]]]:
    return lambda sql: runtime.store.read(lambda cur: cur.execute(sql).fetchall())


# -- the cutoff ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "months", "expected"),
    [
        (dt.datetime(2026, 11, 26, 20), 24, dt.datetime(2024, 11, 26, 20)),
        (dt.datetime(2026, 3, 31, 10), 1, dt.datetime(2026, 2, 28, 10)),  # no 31 February
        (dt.datetime(2024, 3, 31, 10), 1, dt.datetime(2024, 2, 29, 10)),  # leap year
        (dt.datetime(2028, 2, 29, 7), 12, dt.datetime(2027, 2, 28, 7)),
        (dt.datetime(2026, 1, 15, 0), 1, dt.datetime(2025, 12, 15, 0)),  # across the year
        (dt.datetime(2026, 12, 31, 23), 11, dt.datetime(2026, 1, 31, 23)),
        (dt.datetime(2026, 5, 31, 9), 120, dt.datetime(2016, 5, 31, 9)),
    ],
)
def test_months_before_counts_calendar_months(
    moment: dt.datetime, months: int, expected: dt.datetime
) -> None:
    assert months_before(moment, months) == expected


def test_cutoff_is_the_local_hour_or_day_months_back(tmp_path: Path) -> None:
    assert retention_cutoff(make_settings(tmp_path), NOW) == CUTOFF
    # 23:30 UTC is already the next day in Berlin.
    late = dt.datetime(2026, 1, 31, 23, 30, tzinfo=UTC)
    monthly = make_settings(tmp_path, comment_retention_months=1)
    assert retention_cutoff(monthly, late) == dt.datetime(2026, 1, 1, 0)
    daily = make_settings(tmp_path, time_granularity="day")
    assert retention_cutoff(daily, NOW) == dt.datetime(2024, 3, 31, 0)
    lisbon = make_settings(tmp_path, timezone="Europe/Lisbon", comment_retention_months=6)
    assert retention_cutoff(lisbon, NOW) == dt.datetime(2025, 9, 30, 9)


# -- the purge -----------------------------------------------------------------------------------


def test_purge_removes_only_comments_before_the_cutoff_hour_and_keeps_every_row(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="officepulse.retention")
    hour = dt.timedelta(hours=1)
    at_cutoff, hour_before, ancient, recent, silent = runtime.store.write(
        lambda cur: insert(
            cur,
            [
                (CUTOFF, "received in the cutoff hour: kept"),
                (CUTOFF - hour, "an hour older: removed"),
                (dt.datetime(2019, 6, 3, 9), "years old: removed"),
                (dt.datetime(2026, 3, 30, 15), "yesterday: kept"),
                (dt.datetime(2020, 1, 6, 11), None),
            ],
        )
    ).result()
    read = read_with(runtime)
    rows_before = everything_but_comments(read)

    dry = purge_comments(runtime, actor=audit.CLI_ACTOR, dry_run=True, now=NOW)
    assert (dry.comments, dry.cutoff, dry.months, dry.dry_run) == (2, CUTOFF, 24, True)
    assert read("SELECT count(comment) FROM responses") == [(4,)]
    assert read("SELECT count(*) FROM audit_log") == [(0,)]

    done = purge_comments(runtime, actor=audit.CLI_ACTOR, now=NOW)
    assert (done.comments, done.cutoff, done.months, done.dry_run) == (2, CUTOFF, 24, False)
    comments = dict(read("SELECT id::VARCHAR, comment FROM responses"))
    assert comments == {
        at_cutoff: "received in the cutoff hour: kept",
        hour_before: None,
        ancient: None,
        recent: "yesterday: kept",
        silent: None,
    }
    assert everything_but_comments(read) == rows_before  # ratings, times, ids: all kept
    # The digest of a removed comment's response would confirm a guessed text: gone too.
    digests = dict(read("SELECT id::VARCHAR, content_digest FROM responses"))
    assert digests == {
        at_cutoff: f"digest-{at_cutoff}",
        hour_before: "purged",
        ancient: "purged",
        recent: f"digest-{recent}",
        silent: f"digest-{silent}",
    }
    assert read("SELECT actor, action, target, detail FROM audit_log") == [
        (
            "(command line)",
            "retention.purge",
            "comments received before 2024-03-31 10:00",
            "2 removed (24 months; ratings kept)",
        )
    ]
    logged = [r.getMessage() for r in caplog.records if r.name == "officepulse.retention"]
    assert logged == [
        "removed 2 comments received before 2024-03-31 10:00 (24 months); ratings kept"
    ]

    # Nothing left to remove: logged with its count, but no audit entry for a non-change.
    again = purge_comments(runtime, actor=retention.SCHEDULER_ACTOR, now=NOW)
    assert again.comments == 0
    assert read("SELECT count(*) FROM audit_log") == [(1,)]
    assert caplog.records[-1].getMessage().startswith("removed 0 comments")


# -- the command -----------------------------------------------------------------------------------


def fill_directly(data: Path, rows: list[tuple[dt.datetime, str | None]]) -> list[str]:
    with duckdb.connect(str(data / "officepulse.duckdb")) as conn:
        return insert(conn, rows)


def comments_by_id(data: Path) -> dict[object, object]:
    return {row[0]: row[1] for row in db_rows(data, "SELECT id::VARCHAR, comment FROM responses")}


def local_now(settings: Settings) -> dt.datetime:
    return dt.datetime.now(settings.zone).replace(tzinfo=None, minute=0, second=0, microsecond=0)


def test_purge_command_without_a_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run_cli(["init", "--data-dir", str(data)]).returncode == 0
    settings = make_settings(data)
    now = local_now(settings)
    old_text = "Zitronenfalter im alten Wartebereich"
    old, kept = fill_directly(
        data,
        [(months_before(now, 30), old_text), (months_before(now, 18), "noch keine zwei Jahre")],
    )
    before = db_rows(data, "SELECT id, answers, received_at FROM responses ORDER BY id")

    dry = run_cli(["purge", "--dry-run", "--data-dir", str(data)])
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("would remove 1 comment received before ")
    assert dry.stdout.rstrip().endswith("(24 months); nothing was changed")
    assert db_rows(data, "SELECT count(comment) FROM responses") == [(2,)]

    cutoffs = {retention_cutoff(settings)}
    done = run_cli(["purge", "--json", "--data-dir", str(data)])
    cutoffs.add(retention_cutoff(settings))  # the hour may turn while the command runs
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["comments"] == 1
    assert result["months"] == 24
    assert result["dry_run"] is False
    assert dt.datetime.fromisoformat(result["cutoff"]) in cutoffs
    assert comments_by_id(data) == {
        old: None,
        kept: "noch keine zwei Jahre",
    }
    assert db_rows(data, "SELECT id, answers, received_at FROM responses ORDER BY id") == before
    assert db_rows(data, "SELECT actor, action, detail FROM audit_log") == [
        ("(command line)", "retention.purge", "1 removed (24 months; ratings kept)")
    ]

    # The database file may still hold the old column data (README, "Retention"); a backup
    # copies only what is live, so the text is in none.
    backup = tmp_path / "backup"
    made = run_cli(["backup", "--out", str(backup), "--data-dir", str(data)])
    assert made.returncode == 0, made.stderr
    assert b"noch keine zwei Jahre" in (backup / "officepulse.duckdb").read_bytes()
    assert (backup / "officepulse.duckdb").read_bytes().count(old_text.encode()) == 0

    shorter = run_cli(
        ["purge", "--data-dir", str(data)],
        env=cli_env(OFFICEPULSE_COMMENT_RETENTION_MONTHS="12"),
    )
    assert shorter.returncode == 0, shorter.stderr
    assert shorter.stdout.startswith("removed 1 comment received before ")
    assert "(12 months); ratings kept" in shorter.stdout
    assert db_rows(data, "SELECT count(*), count(comment) FROM responses") == [(2, 0)]


@pytest.mark.parametrize(
    ("value", "expected"), [("0", ">= 1"), ("121", "<= 120"), ("zwei", "Expected `int`")]
)
def test_a_bad_retention_setting_is_one_clear_error(
    tmp_path: Path, value: str, expected: str
) -> None:
    result = run_cli(
        ["purge", "--data-dir", str(tmp_path / "data")],
        env=cli_env(OFFICEPULSE_COMMENT_RETENTION_MONTHS=value),
    )
    line = one_error_line(result)
    assert line.startswith("officepulse: error: OFFICEPULSE_COMMENT_RETENTION_MONTHS: ")
    assert expected in line


HISTORY_COLUMNS = ("id", "office", "survey", "version", "channel", "placement", "lang", "time",
                   "stress_now", "respect", "rooms", "effort", "overall", "comment")  # fmt: skip
RATINGS = (2, 5, 3, 3, 4)


def history_csv(rows: list[tuple[str, dt.datetime, str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HISTORY_COLUMNS)
    for row_id, received_at, comment in rows:
        cells = [row_id, "mh-u25", "atmosphere", 1, "qr", "", "de"]
        writer.writerow([*cells, f"{received_at:%Y-%m-%d %H:%M}", *RATINGS, comment])
    return out.getvalue()


def test_import_and_purge_through_a_running_server(tmp_path: Path) -> None:
    """An import bringing comments past the period has them purged at once, in the server."""
    data = tmp_path / "data"
    for args in (["init"], ["office", "add", "mh-u25", "--name", "U-25 Haus", "--kind", "pilot"]):
        assert run_cli([*args, "--data-dir", str(data)]).returncode == 0
    now = local_now(make_settings(data))
    marker = "Zitronenfalter vor der Tuer"
    old, older, recent = (str(uuid.uuid4()) for _ in range(3))
    fresh = tmp_path / "fresh.csv"
    fresh.write_text(
        history_csv([(recent, months_before(now, 2), "freundlich und schnell")]), encoding="utf-8"
    )
    history = tmp_path / "history.csv"
    history.write_text(
        history_csv(
            [(old, months_before(now, 25), marker), (older, months_before(now, 40), "alt")]
        ),
        encoding="utf-8",
    )
    database = data / "officepulse.duckdb"
    wal = data / "officepulse.duckdb.wal"
    log = tmp_path / "server.log"
    with server_process(data, log=log):
        first = run_cli(["import", "responses", str(fresh), "--data-dir", str(data)])
        assert first.returncode == 0, first.stderr
        assert first.stdout.rstrip().endswith("0 already present")  # nothing to purge
        # Just imported, a comment is in the server's write-ahead log ...
        assert wal.read_bytes().count(b"freundlich und schnell") > 0

        imported = run_cli(["import", "responses", str(history), "--data-dir", str(data)])
        assert imported.returncode == 0, imported.stderr
        assert imported.stdout.rstrip().endswith(
            "; 2 comments older than the retention period removed (ratings kept)"
        )
        # ... but the checkpoint after the import's purge emptied the log: the removed text
        # never reached the file.
        files = database.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
        assert files.count(marker.encode()) == 0
        assert b"freundlich und schnell" in files

        # Nothing is left for the command, run through the same server.
        dry = run_cli(["purge", "--dry-run", "--json", "--data-dir", str(data)])
        assert dry.returncode == 0, dry.stderr
        assert json.loads(dry.stdout)["comments"] == 0
        done = run_cli(["purge", "--json", "--data-dir", str(data)])
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["comments"] == 0
    server_log = log.read_text(encoding="utf-8")
    assert "INFO officepulse.retention: removed 2 comments received before " in server_log
    assert "INFO officepulse.retention: removed 0 comments received before " in server_log
    assert comments_by_id(data) == {
        old: None,
        older: None,
        recent: "freundlich und schnell",
    }
    answers = db_rows(data, "SELECT DISTINCT answers FROM responses")
    assert answers == [(dict(zip(HISTORY_COLUMNS[8:13], RATINGS, strict=True)),)]
    # only a run that removed something is audited
    assert db_rows(data, "SELECT actor, action FROM audit_log") == [
        ("(command line)", "retention.purge")
    ]


# -- the daily run inside the server --------------------------------------------------------------


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_server_purges_daily_and_survives_a_failed_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="officepulse.retention")
    monkeypatch.setattr(retention, "FIRST_RUN_DELAY", 0.0)
    monkeypatch.setattr(retention, "RUN_INTERVAL", 0.05)
    real_purge = retention.purge_comments
    runs: list[str] = []
    lock = threading.Lock()

    def flaky_purge(runtime: Runtime, **kwargs: Any) -> retention.PurgeResult:
        with lock:
            runs.append(kwargs["actor"])
            first = len(runs) == 1
        if first:
            raise RuntimeError("the disk is on fire")
        return real_purge(runtime, **kwargs)

    monkeypatch.setattr(retention, "purge_comments", flaky_purge)
    app = create_app(make_settings(tmp_path / "data"))
    with TestClient(app=app) as client:
        runtime: Runtime = app.state.runtime
        wait_until(lambda: len(runs) >= 1)  # the first run failed
        stale, fresh = runtime.store.write(
            lambda cur: insert(
                cur,
                [(dt.datetime(2020, 2, 3, 10), "zu alt"), (dt.datetime.now(), "ganz neu")],
            )
        ).result()
        read = read_with(runtime)
        wait_until(lambda: read("SELECT count(*) FROM audit_log") == [(1,)])
        assert client.get("/healthz").status_code == 200
        assert dict(read("SELECT id::VARCHAR, comment FROM responses")) == {
            stale: None,
            fresh: "ganz neu",
        }
        assert read("SELECT actor, action, detail FROM audit_log") == [
            ("(scheduler)", "retention.purge", "1 removed (24 months; ratings kept)")
        ]
    assert set(runs) == {"(scheduler)"}
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert (
        "WARNING",
        "the daily purge failed, next attempt in 0.05 s: the disk is on fire",
    ) in messages
    assert any(
        message.startswith("removed 1 comment received before 20") for _, message in messages
    )
