"""Synthetic demo data with documented, planted differences.

Everything here is made up and marked ``synthetic`` in the database, so every page and export
can label it. The planted effects, which the reports should find again:

- **Pilots are less stressful:** the mean of ``stress_now`` (1 = not tense, 5 = very tense) is
  about 0.8 points lower in the three pilot offices than in the three conventional centres.
- **Pilots treat clients with more respect:** ``respect`` and ``heard`` about 0.7 higher.
- **Stress peaks on Monday mornings** (08–10 h) everywhere, by about 0.4 points.
- **A room redesign works:** the conventional centre ``demo-oberhausen-mitte`` gets a
  ``redesign`` event half-way through the year; its ``rooms`` and ``wayfinding`` scores rise by
  about 1.2 points after it, while nothing else changes.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import secrets
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

import msgspec

from officepulse import accounts
from officepulse.offices import Office, insert_offices, insert_placement
from officepulse.responses import Channel, StoredResponse, coarsen_time, commit_responses
from officepulse.runtime import Runtime
from officepulse.scrub import scrub_comment
from officepulse.storage import Cursor


class DemoError(RuntimeError):
    """The demo data cannot be loaded into this data directory."""


class DemoParams(msgspec.Struct, frozen=True):
    responses: int = 50_000
    seed: int = 2026
    days: int = 365


class DemoResult(msgspec.Struct, frozen=True):
    loaded: bool
    offices: int
    responses: int
    message: str


DEMO_OFFICES: Final[tuple[Office, ...]] = (
    Office(
        id="demo-muelheim-u25",
        name="U-25 Haus Mülheim an der Ruhr (Demo)",
        kind="pilot",
        type_label="U-25 Haus",
        city="Mülheim an der Ruhr",
        district="Innenstadt",
        opened_on=dt.date(2019, 9, 1),
        synthetic=True,
    ),
    Office(
        id="demo-muelheim-styrum",
        name="Stadtteilbüro Styrum (Demo)",
        kind="pilot",
        type_label="Stadtteilbüro",
        city="Mülheim an der Ruhr",
        district="Styrum",
        opened_on=dt.date(2023, 3, 1),
        synthetic=True,
    ),
    Office(
        id="demo-essen-katernberg",
        name="Stadtteilbüro Katernberg (Demo)",
        kind="pilot",
        type_label="Stadtteilbüro",
        city="Essen",
        district="Katernberg",
        opened_on=dt.date(2024, 1, 15),
        synthetic=True,
    ),
    Office(
        id="demo-muelheim-hauptstelle",
        name="Jobcenter Mülheim Hauptstelle (Demo)",
        kind="conventional",
        type_label="Hauptstelle",
        city="Mülheim an der Ruhr",
        district="Stadtmitte",
        synthetic=True,
    ),
    Office(
        id="demo-essen-mitte",
        name="Jobcenter Essen Mitte (Demo)",
        kind="conventional",
        type_label="Hauptstelle",
        city="Essen",
        district="Stadtkern",
        synthetic=True,
    ),
    Office(
        id="demo-oberhausen-mitte",
        name="Jobcenter Oberhausen Mitte (Demo)",
        kind="conventional",
        type_label="Geschäftsstelle",
        city="Oberhausen",
        district="Alt-Oberhausen",
        synthetic=True,
    ),
)
REDESIGNED_OFFICE: Final = "demo-oberhausen-mitte"

# Relative visitor volume: the central offices see more clients than the Stadtteil offices.
_VOLUME: Final = {
    "demo-muelheim-u25": 1.0,
    "demo-muelheim-styrum": 0.6,
    "demo-essen-katernberg": 0.6,
    "demo-muelheim-hauptstelle": 1.6,
    "demo-essen-mitte": 1.8,
    "demo-oberhausen-mitte": 1.4,
}
_HOURS: Final = {8: 1.4, 9: 1.8, 10: 1.7, 11: 1.4, 12: 0.8, 13: 0.9, 14: 0.8, 15: 0.5}
_LANGS: Final = {"de": 70, "tr": 6, "ar": 8, "uk": 6, "ru": 3, "en": 4, "fa": 2, "ro": 1}
_PLACEMENTS: Final = {"entrance": 3, "waiting": 5, "counselling": 2}
_COMMENTS: Final = (
    "Die Wartezeit war zu lang.",
    "Sehr freundlich, danke!",
    "Im Wartebereich ist es zu laut.",
    "Ich wusste nicht, wo ich hin muss.",
    "Endlich hat mir jemand zugehört.",
    "Mehr Sitzplätze im Wartebereich bitte.",
    "Bitte rufen Sie mich an: 0176 123 456 78",  # scrubbed like any real comment
    "The forms are hard to understand.",
)
CHUNK: Final = 5_000


def _weighted(rng: random.Random, table: dict[str, float] | dict[str, int]) -> str:
    return rng.choices(list(table), weights=list(table.values()))[0]


def _rating(rng: random.Random, mean: float) -> int:
    return max(1, min(5, round(rng.gauss(mean, 0.9))))


def generate(
    params: DemoParams, end: dt.date, granularity: str, zone: ZoneInfo
) -> list[StoredResponse]:
    """The synthetic responses: deterministic for a seed, spread over ``params.days`` days."""
    rng = random.Random(params.seed)
    start = end - dt.timedelta(days=params.days)
    midpoint = start + dt.timedelta(days=params.days // 2)
    workdays = [
        start + dt.timedelta(days=offset)
        for offset in range(params.days)
        if (start + dt.timedelta(days=offset)).weekday() < 5
    ]
    kinds = {office.id: office.kind for office in DEMO_OFFICES}
    rows: list[StoredResponse] = []
    for _ in range(params.responses):
        office_id = _weighted(rng, _VOLUME)
        pilot = kinds[office_id] == "pilot"
        day = rng.choice(workdays)
        hour = int(_weighted(rng, {str(h): w for h, w in _HOURS.items()}))
        monday_morning = day.weekday() == 0 and hour < 10
        redesigned = office_id == REDESIGNED_OFFICE and day >= midpoint
        mood = rng.gauss(0, 0.5)  # one client's general mood moves all their answers together
        stress = 3.3 - (0.8 if pilot else 0) + (0.4 if monday_morning else 0) - mood
        respect = 3.4 + (0.7 if pilot else 0) + mood
        rooms = (3.9 if pilot else 2.8) + (1.2 if redesigned else 0) + 0.5 * mood
        effort = 3.2 + (0.4 if pilot else 0) + mood
        answers = {
            "stress_now": _rating(rng, stress),
            "respect": _rating(rng, respect),
            "rooms": _rating(rng, rooms),
            "effort": _rating(rng, effort),
            "overall": _rating(rng, (respect + effort + (6 - stress)) / 3),
        }
        if rng.random() < 0.6:  # not every client answers the extra questions
            answers["heard"] = _rating(rng, respect - 0.1)
            answers["next_steps"] = _rating(rng, 3.3 + (0.3 if pilot else 0) + mood)
            answers["wayfinding"] = _rating(rng, rooms + 0.2)
        local = dt.datetime.combine(day, dt.time(hour, rng.randrange(60)), tzinfo=zone)
        channel: Channel = "kiosk" if rng.random() < 0.4 else "qr"
        rows.append(
            StoredResponse(
                id=uuid.UUID(int=rng.getrandbits(128), version=4),
                office_id=office_id,
                survey_id="atmosphere",
                survey_version=1,
                channel=channel,
                placement=_weighted(rng, _PLACEMENTS),
                kiosk_id=f"{office_id}-kiosk-1" if channel == "kiosk" else None,
                lang=_weighted(rng, _LANGS),
                received_at=coarsen_time(local, granularity, zone),
                answers=answers,
                comment=rng.choice(_COMMENTS) if rng.random() < 0.03 else None,
                synthetic=True,
            )
        )
    return rows


def _existing(cur: Cursor) -> tuple[int, int]:
    row = cur.execute(
        "SELECT count(*) FILTER (NOT synthetic), count(*) FILTER (synthetic) FROM offices"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def load_demo(
    runtime: Runtime,
    params: DemoParams,
    progress: Callable[[int, int], None] | None = None,
) -> DemoResult:
    """Load the demo offices, the redesign event and the synthetic responses once.

    Refuses a data directory that holds real offices: synthetic data must never mix with real
    feedback. (Responses only ever belong to an office, so no real office means no real data.)
    """
    real_offices, demo_offices = runtime.store.read(_existing)
    if real_offices:
        raise DemoError(
            f"{runtime.settings.data_dir}: holds real data ({real_offices} offices);"
            " use an empty data directory for the demo"
        )
    if demo_offices:
        return DemoResult(False, demo_offices, 0, "demo data already loaded")
    settings = runtime.settings
    today = dt.datetime.now(settings.zone).date()
    rows = generate(params, today, settings.time_granularity, settings.zone)
    rows = [
        msgspec.structs.replace(row, comment=scrub_comment(row.comment)) if row.comment else row
        for row in rows
    ]
    redesign_day = today - dt.timedelta(days=params.days - params.days // 2)

    def add_offices(cur: Cursor) -> None:
        insert_offices(cur, DEMO_OFFICES)
        for office in DEMO_OFFICES:
            for placement in _PLACEMENTS:
                insert_placement(cur, office.id, placement)
        cur.execute(
            "INSERT INTO events (office_id, happened_on, kind, note, synthetic)"
            " VALUES (?, ?, 'redesign', ?, true)",
            [
                REDESIGNED_OFFICE,
                redesign_day,
                "Synthetic demo event: waiting area redesigned (light, colours, quiet corner)",
            ],
        )

    runtime.store.write(add_offices).result()
    done = 0
    for first in range(0, len(rows), CHUNK):
        chunk = rows[first : first + CHUNK]
        runtime.store.write(partial(commit_responses, rows=chunk)).result()
        done += len(chunk)
        if progress is not None:
            progress(done, len(rows))
    return DemoResult(True, len(DEMO_OFFICES), len(rows), "demo data loaded")


# -- demo accounts -----------------------------------------------------------------------------

DEMO_PASSWORD_FILE: Final = "demo-password"  # noqa: S105 - a file name
DEMO_ACCOUNTS: Final[tuple[tuple[str, str, tuple[str, ...]], ...]] = (
    ("demo-admin", "admin", ()),
    ("demo-evaluator", "evaluator", ()),
    ("demo-manager", "manager", ("demo-muelheim-u25",)),
)


def demo_password(data_dir: Path) -> str:
    """The demo accounts' password: made once per demo data directory, kept there (0600).

    It is random rather than documented, because a demo server may well be reachable from
    other machines.
    """
    path = data_dir / DEMO_PASSWORD_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    password = "-".join(secrets.token_hex(3) for _ in range(3))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(password + "\n")
    return password


def ensure_demo_accounts(runtime: Runtime) -> tuple[list[str], str]:
    """The demo's staff accounts (admin, evaluator, manager of the U-25 house) and password."""
    password = demo_password(runtime.settings.data_dir)
    now = dt.datetime.now(dt.UTC)

    def add(cur: Cursor) -> None:
        existing = {user.name for user in accounts.list_users(cur)}
        for name, role, offices in DEMO_ACCOUNTS:
            if name not in existing:
                accounts.add_user(cur, name, role, list(offices), password, now)

    runtime.store.write(add).result()
    return [name for name, _, _ in DEMO_ACCOUNTS], password
