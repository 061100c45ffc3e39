"""Evaluator reports: a specification in, every number as JSON and a self-contained HTML out.

The pipeline stays one-way: DuckDB aggregates or hands columns of one item to the statistics
(scipy/statsmodels, in :mod:`officepulse.stats`), charts receive only aggregated rows, and every
cell or comparison built from fewer than *k* responses carries no numbers.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Literal, get_args

import msgspec
import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape
from scipy import stats as scipy_stats

from officepulse import __version__, charts, stats
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

_ITEM_SQL: Final = """
SELECT r.office_id AS office, answers[$item]::DOUBLE AS value,
       date_trunc($period, r.received_at)::DATE AS period
FROM responses r
WHERE answers[$item] IS NOT NULL
  AND list_contains($offices, r.office_id)
  AND ($from IS NULL OR r.received_at >= $from)
  AND ($to IS NULL OR r.received_at < $to)
  AND ($channel IS NULL OR r.channel = $channel)
  AND ($placement IS NULL OR r.placement = $placement)
  AND ($lang IS NULL OR r.lang = $lang)
  AND ($flagged OR NOT list_has_any(r.flags, $excluded))
  AND (NOT $verified OR list_contains(r.flags, 'verified_onsite'))
"""


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

_REMAINDER_SQL: Final = f"""
SELECT CASE WHEN list_contains($a, office_id) THEN 'a' ELSE 'b' END AS grp,
       CASE WHEN $by_period THEN strftime(date_trunc($period, received_at), '%Y-%m-%d') END
           AS period,
       CASE WHEN $by_office THEN office_id END AS office,
       count(*) FILTER (WHERE {_SELECTED}) AS n,
       count(*) FILTER (WHERE NOT list_has_any(r.flags, $excluded)) AS base_n
FROM responses r
WHERE answers[$item] IS NOT NULL AND list_contains($offices, office_id)
  AND ($from IS NULL OR r.received_at >= $from) AND ($to IS NULL OR r.received_at < $to)
GROUP BY ALL
"""  # noqa: S608 - a constant fragment is joined in, never a value


def _filtered(ctx: Context) -> bool:
    """Whether the report's filters differ from the default (flagged responses left out)."""
    return ctx.spec.filters != FilterSpec()


def _thin_remainders(
    cur: Cursor,
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
    params = dict(
        ctx.params,
        item=item,
        offices=ctx.a + ctx.b,
        a=ctx.a,
        by_period=by_period,
        by_office=by_office,
    )
    found = cur.execute(_REMAINDER_SQL, _bind(_REMAINDER_SQL, params)).fetchall()
    return {
        (grp, period, office)
        for grp, period, office, n, base_n in found
        if 0 < abs(base_n - n) < ctx.k
    }


def _item_frame(cur: Cursor, ctx: Context, item: str, offices: list[str]) -> pd.DataFrame:
    # Columns of one item go to the statistics as arrays; no Python loop over responses.
    params = dict(ctx.params, item=item, offices=offices)
    frame = cur.execute(_ITEM_SQL, _bind(_ITEM_SQL, params)).df()
    labels = ctx.spec.groups
    frame["group"] = frame["office"].map(lambda o: labels.a.label if o in ctx.a else labels.b.label)
    return frame


def _polarity(survey: Survey, item: str) -> bool:
    found = survey.item(item)
    return found is None or found.polarity != "lower_is_better"


def comparisons(cur: Cursor, ctx: Context, items: list[str]) -> list[dict[str, Any]]:
    """Pilot (a) against conventional (b) per item, Holm-corrected across the items."""
    results: list[stats.Comparison] = []
    suppressed: list[dict[str, Any]] = []
    group_intervals: dict[str, tuple[stats.MeanCI, stats.MeanCI]] = {}
    group_shares: dict[str, tuple[stats.Share, stats.Share]] = {}
    for item in items:
        frame = _item_frame(cur, ctx, item, ctx.a + ctx.b)
        label_a, label_b = ctx.spec.groups.a.label, ctx.spec.groups.b.label
        values_a = frame.loc[frame["group"] == label_a, "value"].to_numpy()
        values_b = frame.loc[frame["group"] == label_b, "value"].to_numpy()
        thin = _thin_remainders(cur, ctx, item)
        if len(values_a) < ctx.k or len(values_b) < ctx.k or thin:
            suppressed.append({"item": item, "suppressed": True})
            continue
        results.append(
            stats.compare_groups(
                frame,
                item,
                group_col="group",
                office_col="office",
                value_col="value",
                a=label_a,
                b=label_b,
                permutations=ctx.spec.permutations,
                seed=0,
                higher_is_better=_polarity(ctx.survey, item),
            )
        )
        group_intervals[item] = (stats.mean_ci(values_a), stats.mean_ci(values_b))
        best = (4, 5) if _polarity(ctx.survey, item) else (1, 2)
        group_shares[item] = (
            stats.top2_share(values_a, best=best),
            stats.top2_share(values_b, best=best),
        )
    rows = []
    for c in stats.holm(results):
        ci_a, ci_b = group_intervals[c.item]
        share_a, share_b = group_shares[c.item]
        rows.append(
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
    return rows + suppressed


def events(cur: Cursor, ctx: Context, items: list[str]) -> list[dict[str, Any]]:
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
    untreated = [o for o in dict.fromkeys(ctx.a + ctx.b) if o not in treated]
    for event_id, office, happened_on, kind, note in found:
        comparison = untreated
        event_label = f"{kind} {office} {happened_on:%Y-%m-%d}"
        for item in items:
            frame = _item_frame(cur, ctx, item, [office, *comparison])
            if len(frame) < ctx.k or not comparison:
                continue
            periods = sorted(frame["period"].unique())
            index = {p: i for i, p in enumerate(periods)}
            frame["period"] = frame["period"].map(index)
            start = pd.Timestamp(_period_start(happened_on, ctx))
            event_period = sum(1 for p in periods if pd.Timestamp(p) < start)
            base = {"event": event_label, "event_id": event_id, "office": office, "item": item}
            try:
                result = stats.did(
                    frame,
                    treated_office=office,
                    event_period=event_period,
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
            for point in result.event_study:
                rows.append(
                    {
                        **base,
                        "period": point.period_offset,
                        "estimate": point.estimate,
                        "ci_low": point.ci_low,
                        "ci_high": point.ci_high,
                    }
                )
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
                }
            )
    return rows


def _period_start(day: dt.date, ctx: Context) -> dt.date:
    if ctx.spec.period == "week":
        return day - dt.timedelta(days=day.weekday())
    return day.replace(day=1)


_GROUP_TRENDS_SQL: Final = f"""
SELECT CASE WHEN list_contains($a, office_id) THEN 'a' ELSE 'b' END AS grp,
       strftime(date_trunc($period, received_at), '%Y-%m-%d') AS period,
       count(*) AS n, avg(answers[$item]) AS mean, stddev_samp(answers[$item]) AS sd
FROM responses r
WHERE answers[$item] IS NOT NULL AND list_contains($offices, office_id)
  AND ($from IS NULL OR r.received_at >= $from) AND ($to IS NULL OR r.received_at < $to)
  AND {_SELECTED}
GROUP BY ALL ORDER BY 1, 2
"""  # noqa: S608 - a constant fragment is joined in, never a value


def trends(cur: Cursor, ctx: Context, item: str) -> list[dict[str, Any]]:
    """Group mean per period with a t interval computed from the aggregates; small cells hidden."""
    params = dict(ctx.params, item=item, offices=ctx.a + ctx.b, a=ctx.a)
    rows = []
    found = cur.execute(_GROUP_TRENDS_SQL, _bind(_GROUP_TRENDS_SQL, params)).fetchall()
    thin = {(grp, period) for grp, period, _ in _thin_remainders(cur, ctx, item, by_period=True)}
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
    for grp, period, n, mean, sd in found:
        label = ctx.spec.groups.a.label if grp == "a" else ctx.spec.groups.b.label
        if (grp, period) in hidden:
            rows.append({"group": label, "period": period, "item": item, "suppressed": True})
            continue
        half = scipy_stats.t.ppf(0.975, n - 1) * sd / n**0.5 if sd is not None else 0.0
        rows.append(
            {
                "group": label,
                "period": period,
                "item": item,
                "n": int(n),
                "mean": float(mean),
                "ci_low": float(mean - half),
                "ci_high": float(mean + half),
                "suppressed": False,
            }
        )
    return rows


_DISTRIBUTION_SQL: Final = f"""
SELECT CASE WHEN list_contains($a, office_id) THEN 'a' ELSE 'b' END AS grp,
       answers[$item] AS value, count(*) AS n
FROM responses r
WHERE answers[$item] IS NOT NULL AND list_contains($offices, office_id)
  AND ($from IS NULL OR r.received_at >= $from) AND ($to IS NULL OR r.received_at < $to)
  AND {_SELECTED}
GROUP BY ALL
"""  # noqa: S608 - a constant fragment is joined in, never a value


def distribution(cur: Cursor, ctx: Context, items: list[str]) -> list[dict[str, Any]]:
    """Counts of the five answers per group and item (groups below k left out)."""
    rows: list[dict[str, Any]] = []
    for item in items:
        params = dict(ctx.params, item=item, offices=ctx.a + ctx.b, a=ctx.a)
        found = cur.execute(_DISTRIBUTION_SQL, _bind(_DISTRIBUTION_SQL, params)).fetchall()
        totals: dict[str, int] = {}
        for grp, _value, n in found:
            totals[grp] = totals.get(grp, 0) + int(n)
        thin = {grp for grp, _, _ in _thin_remainders(cur, ctx, item)}
        for grp, value, n in found:
            if totals[grp] < ctx.k or grp in thin:
                continue
            label = ctx.spec.groups.a.label if grp == "a" else ctx.spec.groups.b.label
            rows.append(
                {
                    "label": f"{item} · {label}",
                    "item": item,
                    "group": label,
                    "value": int(value),
                    "count": int(n),
                }
            )
    return rows


_OFFICE_MEANS_SQL: Final = """
SELECT office_id, count(*) AS n, avg(answers[$item]) AS mean
FROM responses r
WHERE answers[$item] IS NOT NULL AND list_contains($offices, office_id)
  AND ($from IS NULL OR r.received_at >= $from) AND ($to IS NULL OR r.received_at < $to)
  AND ($flagged OR NOT list_has_any(r.flags, $excluded))
  AND (NOT $verified OR list_contains(r.flags, 'verified_onsite'))
  AND ($channel IS NULL OR r.channel = $channel)
  AND ($placement IS NULL OR r.placement = $placement)
  AND ($lang IS NULL OR r.lang = $lang)
GROUP BY ALL
"""

# The latest year of every indicator of the district an office is mapped to.
_OFFICE_INDICATORS_SQL: Final = """
SELECT od.office_id, di.indicator, arg_max(di.value, di.year) AS value
FROM office_districts od
JOIN district_indicators di ON di.city = od.city AND di.district_id = od.district_id
WHERE list_contains($offices, od.office_id)
GROUP BY ALL
"""


def context(cur: Cursor, ctx: Context, items: list[str]) -> dict[str, Any]:
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
    adjusted: list[dict[str, Any]] = []
    office_rows: list[dict[str, Any]] = []
    for item in items:
        params = dict(ctx.params, item=item, offices=mapped)
        means = cur.execute(_OFFICE_MEANS_SQL, _bind(_OFFICE_MEANS_SQL, params)).fetchall()
        thin = {office for _, _, office in _thin_remainders(cur, ctx, item, by_office=True)}
        rows = [
            {
                "office": office,
                "group": "pilot" if office in ctx.a else "conventional",
                "n": int(n),
                item: float(mean),
                **{name: values[office][name] for name in indicators},
            }
            for office, n, mean in means
            if n >= ctx.k and office not in thin
        ]
        office_rows += [dict(row, item=item, mean=row[item]) for row in rows]
        if len(rows) < 3:
            continue
        frame = pd.DataFrame(rows)
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
    for pilot, others in neighbours.items():
        for item in items:
            frame = _item_frame(cur, ctx, item, [pilot, *others])
            if (frame["office"] == pilot).sum() < ctx.k or len(frame) - (
                frame["office"] == pilot
            ).sum() < ctx.k:
                continue
            pair = stats.compare_groups(
                frame,
                item,
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
    """Compute every number of the report (on a read cursor; nothing is written)."""
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
        counts = _counts(cur, ctx)
        step("comparisons")
        compared = comparisons(cur, ctx, items) if "comparison" in spec.sections else []
        step("events")
        evented = events(cur, ctx, items) if "before_after" in spec.sections else []
        step("trends")
        trended = (
            [row for item in items for row in trends(cur, ctx, item)]
            if "trends" in spec.sections
            else []
        )
        step("distribution")
        distributed = distribution(cur, ctx, items) if "distribution" in spec.sections else []
        heat = (
            weekday_hour(
                cur,
                Filters(
                    date_from=date_from,
                    date_to=date_to,
                    offices=tuple(a + b),
                    include_flagged=spec.filters.include_flagged,
                    verified_only=spec.filters.verified_only,
                ),
                "stress_now",
                k,
            )
            if "heatmap" in spec.sections
            else []
        )
        step("context")
        in_context = context(cur, ctx, items) if "context" in spec.sections else {}
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
            counts=counts,
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


def _counts(cur: Cursor, ctx: Context) -> dict[str, int]:
    params = dict(ctx.params, offices=ctx.a + ctx.b)
    row = cur.execute(
        "SELECT count(*) FILTER ($flagged OR NOT list_has_any(flags, $excluded)),"
        " count(*) FILTER (list_has_any(flags, $excluded)),"
        " count(*) FILTER (list_contains(flags, 'verified_onsite')),"
        " count(*) FILTER (synthetic)"
        " FROM responses r WHERE list_contains($offices, office_id)"
        " AND ($from IS NULL OR r.received_at >= $from) AND ($to IS NULL OR r.received_at < $to)",
        {key: params[key] for key in ("flagged", "excluded", "offices", "from", "to")},
    ).fetchone()
    assert row is not None
    used, flagged, verified, synthetic = (int(x) for x in row)
    return {
        "responses": used,
        "excluded_flagged": 0 if ctx.spec.filters.include_flagged else flagged,
        "verified_onsite": verified,
        "synthetic": synthetic,
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
