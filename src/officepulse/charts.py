"""Report charts as Altair (Vega-Lite) specifications, built from aggregated rows only.

Charts never see a response: every function takes rows that already passed the minimum group
size, and suppressed cells arrive without numbers (they are drawn as gaps or grey, never as a
value). Data is embedded as ``alt.Data(values=...)`` so that no DataFrame library is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import altair as alt

WEEKDAYS: Final = ("Mo", "Di", "Mi", "Do", "Fr", "Sa", "So")
# Colour-blind-safe diverging scale for the five answers (worst to best) and two groups.
LIKERT_COLOURS: Final = ("#b2182b", "#ef8a62", "#d9d9d9", "#67a9cf", "#2166ac")
GROUP_COLOURS: Final = ("#1b7837", "#762a83")

Row = dict[str, Any]
# Altair's chart classes are only partly typed (layering returns unions, alt.Data is untyped);
# what matters to callers is that a chart has .to_dict() and .to_json().
Chart = Any


def _data(rows: Sequence[Row]) -> Any:
    return alt.Data(values=list(rows))  # type: ignore[no-untyped-call]


def comparison_chart(rows: Sequence[Row], title: str) -> Chart:
    """Mean per item and group with 95 % interval bars.

    Rows: item, group, mean, ci_low, ci_high, n.
    """
    data = _data(rows)
    base = alt.Chart(data).encode(
        x=alt.X("item:N", title=None, sort=None),
        xOffset=alt.XOffset("group:N"),
        color=alt.Color("group:N", title=None, scale=alt.Scale(range=list(GROUP_COLOURS))),
    )
    bars = base.mark_bar().encode(
        y=alt.Y("mean:Q", title="Mittelwert (1–5)", scale=alt.Scale(domain=[1, 5])),
        tooltip=["item:N", "group:N", "n:Q", alt.Tooltip("mean:Q", format=".2f")],
    )
    intervals = base.mark_errorbar(ticks=True).encode(
        y=alt.Y("ci_low:Q", title="Mittelwert (1–5)"), y2="ci_high:Q"
    )
    return alt.layer(bars, intervals, data=data).properties(title=title, width=480, height=260)


def trend_chart(rows: Sequence[Row], title: str) -> Chart:
    """Mean per period and group with a 95 % band (rows: period, group, mean, ci_low, ci_high)."""
    data = _data(rows)
    base = alt.Chart(data).encode(
        x=alt.X("period:O", title=None, sort=None),
        color=alt.Color("group:N", title=None, scale=alt.Scale(range=list(GROUP_COLOURS))),
    )
    band = base.mark_area(opacity=0.2).encode(
        y=alt.Y("ci_low:Q", title="Mittelwert (1–5)"), y2="ci_high:Q"
    )
    line = base.mark_line(point=True).encode(y="mean:Q")
    return alt.layer(band, line, data=data).properties(title=title, width=480, height=220)


def diverging_rows(counts: Sequence[Row]) -> list[Row]:
    """Segments of a diverging stacked bar from answer counts (rows: label, value, count).

    The neutral answer is split across zero, the two worse answers go left and the two better
    ones right: the standard display of 5-point Likert data.
    """
    totals: dict[str, int] = {}
    for row in counts:
        totals[row["label"]] = totals.get(row["label"], 0) + int(row["count"])
    segments: list[Row] = []
    for label, total in totals.items():
        if total == 0:
            continue
        share = {int(r["value"]): int(r["count"]) / total for r in counts if r["label"] == label}
        start = -(share.get(1, 0) + share.get(2, 0) + share.get(3, 0) / 2)
        for value in range(1, 6):
            width = share.get(value, 0)
            segments.append(
                {
                    "label": label,
                    "value": value,
                    "start": start,
                    "end": start + width,
                    "share": width,
                }
            )
            start += width
    return segments


def distribution_chart(counts: Sequence[Row], title: str) -> Chart:
    """Diverging stacked bars of the five answers per label (an item, a group, an office)."""
    data = _data(diverging_rows(counts))
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("label:N", title=None, sort=None),
            x=alt.X("start:Q", title="Anteil der Antworten", axis=alt.Axis(format="%")),
            x2="end:Q",
            color=alt.Color(
                "value:O",
                title="Antwort",
                scale=alt.Scale(domain=[1, 2, 3, 4, 5], range=list(LIKERT_COLOURS)),
            ),
            tooltip=["label:N", "value:O", alt.Tooltip("share:Q", format=".0%")],
        )
        .properties(title=title, width=480)
    )


def heatmap_chart(rows: Sequence[Row], title: str) -> Chart:
    """Mean stress by weekday × hour (rows: weekday 1–7, hour, mean or None when suppressed)."""
    values = [
        dict(row, day=WEEKDAYS[int(row["weekday"]) - 1], shown="unterdrückt (< k)")
        if row.get("mean") is None
        else dict(row, day=WEEKDAYS[int(row["weekday"]) - 1], shown="")
        for row in rows
    ]
    data = _data(values)
    return (
        alt.Chart(data)
        .mark_rect()
        .encode(
            x=alt.X("hour:O", title="Stunde"),
            y=alt.Y("day:N", title=None, sort=list(WEEKDAYS)),
            color=alt.Color(
                "mean:Q", title="Anspannung", scale=alt.Scale(scheme="orangered", domain=[1, 5])
            ),
            tooltip=["day:N", "hour:O", alt.Tooltip("mean:Q", format=".2f"), "shown:N"],
        )
        .properties(title=title, width=360, height=180)
    )


def event_study_chart(rows: Sequence[Row], title: str) -> Chart:
    """Estimates per period relative to an event (rows: offset, estimate, ci_low, ci_high)."""
    data = _data(rows)
    base = alt.Chart(data).encode(x=alt.X("offset:O", title="Perioden relativ zum Ereignis"))
    points = base.mark_point(filled=True).encode(y=alt.Y("estimate:Q", title="Effekt"))
    intervals = base.mark_errorbar(ticks=True).encode(y="ci_low:Q", y2="ci_high:Q")
    zero = alt.Chart(_data([{"y": 0}])).mark_rule(strokeDash=[4, 4]).encode(y="y:Q")
    event = alt.Chart(_data([{"offset": 0}])).mark_rule(color="#b2182b").encode(x=alt.X("offset:O"))
    return alt.layer(intervals, points, zero, event).properties(title=title, width=480, height=220)


def context_chart(rows: Sequence[Row], indicator_label: str, title: str) -> Chart:
    """Office score against a district indicator (rows: office, kind, indicator, mean)."""
    data = _data(rows)
    return (
        alt.Chart(data)
        .mark_circle(size=90)
        .encode(
            x=alt.X("indicator:Q", title=indicator_label),
            y=alt.Y("mean:Q", title="Mittelwert (1–5)"),
            color=alt.Color("kind:N", title=None, scale=alt.Scale(range=list(GROUP_COLOURS))),
            tooltip=["office:N", "kind:N", "indicator:Q", alt.Tooltip("mean:Q", format=".2f")],
        )
        .properties(title=title, width=360, height=240)
    )
