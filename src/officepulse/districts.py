"""District statistics: official indicators per city district, and the district of each office.

Pilot offices sit in particular neighbourhoods ("Stadtteile"), so a fair comparison needs the
context: how many people there are unemployed, receive SGB-II benefits, are young or foreign.
The figures come from the cities' and the Federal Employment Agency's (BA) statistics, in a
long CSV with one value per line::

    city,district_id,district_name,year,indicator,value,unit,source

Indicator codes are free, but the known ones carry honest labels — above all, the
*Arbeitslosendichte* (unemployed per 100 residents aged 15–64) that many cities publish per
district is **not** an unemployment rate and must never be shown as one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import msgspec

from officepulse.csvfiles import check_header, open_csv, records
from officepulse.storage import Cursor

CSV_HEADER: Final = (
    "city",
    "district_id",
    "district_name",
    "year",
    "indicator",
    "value",
    "unit",
    "source",
)
INDICATOR_LABELS: Final[dict[str, str]] = {
    "unemployment_rate": "Arbeitslosenquote (official, BA)",
    "unemp_density_15_64": (
        "Arbeitslosendichte: unemployed per 100 residents aged 15–64 — not an unemployment rate"
    ),
    "sgb2_quota": "SGB-II-Quote",
    "pop_total": "Einwohner (residents, total)",
    "pop_u25_share": "Anteil unter 25 Jahren (share of residents under 25)",
    "foreign_share": "Ausländeranteil (share of residents without German citizenship)",
}
# Known indicators that are shares or quotas: a value above 100 is a mistake in any unit.
_PERCENTAGES: Final = frozenset(
    {"unemployment_rate", "unemp_density_15_64", "sgb2_quota", "pop_u25_share", "foreign_share"}
)
FIRST_YEAR: Final = 1990
LAST_YEAR: Final = 2100
MAX_TEXT: Final = 200
# A plain decimal number, with a point or a (German) decimal comma, no thousands separators.
_NUMBER_RE: Final = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d{1,3})?")
_YEAR_RE: Final = re.compile(r"\d{4}")


class DistrictError(ValueError):
    """A bad district file or mapping; one line per problem, naming the line and field."""


class IndicatorRow(msgspec.Struct, frozen=True, array_like=True):
    """One indicator value read from a CSV file, with the line it came from."""

    line: int
    city: str
    district_id: str
    district_name: str | None
    year: int
    indicator: str
    value: float
    unit: str | None
    source: str | None


class IndicatorLabel(msgspec.Struct, frozen=True):
    indicator: str
    label: str | None


class ImportSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What an import did. ``replaced`` values had been imported before and were overwritten."""

    values: int
    new: int
    replaced: int
    districts: int
    indicators: list[IndicatorLabel]
    unlabelled: list[str]


class OfficeDistrict(msgspec.Struct, frozen=True, kw_only=True):
    """An office's district; ``previous_*`` is the mapping it replaced, if any."""

    office: str
    city: str
    district_id: str
    has_indicators: bool = False
    previous_city: str | None = None
    previous_district_id: str | None = None


class IndicatorValue(msgspec.Struct, frozen=True, kw_only=True):
    indicator: str
    label: str | None
    year: int
    value: float
    unit: str | None
    source: str | None


class District(msgspec.Struct, frozen=True, kw_only=True):
    """A district with its indicator values (by indicator and year) and the offices in it."""

    city: str
    district_id: str
    name: str | None
    offices: list[str]
    indicators: list[IndicatorValue]


def indicator_label(indicator: str) -> str | None:
    """The honest label of a known indicator code, or None for an unlabelled one."""
    return INDICATOR_LABELS.get(indicator)


def parse_value(text: str) -> float:
    """A number as statistics offices write it: ``12.5`` or ``12,5``; ValueError otherwise."""
    text = text.strip()
    if not _NUMBER_RE.fullmatch(text):
        raise ValueError(
            f"{text!r} is not a number (write 12.5 or 12,5, without thousands separators)"
            if text
            else "must be a number, the cell is empty"
        )
    return float(text.replace(",", "."))


def row_problems(row: IndicatorRow) -> list[str]:
    """What is wrong with one value, as ``field: message`` strings."""
    problems: list[str] = []
    for name in ("city", "district_id", "indicator"):
        if not getattr(row, name).strip():
            problems.append(f"{name}: must not be empty")
    for name in ("city", "district_id", "district_name", "indicator", "unit", "source"):
        value = getattr(row, name)
        if value is not None and len(value) > MAX_TEXT:
            problems.append(f"{name}: longer than {MAX_TEXT} characters")
    if not FIRST_YEAR <= row.year <= LAST_YEAR:
        problems.append(f"year: {row.year} is not between {FIRST_YEAR} and {LAST_YEAR}")
    value = row.value
    if value != value or value in (float("inf"), float("-inf")):
        problems.append("value: must be a finite number")
    elif row.indicator in _PERCENTAGES and not 0 <= value <= 100:
        problems.append(f"value: {value:g} is outside 0 to 100 for {row.indicator} (a share)")
    elif row.indicator == "pop_total" and (value < 0 or value != int(value)):
        problems.append(f"value: {value:g} is not a number of residents")
    return problems


def duplicate_problems(rows: Sequence[IndicatorRow]) -> list[str]:
    """One problem per repeated (city, district_id, year, indicator), naming both lines."""
    problems: list[str] = []
    seen: dict[tuple[str, str, int, str], int] = {}
    for row in rows:
        key = (row.city, row.district_id, row.year, row.indicator)
        if key in seen:
            problems.append(
                f"line {row.line}: indicator: {row.indicator!r} for {row.city} /"
                f" {row.district_id} in {row.year} is listed twice (first at line {seen[key]})"
            )
        seen.setdefault(key, row.line)
    return problems


# -- CSV ---------------------------------------------------------------------------------------


def parse_district_csv(path: Path) -> list[IndicatorRow]:
    """Read a district indicator CSV; every bad row is reported (with its line) before any use.

    Raises DistrictError with one line per problem, each naming file, line and field.
    """
    rows, header, _text = open_csv(path, DistrictError, f"header {','.join(CSV_HEADER)}")
    check_header(path, header, CSV_HEADER, DistrictError)
    problems: list[str] = []
    result: list[IndicatorRow] = []
    for line, fields in records(path, rows, CSV_HEADER, problems):
        row, row_errors = _row_from_fields(line, fields)
        problems.extend(f"{path}: line {line}: {problem}" for problem in row_errors)
        if row is not None and not row_errors:
            result.append(row)
    problems.extend(f"{path}: {problem}" for problem in duplicate_problems(result))
    if problems:
        raise DistrictError("\n".join(problems))
    if not result:
        raise DistrictError(f"{path}: no indicator values in the file")
    return result


def _row_from_fields(line: int, fields: dict[str, str]) -> tuple[IndicatorRow | None, list[str]]:
    problems: list[str] = []
    year = 0
    if _YEAR_RE.fullmatch(fields["year"]):
        year = int(fields["year"])
    else:
        problems.append(f"year: {fields['year']!r} is not a year such as 2023")
    value = 0.0
    try:
        value = parse_value(fields["value"])
    except ValueError as exc:
        problems.append(f"value: {exc}")
    if problems:
        # Still check the other fields, so that every problem of the line is named at once.
        for name in ("city", "district_id", "indicator"):
            if not fields[name]:
                problems.append(f"{name}: must not be empty")
        return None, problems
    row = IndicatorRow(
        line=line,
        city=fields["city"],
        district_id=fields["district_id"],
        district_name=fields["district_name"] or None,
        year=year,
        indicator=fields["indicator"],
        value=value,
        unit=fields["unit"] or None,
        source=fields["source"] or None,
    )
    return row, row_problems(row)


# -- SQL ---------------------------------------------------------------------------------------

_NEW_KEYS: Final = """
SELECT count(*) FROM district_indicators d
JOIN (SELECT unnest($city::VARCHAR[]) AS city, unnest($district::VARCHAR[]) AS district_id,
             unnest($year::INTEGER[]) AS year, unnest($indicator::VARCHAR[]) AS indicator) n
  USING (city, district_id, year, indicator)
"""
_UPSERT: Final = """
INSERT OR REPLACE INTO district_indicators
    (city, district_id, district_name, year, indicator, value, unit, source)
SELECT unnest($city::VARCHAR[]), unnest($district::VARCHAR[]), unnest($name::VARCHAR[]),
       unnest($year::INTEGER[]), unnest($indicator::VARCHAR[]), unnest($value::DOUBLE[]),
       unnest($unit::VARCHAR[]), unnest($source::VARCHAR[])
"""


def import_indicators(cur: Cursor, rows: Sequence[IndicatorRow]) -> ImportSummary:
    """Store the values inside the caller's transaction, replacing earlier values of a key.

    Checks every row again (the rows may come from another process) and refuses them all when
    any is bad.
    """
    problems = [f"line {row.line}: {problem}" for row in rows for problem in row_problems(row)]
    problems.extend(duplicate_problems(rows))
    if problems:
        raise DistrictError("\n".join(problems))
    if not rows:
        raise DistrictError("no indicator values to import")
    keys = {
        "city": [r.city for r in rows],
        "district": [r.district_id for r in rows],
        "year": [r.year for r in rows],
        "indicator": [r.indicator for r in rows],
    }
    found = cur.execute(_NEW_KEYS, keys).fetchone()
    replaced = int(found[0]) if found else 0
    cur.execute(
        _UPSERT,
        {
            **keys,
            "name": [r.district_name for r in rows],
            "value": [r.value for r in rows],
            "unit": [r.unit for r in rows],
            "source": [r.source for r in rows],
        },
    )
    codes = sorted({r.indicator for r in rows})
    return ImportSummary(
        values=len(rows),
        new=len(rows) - replaced,
        replaced=replaced,
        districts=len({(r.city, r.district_id) for r in rows}),
        indicators=[IndicatorLabel(code, indicator_label(code)) for code in codes],
        unlabelled=[code for code in codes if indicator_label(code) is None],
    )


def map_office(cur: Cursor, office: str, city: str, district_id: str) -> OfficeDistrict:
    """Record (or change) the district an office serves, inside the caller's transaction.

    The district need not have indicators yet: they may be imported later.
    """
    city, district_id = city.strip(), district_id.strip()
    problems: list[str] = []
    if cur.execute("SELECT 1 FROM offices WHERE id = ?", [office]).fetchone() is None:
        problems.append(f"office: unknown office {office!r}")
    if not city:
        problems.append("--city: must not be empty")
    elif len(city) > MAX_TEXT:
        problems.append(f"--city: longer than {MAX_TEXT} characters")
    if not district_id:
        problems.append("--district-id: must not be empty")
    elif len(district_id) > MAX_TEXT:
        problems.append(f"--district-id: longer than {MAX_TEXT} characters")
    if problems:
        raise DistrictError("; ".join(problems))
    previous = cur.execute(
        "SELECT city, district_id FROM office_districts WHERE office_id = ?", [office]
    ).fetchone()
    cur.execute(
        "INSERT OR REPLACE INTO office_districts (office_id, city, district_id) VALUES (?, ?, ?)",
        [office, city, district_id],
    )
    known = cur.execute(
        "SELECT 1 FROM district_indicators WHERE city = ? AND district_id = ? LIMIT 1",
        [city, district_id],
    ).fetchone()
    return OfficeDistrict(
        office=office,
        city=city,
        district_id=district_id,
        has_indicators=known is not None,
        previous_city=previous[0] if previous else None,
        previous_district_id=previous[1] if previous else None,
    )


def list_districts(cur: Cursor) -> list[District]:
    """Every district that has indicator values or offices, by city and district id."""
    values: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for row in cur.execute(
        "SELECT city, district_id, district_name, year, indicator, value, unit, source"
        " FROM district_indicators ORDER BY city, district_id, indicator, year"
    ).fetchall():
        values.setdefault((row[0], row[1]), []).append(row)
    offices: dict[tuple[str, str], list[str]] = {}
    for office, city, district_id in cur.execute(
        "SELECT office_id, city, district_id FROM office_districts ORDER BY office_id"
    ).fetchall():
        offices.setdefault((city, district_id), []).append(office)
    result: list[District] = []
    for key in sorted(values.keys() | offices.keys()):
        rows = values.get(key, [])
        # The name of the latest year that has one (districts are sometimes renamed).
        named = [row for row in rows if row[2]]
        name = max(named, key=lambda row: row[3])[2] if named else None
        result.append(
            District(
                city=key[0],
                district_id=key[1],
                name=name,
                offices=offices.get(key, []),
                indicators=[
                    IndicatorValue(
                        indicator=row[4],
                        label=indicator_label(row[4]),
                        year=row[3],
                        value=row[5],
                        unit=row[6],
                        source=row[7],
                    )
                    for row in rows
                ],
            )
        )
    return result
