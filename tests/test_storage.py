"""The store: migrations, the one writer path, group commit and failure isolation."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

import duckdb
import msgspec
import pytest

from officepulse.storage import (
    Batch,
    Cursor,
    Store,
    StoreClosedError,
    StoreUnavailableError,
    apply_migrations,
)
from officepulse.storage.migrations import MIGRATIONS


def test_migrations_apply_once_and_are_recorded(tmp_path: Path) -> None:
    conn = duckdb.connect(str(tmp_path / "db.duckdb"))
    assert apply_migrations(conn) == [m.name for m in MIGRATIONS]
    assert apply_migrations(conn) == []
    recorded = [
        row[0] for row in conn.execute("SELECT name FROM schema_migrations ORDER BY 1").fetchall()
    ]
    assert recorded == sorted(m.name for m in MIGRATIONS)
    conn.close()


def test_migration_names_are_unique_and_ordered() -> None:
    names = [m.name for m in MIGRATIONS]
    assert names == sorted(names)
    assert len(set(names)) == len(names)


def test_no_table_has_a_column_for_client_identity(tmp_path: Path) -> None:
    with Store.open(tmp_path / "db.duckdb") as store:
        columns = store.read(
            lambda cur: [
                row[0].lower()
                for row in cur.execute(
                    "SELECT column_name FROM information_schema.columns"
                ).fetchall()
            ]
        )
    for forbidden in ("ip", "address", "agent", "user_agent", "cookie", "fingerprint", "staff"):
        assert not any(forbidden == c or c.startswith(forbidden + "_") for c in columns), forbidden


def _make_table(store: Store) -> None:
    store.write(lambda cur: cur.execute("CREATE TABLE t (v INTEGER PRIMARY KEY)")).result()


def _insert_values(cur: Cursor, items: Sequence[int]) -> list[int]:
    cur.execute("INSERT INTO t SELECT unnest($1::INTEGER[])", [list(items)])
    return list(items)


VALUES: Batch[int, int] = Batch("values", _insert_values)


def test_concurrent_items_share_commits(tmp_path: Path) -> None:
    with Store.open(tmp_path / "db.duckdb") as store:
        _make_table(store)
        futures: list[Future[int]] = []
        lock = threading.Lock()

        def submit(start: int) -> None:
            for value in range(start, start + 200):
                future = store.write_grouped(VALUES, value)
                with lock:
                    futures.append(future)

        threads = [threading.Thread(target=submit, args=(i * 1000,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(f.result(timeout=30) for f in futures) == sorted(
            v for i in range(8) for v in range(i * 1000, i * 1000 + 200)
        )
        assert store.read(lambda cur: cur.execute("SELECT count(*) FROM t").fetchall()) == [(1600,)]
        # grouping happened: fewer transactions than items
        assert store.stats.grouped_items == 1600
        assert store.stats.largest_group > 1


def test_a_bad_item_fails_alone(tmp_path: Path) -> None:
    with Store.open(tmp_path / "db.duckdb") as store:
        _make_table(store)
        store.write_grouped(VALUES, 1).result()
        gate = threading.Event()
        blocker = store.write(lambda cur: gate.wait(10))  # holds the writer while we queue
        good = [store.write_grouped(VALUES, v) for v in (2, 3)]
        bad = store.write_grouped(VALUES, 1)  # duplicate key: fails the group
        more = store.write_grouped(VALUES, 4)
        gate.set()
        blocker.result(timeout=10)
        assert [f.result(timeout=10) for f in good] == [2, 3]
        assert more.result(timeout=10) == 4
        with pytest.raises(duckdb.ConstraintException):
            bad.result(timeout=10)
        rows = store.read(lambda cur: cur.execute("SELECT v FROM t ORDER BY v").fetchall())
        assert rows == [(1,), (2,), (3,), (4,)]


def test_a_failed_write_rolls_back_completely(tmp_path: Path) -> None:
    with Store.open(tmp_path / "db.duckdb") as store:
        _make_table(store)

        def half_then_fail(cur: Cursor) -> None:
            cur.execute("INSERT INTO t VALUES (10)")
            raise ValueError("refused half-way")

        with pytest.raises(ValueError, match="half-way"):
            store.write(half_then_fail).result()
        assert store.read(lambda cur: cur.execute("SELECT count(*) FROM t").fetchall()) == [(0,)]


def test_writes_after_close_are_refused(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db.duckdb")
    store.close()
    with pytest.raises(StoreClosedError):
        store.write(lambda cur: None)


def test_queued_writes_finish_before_close(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db.duckdb")
    _make_table(store)
    futures = [store.write_grouped(VALUES, v) for v in range(500)]
    store.close()
    assert all(f.done() and not f.exception() for f in futures)
    with duckdb.connect(str(tmp_path / "db.duckdb"), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchall() == [(500,)]


def test_second_store_on_the_same_file_in_another_process_is_refused(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "db.duckdb"
    with Store.open(path):
        code = (
            "import sys; from pathlib import Path; from officepulse.storage import Store,"
            " StoreLockedError\n"
            "try:\n    Store.open(Path(sys.argv[1]))\nexcept StoreLockedError as e:\n"
            "    print(e); sys.exit(3)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 3, result.stderr
    assert "held by another process" in result.stdout


def test_extensions_are_never_fetched_at_run_time(tmp_path: Path) -> None:
    with Store.open(tmp_path / "db.duckdb") as store:
        settings = store.read(
            lambda cur: cur.execute(
                "SELECT current_setting('autoinstall_known_extensions'),"
                " current_setting('autoload_known_extensions')"
            ).fetchall()
        )
        assert settings == [(False, False)]
        with pytest.raises(duckdb.Error, match=r"(?i)install"):
            store.read(lambda cur: cur.execute("LOAD sqlite_scanner").fetchall())


def test_the_writer_survives_a_failure_outside_any_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Store.open(tmp_path / "db.duckdb") as store:
        _make_table(store)
        calls = 0
        checked = store._unavailable

        def fails_once() -> str | None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("surprise")
            return checked()

        monkeypatch.setattr(store, "_unavailable", fails_once)
        with pytest.raises(StoreUnavailableError):
            store.write_grouped(VALUES, 1).result(timeout=10)
        # The writer thread is still there: the next write commits.
        assert store.write_grouped(VALUES, 2).result(timeout=10) == 2
        assert store.read(lambda cur: cur.execute("SELECT v FROM t").fetchall()) == [(2,)]


def test_free_space_below_the_reserve_refuses_writes_but_not_reads(tmp_path: Path) -> None:
    path = tmp_path / "db.duckdb"
    with Store.open(path) as store:
        _make_table(store)
        assert store.write_problem() is None
        store.min_free_bytes = 1 << 62  # more than any disk has
        assert (store.write_problem() or "").startswith("the data directory's file system is full")
        with pytest.raises(StoreUnavailableError, match="file system is full"):
            store.write_grouped(VALUES, 1).result(timeout=10)
        with pytest.raises(StoreUnavailableError):
            store.write(lambda cur: cur.execute("INSERT INTO t VALUES (2)")).result(timeout=10)
        assert store.read(lambda cur: cur.execute("SELECT count(*) FROM t").fetchall()) == [(0,)]
        store.min_free_bytes = 0
        assert store.write_grouped(VALUES, 3).result(timeout=10) == 3


def _memory_limit(store: Store) -> str:
    rows = store.read(lambda cur: cur.execute("SELECT current_setting('memory_limit')").fetchall())
    return str(rows[0][0])


def test_the_memory_limit_reaches_duckdb_and_outlives_a_reopen(tmp_path: Path) -> None:
    with Store.open(tmp_path / "db.duckdb", memory_limit_mb=64) as store:
        assert _memory_limit(store) == "64.0 MiB"
        # after a failed checkpoint the writer opens the file again (tests/test_full_disk.py)
        assert store._reopen()
        assert _memory_limit(store) == "64.0 MiB"


def test_the_settings_memory_limit_is_applied(tmp_path: Path) -> None:
    from officepulse.runtime import Runtime

    from .conftest import make_settings

    default = Runtime.open(make_settings(tmp_path / "a"))
    try:
        assert _memory_limit(default.store) == "1.0 GiB"  # OFFICEPULSE_MEMORY_LIMIT_MB=1024
    finally:
        default.close()
    settings = msgspec.structs.replace(make_settings(tmp_path / "b"), memory_limit_mb=200)
    small = Runtime.open(settings)
    try:
        assert _memory_limit(small.store) == "200.0 MiB"
    finally:
        small.close()
