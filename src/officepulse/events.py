"""Events: dated changes at an office (a room redesign, a move, ...) that reports mark.

An evaluation compares the weeks before and after such a change, so every event names the
office, the day and one of a few kinds. The note says what happened — never who: there is no
per-staff dimension anywhere.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final, Literal

import msgspec

from officepulse.storage import Cursor

EventKind = Literal["redesign", "move", "staff_training", "opening_hours", "other"]
EVENT_KINDS: Final[tuple[EventKind, ...]] = (
    "redesign",
    "move",
    "staff_training",
    "opening_hours",
    "other",
)
# The words the command line takes, and the kinds they are stored as.
CLI_KINDS: Final[dict[str, EventKind]] = {
    "redesign": "redesign",
    "move": "move",
    "training": "staff_training",
    "opening-hours": "opening_hours",
    "other": "other",
}
MAX_NOTE: Final = 500


class EventError(ValueError):
    """A refused event; the message is one line naming the field at fault."""


class NewEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event to record (``kind`` is the stored kind, e.g. ``staff_training``)."""

    office: str
    date: dt.date
    kind: EventKind
    note: str | None = None


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """A recorded event. ``synthetic`` marks demo data wherever it is shown."""

    id: int
    office: str
    date: dt.date
    kind: EventKind
    note: str | None
    synthetic: bool = False


class EventFilter(msgspec.Struct, frozen=True):
    office: str | None = None


def kind_from_cli(word: str) -> EventKind:
    """The stored kind for a command-line word (the stored names are accepted too)."""
    word = word.strip().lower()
    if word in CLI_KINDS:
        return CLI_KINDS[word]
    for kind in EVENT_KINDS:
        if word == kind:
            return kind
    raise EventError(f"--kind: {word!r} is not one of {', '.join(CLI_KINDS)}")


def cli_word(kind: str) -> str:
    """The command-line word for a stored kind."""
    return next((word for word, stored in CLI_KINDS.items() if stored == kind), kind)


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise EventError(f"--date: {text!r} is not a date YYYY-MM-DD") from None


def clean_note(note: str | None) -> str | None:
    """The note to store: stripped, None when empty; refused when too long."""
    if note is None or not note.strip():
        return None
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise EventError(f"--note: longer than {MAX_NOTE} characters ({len(note)})")
    return note


# -- SQL ---------------------------------------------------------------------------------------

_SELECT: Final = "SELECT id, office_id, happened_on, kind, note, synthetic FROM events"


def _row_to_event(row: tuple[Any, ...]) -> Event:
    return Event(id=row[0], office=row[1], date=row[2], kind=row[3], note=row[4], synthetic=row[5])


def insert_event(cur: Cursor, event: NewEvent) -> Event:
    """Record an event inside the caller's transaction; the office must exist.

    An event at a demo office is demo data itself and is marked ``synthetic`` like the office.
    """
    if event.kind not in EVENT_KINDS:
        raise EventError(f"kind: {event.kind!r} is not one of {', '.join(EVENT_KINDS)}")
    office = cur.execute("SELECT synthetic FROM offices WHERE id = ?", [event.office]).fetchone()
    if office is None:
        raise EventError(f"office: unknown office {event.office!r}")
    note = clean_note(event.note)
    row = cur.execute(
        "INSERT INTO events (office_id, happened_on, kind, note, synthetic)"
        " VALUES (?, ?, ?, ?, ?) RETURNING id",
        [event.office, event.date, event.kind, note, bool(office[0])],
    ).fetchone()
    assert row is not None
    return Event(
        id=int(row[0]),
        office=event.office,
        date=event.date,
        kind=event.kind,
        note=note,
        synthetic=bool(office[0]),
    )


def list_events(cur: Cursor, office: str | None = None) -> list[Event]:
    """Events by office and date (of one office, or of all)."""
    rows = cur.execute(
        _SELECT + " WHERE $office::VARCHAR IS NULL OR office_id = $office::VARCHAR"
        " ORDER BY office_id, happened_on, id",
        {"office": office},
    ).fetchall()
    return [_row_to_event(row) for row in rows]
