"""Limiting repeated submissions from one phone without tracking anyone.

The key of a phone is an HMAC of (client address, user agent, office) under a random salt that
exists only in this process's memory and is replaced every day, together with all counts. So
nothing that could identify a client is ever stored or logged, and yesterday's keys cannot be
recomputed by anyone — not even with the database and the server's files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Final
from zoneinfo import ZoneInfo

# Beyond this many stored submissions a day, a phone's responses are flagged `repeat`.
FLAG_AFTER: Final = 3
# Beyond this many, the page refuses politely (HTTP 429) and stores nothing.
REFUSE_AFTER: Final = 20


class Verdict(Enum):
    ACCEPT = "accept"
    FLAG = "flag"
    REFUSE = "refuse"


@dataclass
class RepeatLimiter:
    """Counts a day's submissions per phone key; forgets everything when the day changes."""

    zone: ZoneInfo
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    _day: dt.date | None = None
    _salt: bytes = b""
    _counts: dict[bytes, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def key(self, client: str, user_agent: str, office: str) -> bytes:
        """The phone's key for today; the inputs go no further than this function."""
        with self._lock:
            self._roll()
            message = "\x00".join((client, user_agent, office)).encode("utf-8", "replace")
            return hmac.new(self._salt, message, hashlib.sha256).digest()

    def check(self, key: bytes) -> Verdict:
        """What to do with the next submission of ``key``."""
        with self._lock:
            self._roll()
            count = self._counts.get(key, 0)
        if count >= REFUSE_AFTER:
            return Verdict.REFUSE
        if count >= FLAG_AFTER:
            return Verdict.FLAG
        return Verdict.ACCEPT

    def record(self, key: bytes) -> None:
        """Count one stored submission of ``key``."""
        with self._lock:
            self._roll()
            self._counts[key] = self._counts.get(key, 0) + 1

    @property
    def phones_today(self) -> int:
        """How many distinct keys have submitted today (for tests and diagnostics)."""
        with self._lock:
            self._roll()
            return len(self._counts)

    def _roll(self) -> None:
        today = self.clock().astimezone(self.zone).date()
        if today != self._day:
            # A new salt makes yesterday's keys meaningless; dropping the counts frees them.
            self._day = today
            self._salt = secrets.token_bytes(32)
            self._counts = {}
