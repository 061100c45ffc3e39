"""Retention: client comments older than ``comment_retention_months`` are deleted.

Storage limitation applies even to anonymous free text: a comment can describe a situation
that identifies the person who wrote it, and the evaluation of a pilot does not need the words
of years ago. Ratings carry no such risk and are kept, so every report keeps its numbers; only
the comment of an old response is set to NULL. The row itself stays, but not its content
digest: that SHA-256 covers the comment together with fields stored beside it, so it would let
anyone holding the file confirm a guessed text. It becomes the marker ``purged``; a retry of
such an old response (years late) is then answered as a conflict instead of a duplicate.

The purge runs as ``officepulse purge`` (an operation: in the CLI, or inside a running server)
and once a day inside the server (:func:`start_daily_purge`). After removing comments it
checkpoints the database, so that the text leaves the write-ahead log. What DuckDB keeps of
the old column data inside the database file is described in the README ("Retention").
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import datetime as dt
import functools
import logging
from typing import Final

import anyio.to_thread
import msgspec

from officepulse import audit
from officepulse.responses import coarsen_time
from officepulse.runtime import Runtime
from officepulse.settings import Settings
from officepulse.storage import Cursor

log = logging.getLogger(__name__)

# The audit log's actor for the server's own daily run (the CLI's runs are audit.CLI_ACTOR).
SCHEDULER_ACTOR: Final = "(scheduler)"

# Seconds from server start to the first daily run, and between runs. The first run waits a
# little so that start-up (and a health check right after it) is never slowed; tests set both
# to a fraction of a second.
FIRST_RUN_DELAY: float = 60.0
RUN_INTERVAL: float = 24 * 60 * 60.0

# Comments of responses received before the cutoff (a parameter).
_COUNT_OLD: Final = "SELECT count(*) FROM responses WHERE received_at < ? AND comment IS NOT NULL"
_REMOVE_OLD: Final = (
    "UPDATE responses SET comment = NULL, content_digest = 'purged'"
    " WHERE received_at < ? AND comment IS NOT NULL"
)


class PurgeRequest(msgspec.Struct, frozen=True, kw_only=True):
    dry_run: bool = False


class PurgeResult(msgspec.Struct, frozen=True, kw_only=True):
    """``comments`` removed (or, for a dry run, that would be removed)."""

    comments: int
    # Local wall-clock time, like received_at: comments received before it are removed.
    cutoff: dt.datetime
    months: int
    dry_run: bool


def months_before(moment: dt.datetime, months: int) -> dt.datetime:
    """The same wall-clock time ``months`` calendar months earlier.

    A day the earlier month does not have becomes its last day: 24 months before 31 March is
    the 31st, one month before it is 28 or 29 February.
    """
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def retention_cutoff(settings: Settings, now: dt.datetime | None = None) -> dt.datetime:
    """The local time before which comments are removed.

    It is the current hour (or day, with ``time_granularity = day``) ``months`` back: a stored
    time is the start of its hour, so a comment goes once its whole hour lies more than the
    retention period in the past, and not an hour earlier.
    """
    moment = now or dt.datetime.now(dt.UTC)
    local = coarsen_time(moment, settings.time_granularity, settings.zone)
    return months_before(local, settings.comment_retention_months)


def describe(result: PurgeResult) -> str:
    """One line for the CLI and the log."""
    count = f"{result.comments} comment" + ("" if result.comments == 1 else "s")
    before = f"received before {result.cutoff:%Y-%m-%d %H:%M} ({result.months} months)"
    if result.dry_run:
        return f"would remove {count} {before}; nothing was changed"
    return f"removed {count} {before}; ratings kept"


def purge_comments(
    runtime: Runtime, *, actor: str, dry_run: bool = False, now: dt.datetime | None = None
) -> PurgeResult:
    """Remove the comments older than the retention period in one transaction, and log it.

    A run that removed comments is recorded in the audit log under ``actor`` and followed by a
    checkpoint. A dry run only counts.
    """
    settings = runtime.settings
    cutoff = retention_cutoff(settings, now)
    months = settings.comment_retention_months
    if dry_run:
        count = runtime.store.read(lambda cur: _count(cur, _COUNT_OLD, cutoff))
        return PurgeResult(comments=count, cutoff=cutoff, months=months, dry_run=True)

    def purge(cur: Cursor) -> int:
        removed = _count(cur, _REMOVE_OLD, cutoff)
        if removed:
            audit.record(
                cur,
                actor,
                "retention.purge",
                f"comments received before {cutoff:%Y-%m-%d %H:%M}",
                f"{removed} removed ({months} months; ratings kept)",
            )
        return removed

    removed = runtime.store.write(purge).result()
    result = PurgeResult(comments=removed, cutoff=cutoff, months=months, dry_run=False)
    log.info("%s", describe(result))
    if removed:
        _checkpoint(runtime)
    return result


def _count(cur: Cursor, sql: str, cutoff: dt.datetime) -> int:
    # DuckDB answers an UPDATE with one row holding the number of rows changed.
    row = cur.execute(sql, [cutoff]).fetchone()
    return int(row[0]) if row else 0


def _checkpoint(runtime: Runtime) -> None:
    # Until a checkpoint, the write-ahead log still holds every comment inserted since the last
    # one, removed or not. The checkpoint writes the new column data into the database file and
    # empties the log. It runs on the writer, in a transaction without changes of its own
    # (DuckDB refuses a checkpoint in one with changes), so no other write interleaves.
    try:
        runtime.store.write(lambda cur: cur.execute("CHECKPOINT")).result()
    except Exception as exc:  # the purge is committed; the next checkpoint finishes the job
        log.warning(
            "the checkpoint after the purge failed (%s); the write-ahead log keeps"
            " the removed text until the next checkpoint",
            exc,
        )


# -- the daily run inside the server ------------------------------------------------------------


async def purge_daily(runtime: Runtime) -> None:
    """Purge shortly after start-up, then every :data:`RUN_INTERVAL` seconds, until cancelled.

    A failed run (a full disk, a database being reopened) is logged and tried again at the
    next run; it never ends the loop, let alone the server.
    """
    delay = FIRST_RUN_DELAY
    run = functools.partial(purge_comments, runtime, actor=SCHEDULER_ACTOR)
    while True:
        await asyncio.sleep(delay)
        delay = RUN_INTERVAL
        try:
            # The store's calls block: the writer's future is waited for in a worker thread.
            await anyio.to_thread.run_sync(run)
        except Exception as exc:
            log.warning(
                "the daily purge failed, next attempt in %s: %s",
                _duration(RUN_INTERVAL),
                exc,
            )


def start_daily_purge(runtime: Runtime) -> asyncio.Task[None]:
    """Start the daily purge on the running event loop (the app's lifespan)."""
    return asyncio.get_running_loop().create_task(purge_daily(runtime), name="retention")


async def stop_daily_purge(task: asyncio.Task[None]) -> None:
    """Cancel the daily purge; a run in progress finishes its transaction first."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    return f"{seconds:g} s"
