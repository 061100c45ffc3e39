"""Historical responses: paper surveys and earlier tools, imported from CSV or Parquet.

One row per response, with the columns ``id, office, survey, version, channel, placement,
lang, time``, one column per item id (an empty cell: not answered) and ``comment``. Every row
is validated exactly like a submission to ``POST /api/v1/responses``: the row becomes the same
raw body the API decodes and goes through :func:`~officepulse.responses.check_shape` and
:func:`~officepulse.responses.check_response` — the same errors, the same scrubbing of the
comment, the same coarsening of the time (a time without a zone is the offices' local time).
The API's JSON pointers are reported as the file's column names.

The import is all or nothing: every bad row is reported with its line and column, and only a
file without any is stored, in one transaction. Ids make it idempotent: a row whose id is
stored with the same content is counted as already present, one stored with other content is
an error. Imported rows are flagged ``imported``, so that analyses can tell them apart from
responses collected by officepulse itself.

The command line reads the file (the format); the operation validates the rows against the
offices and surveys and stores them. A running server's admin API takes at most 1 MiB per
request, so a big file reaches it in parts (:class:`UploadPart`), staged in memory until the
last part arrives.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, Generic, Literal, TypeVar

import duckdb
import msgspec

from officepulse.csvfiles import open_csv
from officepulse.responses import (
    Outcome,
    StoredResponse,
    check_response,
    check_shape,
    commit_responses,
)
from officepulse.runtime import Runtime
from officepulse.storage import Cursor

T = TypeVar("T")

# Columns that are fields of the API body (or the time); every other column is an item id.
FIELD_COLUMNS: Final = ("id", "office", "survey", "version", "channel", "placement", "lang")
FIXED_COLUMNS: Final = (*FIELD_COLUMNS, "time", "comment")
REQUIRED_COLUMNS: Final = ("id", "office", "survey", "version", "channel", "lang", "time")
IMPORTED_FLAG: Final = "imported"
CHUNK: Final = 5_000
PROGRESS_ROWS: Final = 2_000
# Longer cells are refused before they are sent anywhere (a whole API body is at most 16 KiB).
MAX_CELL: Final = 4_096
# A time before this is a typo in the year, not a historical survey.
EARLIEST: Final = dt.datetime(2000, 1, 1)
FUTURE_SLACK: Final = dt.timedelta(minutes=5)
_INT_RE: Final = re.compile(r"[+-]?\d{1,9}")
_CONNECT_CONFIG: Final[dict[str, str | bool | int | float | list[str]]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}

Unit = Literal["line", "row"]
# A cell as the API body would carry it: text, a number, or absent.
Cell = str | int | float | None


class HistoryError(ValueError):
    """A bad file or bad rows; one line per problem, naming the line (or row) and column."""


class ImportRow(msgspec.Struct, frozen=True, array_like=True):
    """One response as read from the file: raw cells, the parsed time, the line it came from.

    ``problems`` are what reading the file found (``column: message``); ``unreadable`` rows
    could not be split into cells at all and are not validated further.
    """

    line: int
    id: Cell
    office: Cell
    survey: Cell
    version: Cell
    channel: Cell
    placement: Cell
    lang: Cell
    time: dt.datetime | None
    answers: dict[str, int | float | str]
    comment: Cell
    problems: list[str] = []
    unreadable: bool = False


class HistoryFile(msgspec.Struct, frozen=True):
    """The rows of a file; ``unit`` is what their numbers count (CSV lines, Parquet rows)."""

    unit: Unit
    rows: list[ImportRow]
    items: list[str]


class UploadPart(msgspec.Struct, frozen=True, kw_only=True):
    """Where a part of a big import belongs (a server's admin API takes at most 1 MiB)."""

    upload: str
    index: int
    last: bool
    total: int


class ResponsesImport(msgspec.Struct, frozen=True, kw_only=True):
    """The parameters of the ``responses.import`` operation."""

    rows: list[ImportRow]
    unit: Unit = "line"
    part: UploadPart | None = None


class ImportResult(msgspec.Struct, frozen=True, kw_only=True):
    """What an import did; ``complete`` is false for a part that was only staged."""

    complete: bool
    rows: int
    stored: int = 0
    present: int = 0
    # comments older than the retention period, removed at once after the import
    comments_removed: int = 0


# -- reading files -----------------------------------------------------------------------------


def read_history_file(
    path: Path, progress: Callable[[int, int], None] | None = None
) -> HistoryFile:
    """Read a CSV or Parquet file of historical responses; HistoryError for a bad file.

    Problems of single cells do not raise: they travel with their rows, so that the operation
    can report them together with what the validation finds.
    """
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _read_parquet(path, progress)
    if suffix == ".csv":
        return _read_csv(path, progress)
    raise HistoryError(f"{path}: unknown file type {suffix or '(none)'!r}; use .csv or .parquet")


def _check_header(path: Path, header: Sequence[str], where: str) -> list[str]:
    """The item columns of a header; HistoryError naming what is wrong with it."""
    problems: list[str] = []
    if any(not name for name in header):
        problems.append("a column has no name")
    repeated = sorted({name for name in header if name and header.count(name) > 1})
    if repeated:
        problems.append(f"columns listed twice: {', '.join(repeated)}")
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        problems.append(f"missing columns: {', '.join(missing)}")
    items = [name for name in header if name and name not in FIXED_COLUMNS]
    if not items:
        problems.append("no item columns (one column per item id, such as stress_now)")
    if problems:
        raise HistoryError(f"{path}: {where}: {'; '.join(problems)}")
    return items


def _read_csv(path: Path, progress: Callable[[int, int], None] | None) -> HistoryFile:
    reader, raw_header, text = open_csv(path, HistoryError)
    total = max(text.count("\n") - 1, 0)
    header = [name.strip() for name in raw_header]
    items = _check_header(path, header, "line 1")
    rows: list[ImportRow] = []
    try:
        for values in reader:
            line = reader.line_num
            if not any(value.strip() for value in values):
                continue
            if len(values) != len(header):
                rows.append(_unreadable(line, f"expected {len(header)} fields, got {len(values)}"))
            else:
                rows.append(row_from_cells(line, dict(zip(header, values, strict=True)), items))
            if progress is not None and len(rows) % 500 == 0:
                progress(len(rows), total)
    except csv.Error as exc:
        raise HistoryError(f"{path}: line {reader.line_num}: {exc}") from None
    if progress is not None:
        progress(len(rows), len(rows))
    if not rows:
        raise HistoryError(f"{path}: no responses in the file")
    return HistoryFile(unit="line", rows=rows, items=items)


def _read_parquet(path: Path, progress: Callable[[int, int], None] | None) -> HistoryFile:
    if not path.exists():
        raise HistoryError(f"{path}: no such file")
    if path.is_dir():
        raise HistoryError(f"{path}: is a directory, not a file")
    rows: list[ImportRow] = []
    with duckdb.connect(config=_CONNECT_CONFIG) as conn:
        try:
            counted = conn.execute("SELECT count(*) FROM read_parquet(?)", [str(path)]).fetchone()
            total = int(counted[0]) if counted else 0
            result = conn.execute("SELECT * FROM read_parquet(?)", [str(path)])
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise HistoryError(f"{path}: not a Parquet file DuckDB can read ({first})") from None
        header = [str(column[0]).strip() for column in result.description or ()]
        items = _check_header(path, header, "columns")
        while batch := result.fetchmany(1_000):
            for values in batch:
                number = len(rows) + 1
                rows.append(row_from_cells(number, dict(zip(header, values, strict=True)), items))
            if progress is not None:
                progress(len(rows), total)
    if not rows:
        raise HistoryError(f"{path}: no responses in the file")
    return HistoryFile(unit="row", rows=rows, items=items)


def _unreadable(line: int, problem: str) -> ImportRow:
    return ImportRow(
        line, None, None, None, None, None, None, None, None, {}, None, [problem], True
    )


def row_from_cells(line: int, cells: dict[str, Any], items: Sequence[str]) -> ImportRow:
    """The row of one line's cells (by column name), with what reading them found."""
    problems: list[str] = []
    text: dict[str, Cell] = {}
    for name in (*FIELD_COLUMNS, "comment"):
        value = _text_cell(cells.get(name))
        if isinstance(value, str) and len(value) > MAX_CELL:
            problems.append(f"{name}: longer than {MAX_CELL} characters")
            value = None
        text[name] = value
    version = _number_cell(cells.get("version"))
    if isinstance(version, str) and len(version) > MAX_CELL:
        version = version[:MAX_CELL]
    answers: dict[str, int | float | str] = {}
    for item in items:
        value = _number_cell(cells.get(item))
        if isinstance(value, str) and len(value) > MAX_CELL:
            value = value[:MAX_CELL]
        if value is not None:
            answers[item] = value
    moment, time_problem = parse_time(cells.get("time"))
    if time_problem:
        problems.append(f"time: {time_problem}")
    return ImportRow(
        line=line,
        id=text["id"],
        office=text["office"],
        survey=text["survey"],
        version=version,
        channel=text["channel"],
        placement=text["placement"],
        lang=text["lang"],
        time=moment,
        answers=answers,
        comment=text["comment"],
        problems=problems,
    )


def _text_cell(value: object) -> Cell:
    """A text cell as the API body would carry it (numbers stay numbers: the API names them)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return value


def _number_cell(value: object) -> Cell:
    """A number cell: whole numbers become ints; anything else goes to the API as it is."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        return int(value) if _INT_RE.fullmatch(value) else value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return value if abs(value) < 10**9 else str(value)
    if isinstance(value, float):
        return value
    return str(value)


def parse_time(value: object) -> tuple[dt.datetime | None, str | None]:
    """The moment of a ``time`` cell (naive: the offices' local time), or what is wrong."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, "required field is missing"
    if isinstance(value, dt.datetime):
        return value, None
    if isinstance(value, dt.date):
        return None, f"{value.isoformat()} has no time of day (expected YYYY-MM-DD HH:MM)"
    if not isinstance(value, str):
        return None, f"must be a time YYYY-MM-DD HH:MM, got {type(value).__name__}"
    text = value.strip()
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        pass
    else:
        return None, f"{text!r} has no time of day (expected YYYY-MM-DD HH:MM)"
    try:
        return dt.datetime.fromisoformat(text), None
    except ValueError:
        return None, f"{text!r} is not a time YYYY-MM-DD HH:MM (or ISO 8601)"


# -- validation --------------------------------------------------------------------------------


def raw_body(row: ImportRow) -> dict[str, Any]:
    """The body the API would have received for this row (absent cells: absent fields)."""
    raw: dict[str, Any] = {}
    for name in FIELD_COLUMNS:
        value = getattr(row, name)
        if value is not None:
            raw[name] = value
    raw["answers"] = dict(row.answers)
    if row.comment is not None:
        raw["comment"] = row.comment
    return raw


def column_of(pointer: str) -> str:
    """The file column an API error's JSON pointer points at."""
    if pointer.startswith("#/answers/"):
        return pointer.removeprefix("#/answers/").replace("~1", "/").replace("~0", "~")
    if pointer == "#/answers":
        return "items"
    if pointer in ("", "#"):
        return "row"
    return pointer.removeprefix("#/")


class Checked(msgspec.Struct, frozen=True):
    """The rows that passed, with their lines, and every problem as ``(line, message)``."""

    rows: list[tuple[int, StoredResponse]]
    problems: list[tuple[int, str]]


def check_rows(
    runtime: Runtime, rows: Sequence[ImportRow], unit: Unit, now: dt.datetime | None = None
) -> Checked:
    """Validate every row like the API does; nothing is stored here."""
    now = now or dt.datetime.now(dt.UTC)
    zone = runtime.settings.zone
    good: list[tuple[int, StoredResponse]] = []
    problems: list[tuple[int, str]] = []
    for row in rows:
        where = f"{unit} {row.line}"
        found = [f"{where}: {problem}" for problem in row.problems]
        if row.unreadable:
            problems.extend((row.line, message) for message in found)
            continue
        local_columns = {problem.split(":", 1)[0] for problem in row.problems}
        moment: dt.datetime | None = None
        if row.time is not None:
            moment = row.time if row.time.tzinfo is not None else row.time.replace(tzinfo=zone)
            if moment > now + FUTURE_SLACK:
                found.append(f"{where}: time: {_show(row.time)} is in the future")
            elif moment < EARLIEST.replace(tzinfo=zone):
                found.append(f"{where}: time: {_show(row.time)} is before {EARLIEST:%Y}")
        elif "time" not in local_columns:
            found.append(f"{where}: time: required field is missing")
        values, shape_errors = check_shape(raw_body(row))
        stored, errors = check_response(values, shape_errors, runtime, moment or now)
        found.extend(
            f"{where}: {column_of(error.pointer)}: {error.detail}"
            for error in errors
            if column_of(error.pointer) not in local_columns
        )
        if stored is None and not found:
            found.append(f"{where}: row: not a valid response")
        if found or stored is None:
            problems.extend((row.line, message) for message in found)
            continue
        good.append(
            (row.line, msgspec.structs.replace(stored, flags=(*stored.flags, IMPORTED_FLAG)))
        )
    seen: dict[uuid.UUID, int] = {}
    for line, stored in good:
        if stored.id in seen:
            problems.append(
                (line, f"{unit} {line}: id: listed twice (first at {unit} {seen[stored.id]})")
            )
        seen.setdefault(stored.id, line)
    return Checked(rows=good, problems=problems)


def _show(moment: dt.datetime) -> str:
    return moment.isoformat(sep=" ", timespec="minutes")


# -- storing -----------------------------------------------------------------------------------

_EXISTING: Final = """
SELECT r.id::VARCHAR, r.content_digest
FROM responses r JOIN (SELECT unnest($1::UUID[]) AS id) wanted USING (id)
"""


def _existing(cur: Cursor, ids: list[str]) -> dict[str, str]:
    return {row[0]: row[1] for row in cur.execute(_EXISTING, [ids]).fetchall()}


def _conflicts(
    rows: Sequence[tuple[int, StoredResponse]], existing: dict[str, str], unit: Unit
) -> list[tuple[int, str]]:
    return [
        (line, f"{unit} {line}: id: already stored with different content; use a new id")
        for line, row in rows
        if existing.get(str(row.id), row.content_digest) != row.content_digest
    ]


def store_rows(
    cur: Cursor, rows: Sequence[tuple[int, StoredResponse]], unit: Unit
) -> tuple[int, int]:
    """Store the rows not stored yet, in chunks, all inside the caller's one transaction.

    Returns (stored, already present). Raises HistoryError — and the caller's transaction
    rolls back, keeping nothing — when an id is stored with different content.
    """
    ids = [str(row.id) for _, row in rows]
    existing = _existing(cur, ids)
    conflicts = _conflicts(rows, existing, unit)
    if conflicts:
        raise HistoryError(_report(conflicts))
    fresh = [row for _, row in rows if str(row.id) not in existing]
    for first in range(0, len(fresh), CHUNK):
        outcomes = commit_responses(cur, fresh[first : first + CHUNK])
        if any(outcome is not Outcome.CREATED for outcome in outcomes):
            raise HistoryError("responses changed during the import; nothing was imported")
    # commit_responses may restart the transaction on a key conflict; make sure every row of
    # this import is in the one transaction that will commit.
    counted = cur.execute(
        "SELECT count(*) FROM responses r JOIN (SELECT unnest($1::UUID[]) AS id) fresh USING (id)",
        [[str(row.id) for row in fresh]],
    ).fetchone()
    if not counted or counted[0] != len(fresh):
        raise HistoryError("responses changed during the import; nothing was imported")
    return len(fresh), len(rows) - len(fresh)


def import_responses(runtime: Runtime, rows: Sequence[ImportRow], unit: Unit) -> ImportResult:
    """Validate every row, then store them all in one transaction — or report every problem."""
    checked = check_rows(runtime, rows, unit)
    if checked.problems:
        # Name conflicting ids too, so that one run shows everything that needs fixing.
        existing = runtime.store.read(
            lambda cur: _existing(cur, [str(r.id) for _, r in checked.rows])
        )
        raise HistoryError(_report([*checked.problems, *_conflicts(checked.rows, existing, unit)]))
    good = checked.rows
    stored, present = runtime.store.write(lambda cur: store_rows(cur, good, unit)).result()
    return ImportResult(complete=True, rows=len(rows), stored=stored, present=present)


def _report(problems: Sequence[tuple[int, str]]) -> str:
    ordered = sorted(enumerate(problems), key=lambda item: (item[1][0], item[0]))
    bad_rows = len({line for line, _ in problems})
    lines = [message for _, (_, message) in ordered]
    lines.append(f"{bad_rows} bad row{'' if bad_rows == 1 else 's'}; nothing was imported")
    return "\n".join(lines)


# -- big imports in parts ----------------------------------------------------------------------


class Staging(Generic[T]):
    """The parts of uploads received so far, in memory until their last part arrives.

    Parts come in order from one command; an upload not continued for ``ttl`` seconds is
    dropped (the command was interrupted), and so is everything when the server restarts.
    """

    def __init__(self, ttl: float = 1800.0) -> None:
        self._ttl = ttl
        self._uploads: dict[str, tuple[float, int, list[T]]] = {}
        self._lock = threading.Lock()

    def collect(self, part: UploadPart | None, items: Sequence[T]) -> list[T] | None:
        """Every item of the upload once its last part is in, else None (staged)."""
        if part is None:
            return list(items)
        now = time.monotonic()
        with self._lock:
            for key in [k for k, v in self._uploads.items() if now - v[0] > self._ttl]:
                del self._uploads[key]
            entry = self._uploads.pop(part.upload, None)
            if part.index == 0:
                staged: list[T] = []
            elif entry is None or entry[1] != part.index:
                raise HistoryError(
                    f"upload: part {part.index + 1} arrived without the parts before it"
                    " (the server restarted or the upload expired); nothing was imported,"
                    " run the import again"
                )
            else:
                staged = entry[2]
            staged.extend(items)
            if not part.last:
                self._uploads[part.upload] = (now, part.index + 1, staged)
                return None
        if len(staged) != part.total:
            raise HistoryError(
                f"upload: {len(staged)} of {part.total} rows arrived; nothing was imported,"
                " run the import again"
            )
        return staged

    def staged(self, upload: str) -> int:
        """How many items of an upload are staged."""
        with self._lock:
            entry = self._uploads.get(upload)
            return len(entry[2]) if entry else 0


def split_parts(items: Sequence[T], encode: Callable[[T], bytes], limit: int) -> list[list[T]]:
    """Consecutive parts whose encoded items stay under ``limit`` bytes (at least one each)."""
    parts: list[list[T]] = []
    current: list[T] = []
    size = 0
    for item in items:
        length = len(encode(item)) + 1
        if current and size + length > limit:
            parts.append(current)
            current, size = [], 0
        current.append(item)
        size += length
    if current or not parts:
        parts.append(current)
    return parts
