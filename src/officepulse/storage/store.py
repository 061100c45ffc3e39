"""The store: one DuckDB file, one writer thread, read cursors for everyone else.

The whole storage interface is small on purpose, so that a PostgreSQL store for
multi-instance deployments can implement the same three calls:

- ``write(fn)``: run ``fn(cursor)`` as one transaction on the writer thread;
- ``write_grouped(batch, item)``: queue ``item`` to be committed together with other items of
  the same ``batch`` in one transaction (group commit);
- ``read(fn)``: run ``fn(cursor)`` on a fresh read cursor in the calling thread.

Every write goes through the single writer thread. A write's future resolves only after its
transaction has committed, and DuckDB's default ``fsync_mode`` syncs the WAL on every commit,
so a resolved future means the data is durable.

A full disk must not take the server down. Before each group the writer checks that the data
directory's file system keeps ``min_free_bytes`` free and otherwise fails the group with
:class:`StoreUnavailableError` (the API answers 503), so DuckDB is never pushed into a failed
checkpoint. Should a storage error still reach DuckDB and invalidate the database (its reaction
to a failed checkpoint), the writer closes it and opens the file again — replaying the WAL, so
every commit survives — and writes resume once space is back, without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

import duckdb

from officepulse.storage.migrations import MIGRATIONS

log = logging.getLogger(__name__)

T = TypeVar("T")
ItemT = TypeVar("ItemT")
OutcomeT = TypeVar("OutcomeT")

Cursor = duckdb.DuckDBPyConnection

# Extensions must never be fetched from the network at run time: the deployment may have none,
# and a silent download would make behaviour depend on it.
_CONNECT_CONFIG: Final[dict[str, str | bool | int | float | list[str]]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}

MAX_GROUP: Final = 1000
# Group commit delay, as PostgreSQL's commit_delay and commit_siblings: when at least
# GROUP_SIBLINGS writes are queued together, the writer waits up to GROUP_DELAY seconds for
# more before committing. A lone write (a quiet server) never waits.
GROUP_SIBLINGS: Final = 4
GROUP_DELAY: Final = 0.002


class StoreLockedError(RuntimeError):
    """Another process holds the database file."""


class StoreClosedError(RuntimeError):
    """A write was submitted after the store was closed."""


class StoreUnavailableError(RuntimeError):
    """The store cannot take writes now (disk full, or recovering); nothing was written."""


# How long a store whose database had to be closed after an error waits between attempts to
# open it again; writes in between fail at once instead of queueing up behind a dead disk.
REOPEN_INTERVAL: Final = 1.0
_MIB: Final = 1024 * 1024


@dataclass(frozen=True)
class Batch(Generic[ItemT, OutcomeT]):
    """A kind of write that is committed in groups.

    ``commit(cursor, items)`` runs inside an open transaction and returns one outcome per item.
    If it raises, the group is retried item by item so that one bad item fails alone.

    ``attempt(cursor, items)``, if given, is tried first, outside any explicit transaction: a
    single statement, which DuckDB commits on its own (durably, like a COMMIT) or not at all.
    It returns the outcomes, or None when the group needs ``commit``'s careful path. Sparing
    the BEGIN and COMMIT statements is worth it on the hottest write path.
    """

    name: str
    commit: Callable[[Cursor, Sequence[ItemT]], list[OutcomeT]]
    attempt: Callable[[Cursor, Sequence[ItemT]], list[OutcomeT] | None] | None = None


@dataclass
class _Job:
    future: Future[Any]
    fn: Callable[[Cursor], Any] | None = None
    batch: Batch[Any, Any] | None = None
    item: Any = None
    # A coroutine's job: its outcome is handed to this asyncio future on ``loop``.
    loop: asyncio.AbstractEventLoop | None = None
    waiter: asyncio.Future[Any] | None = None


@dataclass
class WriterStats:
    transactions: int = 0
    grouped_items: int = 0
    largest_group: int = 0
    failures: int = 0


_STOP: Final = object()


def open_connection(path: Path, memory_limit_mb: int = 0) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file read-write, translating a lock conflict into StoreLockedError.

    ``memory_limit_mb`` caps DuckDB's memory; beyond it sorts, joins and aggregates spill to
    DuckDB's temporary directory beside the file. 0 keeps DuckDB's own default.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    config = dict(_CONNECT_CONFIG)
    if memory_limit_mb > 0:
        config["memory_limit"] = f"{memory_limit_mb}MiB"
    try:
        return duckdb.connect(str(path), config=config)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise StoreLockedError(
                f"{path}: the database is held by another process ({_lock_holder(str(exc))})"
            ) from None
        raise


def _lock_holder(message: str) -> str:
    marker = "(PID "
    if marker in message:
        return "PID " + message.split(marker, 1)[1].split(")", 1)[0]
    return "unknown process"


def apply_migrations(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the migrations not yet recorded, each in its own transaction; return their names."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " name VARCHAR PRIMARY KEY, applied_at TIMESTAMP NOT NULL DEFAULT now()::TIMESTAMP)"
    )
    done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations").fetchall()}
    applied: list[str] = []
    for migration in MIGRATIONS:
        if migration.name in done:
            continue
        conn.execute("BEGIN TRANSACTION")
        try:
            conn.execute(migration.sql)
            conn.execute("INSERT INTO schema_migrations (name) VALUES (?)", [migration.name])
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
        applied.append(migration.name)
        log.info("applied migration %s", migration.name)
    return applied


class Store:
    """The DuckDB store of one data directory. Use :meth:`open` and :meth:`close`."""

    def __init__(
        self,
        conn: duckdb.DuckDBPyConnection,
        path: Path,
        *,
        min_free_bytes: int = 0,
        memory_limit_mb: int = 0,
    ) -> None:
        self.path = path
        self.min_free_bytes = min_free_bytes
        self.memory_limit_mb = memory_limit_mb
        self._conn = conn
        # Held while the connection is swapped after an error, and while a read takes a cursor.
        self._conn_lock = threading.Lock()
        # Why the database is closed and must be opened again (None while it is healthy).
        self._broken: str | None = None
        self._next_reopen = 0.0
        self._disk_full = False
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._closed = False
        self.stats = WriterStats()
        self._thread = threading.Thread(target=self._run, name="officepulse-writer", daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, path: Path, *, min_free_bytes: int = 0, memory_limit_mb: int = 0) -> Store:
        """Open (creating if needed) the database at ``path`` and apply pending migrations."""
        conn = open_connection(path, memory_limit_mb)
        try:
            apply_migrations(conn)
        except Exception:
            conn.close()
            raise
        return cls(conn, path, min_free_bytes=min_free_bytes, memory_limit_mb=memory_limit_mb)

    # -- writes ------------------------------------------------------------------------------

    def write(self, fn: Callable[[Cursor], T]) -> Future[T]:
        """Run ``fn(cursor)`` in one transaction on the writer thread."""
        future: Future[T] = Future()
        self._put(_Job(future=future, fn=fn))
        return future

    def write_grouped(self, batch: Batch[ItemT, OutcomeT], item: ItemT) -> Future[OutcomeT]:
        """Queue ``item``; it commits with whatever else of ``batch`` is waiting."""
        future: Future[OutcomeT] = Future()
        self._put(_Job(future=future, batch=batch, item=item))
        return future

    def submit_grouped(
        self, batch: Batch[ItemT, OutcomeT], item: ItemT
    ) -> asyncio.Future[OutcomeT]:
        """Like :meth:`write_grouped`, awaited by a coroutine on the running event loop.

        The writer hands the outcomes of a whole group back to the loop in one thread-safe
        call, rather than waking the loop once per item as ``asyncio.wrap_future`` would: under
        load a group holds dozens of items, and every wake-up costs the loop a system call and
        a turn of the GIL.
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[OutcomeT] = loop.create_future()
        self._put(_Job(future=Future(), batch=batch, item=item, loop=loop, waiter=waiter))
        return waiter

    def _put(self, job: _Job) -> None:
        if self._closed:
            raise StoreClosedError("the store is closed")
        self._queue.put(job)

    # -- reads -------------------------------------------------------------------------------

    def read(self, fn: Callable[[Cursor], T]) -> T:
        """Run ``fn`` on a fresh cursor; DuckDB wants one cursor per thread."""
        with self._conn_lock:
            if self._broken is not None:
                raise StoreUnavailableError(f"the database is being reopened: {self._broken}")
            cursor = self._conn.cursor()
        try:
            return fn(cursor)
        except duckdb.FatalException as exc:
            raise StoreUnavailableError(f"the database failed: {exc}") from exc
        finally:
            cursor.close()

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Finish every queued write, then close the database."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()
        stats = self.stats
        if stats.grouped_items:
            log.info(
                "writer: %d transactions, %d grouped items, largest group %d, %d failures",
                stats.transactions,
                stats.grouped_items,
                stats.largest_group,
                stats.failures,
            )
        if self._broken is not None:
            return  # nothing is open
        try:
            self._conn.execute("CHECKPOINT")
        except duckdb.Error as exc:  # a checkpoint is an optimisation; the WAL is already durable
            log.warning("checkpoint on close failed: %s", exc)
        with contextlib.suppress(duckdb.Error):
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the writer thread -------------------------------------------------------------------

    def _open_cursors(self) -> None:
        self._cursor = self._conn.cursor()
        # A batch's attempt is one INSERT of rows handed over as data: there is nothing in it
        # to optimise, yet DuckDB's optimizer passes took 1.4 of the 3.2 ms of CPU of a 64-row
        # insert. A cursor is a client context of its own, so every other write keeps them.
        self._plain = self._conn.cursor()
        self._plain.execute("PRAGMA disable_optimizer")

    def _close_cursors(self) -> None:
        for cursor in (self._cursor, self._plain):
            with contextlib.suppress(duckdb.Error):
                cursor.close()

    def _run(self) -> None:
        self._open_cursors()
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            jobs: list[_Job] = [first]  # type: ignore[list-item]
            # Whatever queued up while the last transaction committed goes into the next one:
            # this is what makes concurrent submissions share a commit.
            deadline: float | None = None
            while len(jobs) < MAX_GROUP:
                try:
                    if deadline is None:
                        nxt = self._queue.get_nowait()
                    else:
                        nxt = self._queue.get(timeout=max(deadline - time.monotonic(), 0))
                except queue.Empty:
                    if deadline is not None or len(jobs) < GROUP_SIBLINGS:
                        break
                    # Others are writing too: wait a moment for more of them, so that one
                    # commit (whose cost barely depends on its size) serves more requests.
                    deadline = time.monotonic() + GROUP_DELAY
                    continue
                if nxt is _STOP:
                    stopping = True
                    break
                jobs.append(nxt)  # type: ignore[arg-type]
            try:
                self._process(jobs)
            except Exception:
                # The writer thread must outlive any surprise, or every later write would wait
                # forever: whatever of this round is unsettled fails, the next round goes on.
                log.exception("the writer failed a round of %d writes", len(jobs))
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(StoreUnavailableError("the writer failed"))
                self._notify(jobs)
        if self._broken is None:
            self._close_cursors()

    # -- health: free space, and reopening after a fatal error -------------------------------

    def _unavailable(self) -> str | None:
        """Why writes cannot go ahead now, or None; reopens a closed database when due."""
        due = self._broken is not None and time.monotonic() >= self._next_reopen
        if self._broken is not None and not (due and self._reopen()):
            return self._broken
        return self._space_problem()

    def write_problem(self) -> str | None:
        """Why writes are refused right now, or None: for health checks (it reopens nothing)."""
        return self._broken if self._broken is not None else self._space_problem()

    def _space_problem(self) -> str | None:
        if self.min_free_bytes <= 0:
            return None
        try:
            stat = os.statvfs(self.path.parent)
        except OSError:
            return None
        free = stat.f_bavail * stat.f_frsize
        full = free < self.min_free_bytes
        if full != self._disk_full:
            self._disk_full = full
            if full:
                log.error(
                    "the data directory's file system is full (%d MiB free, %d MiB kept in"
                    " reserve): refusing writes until space is freed",
                    free // _MIB,
                    self.min_free_bytes // _MIB,
                )
            else:
                log.warning("space is free again (%d MiB): accepting writes", free // _MIB)
        if full:
            return (
                f"the data directory's file system is full ({free // _MIB} MiB free,"
                f" {self.min_free_bytes // _MIB} MiB needed)"
            )
        return None

    def _failed(self, exc: BaseException) -> BaseException:
        """The error to hand to a writer; closes the database after a fatal one."""
        message = str(exc)
        if isinstance(exc, duckdb.FatalException) or "invalidated" in message:
            self._broken = message.splitlines()[0][:300]
            log.error("the database failed and is closed until it can be opened again: %s", exc)
            self._close_broken()
            self._reopen()
            return StoreUnavailableError(f"storing failed: {self._broken}")
        if isinstance(exc, duckdb.Error) and ("No space left" in message or "quota" in message):
            return StoreUnavailableError("the data directory's file system is full")
        return exc

    def _close_broken(self) -> None:
        with self._conn_lock:
            self._close_cursors()
            with contextlib.suppress(duckdb.Error):
                self._conn.close()

    def _reopen(self) -> bool:
        """Open the database file again (DuckDB replays its WAL); True when it worked."""
        self._next_reopen = time.monotonic() + REOPEN_INTERVAL
        try:
            conn = open_connection(self.path, self.memory_limit_mb)
            with self._conn_lock:
                self._conn = conn
                self._open_cursors()
                self._broken = None
        except (duckdb.Error, StoreLockedError, OSError) as exc:
            log.warning("the database could not be opened again yet: %s", exc)
            return False
        log.warning("the database is open again; accepting writes")
        return True

    def _process(self, jobs: list[_Job]) -> None:
        unavailable = self._unavailable()
        if unavailable is not None:
            for job in jobs:
                if job.future.set_running_or_notify_cancel():
                    self.stats.failures += 1
                    job.future.set_exception(StoreUnavailableError(unavailable))
        else:
            self._run_jobs(jobs)
        self._notify(jobs)

    def _notify(self, jobs: list[_Job]) -> None:
        """Hand the outcomes of coroutines' jobs to their event loops, one call per loop."""
        waiting: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in jobs:
            if job.loop is not None:
                waiting.setdefault(job.loop, []).append(job)
        for loop, settled in waiting.items():
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
                loop.call_soon_threadsafe(_hand_over, settled)

    def _run_jobs(self, jobs: list[_Job]) -> None:
        groups: dict[str, list[_Job]] = {}
        for job in jobs:
            if job.batch is not None:
                groups.setdefault(job.batch.name, []).append(job)
        done_groups: set[str] = set()
        for job in jobs:
            if job.fn is not None:
                self._run_fn(job)
            elif job.batch is not None and job.batch.name not in done_groups:
                done_groups.add(job.batch.name)
                self._run_group(groups[job.batch.name])

    def _run_fn(self, job: _Job) -> None:
        assert job.fn is not None
        if not job.future.set_running_or_notify_cancel():
            return
        if self._broken is not None:  # an earlier job of this round closed the database
            self.stats.failures += 1
            job.future.set_exception(StoreUnavailableError(self._broken))
            return
        cursor = self._cursor
        try:
            cursor.execute("BEGIN TRANSACTION")
            result = job.fn(cursor)
            cursor.execute("COMMIT")
        except BaseException as exc:
            _rollback(cursor)
            self.stats.failures += 1
            job.future.set_exception(self._failed(exc))
            return
        self.stats.transactions += 1
        job.future.set_result(result)

    def _run_group(self, jobs: list[_Job]) -> None:
        live = [job for job in jobs if job.future.set_running_or_notify_cancel()]
        if not live:
            return
        batch = live[0].batch
        assert batch is not None
        if self._broken is not None:
            for job in live:
                self.stats.failures += 1
                job.future.set_exception(StoreUnavailableError(self._broken))
            return
        try:
            outcomes = self._commit_group(batch, [job.item for job in live])
        except Exception as exc:
            failure = self._failed(exc)
            if len(live) == 1 or isinstance(failure, StoreUnavailableError):
                # One item, or the storage itself failed: retrying item by item cannot help.
                for job in live:
                    self.stats.failures += 1
                    job.future.set_exception(failure)
                return
            log.warning("group commit of %d %s failed; retrying one by one", len(live), batch.name)
            for job in live:
                if self._broken is not None:
                    self.stats.failures += 1
                    job.future.set_exception(StoreUnavailableError(self._broken))
                    continue
                try:
                    (outcome,) = self._commit_group(batch, [job.item])
                except Exception as exc:
                    self.stats.failures += 1
                    job.future.set_exception(self._failed(exc))
                else:
                    job.future.set_result(outcome)
            return
        for job, outcome in zip(live, outcomes, strict=True):
            job.future.set_result(outcome)

    def _commit_group(self, batch: Batch[Any, Any], items: list[Any]) -> list[Any]:
        cursor = self._cursor
        if batch.attempt is not None:
            done = batch.attempt(self._plain, items)
            if done is not None:
                if len(done) != len(items):
                    raise RuntimeError(f"{batch.name}: {len(done)} outcomes for {len(items)} items")
                self._count_group(len(items))
                return done
        try:
            cursor.execute("BEGIN TRANSACTION")
            outcomes = batch.commit(cursor, items)
            if len(outcomes) != len(items):
                raise RuntimeError(f"{batch.name}: {len(outcomes)} outcomes for {len(items)} items")
            cursor.execute("COMMIT")
        except BaseException:
            _rollback(cursor)
            raise
        self._count_group(len(items))
        return outcomes

    def _count_group(self, size: int) -> None:
        self.stats.transactions += 1
        self.stats.grouped_items += size
        self.stats.largest_group = max(self.stats.largest_group, size)


def _hand_over(jobs: list[_Job]) -> None:
    """On the event loop: copy each finished job's outcome into its asyncio future."""
    for job in jobs:
        waiter = job.waiter
        if waiter is None or waiter.done():  # cancelled: the client went away
            continue
        if not job.future.done():
            waiter.set_exception(RuntimeError("the writer did not finish this write"))
            continue
        exc = job.future.exception()
        if exc is not None:
            waiter.set_exception(exc)
        else:
            waiter.set_result(job.future.result())


def _rollback(cursor: Cursor) -> None:
    # If BEGIN itself failed, no transaction is open and there is nothing to undo.
    with contextlib.suppress(duckdb.Error):
        cursor.execute("ROLLBACK")
