"""Backups and restores through the ``officepulse`` command, with and without a running server."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from officepulse.storage.migrations import MIGRATIONS

from .conftest import valid_response
from .serverproc import cli_env, db_rows, one_error_line, run_cli, server_process

OFFICES_CSV = """\
id,name,kind,type,city,district,opened_on
mh-u25,U-25 Haus Mülheim,pilot,U-25 Haus,Mülheim an der Ruhr,Innenstadt,2019-09-01
mh-main,Jobcenter Mülheim,conventional,Hauptstelle,Mülheim an der Ruhr,Stadtmitte,
"""
FILES = ["backup.json", "officepulse.duckdb", "secret_key"]


def key_file_env() -> dict[str, str]:
    """The environment without OFFICEPULSE_SECRET_KEY: the key lives in DATA_DIR/secret_key."""
    env = cli_env()
    del env["OFFICEPULSE_SECRET_KEY"]
    return env


def prepared_data_dir(tmp_path: Path, env: dict[str, str] | None = None) -> Path:
    data = tmp_path / "data"
    csv_file = tmp_path / "offices.csv"
    csv_file.write_text(OFFICES_CSV, encoding="utf-8")
    for args in (["init"], ["office", "import", str(csv_file)]):
        done = run_cli([*args, "--data-dir", str(data)], env=env)
        assert done.returncode == 0, done.stderr
    return data


def all_rows(data_dir: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, in a stable order (no server may hold the file)."""
    with duckdb.connect(str(data_dir / "officepulse.duckdb"), read_only=True) as conn:
        tables = [
            str(row[0])
            for row in conn.execute(
                "SELECT table_name FROM duckdb_tables() ORDER BY table_name"
            ).fetchall()
        ]
        return {
            table: conn.execute(f'SELECT * FROM "{table}" ORDER BY ALL').fetchall()  # noqa: S608
            for table in tables
        }


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def is_empty_or_missing(path: Path) -> bool:
    return not path.exists() or not any(path.iterdir())


def test_round_trip_keeps_every_row_and_the_secret_key(tmp_path: Path) -> None:
    env = key_file_env()
    data = tmp_path / "data"
    demo = run_cli(["demo", "--no-serve", "--responses", "500", "--data-dir", str(data)], env=env)
    assert demo.returncode == 0, demo.stderr
    before = all_rows(data)
    backups = tmp_path / "backups"
    backups.mkdir()
    first = backups / "first"

    made = run_cli(["backup", "--out", str(first), "--data-dir", str(data), "--json"], env=env)
    assert made.returncode == 0, made.stderr
    result = json.loads(made.stdout)
    assert result["tables"] == {table: len(rows) for table, rows in before.items()}
    assert result["tables"]["responses"] == 500
    assert result["secret_key"] is True
    assert sorted(p.name for p in first.iterdir()) == FILES
    assert [p.name for p in backups.iterdir()] == ["first"]  # no *.part-* folder left behind
    assert mode(first) == 0o700
    assert mode(first / "secret_key") == 0o600
    assert (first / "secret_key").read_bytes() == (data / "secret_key").read_bytes()
    manifest = json.loads((first / "backup.json").read_text(encoding="utf-8"))
    assert manifest["format"] == 1
    assert manifest["tables"] == result["tables"]
    assert manifest["migrations"] == [m.name for m in MIGRATIONS]
    assert manifest["created"].endswith(":00Z")  # to the minute, in UTC
    database = (first / "officepulse.duckdb").read_bytes()
    assert manifest["database"] == {
        "name": "officepulse.duckdb",
        "bytes": len(database),
        "sha256": hashlib.sha256(database).hexdigest(),
    }
    assert not (first / "officepulse.duckdb.wal").exists()
    # The backup is audited, after its snapshot was taken.
    assert before["audit_log"] == []
    assert db_rows(data, "SELECT actor, action, target FROM audit_log") == [
        ("(command line)", "backup", str(first))
    ]

    # A second backup holds the first one's audit entry; its restore is a full copy.
    snapshot = all_rows(data)
    second = backups / "second"
    made = run_cli(["backup", "--out", str(second), "--data-dir", str(data)], env=env)
    assert made.returncode == 0, made.stderr
    restored = tmp_path / "restored"
    done = run_cli(["restore", str(second), "--data-dir", str(restored)], env=env)
    assert done.returncode == 0, done.stderr
    assert f"into {restored}" in done.stdout
    assert any(line.split() == ["responses", "500"] for line in done.stdout.splitlines())
    assert all_rows(restored) == snapshot
    assert sorted(p.name for p in restored.iterdir()) == ["officepulse.duckdb", "secret_key"]
    assert (restored / "secret_key").read_bytes() == (data / "secret_key").read_bytes()
    assert mode(restored / "secret_key") == 0o600

    # The restored directory works: its backup appends to the audit log, whose id sequence
    # must continue after the restored entries rather than start again.
    third = backups / "third"
    again = run_cli(["backup", "--out", str(third), "--data-dir", str(restored)], env=env)
    assert again.returncode == 0, again.stderr
    assert "it holds the secret key" in again.stdout
    assert db_rows(restored, "SELECT id, target FROM audit_log ORDER BY id") == [
        (1, str(first)),
        (2, str(third)),
    ]


def test_backup_while_the_server_takes_submissions(tmp_path: Path) -> None:
    data = prepared_data_dir(tmp_path)
    acknowledged: list[str] = []
    attempted: set[str] = set()
    failures: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(base: str) -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                body = valid_response(id=str(uuid.uuid4()))
                with lock:
                    attempted.add(body["id"])
                try:
                    answer = http.post(f"{base}/api/v1/responses", json=body)
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    return
                with lock:
                    if answer.status_code == 201:
                        acknowledged.append(body["id"])
                    else:
                        failures.append(f"{answer.status_code} {answer.text}")

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 60
        while len(acknowledged) < count and not failures and time.monotonic() < deadline:
            time.sleep(0.02)

    out = tmp_path / "backup"
    restored = tmp_path / "restored"
    with server_process(data) as (base, _process):
        threads = [threading.Thread(target=client, args=(base,)) for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            wait_for(100)
            with lock:
                before = set(acknowledged)
            made = run_cli(["backup", "--out", str(out), "--data-dir", str(data), "--json"])
            with lock:
                after = set(acknowledged)
            wait_for(len(after) + 20)  # and the server keeps taking them afterwards
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert made.returncode == 0, made.stderr
        # The source server still runs; a new directory is a fine target meanwhile.
        done = run_cli(["restore", str(out), "--data-dir", str(restored)])
        assert done.returncode == 0, done.stderr
    assert not failures, failures[:3]
    assert len(before) >= 100
    assert len(after) > len(before), "no submission was acknowledged while the backup ran"

    in_backup = [str(row[0]) for row in db_rows(out, "SELECT id FROM responses")]
    assert len(in_backup) == len(set(in_backup)), "a response is in the backup twice"
    assert before <= set(in_backup), "an acknowledged response is missing from the backup"
    assert set(in_backup) <= attempted
    assert json.loads(made.stdout)["tables"]["responses"] == len(in_backup)
    # Every row is complete: exactly as the server stored it.
    backed_up = db_rows(out, "SELECT * FROM responses ORDER BY id")
    stored = db_rows(data, "SELECT * FROM responses ORDER BY id")
    assert backed_up == [row for row in stored if str(row[0]) in set(in_backup)]
    assert len(stored) >= len(after) + 20

    with server_process(restored) as (base, _process):
        listed = run_cli(["survey", "list", "--json", "--data-dir", str(restored)])
        assert json.loads(listed.stdout)[0]["responses"] == len(in_backup)
        retry = httpx.post(f"{base}/api/v1/responses", json=valid_response(id=in_backup[0]))
        assert retry.status_code == 200  # the restored server knows it: no second row
        refused = run_cli(["restore", str(out), "--data-dir", str(restored)])
        assert "a server (process" in one_error_line(refused)
        assert "is running on" in refused.stderr
    assert db_rows(restored, "SELECT count(*) FROM responses") == [(len(in_backup),)]


# -- refusals ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_backup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A backup of a data directory with two offices, its secret key in a file."""
    base = tmp_path_factory.mktemp("small")
    data = prepared_data_dir(base, env=key_file_env())
    out = base / "backup"
    out.mkdir()  # an empty folder is a fine --out
    made = run_cli(["backup", "--out", str(out), "--data-dir", str(data)], env=key_file_env())
    assert made.returncode == 0, made.stderr
    return out


def _edit_manifest(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def edit(backup: Path) -> None:
        path = backup / "backup.json"
        manifest = json.loads(path.read_text(encoding="utf-8"))
        change(manifest)
        path.write_text(json.dumps(manifest), encoding="utf-8")

    return edit


def _flip_a_byte(backup: Path) -> None:
    path = backup / "officepulse.duckdb"
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    path.write_bytes(bytes(content))


BAD_BACKUPS: dict[str, tuple[Callable[[Path], object], str]] = {
    "manifest missing": (
        lambda b: (b / "backup.json").unlink(),
        "backup.json: missing; ",
    ),
    "manifest not JSON": (
        lambda b: (b / "backup.json").write_text("{", encoding="utf-8"),
        "backup.json: not a backup manifest",
    ),
    "manifest field of the wrong type": (
        _edit_manifest(lambda m: m.update(tables="all")),
        "backup.json: not a backup manifest: Expected `object`, got `str` - at `$.tables`",
    ),
    "unknown format": (
        _edit_manifest(lambda m: m.update(format=2)),
        "backup format 2 is unknown",
    ),
    "migrations of a newer version": (
        _edit_manifest(lambda m: m["migrations"].append("9999_future")),
        "migrations this version does not know (9999_future)",
    ),
    "database damaged": (_flip_a_byte, "officepulse.duckdb: checksum does not match"),
    "database missing": (
        lambda b: (b / "officepulse.duckdb").unlink(),
        "officepulse.duckdb: missing",
    ),
    "row counts differ": (
        _edit_manifest(lambda m: m["tables"].update(offices=3)),
        "table offices has 2 rows, backup.json says 3 rows; nothing restored",
    ),
    "secret key missing": (
        lambda b: (b / "secret_key").unlink(),
        "secret_key: missing, but",
    ),
}


@pytest.mark.parametrize("damage", BAD_BACKUPS, ids=str)
def test_restore_refuses_an_incomplete_or_damaged_backup(
    small_backup: Path, tmp_path: Path, damage: str
) -> None:
    backup = tmp_path / "backup"
    shutil.copytree(small_backup, backup)
    spoil, message = BAD_BACKUPS[damage]
    spoil(backup)
    target = tmp_path / "target"
    refused = run_cli(["restore", str(backup), "--data-dir", str(target)])
    assert message in one_error_line(refused)
    assert is_empty_or_missing(target)


def test_restore_refuses_a_missing_backup_folder(tmp_path: Path) -> None:
    refused = run_cli(["restore", str(tmp_path / "nope"), "--data-dir", str(tmp_path / "t")])
    assert "nope: no such folder" in one_error_line(refused)


def _initialised(target: Path) -> None:
    assert run_cli(["init", "--data-dir", str(target)]).returncode == 0


def _with_a_file(target: Path) -> None:
    target.mkdir()
    (target / "notes.txt").write_text("keep me", encoding="utf-8")


BAD_TARGETS: dict[str, tuple[Callable[[Path], object], str]] = {
    "an initialised data directory": (_initialised, "is not empty (officepulse.duckdb)"),
    "a folder with a file": (_with_a_file, "is not empty (notes.txt)"),
}


@pytest.mark.parametrize("kind", BAD_TARGETS, ids=str)
def test_restore_never_overwrites(small_backup: Path, tmp_path: Path, kind: str) -> None:
    target = tmp_path / "target"
    prepare, message = BAD_TARGETS[kind]
    prepare(target)
    files_before = {p.name: p.read_bytes() for p in target.iterdir()}
    refused = run_cli(["restore", str(small_backup), "--data-dir", str(target)])
    line = one_error_line(refused)
    assert line.startswith("officepulse: error: --data-dir: ")
    assert message in line
    assert {p.name: p.read_bytes() for p in target.iterdir()} == files_before


def test_restore_into_a_fresh_mount_point(small_backup: Path, tmp_path: Path) -> None:
    target = tmp_path / "mounted"
    (target / "lost+found").mkdir(parents=True)
    done = run_cli(["restore", str(small_backup), "--data-dir", str(target), "--json"])
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["tables"]["offices"] == 2
    assert result["notes"] == [
        "OFFICEPULSE_SECRET_KEY differs from the restored secret_key and takes precedence:"
        " unset it, or kiosks must be paired again and tokens reissued"
    ]
    assert db_rows(target, "SELECT id FROM offices ORDER BY id") == [("mh-main",), ("mh-u25",)]


def test_backup_refusals(tmp_path: Path) -> None:
    data = prepared_data_dir(tmp_path)
    full = tmp_path / "full"
    full.mkdir()
    (full / "old.txt").write_text("x", encoding="utf-8")
    cases = [
        (full, "--out: ", f"{full} exists and is not empty"),
        (tmp_path / "missing" / "b", "--out: ", f"{tmp_path / 'missing'} is not a folder"),
    ]
    for out, flag, message in cases:
        refused = run_cli(["backup", "--out", str(out), "--data-dir", str(data)])
        line = one_error_line(refused)
        assert line.startswith(f"officepulse: error: {flag}"), line
        assert message in line
    assert [p.name for p in full.iterdir()] == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "full", "offices.csv"]
    assert db_rows(data, "SELECT count(*) FROM audit_log") == [(0,)]

    missing = tmp_path / "no-data"
    refused = run_cli(["backup", "--out", str(tmp_path / "b"), "--data-dir", str(missing)])
    assert "no officepulse database here" in one_error_line(refused)
    assert not missing.exists()
    assert not (tmp_path / "b").exists()
