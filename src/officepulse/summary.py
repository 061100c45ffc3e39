"""The staff read API, and the one office summary behind both that API and the dashboard.

``GET /api/v1/offices`` lists the offices an account may see; ``GET
/api/v1/offices/{office_id}/summary`` returns :class:`OfficeSummary`, which the manager's
dashboard (:mod:`officepulse.dashboard`) renders as well: the SQL of both lives here, and the
page adds only presentation (and the comments and kiosks, which the API does not carry).

What keeps the summary anonymous:

* A week of one item with fewer than *k* responses is **suppressed**: it carries no numbers,
  not even n. The cells are per week, item and office only; there is no breakdown by
  placement, channel, language, kiosk or anything about staff.
* Every **pooled** figure (the previous weeks, the peer offices, the answer distribution, the
  control chart's baseline, the weekday × hour table) is built from visible weeks only. Had it
  included a suppressed week, the pooled total minus the visible weeks shown next to it would
  give that week away.
* The weekday × hour cells sum to the visible weeks of the stress item, so a hidden heatmap
  cell would be that sum minus the visible cells: hidden cells are therefore topped up with
  the smallest visible ones until the hidden cells together hold at least *k* responses
  (:func:`cells_to_hide`).
* Comments appear only for a week with at least *k* responses, in random order, with no date
  finer than the week and nothing else attached; and only once that week is over, because
  comments appearing one by one during the week could be matched against the appointment
  calendar by watching the page (the very thing the hour-coarsened times prevent).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Final, Literal, NamedTuple
from zoneinfo import ZoneInfo

import anyio.to_thread
import msgspec
from litestar import Request, Router, get
from litestar.datastructures import State
from litestar.params import FromPath, QueryParameter

from officepulse import audit, spc
from officepulse.aggregates import EXCLUDED_FLAGS, cells_to_hide
from officepulse.auth import require_principal
from officepulse.offices import Office, OfficeKind, list_offices
from officepulse.problems import FieldError, ProblemError, problem_responses
from officepulse.responses import coarsen_time
from officepulse.runtime import Runtime
from officepulse.settings import Settings
from officepulse.storage import Cursor
from officepulse.surveys import Item, Survey

DEFAULT_WEEKS: Final = 8
MAX_WEEKS: Final = 104
#: The weekday × hour map covers this many weeks up to the selected one (a quarter: single
#: weeks leave most cells below k).
HEATMAP_WEEKS: Final = 13
#: The answer distribution covers the selected week and the weeks before it, up to this many.
DISTRIBUTION_WEEKS: Final = 4
#: At most this many comments of a week are shown (a random sample when there are more).
MAX_COMMENTS: Final = 100
WEEK_PATTERN: Final = re.compile(r"^([0-9]{4})-W([0-9]{2})$")
#: Weeks before this are refused: no feedback predates it, and far-away dates would overflow.
EARLIEST_WEEK: Final = dt.date(2000, 1, 3)


class OfficeOut(msgspec.Struct, frozen=True, kw_only=True):
    """An office as the API shows it."""

    id: str
    name: str
    kind: OfficeKind
    type_label: str | None
    city: str | None
    district: str | None
    opened_on: dt.date | None
    synthetic: bool


def office_out(office: Office) -> OfficeOut:
    return OfficeOut(
        id=office.id,
        name=office.name,
        kind=office.kind,
        type_label=office.type_label,
        city=office.city,
        district=office.district,
        opened_on=office.opened_on,
        synthetic=office.synthetic,
    )


# -- weeks ---------------------------------------------------------------------------------------


class WeekError(ValueError):
    """A ``week`` parameter that is not an ISO week up to the current one."""


def monday_of(day: dt.date) -> dt.date:
    """The Monday of the ISO week of ``day``."""
    return day - dt.timedelta(days=day.weekday())


def week_label(monday: dt.date) -> str:
    """An ISO week as ``YYYY-Www`` (the format of HTML's ``<input type="week">``)."""
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def weeks_up_to(monday: dt.date, count: int) -> list[dt.date]:
    """The Mondays of ``count`` weeks ending with the week of ``monday``, oldest first."""
    return [monday - dt.timedelta(weeks=back) for back in range(count - 1, -1, -1)]


def open_bucket(settings: Settings) -> dt.datetime:
    """The start (local wall-clock time) of the hour or day that is still filling up."""
    return coarsen_time(dt.datetime.now(dt.UTC), settings.time_granularity, settings.zone)


def current_monday(zone: ZoneInfo) -> dt.date:
    """The Monday of this week in the offices' time zone."""
    return monday_of(dt.datetime.now(zone).date())


def parse_week(text: str, latest: dt.date) -> dt.date:
    """The Monday of the ISO week ``text`` (``2026-W07``); it may not lie after ``latest``."""
    found = WEEK_PATTERN.match(text.strip())
    if found is None:
        raise WeekError(f"week {text!r} is not an ISO week like 2026-W07")
    try:
        monday = dt.date.fromisocalendar(int(found[1]), int(found[2]), 1)
    except ValueError:
        raise WeekError(f"week {text!r} does not exist") from None
    if monday > latest:
        raise WeekError(f"week {text!r} lies in the future")
    if monday < EARLIEST_WEEK:
        raise WeekError(f"week {text!r} lies before {week_label(EARLIEST_WEEK)}")
    return monday


# -- the summary's shape -----------------------------------------------------------------------


class Stat(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A mean with its 95 % t interval. A suppressed one carries no numbers, not even n.

    ``cells`` (pooled figures only) says how many visible weeks or offices were pooled.
    """

    suppressed: bool
    n: int | None = None
    mean: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    cells: int | None = None


class WeekCell(Stat, frozen=True, kw_only=True, omit_defaults=True):
    """One item in one week. Weeks without any response are left out."""

    week: str


class ItemTrend(msgspec.Struct, frozen=True, kw_only=True):
    item: str
    dimension: str
    polarity: str | None
    cells: list[WeekCell]


class ItemComparison(msgspec.Struct, frozen=True, kw_only=True):
    """The selected week against the office's previous weeks and against the peer offices.

    ``previous_weeks`` pools the visible weeks before the selected one in the window;
    ``peers`` pools the peer offices whose own cell of the selected week is visible.
    """

    item: str
    this_week: Stat
    previous_weeks: Stat
    peers: Stat


class PeerGroup(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Offices of the same type label, or (when no other office has it) of the same kind."""

    basis: Literal["type_label", "kind"]
    label: str
    offices: int


class HeatCell(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Mean of the stress item by weekday (1 = Monday) and hour; suppressed: no numbers."""

    weekday: int
    hour: int
    suppressed: bool
    n: int | None = None
    mean: float | None = None


class Heatmap(msgspec.Struct, frozen=True, kw_only=True):
    """Weekday × hour cells over the visible weeks of the stress item among the last 13."""

    item: str | None
    weeks: list[str]
    cells: list[HeatCell]


class Distribution(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """How often each answer (1-5) was given, over the visible weeks of the last four."""

    item: str
    suppressed: bool
    n: int | None = None
    counts: list[int] | None = None
    weeks: list[str] | None = None


class ControlPoint(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A visible week on the control chart, with the limits for its n (when there are any)."""

    week: str
    n: int
    mean: float
    lower: float | None = None
    upper: float | None = None


class Alert(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The control-chart check of one item for one week (see :mod:`officepulse.spc`).

    ``status``: ``alert`` (outside the limits; ``verdict`` says worse or better by the item's
    polarity), ``in_control``, ``not_enough_history`` (fewer than 8 baseline weeks with k
    responses) or ``too_few_responses`` (the week itself has fewer than k).
    """

    item: str
    dimension: str
    polarity: str | None
    week: str
    status: spc.Status
    baseline_weeks: int
    verdict: spc.Verdict | None = None
    n: int | None = None
    mean: float | None = None
    centre: float | None = None
    lower: float | None = None
    upper: float | None = None
    z: float | None = None
    points: list[ControlPoint] = []


class OfficeSummary(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the dashboard shows about one office and one week, as numbers.

    ``week`` is the selected ISO week (``complete``: it is over); ``weeks`` the window of
    weeks up to it; ``control_week`` the week the control chart checks: the selected week, or
    the last complete week while the selected one is still running.
    """

    office: OfficeOut
    k: int
    week: str
    week_start: dt.date
    complete: bool
    weeks: list[str]
    control_week: str
    items: list[ItemTrend]
    comparison: list[ItemComparison]
    peer_group: PeerGroup | None
    heatmap: Heatmap
    distribution: list[Distribution]
    alerts: list[Alert]


# -- SQL ---------------------------------------------------------------------------------------

# Flagged responses (repeat, burst) never count. Every time condition is a plain comparison
# with received_at: rows are stored in time order, so DuckDB skips the row groups outside the
# range by their min/max (zone maps) and reads a few weeks of the table, however long the
# history. The responses of the running week after the office's cutoff are left out by the
# caller's ``$to`` (one office) or ``before`` (the peers).

# One list_contains per excluded flag: list_has_any builds a set for every row it checks, and
# the scans below check every row of their weeks (a tenth of the summary's time).
_NOT_FLAGGED: Final = " AND ".join(
    f"NOT list_contains(r.flags, $excluded[{i}])" for i in range(1, len(EXCLUDED_FLAGS) + 1)
)

# Weekly aggregates of items for one office, and the weekday × hour cells of one item in the
# weeks from $hours_from to $hours_to (the heatmap's) from the same scan: the second grouping
# set; HAVING drops its rows outside those weeks and items. ``total`` is the exact sum, so the
# hour cells can be added up over weeks.
#
# One office's rows come out of the scan a handful per vector of 2048. The first step collects
# them per stored time bucket (hour or day), so that unnesting and aggregating work on full
# vectors instead of thousands of nearly empty ones (which took as long as the scan itself).
_OFFICE_CELLS_SQL: Final = f"""
WITH buckets AS (
    SELECT r.received_at AS bucket, list(r.answers) AS answers
    FROM responses r
    WHERE r.office_id = $office
      AND r.received_at >= $from AND r.received_at < $to
      AND {_NOT_FLAGGED}
    GROUP BY ALL
), answered AS (
    SELECT bucket, date_trunc('week', bucket)::DATE AS monday, item, answers[item] AS value,
           item = $hours_item AND bucket >= $hours_from AND bucket < $hours_to AS by_hour
    FROM (SELECT bucket, unnest(answers) AS answers FROM buckets),
         (SELECT unnest($items) AS item)
)
SELECT monday, item,
       CASE WHEN by_hour THEN isodow(bucket) END AS weekday,
       CASE WHEN by_hour THEN hour(bucket) END AS hour,
       count(*) AS n, sum(value) AS total, avg(value) AS mean,
       coalesce(stddev_samp(value), 0) AS sd,
       [count(*) FILTER (value = 1), count(*) FILTER (value = 2),
        count(*) FILTER (value = 3), count(*) FILTER (value = 4),
        count(*) FILTER (value = 5)] AS dist
FROM answered
WHERE value IS NOT NULL
GROUP BY GROUPING SETS ((monday, item), (monday, item, weekday, hour))
HAVING GROUPING(weekday) = 1 OR weekday IS NOT NULL
"""  # noqa: S608 - constant fragments only


def _peer_cells_sql(items: int) -> str:
    """n, mean and sd of ``items`` items per office of one week, an item per group of columns.

    Most of the week's rows belong to some peer, so the scan's vectors are full here, and one
    aggregate per item and column is faster than a row per item and response. Only positions
    are written into the text; the item ids are parameters.
    """
    columns = ",\n       ".join(
        f"count(r.answers[$items[{i}]]), avg(r.answers[$items[{i}]]),"
        f" coalesce(stddev_samp(r.answers[$items[{i}]]), 0)"
        for i in range(1, items + 1)
    )
    return f"""
SELECT r.office_id, {columns}
FROM responses r
JOIN (SELECT unnest($offices) AS office, unnest($before) AS before) o ON o.office = r.office_id
WHERE r.received_at >= $from AND r.received_at < $to AND r.received_at < o.before
  AND {_NOT_FLAGGED}
GROUP BY ALL
"""  # noqa: S608 - column positions and constant fragments only, never a value


# Responses of the running week per office and closed time bucket (hour or day), for the steps.
_RUNNING_BUCKETS_SQL: Final = """
SELECT r.office_id, r.received_at, count(*) AS n
FROM responses r
WHERE list_contains($offices, r.office_id)
  AND r.received_at >= $running AND r.received_at < $open_from
  AND NOT list_has_any(r.flags, $excluded)
GROUP BY ALL ORDER BY 1, 2
"""

_WEEK_COUNT_SQL: Final = """
SELECT count(*) FROM responses r
WHERE r.office_id = $office AND r.received_at >= $from AND r.received_at < $to
  AND NOT list_has_any(r.flags, $excluded)
"""

# Only the text: never the time, rating, placement, channel or language of the response, and
# in random order so that the order says nothing about when a comment was written.
_COMMENTS_SQL: Final = """
SELECT r.comment FROM responses r
WHERE r.office_id = $office AND r.received_at >= $from AND r.received_at < $to
  AND NOT list_has_any(r.flags, $excluded)
  AND r.comment IS NOT NULL AND trim(r.comment) <> ''
ORDER BY random()
LIMIT $limit
"""


class RawCell(NamedTuple):
    """A weekly aggregate straight from DuckDB, before suppression (never leaves this module)."""

    monday: dt.date
    item: str
    n: int
    mean: float
    sd: float
    dist: list[int]


class PeerCell(NamedTuple):
    """One item of one peer office in the selected week, before suppression (internal)."""

    office: str
    item: str
    n: int
    mean: float
    sd: float


class HourCell(NamedTuple):
    """One item in one week, weekday (1 = Monday) and hour, before suppression (internal)."""

    monday: dt.date
    weekday: int
    hour: int
    n: int
    total: int


class Breakdown(NamedTuple):
    """Which item to break down by weekday and hour, in the weeks from ``first`` to ``end``."""

    item: str
    first: dt.date
    end: dt.date


def running_cutoffs(
    cur: Cursor, offices: Sequence[str], running: dt.date, open_from: dt.datetime, k: int
) -> dict[str, dt.datetime]:
    """Per office, the time before which the running week's responses are counted.

    A running week's figures would change with every response, and a manager who reloads the
    page after a client left could read that client's answers off the difference. So the
    running week is shown in steps: from its start, a step is taken at the end of a closed time
    bucket (hour or day, as stored) once at least *k* responses arrived since the last step, and
    only responses before the latest step count. Any two states a reader can see differ by at
    least *k* responses. (A kiosk's queued responses that arrive days later can still change a
    past bucket; they are rare, and a week's complete figures include them.)
    """
    start = dt.datetime.combine(running, dt.time())
    cutoffs = dict.fromkeys(offices, start)
    since: dict[str, int] = dict.fromkeys(offices, 0)
    found = cur.execute(
        _RUNNING_BUCKETS_SQL,
        {
            "offices": list(offices),
            "running": start,
            "open_from": open_from,
            "excluded": list(EXCLUDED_FLAGS),
        },
    ).fetchall()
    # At most one row per office and hour of one week: this loop is over buckets, not responses.
    for office, received_at, n in found:
        since[office] += int(n)
        if since[office] >= k:
            cutoffs[office] = received_at + dt.timedelta(seconds=1)
            since[office] = 0
    return cutoffs


def weekly_cells(
    cur: Cursor,
    office: str,
    items: Sequence[str],
    first: dt.date,
    last: dt.date,
    *,
    cutoff: dt.datetime | None = None,
    breakdown: Breakdown | None = None,
) -> tuple[list[RawCell], list[HourCell]]:
    """Weekly aggregates of ``items`` for ``office``, from the week of ``first`` to ``last``.

    Only responses before ``cutoff`` count (the office's step in the running week, see
    running_cutoffs). With ``breakdown``, that item's cells by weekday and hour in those weeks
    come too (the caller asks for complete weeks only).
    """
    end = dt.datetime.combine(monday_of(last) + dt.timedelta(days=7), dt.time())
    rows = cur.execute(
        _OFFICE_CELLS_SQL,
        {
            "office": office,
            "items": list(items),
            "from": monday_of(first),
            "to": min(end, cutoff) if cutoff else end,
            "excluded": list(EXCLUDED_FLAGS),
            "hours_item": breakdown.item if breakdown else None,
            "hours_from": breakdown.first if breakdown else None,
            "hours_to": breakdown.end if breakdown else None,
        },
    ).fetchall()
    cells = [
        RawCell(
            monday=monday,
            item=item,
            n=int(n),
            mean=float(mean),
            sd=float(sd),
            dist=[int(x) for x in dist],
        )
        for monday, item, weekday, _, n, _, mean, sd, dist in rows
        if weekday is None
    ]
    hours = [
        HourCell(monday=monday, weekday=int(weekday), hour=int(hour), n=int(n), total=int(total))
        for monday, _, weekday, hour, n, total, _, _, _ in rows
        if weekday is not None
    ]
    return cells, hours


def peer_cells(
    cur: Cursor,
    offices: Sequence[str],
    items: Sequence[str],
    monday: dt.date,
    cutoffs: Mapping[str, dt.datetime],
) -> list[PeerCell]:
    """Aggregates of ``items`` per office in the week of ``monday``.

    Where an office has a cutoff (the running week), only its responses before it count.
    """
    end = dt.datetime.combine(monday + dt.timedelta(days=7), dt.time())
    rows = cur.execute(
        _peer_cells_sql(len(items)),
        {
            "offices": list(offices),
            "before": [min(end, cutoffs.get(office, end)) for office in offices],
            "items": list(items),
            "from": monday,
            "to": end,
            "excluded": list(EXCLUDED_FLAGS),
        },
    ).fetchall()
    return [
        PeerCell(
            office=row[0],
            item=item,
            n=int(row[1 + 3 * i]),
            mean=float(row[2 + 3 * i]),
            sd=float(row[3 + 3 * i]),
        )
        for row in rows
        for i, item in enumerate(items)
        # An office whose responses all left this item out has no cell for it.
        if row[1 + 3 * i]
    ]


def _stat(cell: spc.WeekStat | None, present: bool) -> Stat:
    """A visible cell with its interval; else suppressed, or n = 0 when nobody answered."""
    if cell is None:
        return Stat(suppressed=True) if present else Stat(suppressed=False, n=0)
    low, high = spc.mean_interval(cell.n, cell.mean, cell.sd)
    return Stat(suppressed=False, n=cell.n, mean=cell.mean, ci_low=low, ci_high=high)


def _week_cell(monday: dt.date, cell: spc.WeekStat | None) -> WeekCell:
    stat = _stat(cell, present=True)
    return WeekCell(week=week_label(monday), **msgspec.structs.asdict(stat))


def _pooled(cells: Sequence[spc.WeekStat], any_present: bool) -> Stat:
    found = spc.pool(cells)
    if found is None:
        return Stat(suppressed=True) if any_present else Stat(suppressed=False, n=0)
    return Stat(
        suppressed=False,
        n=found.n,
        mean=found.mean,
        ci_low=found.ci_low,
        ci_high=found.ci_high,
        cells=found.cells,
    )


def peer_offices(office: Office, offices: Sequence[Office]) -> tuple[PeerGroup | None, list[str]]:
    """The offices to compare with: same type label, else same kind (never the office itself)."""
    others = [o for o in offices if o.id != office.id]
    if office.type_label:
        same_type = [o.id for o in others if o.type_label == office.type_label]
        if same_type:
            return PeerGroup(
                basis="type_label", label=office.type_label, offices=len(same_type)
            ), same_type
    same_kind = [o.id for o in others if o.kind == office.kind]
    if same_kind:
        return PeerGroup(basis="kind", label=office.kind, offices=len(same_kind)), same_kind
    return None, []


def summary_items(survey: Survey) -> list[Item]:
    """The items the summary covers: the survey's core rating items."""
    found = [survey.item(item_id) for item_id in survey.core_items]
    return [item for item in found if item is not None and item.is_rating]


def office_summary(
    cur: Cursor,
    *,
    office_id: str,
    survey: Survey,
    k: int,
    selected: dt.date,
    weeks: int,
    today: dt.date,
    open_from: dt.datetime,
) -> OfficeSummary | None:
    """The summary of one office for the week of ``selected`` and ``weeks`` weeks up to it.

    None when there is no such office. Reads only; ``today`` decides which week is running and
    ``open_from`` (local wall-clock time) is the start of the time bucket still filling up.
    """
    offices = list_offices(cur)
    office = next((o for o in offices if o.id == office_id), None)
    if office is None:
        return None
    selected = monday_of(selected)
    running = monday_of(today)
    items = summary_items(survey)
    item_ids = [item.id for item in items]
    window = weeks_up_to(selected, weeks)
    heatmap_window = weeks_up_to(selected, HEATMAP_WEEKS)
    distribution_window = weeks_up_to(selected, DISTRIBUTION_WEEKS)
    # A running week is incomplete: the control chart checks the last complete one instead.
    control_monday = selected if selected < running else selected - dt.timedelta(weeks=1)
    baseline = weeks_up_to(control_monday - dt.timedelta(weeks=1), spc.BASELINE_WEEKS)

    first = min(window[0], heatmap_window[0], baseline[0])
    peer_group, peers = peer_offices(office, offices)
    # Only a window that reaches the running week needs its steps.
    cutoffs = (
        running_cutoffs(cur, [office.id, *peers], running, open_from, k)
        if selected >= running
        else {}
    )
    stress = stress_item(items)
    # Complete weeks only: the map's hours would show where a running week's step fell.
    heatmap_end = min(selected + dt.timedelta(weeks=1), running)
    raw, hours = weekly_cells(
        cur,
        office.id,
        item_ids,
        first,
        selected,
        cutoff=cutoffs.get(office.id),
        breakdown=Breakdown(stress.id, heatmap_window[0], heatmap_end) if stress else None,
    )
    present = {(c.monday, c.item) for c in raw}
    visible = {
        (c.monday, c.item): spc.WeekStat(label=week_label(c.monday), n=c.n, mean=c.mean, sd=c.sd)
        for c in raw
        if c.n >= k
    }
    distributions = {(c.monday, c.item): c.dist for c in raw if c.n >= k}

    trends = [
        ItemTrend(
            item=item.id,
            dimension=item.dimension,
            polarity=item.polarity,
            cells=[
                _week_cell(monday, visible.get((monday, item.id)))
                for monday in window
                if (monday, item.id) in present
            ],
        )
        for item in items
    ]

    by_item: dict[str, list[PeerCell]] = {item_id: [] for item_id in item_ids}
    for cell in peer_cells(cur, peers, item_ids, selected, cutoffs) if peers else []:
        by_item[cell.item].append(cell)
    comparison = []
    for item in items:
        earlier = window[:-1]
        of_item = by_item[item.id]
        comparison.append(
            ItemComparison(
                item=item.id,
                this_week=_stat(visible.get((selected, item.id)), (selected, item.id) in present),
                previous_weeks=_pooled(
                    [visible[(m, item.id)] for m in earlier if (m, item.id) in visible],
                    any((m, item.id) in present for m in earlier),
                ),
                peers=_pooled(
                    [
                        spc.WeekStat(label=c.office, n=c.n, mean=c.mean, sd=c.sd)
                        for c in of_item
                        if c.n >= k
                    ],
                    bool(of_item),
                ),
            )
        )

    return OfficeSummary(
        office=office_out(office),
        k=k,
        week=week_label(selected),
        week_start=selected,
        complete=selected < running,
        weeks=[week_label(m) for m in window],
        control_week=week_label(control_monday),
        items=trends,
        comparison=comparison,
        peer_group=peer_group,
        heatmap=_heatmap(stress, [m for m in heatmap_window if m < running], hours, visible, k),
        distribution=[
            _distribution(item.id, distribution_window, distributions, present) for item in items
        ],
        alerts=[_alert(item, control_monday, baseline, visible) for item in items],
    )


def stress_item(items: Sequence[Item]) -> Item | None:
    """The item the weekday × hour map shows: the first of dimension ``stress``."""
    return next((item for item in items if item.dimension == "stress"), None)


def _heatmap(
    item: Item | None,
    window: Sequence[dt.date],
    hours: Sequence[HourCell],
    visible: dict[tuple[dt.date, str], spc.WeekStat],
    k: int,
) -> Heatmap:
    """The weekday × hour cells of ``item`` added up over its visible weeks in ``window``."""
    if item is None:
        return Heatmap(item=None, weeks=[], cells=[])
    mondays = [m for m in window if (m, item.id) in visible]
    if not mondays:
        return Heatmap(item=item.id, weeks=[], cells=[])
    used = set(mondays)
    sums: dict[tuple[int, int], tuple[int, int]] = {}
    for cell in hours:
        if cell.monday in used:
            n, total = sums.get((cell.weekday, cell.hour), (0, 0))
            sums[(cell.weekday, cell.hour)] = (n + cell.n, total + cell.total)
    slots = sorted(sums)
    sizes: list[int | None] = [sums[slot][0] if sums[slot][0] >= k else None for slot in slots]
    # The cells add up to the visible weeks' n, which the page shows: top up the hidden cells.
    extra = cells_to_hide(sizes, sum(visible[(m, item.id)].n for m in mondays), k)
    cells = [
        HeatCell(weekday=weekday, hour=hour, suppressed=True)
        if sizes[i] is None or i in extra
        else HeatCell(
            weekday=weekday,
            hour=hour,
            suppressed=False,
            n=sums[(weekday, hour)][0],
            # The exact sum over n: the very number avg() gives for the same responses.
            mean=sums[(weekday, hour)][1] / sums[(weekday, hour)][0],
        )
        for i, (weekday, hour) in enumerate(slots)
    ]
    return Heatmap(item=item.id, weeks=[week_label(m) for m in mondays], cells=cells)


def _distribution(
    item: str,
    mondays: Sequence[dt.date],
    distributions: dict[tuple[dt.date, str], list[int]],
    present: set[tuple[dt.date, str]],
) -> Distribution:
    used = [m for m in mondays if (m, item) in distributions]
    if not used:
        return Distribution(item=item, suppressed=any((m, item) in present for m in mondays))
    counts = [sum(values) for values in zip(*(distributions[(m, item)] for m in used), strict=True)]
    return Distribution(
        item=item,
        suppressed=False,
        n=sum(counts),
        counts=counts,
        weeks=[week_label(m) for m in used],
    )


def _alert(
    item: Item,
    monday: dt.date,
    baseline: Sequence[dt.date],
    visible: dict[tuple[dt.date, str], spc.WeekStat],
) -> Alert:
    history = [visible[(m, item.id)] for m in baseline if (m, item.id) in visible]
    limits = spc.control_limits(history)
    current = visible.get((monday, item.id))
    check = spc.check_week(limits, current, higher_is_better=item.polarity != "lower_is_better")

    def point(week: spc.WeekStat) -> ControlPoint:
        lower, upper = limits.limits(week.n) if limits else (None, None)
        return ControlPoint(week=week.label, n=week.n, mean=week.mean, lower=lower, upper=upper)

    shown = [*history, current] if current is not None else history
    return Alert(
        item=item.id,
        dimension=item.dimension,
        polarity=item.polarity,
        week=week_label(monday),
        status=check.status,
        baseline_weeks=len(history),
        verdict=check.verdict,
        n=current.n if current else None,
        mean=current.mean if current else None,
        centre=limits.centre if limits else None,
        lower=check.lower,
        upper=check.upper,
        z=check.z,
        points=[point(week) for week in shown],
    )


class WeekComments(msgspec.Struct, frozen=True, kw_only=True):
    """The comments of one week, or why there are none to show."""

    shown: bool
    reason: Literal["shown", "too_few_responses", "week_running"]
    comments: list[str]


def week_comments(
    cur: Cursor, office_id: str, monday: dt.date, k: int, complete: bool
) -> WeekComments:
    """The comments of a week, shuffled, once the week is over and had at least k responses."""
    if not complete:
        return WeekComments(shown=False, reason="week_running", comments=[])
    params = {
        "office": office_id,
        "from": monday,
        "to": monday + dt.timedelta(days=7),
        "excluded": list(EXCLUDED_FLAGS),
    }
    row = cur.execute(_WEEK_COUNT_SQL, params).fetchone()
    if row is None or int(row[0]) < k:
        return WeekComments(shown=False, reason="too_few_responses", comments=[])
    found = cur.execute(_COMMENTS_SQL, {**params, "limit": MAX_COMMENTS}).fetchall()
    return WeekComments(shown=True, reason="shown", comments=[str(r[0]) for r in found])


def selected_week(week: str | None, zone: ZoneInfo) -> tuple[dt.date, dt.date]:
    """(selected Monday, this week's Monday) for a ``week`` parameter; raises WeekError."""
    running = current_monday(zone)
    return (running if week is None else parse_week(week, running)), running


# -- routes ------------------------------------------------------------------------------------


_NO_LOGIN: Final = "No session and no valid API token ('Authorization: Bearer <token>')"


@get(
    "/api/v1/offices",
    tags=["offices"],
    opt={"access": "login"},
    responses=problem_responses({401: _NO_LOGIN}),
)
async def get_offices(request: Request[Any, Any, Any], state: State) -> list[OfficeOut]:
    """The offices this account may see (demo offices are marked ``synthetic``)."""
    principal = await require_principal(request)
    runtime: Runtime = state.runtime
    offices = await anyio.to_thread.run_sync(lambda: runtime.store.read(list_offices))
    return [office_out(o) for o in offices if principal.sees_office(o.id)]


@get(
    "/api/v1/offices/{office_id:str}/summary",
    tags=["offices"],
    opt={"access": "office"},
    responses=problem_responses(
        {
            400: "A parameter is invalid (week, weeks)",
            401: _NO_LOGIN,
            403: "This account may not see this office",
            404: "There is no such office",
        }
    ),
)
async def get_office_summary(
    request: Request[Any, Any, Any],
    state: State,
    office_id: FromPath[str],
    weeks: Annotated[
        int,
        QueryParameter(
            ge=1, le=MAX_WEEKS, description="How many weeks up to the selected one (1-104)."
        ),
    ] = DEFAULT_WEEKS,
    week: Annotated[
        str | None,
        QueryParameter(description="ISO week like 2026-W07 (default: the current week)."),
    ] = None,
) -> OfficeSummary:
    """Weekly means with 95 % intervals, peers, weekday × hour and control-chart alerts.

    Cells with fewer than k responses are suppressed and carry no numbers (not even n).
    """
    principal = await require_principal(request)
    runtime: Runtime = state.runtime
    try:
        selected, running = selected_week(week, runtime.settings.zone)
    except WeekError as exc:
        raise ProblemError(
            400, str(exc), errors=[FieldError(pointer="#/week", detail=str(exc))]
        ) from None
    survey = runtime.surveys.latest(runtime.settings.default_survey)
    assert survey is not None  # the runtime refuses to open without its default survey

    def read(cur: Cursor) -> OfficeSummary | None:
        return office_summary(
            cur,
            office_id=office_id,
            survey=survey,
            k=runtime.settings.min_group_size,
            selected=selected,
            weeks=weeks,
            today=running,
            open_from=open_bucket(runtime.settings),
        )

    summary = await anyio.to_thread.run_sync(lambda: runtime.store.read(read))
    if summary is None:
        raise ProblemError(404, f"There is no office {office_id!r}.")
    await audit.log(
        runtime, principal.name, "view.summary", office_id, f"week={summary.week} weeks={weeks}"
    )
    return summary


router = Router(path="/", route_handlers=[get_offices, get_office_summary])
