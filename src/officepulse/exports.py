"""Exports for evaluators: aggregates (always with *k* applied) and raw responses, CSV or Parquet.

Files are written by DuckDB (Parquet needs no pyarrow) to a temporary name beside the target
and renamed when complete, so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from pathlib import Path
from typing import Any, Final, Literal

import msgspec

from officepulse.aggregates import Filters, aggregate
from officepulse.storage import Cursor
from officepulse.surveys import Survey

ExportFormat = Literal["csv", "parquet"]
FORMATS: Final = ("csv", "parquet")


class ExportRequest(msgspec.Struct, frozen=True, kw_only=True):
    kind: Literal["aggregates", "responses"]
    format: ExportFormat
    out: str
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    period: Literal["day", "week", "month", "all"] = "month"
    with_comments: bool = False
    include_flagged: bool = False


class ExportResult(msgspec.Struct, frozen=True):
    out: str
    rows: int
    suppressed: int
    excluded_flagged: int


def _literal(path: Path) -> str:
    # COPY takes its target as a literal, not a parameter: quote it as an SQL string.
    return "'" + str(path).replace("'", "''") + "'"


def _copy(
    cur: Cursor, select: str, params: list[Any] | dict[str, Any], fmt: str, out: Path
) -> None:
    options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
    tmp = out.with_name(f".{out.name}.part")
    try:
        cur.execute(f"COPY ({select}) TO {_literal(tmp)} ({options})", params)
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def export_aggregates(cur: Cursor, request: ExportRequest, survey: Survey, k: int) -> ExportResult:
    """Office × period × item cells with *k* applied; suppressed cells carry no numbers."""
    filters = Filters(
        date_from=request.date_from,
        date_to=request.date_to,
        include_flagged=request.include_flagged,
    )
    result = aggregate(cur, filters, survey, k, period=request.period)
    cells = result.cells + [msgspec.structs.replace(t, period="total") for t in result.totals]
    cur.execute(
        "CREATE OR REPLACE TEMP TABLE export_cells (office VARCHAR, period VARCHAR,"
        " item VARCHAR, n BIGINT, mean DOUBLE, sd DOUBLE, top2_share DOUBLE, n_1 BIGINT,"
        " n_2 BIGINT, n_3 BIGINT, n_4 BIGINT, n_5 BIGINT, suppressed BOOLEAN)"
    )
    if cells:
        empty: list[int | None] = [None] * 5
        dist: list[list[int | None]] = [list(c.distribution or empty) for c in cells]
        cur.execute(
            "INSERT INTO export_cells SELECT unnest($1::VARCHAR[]), unnest($2::VARCHAR[]),"
            " unnest($3::VARCHAR[]), unnest($4::BIGINT[]), unnest($5::DOUBLE[]),"
            " unnest($6::DOUBLE[]), unnest($7::DOUBLE[]), unnest($8::BIGINT[]),"
            " unnest($9::BIGINT[]), unnest($10::BIGINT[]), unnest($11::BIGINT[]),"
            " unnest($12::BIGINT[]), unnest($13::BOOLEAN[])",
            [
                [c.office for c in cells],
                [c.period for c in cells],
                [c.item for c in cells],
                [c.n for c in cells],
                [c.mean for c in cells],
                [c.sd for c in cells],
                [c.top2_share for c in cells],
                *([d[i] for d in dist] for i in range(5)),
                [c.suppressed for c in cells],
            ],
        )
    out = Path(request.out)
    _copy(cur, "SELECT * FROM export_cells ORDER BY office, period, item", [], request.format, out)
    cur.execute("DROP TABLE export_cells")
    return ExportResult(
        out=str(out),
        rows=len(cells),
        suppressed=sum(c.suppressed for c in cells),
        excluded_flagged=result.excluded_flagged,
    )


def export_responses(cur: Cursor, request: ExportRequest, survey: Survey) -> ExportResult:
    """One row per response, an item per column, times as stored (coarsened).

    Comments only with ``with_comments``: scrubbed as they are, free text can still identify.
    """
    # Item ids are checked slugs ([a-z][a-z0-9_]*), so they are safe as column names.
    columns = ", ".join(f"answers['{item.id}'] AS {item.id}" for item in survey.rating_items)
    comment = ", comment" if request.with_comments else ""
    select = (
        "SELECT id, office_id AS office, survey_id AS survey, survey_version AS version,"  # noqa: S608
        f" channel, placement, lang, received_at AS time, {columns}{comment},"
        " array_to_string(flags, ';') AS flags"
        " FROM responses"
        " WHERE ($from IS NULL OR received_at >= $from) AND ($to IS NULL OR received_at < $to)"
        " AND ($flagged OR NOT list_has_any(flags, ['repeat', 'burst']))"
        " ORDER BY received_at, id"
    )
    params = {
        "from": request.date_from,
        "to": request.date_to + dt.timedelta(days=1) if request.date_to else None,
        "flagged": request.include_flagged,
    }
    out = Path(request.out)
    _copy(cur, select, params, request.format, out)
    (rows,) = cur.execute(
        "SELECT count(*) FROM responses"
        " WHERE ($from IS NULL OR received_at >= $from) AND ($to IS NULL OR received_at < $to)"
        " AND ($flagged OR NOT list_has_any(flags, ['repeat', 'burst']))",
        params,
    ).fetchone() or (0,)
    return ExportResult(out=str(out), rows=int(rows), suppressed=0, excluded_flagged=0)
