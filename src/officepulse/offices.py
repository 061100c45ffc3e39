"""Offices: the job-centre sites that collect feedback, their SQL, CSV import and routes."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Literal

import msgspec

from officepulse.csvfiles import check_header, open_csv, records
from officepulse.languages import LANGUAGES
from officepulse.storage import Cursor

OfficeKind = Literal["pilot", "conventional"]
OFFICE_ID_RE: Final = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
PLACEMENT_RE: Final = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
# What a response from an unregistered placement is stored as: never the free string from a URL.
UNKNOWN_PLACEMENT: Final = "unknown"
CSV_HEADER: Final = ("id", "name", "kind", "type", "city", "district", "opened_on")


class Office(msgspec.Struct, frozen=True, kw_only=True):
    """A job-centre site. ``synthetic`` marks demo data wherever it is shown."""

    id: str
    name: str
    kind: OfficeKind
    type_label: str | None = None
    city: str | None = None
    district: str | None = None
    opened_on: dt.date | None = None
    default_lang: str = "de"
    synthetic: bool = False


class OfficeError(ValueError):
    """A bad office or office file; the message is one line naming the line or field."""


def office_problems(office: Office) -> list[str]:
    """What is wrong with an office's fields, as ``field: message`` strings."""
    problems: list[str] = []
    if not OFFICE_ID_RE.match(office.id):
        problems.append(
            f"id: {office.id!r} is not a lowercase slug (a-z, 0-9 and '-', at most 64 characters)"
        )
    if not office.name.strip():
        problems.append("name: must not be empty")
    elif len(office.name) > 200:
        problems.append("name: longer than 200 characters")
    if office.kind not in ("pilot", "conventional"):
        problems.append(f"kind: {office.kind!r} is not one of 'pilot', 'conventional'")
    if office.default_lang not in LANGUAGES:
        problems.append(f"default_lang: {office.default_lang!r} is not a supported language")
    for name in ("type_label", "city", "district"):
        value = getattr(office, name)
        if value is not None and len(value) > 200:
            problems.append(f"{name}: longer than 200 characters")
    return problems


# -- SQL ---------------------------------------------------------------------------------------

_SELECT = (
    "SELECT id, name, kind, type_label, city, district, opened_on, default_lang, synthetic"
    " FROM offices"
)
_INSERT = (
    "INSERT INTO offices (id, name, kind, type_label, city, district, opened_on, default_lang,"
    " synthetic) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _row_to_office(row: tuple[Any, ...]) -> Office:
    return Office(
        id=row[0],
        name=row[1],
        kind=row[2],
        type_label=row[3],
        city=row[4],
        district=row[5],
        opened_on=row[6],
        default_lang=row[7],
        synthetic=row[8],
    )


def list_offices(cur: Cursor) -> list[Office]:
    """All offices, by id."""
    return [_row_to_office(row) for row in cur.execute(_SELECT + " ORDER BY id").fetchall()]


def get_office(cur: Cursor, office_id: str) -> Office | None:
    """One office, or None."""
    row = cur.execute(_SELECT + " WHERE id = ?", [office_id]).fetchone()
    return None if row is None else _row_to_office(row)


def office_ids(cur: Cursor) -> frozenset[str]:
    """The ids of all offices."""
    return frozenset(row[0] for row in cur.execute("SELECT id FROM offices").fetchall())


def insert_offices(
    cur: Cursor, offices: Sequence[Office], lines: Sequence[int] | None = None
) -> int:
    """Insert offices inside the caller's transaction; a duplicate id fails the whole call.

    ``lines`` are the CSV line numbers of the offices, used to name the line of a duplicate.
    """
    ids = [office.id for office in offices]
    existing = {
        row[0]
        for row in cur.execute(
            "SELECT id FROM offices WHERE id IN (SELECT unnest($1::VARCHAR[]))", [ids]
        ).fetchall()
    }
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, office in enumerate(offices):
        where = f"line {lines[index]}: " if lines else ""
        if office.id in existing:
            problems.append(f"{where}id: office {office.id!r} already exists")
        elif office.id in seen:
            first = f"line {lines[seen[office.id]]}" if lines else "earlier"
            problems.append(f"{where}id: office {office.id!r} is listed twice (first at {first})")
        seen.setdefault(office.id, index)
    if problems:
        raise OfficeError("; ".join(problems))
    for office in offices:
        cur.execute(
            _INSERT,
            [
                office.id,
                office.name.strip(),
                office.kind,
                office.type_label,
                office.city,
                office.district,
                office.opened_on,
                office.default_lang,
                office.synthetic,
            ],
        )
    return len(offices)


def office_placements(cur: Cursor) -> dict[str, frozenset[str]]:
    """The registered placements of every office that has any."""
    result: dict[str, set[str]] = {}
    for office_id, placement in cur.execute(
        "SELECT office_id, placement FROM office_placements ORDER BY 1, 2"
    ).fetchall():
        result.setdefault(office_id, set()).add(placement)
    return {office_id: frozenset(places) for office_id, places in result.items()}


def placement_problem(placement: str) -> str | None:
    """Why ``placement`` is not a valid placement name, or None."""
    if not PLACEMENT_RE.match(placement):
        return (
            f"placement: {placement!r} is not a short lowercase name"
            " (a-z, 0-9, '_' and '-', at most 32 characters, e.g. 'waiting')"
        )
    if placement == UNKNOWN_PLACEMENT:
        return f"placement: {UNKNOWN_PLACEMENT!r} is reserved for unregistered placements"
    return None


def insert_placement(cur: Cursor, office_id: str, placement: str) -> None:
    """Register a placement inside the caller's transaction."""
    if cur.execute("SELECT 1 FROM offices WHERE id = ?", [office_id]).fetchone() is None:
        raise OfficeError(f"office: unknown office {office_id!r}")
    known = cur.execute(
        "SELECT 1 FROM office_placements WHERE office_id = ? AND placement = ?",
        [office_id, placement],
    ).fetchone()
    if known is not None:
        raise OfficeError(f"placement: {placement!r} is already registered for {office_id!r}")
    cur.execute(
        "INSERT INTO office_placements (office_id, placement) VALUES (?, ?)", [office_id, placement]
    )


# -- CSV import --------------------------------------------------------------------------------


class CsvOffice(msgspec.Struct, frozen=True):
    """An office read from a CSV file, with the line it came from."""

    line: int
    office: Office


def parse_office_csv(path: Path) -> list[CsvOffice]:
    """Read an office CSV; every bad row is reported (with its line) before anything is used.

    Raises OfficeError with one line per problem, each naming file, line and field.
    """
    rows, header, _text = open_csv(path, OfficeError, f"header {','.join(CSV_HEADER)}")
    problems: list[str] = []
    result: list[CsvOffice] = []
    check_header(path, header, CSV_HEADER, OfficeError)
    for line, fields in records(path, rows, CSV_HEADER, problems):
        office, row_problems = _office_from_fields(fields)
        problems.extend(f"{path}: line {line}: {problem}" for problem in row_problems)
        if office is not None and not row_problems:
            result.append(CsvOffice(line=line, office=office))
    seen: dict[str, int] = {}
    for item in result:
        if item.office.id in seen:
            problems.append(
                f"{path}: line {item.line}: id: office {item.office.id!r} is listed twice"
                f" (first at line {seen[item.office.id]})"
            )
        seen.setdefault(item.office.id, item.line)
    if problems:
        raise OfficeError("\n".join(problems))
    if not result:
        raise OfficeError(f"{path}: no offices in the file")
    return result


def _office_from_fields(fields: dict[str, str]) -> tuple[Office | None, list[str]]:
    problems: list[str] = []
    opened_on: dt.date | None = None
    if fields["opened_on"]:
        try:
            opened_on = dt.date.fromisoformat(fields["opened_on"])
        except ValueError:
            problems.append(f"opened_on: {fields['opened_on']!r} is not a date YYYY-MM-DD")
    kind = fields["kind"]
    if kind not in ("pilot", "conventional"):
        problems.append(f"kind: {kind!r} is not one of 'pilot', 'conventional'")
        return None, problems
    office = Office(
        id=fields["id"],
        name=fields["name"],
        kind=kind,  # type: ignore[arg-type]  # checked just above
        type_label=fields["type"] or None,
        city=fields["city"] or None,
        district=fields["district"] or None,
        opened_on=opened_on,
    )
    problems.extend(office_problems(office))
    return office, problems
