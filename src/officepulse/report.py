"""Evaluator reports: a specification in, every number as JSON and a self-contained HTML out.

The pipeline stays one-way: DuckDB aggregates the responses into counts (answers by office x
period x item x value, responses by weekday x hour x flags), the statistics are computed from
those counts (:mod:`officepulse.cellstats`), charts receive only aggregated rows, and every
cell or comparison built from fewer than *k* responses carries no numbers. No response leaves
DuckDB, so the time and memory a report takes grow with the number of offices and periods,
not of responses.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import json
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, get_args

import msgspec
import numpy as np
import numpy.typing as npt
from scipy import special

from officepulse import __version__, cellstats
from officepulse.aggregates import EXCLUDED_FLAGS, Filters, weekday_hour
from officepulse.content import content_dir
from officepulse.offices import Office, list_offices
from officepulse.runtime import Runtime
from officepulse.storage import Cursor
from officepulse.surveys import Survey

Section = Literal[
    "overview",
    "comparison",
    "trends",
    "distribution",
    "heatmap",
    "before_after",
    "context",
    "methods",
]
SECTIONS: Final = get_args(Section)
TEMPLATES: Final = Path(__file__).parent / "templates"


class GroupSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Offices of one side of a comparison: by kind, by type label or listed."""

    label: str
    kind: Literal["pilot", "conventional"] | None = None
    type: str | None = None
    offices: list[str] | None = None


class FilterSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    include_flagged: bool = False
    verified_only: bool = False
    channel: Literal["qr", "kiosk", "web"] | None = None
    lang: str | None = None
    placement: str | None = None


class Groups(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    a: GroupSpec
    b: GroupSpec


class ReportSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A report specification (``analytics/reports/*.toml``)."""

    title: str
    groups: Groups
    sections: list[Section]
    period: Literal["week", "month"] = "month"
    items: list[str] = []
    dimensions: list[str] = []
    permutations: int = 10_000
    filters: FilterSpec = FilterSpec()


class ReportSpecError(ValueError):
    """A bad specification: one line naming the file and the field."""


def spec_path(name: str) -> Path:
    """A spec file: a path as given, or the name of a shipped spec (``pilot-vs-conventional``)."""
    path = Path(name)
    if path.suffix == ".toml" or path.exists():
        return path
    return content_dir("analytics") / "reports" / f"{name}.toml"


def load_spec(path: Path, survey: Survey) -> ReportSpec:
    """Decode and check a specification; every problem is one line naming file and field."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportSpecError(f"{path}: no such report specification") from None
    except tomllib.TOMLDecodeError as exc:
        raise ReportSpecError(f"{path}: invalid TOML: {exc}") from None
    try:
        spec = msgspec.convert(raw, ReportSpec)
    except msgspec.ValidationError as exc:
        message = str(exc)
        field = message.rsplit("`$.", 1)[-1].rstrip("`") if "`$." in message else "?"
        detail = message.split(" - at ", 1)[0]
        raise ReportSpecError(f"{path}: field '{field}': {detail}") from None
    known = {item.id for item in survey.rating_items}
    for item in spec.items:
        if item not in known:
            raise ReportSpecError(f"{path}: field 'items': unknown item {item!r}")
    dimensions = {item.dimension for item in survey.rating_items}
    for dimension in spec.dimensions:
        if dimension not in dimensions:
            raise ReportSpecError(f"{path}: field 'dimensions': unknown dimension {dimension!r}")
    if not spec.items and not spec.dimensions:
        raise ReportSpecError(f"{path}: field 'items': name items or dimensions")
    if not spec.sections:
        raise ReportSpecError(f"{path}: field 'sections': at least one section")
    if not 100 <= spec.permutations <= 100_000:
        raise ReportSpecError(f"{path}: field 'permutations': between 100 and 100000")
    for side in ("a", "b"):
        group: GroupSpec = getattr(spec.groups, side)
        if sum(x is not None for x in (group.kind, group.type, group.offices)) != 1:
            raise ReportSpecError(
                f"{path}: field 'groups.{side}': give exactly one of kind, type or offices"
            )
    return spec


def spec_items(spec: ReportSpec, survey: Survey) -> list[str]:
    chosen = list(spec.items)
    for item in survey.rating_items:
        if item.dimension in spec.dimensions and item.id not in chosen:
            chosen.append(item.id)
    return chosen


def _members(group: GroupSpec, offices: list[Office]) -> list[str]:
    if group.offices is not None:
        known = {o.id for o in offices}
        return [o for o in group.offices if o in known]
    if group.kind is not None:
        return [o.id for o in offices if o.kind == group.kind]
    return [o.id for o in offices if o.type_label == group.type]


# -- data -------------------------------------------------------------------------------------

# Every filter a report can set, as one condition. A filtered report next to the default one
# would give away the responses the filters left out (or, with flagged responses included,
# added); where those are 1..k-1 responses, the filtered cell is hidden too.
_SELECTED: Final = """
  ($flagged OR NOT list_has_any(r.flags, $excluded))
  AND (NOT $verified OR list_contains(r.flags, 'verified_onsite'))
  AND ($channel IS NULL OR r.channel = $channel)
  AND ($placement IS NULL OR r.placement = $placement)
  AND ($lang IS NULL OR r.lang = $lang)
"""

# The report's time window. Written out only when set, so that DuckDB compares received_at
# with a constant and skips the row groups outside the window.
_WINDOW: Final = {
    (False, False): "",
    (True, False): "AND r.received_at >= $from",
    (False, True): "AND r.received_at < $to",
    (True, True): "AND r.received_at >= $from AND r.received_at < $to",
}

# The one scan over the answers: every answer, counted by cell (office x period x which
# filters the response passes: bit 1 the report's, bit 2 the default ones, for the
# differencing check), item (its position in $items, NULL for other items) and value. The cell
# is one integer made before the map is unnested: grouping tens of millions of answers by it is
# about twice as fast as by office, period and two flags. Answers of other items and missing
# values are dropped afterwards, which is cheaper than filtering them in the query.
_CUBE_SQL: Final = """
SELECT cell, item, value, count(*) AS n
FROM (
    SELECT cell, list_position($items, unnest(map_keys(answers))) AS item,
           unnest(map_values(answers)) AS value
    FROM (
        SELECT ((list_position($offices, r.office_id) - 1)::BIGINT * 65536 + {period}) * 4
               + CASE WHEN {selected} THEN 1 ELSE 0 END
               + CASE WHEN NOT list_has_any(r.flags, $excluded) THEN 2 ELSE 0 END AS cell,
               r.answers
        FROM responses r
        WHERE list_contains($offices, r.office_id) {window}
    )
)
GROUP BY ALL
"""

# A period as a number below 65536: months since year 0, or weeks since Monday 1900-01-01.
_PERIOD_NUMBER: Final = {
    "month": "(year(r.received_at) * 12 + month(r.received_at) - 1)",
    "week": "((r.received_at::DATE - DATE '1900-01-01') // 7)",
}
_FIRST_MONDAY: Final = dt.date(1900, 1, 1)


def _period_of_number(number: int, period: str) -> dt.date:
    if period == "week":
        return _FIRST_MONDAY + dt.timedelta(weeks=number)
    return dt.date(number // 12, number % 12 + 1, 1)


# Responses (not answers) by weekday, hour, the heatmap item's answer and the flags that the
# counts and the heatmap filter on.
_RESPONSES_SQL: Final = """
SELECT isodow(r.received_at) AS weekday, hour(r.received_at) AS hour,
       {heat} AS heat_value,
       list_has_any(r.flags, $excluded) AS excluded,
       list_contains(r.flags, 'verified_onsite') AS verified,
       r.synthetic AS synthetic,
       count(*) AS n
FROM responses r
WHERE list_contains($offices, r.office_id) {window}
GROUP BY ALL
"""

#: The item of the weekday x hour heatmap.
HEATMAP_ITEM: Final = "stress_now"


def _bind(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters ``sql`` names: DuckDB refuses unused named parameters."""
    wanted = set(re.findall(r"\$(\w+)", sql))
    return {key: value for key, value in params.items() if key in wanted}


class Context(msgspec.Struct, kw_only=True):
    spec: ReportSpec
    survey: Survey
    k: int
    a: list[str]
    b: list[str]
    params: dict[str, Any]

    @property
    def offices(self) -> list[str]:
        """The offices of both groups, each once (an office in both counts as a)."""
        return list(dict.fromkeys(self.a + self.b))

    def label(self, office: str) -> str:
        return self.spec.groups.a.label if office in self.a else self.spec.groups.b.label


@dataclass(frozen=True)
class Cube:
    """Answers counted by office x period x item x value: all the report reads of answers.

    ``n`` counts under the report's filters, ``base_n`` under the default ones (flagged
    responses left out). Rows where both are zero are absent.
    """

    offices: list[str]
    periods: list[dt.date]
    items: list[str]
    office: npt.NDArray[np.intp]
    period: npt.NDArray[np.intp]
    item: npt.NDArray[np.intp]
    value: npt.NDArray[np.float64]
    n: npt.NDArray[np.int64]
    base_n: npt.NDArray[np.int64]

    def of_item(self, item: str) -> npt.NDArray[np.bool_]:
        if item not in self.items:
            return np.zeros(len(self.n), dtype=bool)
        return np.asarray(self.item == self.items.index(item))

    def in_a(self, ctx: Context) -> npt.NDArray[np.bool_]:
        """Per row: whether its office is in group a."""
        return np.isin(self.office, [i for i, o in enumerate(self.offices) if o in ctx.a])

    def table(self, rows: npt.NDArray[np.bool_]) -> cellstats.CountTable:
        """The selected responses of these rows, for the statistics."""
        rows = rows & (self.n > 0)
        return cellstats.CountTable(
            office=self.office[rows],
            period=self.period[rows],
            value=self.value[rows],
            count=self.n[rows],
            offices=self.offices,
            periods=self.periods,
        )


def _window(params: dict[str, Any]) -> str:
    return _WINDOW[(params["from"] is not None, params["to"] is not None)]


def load_cube(cur: Cursor, ctx: Context, items: list[str]) -> Cube:
    """One aggregate query over the answers of ``items`` of the report's offices."""
    offices = ctx.offices
    sql = _CUBE_SQL.format(
        period=_PERIOD_NUMBER[ctx.spec.period], selected=_SELECTED, window=_window(ctx.params)
    )
    params = dict(ctx.params, offices=offices, items=items)
    found = cur.execute(sql, _bind(sql, params)).fetchnumpy() if offices and items else {}
    columns = {
        name: np.ma.asarray(found.get(name, np.zeros(0, dtype=np.int64)))
        for name in ("cell", "item", "value", "n")
    }
    cell = np.ma.getdata(columns["cell"]).astype(np.int64)
    passes = cell % 4
    # Answers of other items, missing answers and answers that count under neither the
    # report's filters nor the default ones say nothing here.
    keep = ~np.ma.getmaskarray(columns["item"]) & ~np.ma.getmaskarray(columns["value"])
    keep &= passes > 0
    cell, passes = cell[keep] // 4, passes[keep]
    item = np.ma.getdata(columns["item"]).astype(np.intp)[keep] - 1
    value = np.ma.getdata(columns["value"]).astype(np.float64)[keep]
    count = np.ma.getdata(columns["n"]).astype(np.int64)[keep]
    # One row per office x period x item x value (answers are 0..255), with both counts.
    key = (cell * 256 + item) * 256 + value.astype(np.int64)
    rows, which = np.unique(key, return_inverse=True)
    n = np.bincount(which, weights=np.where(passes & 1, count, 0), minlength=len(rows))
    base_n = np.bincount(which, weights=np.where(passes & 2, count, 0), minlength=len(rows))
    cells = rows // 65536
    numbers, period = np.unique(cells % 65536, return_inverse=True)
    return Cube(
        offices=offices,
        periods=[_period_of_number(int(x), ctx.spec.period) for x in numbers],
        items=items,
        office=np.asarray(cells // 65536, dtype=np.intp),
        period=np.asarray(period, dtype=np.intp),
        item=np.asarray(rows // 256 % 256, dtype=np.intp),
        value=np.asarray(rows % 256, dtype=np.float64),
        n=np.asarray(n, dtype=np.int64),
        base_n=np.asarray(base_n, dtype=np.int64),
    )


@dataclass(frozen=True)
class Responses:
    """Responses (whatever they answered) by weekday x hour x heatmap answer x flags."""

    weekday: npt.NDArray[np.int64]
    hour: npt.NDArray[np.int64]
    heat_value: npt.NDArray[np.float64]
    excluded: npt.NDArray[np.bool_]
    verified: npt.NDArray[np.bool_]
    synthetic: npt.NDArray[np.bool_]
    n: npt.NDArray[np.int64]


def load_responses(cur: Cursor, ctx: Context, heat: bool) -> Responses:
    """One aggregate query over the report's responses, for the counts and the heatmap."""
    sql = _RESPONSES_SQL.format(
        heat="r.answers[$heat_item]" if heat else "NULL::UTINYINT", window=_window(ctx.params)
    )
    params = dict(ctx.params, offices=ctx.offices, heat_item=HEATMAP_ITEM)
    found = cur.execute(sql, _bind(sql, params)).fetchall() if ctx.offices else []
    columns = list(zip(*found, strict=True)) if found else [()] * 7
    return Responses(
        weekday=np.asarray(columns[0], dtype=np.int64),
        hour=np.asarray(columns[1], dtype=np.int64),
        heat_value=np.asarray([np.nan if v is None else v for v in columns[2]], dtype=np.float64),
        excluded=np.asarray(columns[3], dtype=bool),
        verified=np.asarray(columns[4], dtype=bool),
        synthetic=np.asarray(columns[5], dtype=bool),
        n=np.asarray(columns[6], dtype=np.int64),
    )


def _filtered(ctx: Context) -> bool:
    """Whether the report's filters differ from the default (flagged responses left out)."""
    return ctx.spec.filters != FilterSpec()


def _thin_remainders(
    cube: Cube,
    ctx: Context,
    item: str,
    *,
    by_period: bool = False,
    by_office: bool = False,
) -> set[tuple[str, str | None, str | None]]:
    """Cells (group, period, office) whose filters change the count by 1..k-1 responses.

    Such a cell may have n >= k itself, yet its difference to the same cell of the report with
    the default filters is an aggregate of fewer than k responses; so it is hidden. (Two
    reports that both deviate from the default are each checked against the default only.)
    """
    if not _filtered(ctx):
        return set()
    rows = cube.of_item(item)
    side = np.where(cube.in_a(ctx)[rows], 0, 1)
    period = cube.period[rows] if by_period else np.zeros(int(rows.sum()), dtype=np.intp)
    office = cube.office[rows] if by_office else np.zeros(int(rows.sum()), dtype=np.intp)
    size = (2, max(len(cube.periods), 1), max(len(cube.offices), 1))
    cells, which = np.unique(
        np.ravel_multi_index((side, period, office), size), return_inverse=True
    )
    n = np.bincount(which, weights=cube.n[rows], minlength=len(cells))
    base_n = np.bincount(which, weights=cube.base_n[rows], minlength=len(cells))
    thin = cells[(np.abs(base_n - n) > 0) & (np.abs(base_n - n) < ctx.k)]
    return {
        (
            "ab"[grp],
            cube.periods[p].isoformat() if by_period else None,
            cube.offices[o] if by_office else None,
        )
        for grp, p, o in zip(*np.unravel_index(thin, size), strict=True)
    }


def _polarity(survey: Survey, item: str) -> bool:
    found = survey.item(item)
    return found is None or found.polarity != "lower_is_better"


def comparisons(cube: Cube, ctx: Context, items: list[str]) -> list[dict[str, Any]]:
    """Pilot (a) against conventional (b) per item, Holm-corrected across the items."""
    results: list[cellstats.Comparison] = []
    suppressed: list[dict[str, Any]] = []
    group_intervals: dict[str, tuple[cellstats.MeanCI, cellstats.MeanCI]] = {}
    group_shares: dict[str, tuple[cellstats.Share, cellstats.Share]] = {}
    label_a, label_b = ctx.spec.groups.a.label, ctx.spec.groups.b.label
    groups = {office: ctx.label(office) for office in cube.offices}
    in_a = cube.in_a(ctx)
    for item in items:
        rows = cube.of_item(item)
        n_a = int(cube.n[rows & in_a].sum())
        n_b = int(cube.n[rows & ~in_a].sum())
        thin = _thin_remainders(cube, ctx, item)
        if n_a < ctx.k or n_b < ctx.k or thin:
            suppressed.append({"item": item, "suppressed": True})
            continue
        results.append(
            cellstats.compare_groups(
                cube.table(rows),
                item,
                groups,
                a=label_a,
                b=label_b,
                permutations=ctx.spec.permutations,
                seed=0,
                higher_is_better=_polarity(ctx.survey, item),
            )
        )
        best = (4, 5) if _polarity(ctx.survey, item) else (1, 2)
        side = [rows & in_a & (cube.n > 0), rows & ~in_a & (cube.n > 0)]
        group_intervals[item] = (
            cellstats.mean_ci(cube.value[side[0]], cube.n[side[0]]),
            cellstats.mean_ci(cube.value[side[1]], cube.n[side[1]]),
        )
        group_shares[item] = (
            cellstats.top2_share(cube.value[side[0]], cube.n[side[0]], best=best),
            cellstats.top2_share(cube.value[side[1]], cube.n[side[1]], best=best),
        )
    rows_out = []
    for c in cellstats.holm(results):
        ci_a, ci_b = group_intervals[c.item]
        share_a, share_b = group_shares[c.item]
        rows_out.append(
            {
                **msgspec.structs.asdict(c),
                "mean_ci_a": [ci_a.ci_low, ci_a.ci_high],
                "mean_ci_b": [ci_b.ci_low, ci_b.ci_high],
                # top-2-box: the two best answers (the two calmest for stress), Wilson interval
                "top2_a": [share_a.share, share_a.ci_low, share_a.ci_high],
                "top2_b": [share_b.share, share_b.ci_low, share_b.ci_high],
                "suppressed": False,
            }
        )
    return rows_out + suppressed


def events(cur: Cursor, cube: Cube, ctx: Context, items: list[str]) -> list[dict[str, Any]]:
    """Difference-in-differences and the event study for each event of an office in the report.

    The comparison offices are those of both groups without an event in the period.
    """
    params = {k: ctx.params[k] for k in ("from", "to")}
    params["offices"] = ctx.a + ctx.b
    found = cur.execute(
        "SELECT id, office_id, happened_on, kind, note FROM events"
        " WHERE list_contains($offices, office_id)"
        " AND ($from IS NULL OR happened_on >= $from) AND ($to IS NULL OR happened_on < $to)"
        " ORDER BY happened_on",
        params,
    ).fetchall()
    rows: list[dict[str, Any]] = []
    # Offices with an event of their own in the period are no clean comparison.
    treated = {row[1] for row in found}
    untreated = [o for o in ctx.offices if o not in treated]
    tables = {item: cube.table(cube.of_item(item)) for item in items} if found else {}
    for event_id, office, happened_on, kind, note in found:
        comparison = untreated
        event_label = f"{kind} {office} {happened_on:%Y-%m-%d}"
        involved = [i for i, o in enumerate(cube.offices) if o in {office, *comparison}]
        for item in items:
            table = tables[item]
            answered = np.bincount(table.office, weights=table.count, minlength=len(cube.offices))
            if int(answered[involved].sum()) < ctx.k or not comparison:
                continue
            base = {"event": event_label, "event_id": event_id, "office": office, "item": item}
            try:
                # Periods at or after the start of the event's period are "post".
                result = cellstats.did(
                    table,
                    treated_office=office,
                    event_period=_period_start(happened_on, ctx),
                    comparison_offices=comparison,
                )
            except ValueError as exc:
                # No period before or after the event in the window, or no comparison data.
                rows.append(
                    {
                        **base,
                        "period": "post",
                        "estimate": None,
                        "ci_low": None,
                        "ci_high": None,
                        "caveat": f"not estimable: {exc}",
                    }
                )
                continue
            # The office's own responses in a period, before and after: an estimate resting on
            # fewer than k of them would describe those few, so it is hidden.
            periods, treated_n = _treated_counts(table, office, comparison)
            event_index = bisect.bisect_left(periods, _period_start(happened_on, ctx))
            for point in result.event_study:
                label = periods[event_index + point.period_offset]
                thin = not point.is_reference and treated_n.get(label, 0) < ctx.k
                rows.append(
                    {
                        **base,
                        "period": point.period_offset,
                        "estimate": None if thin else point.estimate,
                        "ci_low": None if thin else point.ci_low,
                        "ci_high": None if thin else point.ci_high,
                        "suppressed": thin,
                    }
                )
            before = sum(n for label, n in treated_n.items() if label < periods[event_index])
            after = sum(treated_n.values()) - before
            if min(before, after) < ctx.k:
                rows.append(
                    {
                        **base,
                        "period": "post",
                        "estimate": None,
                        "ci_low": None,
                        "ci_high": None,
                        "suppressed": True,
                        "caveat": (
                            f"hidden: fewer than {ctx.k} responses of {office} before or after"
                            " the event"
                        ),
                    }
                )
                continue
            rows.append(
                {
                    **base,
                    "period": "post",
                    "estimate": result.estimate,
                    "ci_low": result.ci_low,
                    "ci_high": result.ci_high,
                    "p": result.p,
                    "n": result.n,
                    "pre_trend_p": result.pre_trend_p,
                    "caveat": result.caveat,
                    "note": note,
                    "suppressed": False,
                }
            )
    return rows


def _treated_counts(
    table: cellstats.CountTable, office: str, comparison: list[str]
) -> tuple[list[Any], dict[Any, int]]:
    """The periods the event study runs over (as :func:`cellstats.did` finds them) and the
    treated office's responses in each."""
    cells = table.cells
    codes = [i for i, name in enumerate(table.offices) if name in {office, *comparison}]
    involved = np.isin(cells.office, codes)
    periods = sorted({table.periods[p] for p in np.unique(cells.period[involved]).tolist()})
    own = cells.office == table.offices.index(office)
    treated_n: dict[Any, int] = {}
    for period, n in zip(cells.period[own].tolist(), cells.n[own].tolist(), strict=True):
        label = table.periods[period]
        treated_n[label] = treated_n.get(label, 0) + int(n)
    return periods, treated_n


def _period_start(day: dt.date, ctx: Context) -> dt.date:
    if ctx.spec.period == "week":
        return day - dt.timedelta(days=day.weekday())
    return day.replace(day=1)


def trends(cube: Cube, ctx: Context, item: str) -> list[dict[str, Any]]:
    """Group mean per period with a t interval computed from the aggregates; small cells hidden."""
    rows_of_item = cube.of_item(item) & (cube.n > 0)
    periods = len(cube.periods)
    # Cells: group a's periods, then group b's.
    which = np.where(cube.in_a(ctx)[rows_of_item], 0, periods) + cube.period[rows_of_item]
    count = cube.n[rows_of_item].astype(np.float64)
    value = cube.value[rows_of_item]
    n = np.bincount(which, weights=count, minlength=2 * periods)
    cells = np.flatnonzero(n)
    mean = np.zeros(2 * periods)
    mean[cells] = np.bincount(which, weights=count * value, minlength=2 * periods)[cells] / n[cells]
    squares = np.bincount(which, weights=count * (value - mean[which]) ** 2, minlength=2 * periods)
    found = [
        (
            "ab"[cell // periods],
            cube.periods[cell % periods].isoformat(),
            int(n[cell]),
            float(mean[cell]),
            math.sqrt(squares[cell] / (n[cell] - 1)) if n[cell] > 1 else None,
        )
        for cell in cells.tolist()
    ]
    rows = []
    thin = {(grp, period) for grp, period, _ in _thin_remainders(cube, ctx, item, by_period=True)}
    hidden = {(grp, period) for grp, period, n, _, _ in found if n < ctx.k} | thin
    # Complementary suppression: the group's total over the period is shown elsewhere in the
    # report, so a single hidden period would be the total minus the visible ones. The
    # smallest visible period of that group is hidden with it.
    for grp in ("a", "b"):
        own = [row for row in found if row[0] == grp]
        if sum((grp, row[1]) in hidden for row in own) == 1:
            visible = [row for row in own if (grp, row[1]) not in hidden]
            if visible:
                smallest = min(visible, key=lambda row: (row[2], row[1]))
                hidden.add((grp, smallest[1]))
    for grp, period, size, m, sd in found:
        label = ctx.spec.groups.a.label if grp == "a" else ctx.spec.groups.b.label
        if (grp, period) in hidden:
            rows.append({"group": label, "period": period, "item": item, "suppressed": True})
            continue
        # The t quantile of scipy.stats.t.ppf(0.975, n - 1).
        half = float(special.stdtrit(size - 1, 0.975)) * sd / size**0.5 if sd is not None else 0.0
        rows.append(
            {
                "group": label,
                "period": period,
                "item": item,
                "n": size,
                "mean": m,
                "ci_low": m - half,
                "ci_high": m + half,
                "suppressed": False,
            }
        )
    return rows


def distribution(cube: Cube, ctx: Context, items: list[str]) -> list[dict[str, Any]]:
    """Counts of the five answers per group and item (groups below k left out)."""
    rows: list[dict[str, Any]] = []
    in_a = cube.in_a(ctx)
    for item in items:
        of_item = cube.of_item(item)
        thin = {grp for grp, _, _ in _thin_remainders(cube, ctx, item)}
        for grp, side in (("a", of_item & in_a), ("b", of_item & ~in_a)):
            if int(cube.n[side].sum()) < ctx.k or grp in thin:
                continue
            answers, which = np.unique(cube.value[side], return_inverse=True)
            counts = np.bincount(which.ravel(), weights=cube.n[side], minlength=len(answers))
            label = ctx.spec.groups.a.label if grp == "a" else ctx.spec.groups.b.label
            rows += [
                {
                    "label": f"{item} · {label}",
                    "item": item,
                    "group": label,
                    "value": int(value),
                    "count": int(count),
                }
                for value, count in zip(answers, counts, strict=True)
                if count > 0
            ]
    return rows


def heatmap(responses: Responses, ctx: Context) -> list[dict[str, Any]]:
    """Mean of the heatmap item by weekday (1 = Monday) x hour; small cells hidden.

    The same cells as :func:`officepulse.aggregates.weekday_hour` with the report's dates,
    offices and flag filters (channel, placement and language do not apply to it). A cell whose
    count the flag filters change by 1 to k-1 against the default is hidden as well: its
    difference to the default report's heatmap would describe fewer than k responses.
    """
    answered = np.isfinite(responses.heat_value)
    chosen = answered.copy()
    if not ctx.spec.filters.include_flagged:
        chosen &= ~responses.excluded
    if ctx.spec.filters.verified_only:
        chosen &= responses.verified
    cells = responses.weekday * 24 + responses.hour

    def counted(rows: npt.NDArray[np.bool_], weights: npt.NDArray[np.float64]) -> Any:
        return np.bincount(cells[rows], weights=weights[rows], minlength=8 * 24)

    count = responses.n.astype(np.float64)
    n = counted(chosen, count)
    total = counted(chosen, count * responses.heat_value)
    base_n = counted(answered & ~responses.excluded, count)
    hidden = (n < ctx.k) | ((np.abs(base_n - n) > 0) & (np.abs(base_n - n) < ctx.k))
    return [
        {
            "weekday": cell // 24,
            "hour": cell % 24,
            "n": None if hidden[cell] else int(n[cell]),
            "mean": None if hidden[cell] else float(total[cell] / n[cell]),
            "suppressed": bool(hidden[cell]),
        }
        for cell in np.flatnonzero(n).tolist()
    ]


# The latest year of every indicator of the district an office is mapped to.
_OFFICE_INDICATORS_SQL: Final = """
SELECT od.office_id, di.indicator, arg_max(di.value, di.year) AS value
FROM office_districts od
JOIN district_indicators di ON di.city = od.city AND di.district_id = od.district_id
WHERE list_contains($offices, od.office_id)
GROUP BY ALL
"""


def context(cur: Cursor, cube: Cube, ctx: Context, items: list[str]) -> dict[str, Any]:
    """Pilot vs conventional adjusted for district indicators, and nearest comparison offices.

    Only office means from at least *k* responses enter; an indicator counts when every
    mapped office has it.
    """
    offices = ctx.a + ctx.b
    found = cur.execute(_OFFICE_INDICATORS_SQL, {"offices": offices}).fetchall()
    values: dict[str, dict[str, float]] = {}
    for office, indicator, value in found:
        values.setdefault(office, {})[indicator] = float(value)
    mapped = [o for o in offices if o in values]
    indicators = sorted(set.intersection(*(set(values[o]) for o in mapped)) if mapped else set())
    if not indicators or not any(o in ctx.a for o in mapped) or not any(o in ctx.b for o in mapped):
        return {
            "available": False,
            "note": "no district indicators imported and mapped for offices of both groups",
        }
    # Office-level regressions and neighbours: a few hundred rows at most, so the pandas and
    # statsmodels reference functions do them (imported only when a report needs them).
    import pandas as pd

    from officepulse import stats

    adjusted: list[dict[str, Any]] = []
    office_rows: list[dict[str, Any]] = []
    in_mapped = np.isin(cube.office, [i for i, o in enumerate(cube.offices) if o in set(mapped)])
    for item in items:
        rows = cube.of_item(item) & in_mapped & (cube.n > 0)
        n = np.bincount(cube.office[rows], weights=cube.n[rows], minlength=len(cube.offices))
        sums = np.bincount(
            cube.office[rows], weights=cube.n[rows] * cube.value[rows], minlength=len(cube.offices)
        )
        thin = {office for _, _, office in _thin_remainders(cube, ctx, item, by_office=True)}
        means = [
            (cube.offices[i], int(n[i]), float(sums[i] / n[i]))
            for i in sorted(
                np.flatnonzero(n > 0).tolist(), key=lambda i: mapped.index(cube.offices[i])
            )
        ]
        rows_out = [
            {
                "office": office,
                "group": "pilot" if office in ctx.a else "conventional",
                "n": size,
                item: mean,
                **{name: values[office][name] for name in indicators},
            }
            for office, size, mean in means
            if size >= ctx.k and office not in thin
        ]
        office_rows += [dict(row, item=item, mean=row[item]) for row in rows_out]
        if len(rows_out) < 3:
            continue
        frame = pd.DataFrame(rows_out)
        try:
            result = stats.adjusted_comparison(frame, item, indicators)
        except ValueError as exc:
            adjusted.append({"item": item, "caveat": f"not estimable: {exc}"})
            continue
        adjusted.append(msgspec.structs.asdict(result))
    neighbours: dict[str, list[str]] = {}
    if office_rows:
        first = [row for row in office_rows if row["item"] == items[0]]
        if first:
            neighbours = stats.nearest_neighbours(pd.DataFrame(first), indicators, k=1)
    # Each pilot against only its most similar conventional office(s): the idea behind the
    # IAB's comparison types. One office against one cannot separate pilot from office, and
    # every row says so.
    matched: list[dict[str, Any]] = []
    groups = {office: ctx.label(office) for office in cube.offices}
    for pilot, others in neighbours.items():
        pilot_rows = cube.office == cube.offices.index(pilot)
        other_rows = np.isin(cube.office, [cube.offices.index(o) for o in others])
        for item in items:
            of_item = cube.of_item(item)
            if (
                int(cube.n[of_item & pilot_rows].sum()) < ctx.k
                or int(cube.n[of_item & other_rows].sum()) < ctx.k
            ):
                continue
            pair = cellstats.compare_groups(
                cube.table(of_item & (pilot_rows | other_rows)),
                item,
                groups,
                a=ctx.spec.groups.a.label,
                b=ctx.spec.groups.b.label,
                permutations=0,
                higher_is_better=_polarity(ctx.survey, item),
            )
            matched.append(
                {
                    "pilot": pilot,
                    "compared_with": others,
                    "item": item,
                    "n_a": pair.n_a,
                    "n_b": pair.n_b,
                    "diff": pair.diff,
                    "p_mann_whitney": pair.p_mann_whitney,
                    "caveat": pair.caveat,
                }
            )
    return {
        "available": True,
        "indicators": indicators,
        "adjusted": adjusted,
        "neighbours": neighbours,
        "matched": matched,
        "offices": [
            {key: row[key] for key in ("office", "group", "item", "n", "mean", *indicators)}
            for row in office_rows
        ],
    }


# -- the report -------------------------------------------------------------------------------


class Report(msgspec.Struct, kw_only=True):
    """Every number of a report, as written to ``.json``."""

    title: str
    generated_with: str
    k: int
    date_from: dt.date | None
    date_to: dt.date | None
    groups: dict[str, Any]
    counts: dict[str, int]
    comparisons: list[dict[str, Any]]
    events: list[dict[str, Any]]
    trends: list[dict[str, Any]]
    distribution: list[dict[str, Any]]
    heatmap: list[dict[str, Any]]
    context: dict[str, Any]
    methods: dict[str, Any]
    sections: list[str]


def build_report(
    runtime: Runtime,
    spec: ReportSpec,
    date_from: dt.date | None,
    date_to: dt.date | None,
    step: Callable[[str], None] = lambda _: None,
) -> Report:
    """Compute every number of the report (on a read cursor; nothing is written).

    Two aggregate queries read the responses (answers by office x period x item x value, and
    responses by weekday x hour x flags); every section is derived from their counts.
    """
    survey = runtime.surveys.latest(runtime.settings.default_survey)
    assert survey is not None
    k = runtime.settings.min_group_size
    items = spec_items(spec, survey)

    def compute(cur: Cursor) -> Report:
        offices = list_offices(cur)
        a = _members(spec.groups.a, offices)
        b = _members(spec.groups.b, offices)
        params: dict[str, Any] = {
            "from": date_from,
            "to": date_to + dt.timedelta(days=1) if date_to else None,
            "period": spec.period,
            "channel": spec.filters.channel,
            "placement": spec.filters.placement,
            "lang": spec.filters.lang,
            "flagged": spec.filters.include_flagged,
            "excluded": list(EXCLUDED_FLAGS),
            "verified": spec.filters.verified_only,
        }
        ctx = Context(spec=spec, survey=survey, k=k, a=a, b=b, params=params)
        step("responses")
        cube = load_cube(cur, ctx, items)
        responses = load_responses(cur, ctx, "heatmap" in spec.sections)
        step("comparisons")
        compared = comparisons(cube, ctx, items) if "comparison" in spec.sections else []
        step("events")
        evented = events(cur, cube, ctx, items) if "before_after" in spec.sections else []
        step("trends")
        trended = (
            [row for item in items for row in trends(cube, ctx, item)]
            if "trends" in spec.sections
            else []
        )
        step("distribution")
        distributed = distribution(cube, ctx, items) if "distribution" in spec.sections else []
        heat: list[dict[str, Any]] = []
        if "heatmap" in spec.sections:
            # With no office in either group the heatmap has always covered every office.
            heat = heatmap(responses, ctx) if ctx.offices else _all_offices_heatmap(cur, ctx)
        step("context")
        in_context = context(cur, cube, ctx, items) if "context" in spec.sections else {}
        return Report(
            title=spec.title,
            generated_with=f"officepulse {__version__}",
            k=k,
            date_from=date_from,
            date_to=date_to,
            groups={
                "a": {"label": spec.groups.a.label, "offices": a},
                "b": {"label": spec.groups.b.label, "offices": b},
            },
            counts=_counts(responses, ctx),
            comparisons=compared,
            events=evented,
            trends=trended,
            distribution=distributed,
            heatmap=heat,
            context=in_context,
            methods=_methods(spec, k),
            sections=list(spec.sections),
        )

    return runtime.store.read(compute)


def _all_offices_heatmap(cur: Cursor, ctx: Context) -> list[dict[str, Any]]:
    filters = Filters(
        date_from=ctx.params["from"],
        date_to=ctx.params["to"] - dt.timedelta(days=1) if ctx.params["to"] else None,
        include_flagged=ctx.spec.filters.include_flagged,
        verified_only=ctx.spec.filters.verified_only,
    )
    return weekday_hour(cur, filters, HEATMAP_ITEM, ctx.k)


def _counts(responses: Responses, ctx: Context) -> dict[str, int]:
    used = responses.n[ctx.spec.filters.include_flagged | ~responses.excluded].sum()
    return {
        "responses": int(used),
        "excluded_flagged": (
            0 if ctx.spec.filters.include_flagged else int(responses.n[responses.excluded].sum())
        ),
        "verified_onsite": int(responses.n[responses.verified].sum()),
        "synthetic": int(responses.n[responses.synthetic].sum()),
        "offices_a": len(ctx.a),
        "offices_b": len(ctx.b),
    }


def _methods(spec: ReportSpec, k: int) -> dict[str, Any]:
    return {
        "minimum_group_size": k,
        "excluded_flags": list(EXCLUDED_FLAGS) if not spec.filters.include_flagged else [],
        "permutations": spec.permutations,
        "means": "mean with a 95 % t interval",
        "comparison": (
            "difference of means with a cluster-robust 95 % interval (clusters: offices),"
            " Mann-Whitney U on responses, and a randomisation p-value that permutes the"
            " pilot label over offices (exact when the assignments are few); Holm correction"
            " across the items"
        ),
        "before_after": (
            "difference-in-differences with office and period fixed effects against the"
            " comparison offices, an event study relative to the period before the event,"
            " and a joint test of the pre-event estimates (pre-trend)"
        ),
        "suppression": f"cells and groups with fewer than {k} responses are not shown",
        "context": (
            "office means regressed on a pilot indicator with and without the district"
            " indicators (weighted by responses), and the most similar conventional office of"
            " each pilot by standardised indicators"
        ),
    }


# -- output -----------------------------------------------------------------------------------


def report_charts(report: Report) -> list[tuple[str, Any]]:
    """The report's charts as (name, Altair chart), from its aggregated rows only."""
    from officepulse import charts  # Altair: only for the formats with charts

    found: list[tuple[str, Any]] = []
    shown = [c for c in report.comparisons if not c.get("suppressed")]
    if shown:
        rows = [
            {
                "item": c["item"],
                "group": c[f"group_{side}"],
                "mean": c[f"mean_{side}"],
                "ci_low": c[f"mean_ci_{side}"][0],
                "ci_high": c[f"mean_ci_{side}"][1],
                "n": c[f"n_{side}"],
            }
            for c in shown
            for side in ("a", "b")
        ]
        found.append(("comparison", charts.comparison_chart(rows, "Mittelwerte je Frage")))
    for item in sorted({t["item"] for t in report.trends}):
        rows = [t for t in report.trends if t["item"] == item and not t["suppressed"]]
        if rows:
            found.append((f"trend-{item}", charts.trend_chart(rows, f"Verlauf: {item}")))
    if report.distribution:
        found.append(
            (
                "distribution",
                charts.distribution_chart(report.distribution, "Verteilung der Antworten"),
            )
        )
    if report.heatmap:
        found.append(
            (
                "heatmap",
                charts.heatmap_chart(report.heatmap, "Anspannung nach Wochentag und Stunde"),
            )
        )
    if report.context.get("available") and report.context["offices"]:
        indicator = report.context["indicators"][0]
        item = report.context["offices"][0]["item"]
        rows = [
            {
                "office": row["office"],
                "kind": row["group"],
                "indicator": row[indicator],
                "mean": row["mean"],
            }
            for row in report.context["offices"]
            if row["item"] == item
        ]
        title = f"{item} nach {indicator}"
        found.append(("context", charts.context_chart(rows, indicator, title)))
    for event in sorted({e["event"] for e in report.events}):
        for item in sorted({e["item"] for e in report.events if e["event"] == event}):
            rows = [
                {
                    "offset": e["period"],
                    "estimate": e["estimate"],
                    "ci_low": e["ci_low"],
                    "ci_high": e["ci_high"],
                }
                for e in report.events
                if e["event"] == event and e["item"] == item and e["period"] != "post"
            ]
            if rows:
                name = f"event-{event.replace(' ', '-')}-{item}"
                found.append((name, charts.event_study_chart(rows, f"{event}: {item}")))
    return found


@functools.cache
def _vega_bundle() -> str:
    import vl_convert

    # Vega, Vega-Lite and vega-embed in one script, included once per report.
    snippet = "window.vegaEmbed = vegaEmbed; window.vega = vega; window.vegaLite = vegaLite;"
    return str(vl_convert.javascript_bundle(snippet))


def render_html(report: Report) -> str:
    """One self-contained HTML file: the Vega libraries once, every chart, tables, methods."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    # JSON inside <script>: "</" would end the element, so it is escaped (an office name
    # could contain it).
    chart_specs = [
        (name, chart.to_json(indent=None).replace("</", "<\\/"))
        for name, chart in report_charts(report)
    ]
    return env.get_template("report.html").render(
        report=report,
        charts=chart_specs,
        vega_bundle=_vega_bundle(),
        report_json=json.dumps(msgspec.to_builtins(report)).replace("</", "<\\/"),
    )


def render_json(report: Report) -> bytes:
    return msgspec.json.format(msgspec.json.encode(report), indent=2)


def write_chart_files(report: Report, folder: Path) -> list[Path]:
    """Every chart as SVG and PNG (vl-convert, offline)."""
    import vl_convert

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, chart in report_charts(report):
        spec = chart.to_json()
        svg = folder / f"{name}.svg"
        svg.write_text(vl_convert.vegalite_to_svg(spec), encoding="utf-8")
        png = folder / f"{name}.png"
        png.write_bytes(vl_convert.vegalite_to_png(spec, scale=2))
        written += [svg, png]
    return written


def _text_block(lines: list[str], size: int = 11, bold: bool = False) -> Any:
    import altair as alt

    rows = [{"line": index, "text": text} for index, text in enumerate(lines)]
    return (
        alt.Chart(alt.Data(values=rows))  # type: ignore[no-untyped-call]
        .mark_text(
            align="left",
            baseline="top",
            fontSize=size,
            fontWeight="bold" if bold else "normal",
            font="monospace" if not bold else "sans-serif",
        )
        .encode(
            x=alt.value(0),
            y=alt.Y("line:O", axis=None),
            text="text:N",
        )
        .properties(width=640, height=max(20, (size + 6) * len(lines)))
    )


_TABLE_COLUMNS: Final = (
    "Frage",
    "n a",
    "n b",
    "Mittel a",
    "Mittel b",
    "Diff.",
    "95 %-Intervall",
    "p MW",
    "p Rand.",
    "p Holm",
)


def _table_chart(report: Report) -> Any:
    """The comparison table as a grid of text marks (spaces do not survive SVG text)."""
    import altair as alt

    cells: list[dict[str, Any]] = [
        {"row": 0, "col": col, "text": col, "head": True} for col in _TABLE_COLUMNS
    ]
    for index, c in enumerate(report.comparisons, start=1):
        if c.get("suppressed"):
            values = [c["item"], "unter k", "", "", "", "", "", "", "", ""]
        else:
            values = [
                c["item"],
                str(c["n_a"]),
                str(c["n_b"]),
                f"{c['mean_a']:.2f}",
                f"{c['mean_b']:.2f}",
                f"{c['diff']:+.2f}",
                f"{c['ci_low']:.2f} … {c['ci_high']:.2f}",
                f"{c['p_mann_whitney']:.3f}",
                "" if c.get("p_randomization") is None else f"{c['p_randomization']:.3f}",
                "" if c.get("p_holm") is None else f"{c['p_holm']:.3f}",
            ]
        cells += [
            {"row": index, "col": col, "text": value, "head": False}
            for col, value in zip(_TABLE_COLUMNS, values, strict=True)
        ]
    return (
        alt.Chart(alt.Data(values=cells))  # type: ignore[no-untyped-call]
        .mark_text(align="left", baseline="top", fontSize=9)
        .encode(
            x=alt.X("col:N", axis=None, sort=list(_TABLE_COLUMNS)),
            y=alt.Y("row:O", axis=None),
            text="text:N",
            color=alt.condition("datum.head", alt.value("#000000"), alt.value("#333333")),
        )
        .properties(width=640, height=16 * (len(report.comparisons) + 1))
    )


def _event_lines(report: Report) -> list[str]:
    lines = []
    for e in report.events:
        if e["period"] != "post":
            continue
        if e["estimate"] is None:
            lines.append(f"{e['event']}: {e['item']}: {e['caveat']}"[:110])
        else:
            lines.append(
                f"{e['event']}: {e['item']}: DiD {e['estimate']:+.2f}"
                f" ({e['ci_low']:.2f} … {e['ci_high']:.2f})"
            )
    return lines


def render_pdf(report: Report) -> bytes:
    """The report as a PDF (one long page): summary, tables, charts and methods, offline."""
    import altair as alt
    import vl_convert

    summary = [
        f"{report.groups['a']['label']} ({len(report.groups['a']['offices'])} Standorte)"
        f" gegenüber {report.groups['b']['label']} ({len(report.groups['b']['offices'])})",
        f"Zeitraum {report.date_from or 'Anfang'} bis {report.date_to or 'heute'};"
        f" {report.counts['responses']} Antworten; k = {report.k}",
    ]
    if report.counts.get("synthetic"):
        summary.append("Demonstration: synthetische Daten.")
    methods = [f"{key}: {value}"[:120] for key, value in report.methods.items()]
    methods.append(f"erstellt mit {report.generated_with}")
    parts = [
        _text_block([report.title], size=18, bold=True),
        _text_block(summary),
        _table_chart(report),
        _text_block(_event_lines(report) or ["Keine Ereignisse im Zeitraum."], size=9),
        *(chart for _, chart in report_charts(report)),
        _text_block(["Methoden"], size=14, bold=True),
        _text_block(methods, size=8),
    ]
    document = alt.vconcat(*parts).properties(padding=24)
    return bytes(vl_convert.vegalite_to_pdf(document.to_json()))
