"""Aggregation in DuckDB, with the minimum group size enforced on every cell.

Python never loops over responses here: one parameterised query turns responses into cells
(office × period × item, optionally by channel, placement or language), and everything after
that works on cells. A cell built from fewer than *k* responses is suppressed: its numbers are
absent, including ``n``, and it is marked. Two rules stop differencing:

- **complementary suppression**: where a total over the cells of a group is shown, a single
  suppressed cell in that group would be the total minus the visible ones, so the smallest
  visible cell of the group is suppressed as well;
- **complement check for breakdowns**: a cell for one language (placement, channel) is shown
  only if the rest of its office × period × item cell is empty or has at least *k* responses,
  otherwise the unfiltered cell minus this one would reveal a small group.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final, Literal

import msgspec

from officepulse.storage import Cursor
from officepulse.surveys import Survey

Period = Literal["day", "week", "month", "all"]
Breakdown = Literal["channel", "placement", "lang"]
PERIODS: Final = ("day", "week", "month", "all")
BREAKDOWNS: Final = ("channel", "placement", "lang")
EXCLUDED_FLAGS: Final = ("repeat", "burst")


class Filters(msgspec.Struct, frozen=True, kw_only=True):
    """Which responses count. Flagged responses are excluded unless asked for."""

    date_from: dt.date | None = None
    date_to: dt.date | None = None
    offices: tuple[str, ...] = ()
    channel: str | None = None
    placement: str | None = None
    lang: str | None = None
    include_flagged: bool = False
    verified_only: bool = False


class Cell(msgspec.Struct, frozen=True, kw_only=True):
    """One aggregate. When ``suppressed``, every number is None."""

    office: str
    period: str
    item: str
    breakdown: str | None = None
    n: int | None
    mean: float | None
    sd: float | None
    top2_share: float | None
    distribution: list[int] | None
    suppressed: bool


class Aggregates(msgspec.Struct, frozen=True, kw_only=True):
    """Cells, office totals over the whole range, and what was left out."""

    cells: list[Cell]
    totals: list[Cell]
    k: int
    excluded_flagged: int


_PERIOD_SQL: Final = {
    "day": "strftime(received_at, '%Y-%m-%d')",
    "week": "strftime(date_trunc('week', received_at), '%G-W%V')",
    "month": "strftime(received_at, '%Y-%m')",
    "all": "'all'",
}

# The one query: responses -> (office, period, breakdown, item) -> n, mean, sd, top-2, counts.
# `$lower` lists the items where low values are the good end (stress), for the top-2 share.
_CELLS_SQL: Final = """
WITH chosen AS (
    SELECT r.office_id AS office, {period} AS period, {breakdown} AS breakdown, r.answers
    FROM responses r
    WHERE ($from IS NULL OR r.received_at >= $from)
      AND ($to IS NULL OR r.received_at < $to)
      AND (len($offices) = 0 OR list_contains($offices, r.office_id))
      AND ($channel IS NULL OR r.channel = $channel)
      AND ($placement IS NULL OR r.placement = $placement)
      AND ($lang IS NULL OR r.lang = $lang)
      AND ($flagged OR NOT list_has_any(r.flags, $excluded))
      AND (NOT $verified OR list_contains(r.flags, 'verified_onsite'))
),
answers AS (
    SELECT office, period, breakdown, e.key AS item, e.value AS value
    FROM chosen, unnest(map_entries(answers)) AS t(e)
)
SELECT office, period, breakdown, item,
       count(*) AS n,
       avg(value) AS mean,
       stddev_samp(value) AS sd,
       avg(CASE WHEN list_contains($lower, item) THEN (value <= 2)::INT
                ELSE (value >= 4)::INT END) AS top2,
       [count(*) FILTER (value = 1), count(*) FILTER (value = 2), count(*) FILTER (value = 3),
        count(*) FILTER (value = 4), count(*) FILTER (value = 5)] AS dist
FROM answers
GROUP BY ALL
ORDER BY office, period, breakdown NULLS FIRST, item
"""

_EXCLUDED_SQL: Final = """
SELECT count(*) FROM responses r
WHERE ($from IS NULL OR r.received_at >= $from)
  AND ($to IS NULL OR r.received_at < $to)
  AND (len($offices) = 0 OR list_contains($offices, r.office_id))
  AND list_has_any(r.flags, $excluded)
"""


def _params(filters: Filters, survey: Survey | None) -> dict[str, Any]:
    lower = [i.id for i in survey.rating_items if i.polarity == "lower_is_better"] if survey else []
    return {
        "from": filters.date_from,
        "to": (filters.date_to + dt.timedelta(days=1)) if filters.date_to else None,
        "offices": list(filters.offices),
        "channel": filters.channel,
        "placement": filters.placement,
        "lang": filters.lang,
        "flagged": filters.include_flagged,
        "excluded": list(EXCLUDED_FLAGS),
        "verified": filters.verified_only,
        "lower": lower,
    }


def _query(
    cur: Cursor, filters: Filters, survey: Survey | None, period: Period, breakdown: str | None
) -> list[tuple[Any, ...]]:
    if period not in _PERIOD_SQL:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}")
    if breakdown is not None and breakdown not in BREAKDOWNS:
        raise ValueError(f"breakdown must be one of {', '.join(BREAKDOWNS)}")
    # Only fixed fragments from the two tables above are formatted into the SQL; every value
    # is a parameter.
    sql = _CELLS_SQL.format(
        period=_PERIOD_SQL[period],
        breakdown=f"coalesce(r.{breakdown}, 'none')" if breakdown else "NULL::VARCHAR",
    )
    return cur.execute(sql, _params(filters, survey)).fetchall()


def _cell(row: tuple[Any, ...], k: int) -> Cell:
    office, period, breakdown, item, n, mean, sd, top2, dist = row
    if n < k:
        return _suppressed(office, period, item, breakdown)
    return Cell(
        office=office,
        period=period,
        item=item,
        breakdown=breakdown,
        n=int(n),
        mean=float(mean),
        sd=None if sd is None else float(sd),
        top2_share=float(top2),
        distribution=[int(x) for x in dist],
        suppressed=False,
    )


def _suppressed(office: str, period: str, item: str, breakdown: str | None) -> Cell:
    return Cell(
        office=office,
        period=period,
        item=item,
        breakdown=breakdown,
        n=None,
        mean=None,
        sd=None,
        top2_share=None,
        distribution=None,
        suppressed=True,
    )


def cells_to_hide(sizes: Sequence[int | None], total: int, k: int) -> set[int]:
    """Indices of visible cells to hide as well, so that no sum reveals a small group.

    ``sizes`` are the cells' n (None: already suppressed) and ``total`` the n of all cells
    together, which a reader can derive elsewhere. The hidden cells together then hold either
    no response or at least ``k``: the smallest visible cells are added until they do. (Hiding
    just one more cell is not enough: two hidden cells of one response each would still be the
    total minus the visible cells, an aggregate of two.)
    """
    hidden_n = total - sum(n for n in sizes if n is not None)
    visible = sorted((n, i) for i, n in enumerate(sizes) if n is not None)
    extra: set[int] = set()
    for n, index in visible:
        if not 0 < hidden_n < k:
            break
        extra.add(index)
        hidden_n += n
    return extra


def suppress_small_cells(rows: Sequence[tuple[Any, ...]], k: int, totals_shown: bool) -> list[Cell]:
    """Cells with n < k suppressed, plus complementary suppression where totals are shown.

    ``rows`` are raw query rows of one table (office, period, breakdown, item, n, ...). When the
    totals per (office, item) over periods are shown next to them, the smallest visible cells of
    a group are suppressed too until its hidden cells hold no response or at least k.
    """
    cells = [_cell(row, k) for row in rows]
    if not totals_shown:
        return cells
    sizes = [int(row[4]) for row in rows]
    groups: dict[tuple[str, str, str | None], list[int]] = {}
    for index, cell in enumerate(cells):
        groups.setdefault((cell.office, cell.item, cell.breakdown), []).append(index)
    for members in groups.values():
        shown = [None if cells[i].suppressed else sizes[i] for i in members]
        for position in cells_to_hide(shown, sum(sizes[i] for i in members), k):
            c = cells[members[position]]
            cells[members[position]] = _suppressed(c.office, c.period, c.item, c.breakdown)
    return cells


def aggregate(
    cur: Cursor,
    filters: Filters,
    survey: Survey | None,
    k: int,
    period: Period = "month",
    breakdown: Breakdown | None = None,
) -> Aggregates:
    """Cells of office × period × item (× breakdown), office totals, and excluded counts."""
    rows = _query(cur, filters, survey, period, breakdown)
    total_rows = _query(cur, filters, survey, "all", breakdown)
    cells = suppress_small_cells(rows, k, totals_shown=True)
    totals = suppress_small_cells(total_rows, k, totals_shown=False)
    if breakdown is not None:
        cells = _check_complements(cur, filters, survey, period, cells, rows, k)
        totals = _check_complements(cur, filters, survey, "all", totals, total_rows, k)
    (excluded,) = cur.execute(_EXCLUDED_SQL, _exclusion_params(filters)).fetchone() or (0,)
    return Aggregates(
        cells=cells,
        totals=totals,
        k=k,
        excluded_flagged=0 if filters.include_flagged else int(excluded),
    )


def _exclusion_params(filters: Filters) -> dict[str, Any]:
    params = _params(filters, None)
    return {key: params[key] for key in ("from", "to", "offices", "excluded")}


def _check_complements(
    cur: Cursor,
    filters: Filters,
    survey: Survey | None,
    period: Period,
    cells: list[Cell],
    rows: Sequence[tuple[Any, ...]],
    k: int,
) -> list[Cell]:
    # The unfiltered cell of the same office × period × item, as anyone could query it.
    parents = {
        (row[0], row[1], row[3]): int(row[4]) for row in _query(cur, filters, survey, period, None)
    }
    checked = []
    for cell, row in zip(cells, rows, strict=True):
        rest = parents.get((cell.office, cell.period, cell.item), 0) - int(row[4])
        if not cell.suppressed and 0 < rest < k:
            cell = _suppressed(cell.office, cell.period, cell.item, cell.breakdown)
        checked.append(cell)
    return checked


def weekday_hour(cur: Cursor, filters: Filters, item: str, k: int) -> list[dict[str, Any]]:
    """Mean of one item by weekday (1 = Monday) × hour for the heatmap; small cells hidden.

    A cell is also hidden when the filters change its count by 1 to k-1 responses against the
    default filters (no channel, placement or language; flagged responses left out): its
    difference to the default heatmap would describe fewer than k responses.
    """
    params = _params(filters, None)
    params["item"] = item
    rows = cur.execute(
        """
        SELECT weekday, hour, count(*) FILTER (chosen) AS n,
               avg(value) FILTER (chosen) AS mean, count(*) FILTER (plain) AS base_n
        FROM (
            SELECT isodow(received_at) AS weekday, hour(received_at) AS hour,
                   answers[$item] AS value,
                   ($channel IS NULL OR r.channel = $channel)
                   AND ($placement IS NULL OR r.placement = $placement)
                   AND ($lang IS NULL OR r.lang = $lang)
                   AND ($flagged OR NOT list_has_any(r.flags, $excluded))
                   AND (NOT $verified OR list_contains(r.flags, 'verified_onsite')) AS chosen,
                   NOT list_has_any(r.flags, $excluded) AS plain
            FROM responses r
            WHERE answers[$item] IS NOT NULL
              AND ($from IS NULL OR r.received_at >= $from)
              AND ($to IS NULL OR r.received_at < $to)
              AND (len($offices) = 0 OR list_contains($offices, r.office_id))
        )
        GROUP BY ALL HAVING count(*) FILTER (chosen) > 0 ORDER BY 1, 2
        """,
        {key: value for key, value in params.items() if key != "lower"},
    ).fetchall()
    return [
        {
            "weekday": int(weekday),
            "hour": int(hour),
            "n": None if hidden else int(n),
            "mean": None if hidden else float(mean),
            "suppressed": hidden,
        }
        for weekday, hour, n, mean, base_n in rows
        for hidden in [bool(n < k or 0 < abs(base_n - n) < k)]
    ]
