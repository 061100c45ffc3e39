"""The audit log: which account viewed, exported or changed what, and when.

Only staff accounts (or the command line) ever appear here; a client never does, and nothing
about a request's origin (address, browser) is recorded.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Final

import msgspec

from officepulse.runtime import Runtime
from officepulse.storage import Cursor

CLI_ACTOR: Final = "(command line)"


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    at: dt.datetime
    actor: str
    action: str
    target: str | None = None
    detail: str | None = None


def record(
    cur: Cursor,
    actor: str,
    action: str,
    target: str | None = None,
    detail: str | None = None,
    now: dt.datetime | None = None,
) -> None:
    cur.execute(
        "INSERT INTO audit_log (happened_at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        [now or dt.datetime.now(dt.UTC), actor, action, target, (detail or None)],
    )


async def log(
    runtime: Runtime, actor: str, action: str, target: str | None = None, detail: str | None = None
) -> None:
    """Record one entry through the writer and wait until it is committed."""
    await asyncio.wrap_future(
        runtime.store.write(lambda cur: record(cur, actor, action, target, detail))
    )


def entries(
    cur: Cursor, *, actor: str | None = None, action: str | None = None, limit: int = 200
) -> list[AuditEntry]:
    """The newest entries first, optionally of one actor or one kind of action."""
    rows = cur.execute(
        "SELECT id, happened_at, actor, action, target, detail FROM audit_log"
        " WHERE (? IS NULL OR actor = ?) AND (? IS NULL OR action LIKE ? || '%')"
        " ORDER BY id DESC LIMIT ?",
        [actor, actor, action, action, limit],
    ).fetchall()
    return [
        AuditEntry(id=r[0], at=r[1], actor=r[2], action=r[3], target=r[4], detail=r[5])
        for r in rows
    ]
