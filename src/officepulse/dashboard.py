"""The manager's dashboard: one office, one week, in German.

The numbers come from :func:`officepulse.summary.office_summary`, the same function behind
``GET /api/v1/offices/{office_id}/summary``; this module only words and draws them. Charts are
Altair specifications rendered to SVG on the server (the page runs no script) and embedded as
``data:`` images, each followed by a table of the same numbers for screen readers.

Nothing here is about individual staff: the cells are office × week × item (and weekday ×
hour for stress), and every cell below the minimum group size is shown as suppressed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final
from zoneinfo import ZoneInfo

import altair as alt
import anyio.to_thread
import msgspec
import vl_convert
from litestar import Request, Response, Router, get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery

from officepulse import audit, charts, spc
from officepulse.auth import require_principal
from officepulse.kiosk import SILENT_AFTER, KioskInfo, list_kiosks
from officepulse.runtime import Runtime
from officepulse.staff import STAFF_EXCEPTION_HANDLERS, message_page, renderer
from officepulse.storage import Cursor
from officepulse.summary import (
    DEFAULT_WEEKS,
    Alert,
    OfficeSummary,
    Stat,
    WeekComments,
    WeekError,
    office_summary,
    open_bucket,
    selected_week,
    summary_items,
    week_comments,
    week_label,
)
from officepulse.surveys import Item, Survey

DIMENSION_LABELS: Final = {
    "stress": "Anspannung",
    "friendliness": "Freundlichkeit",
    "clarity": "Klarheit",
    "room": "Räume",
    "effort": "Aufwand",
    "overall": "Gesamturteil",
}
WEEKDAY_NAMES: Final = (
    "Montag",
    "Dienstag",
    "Mittwoch",
    "Donnerstag",
    "Freitag",
    "Samstag",
    "Sonntag",
)
POSITIONS: Final = ("innerhalb", "außerhalb")
KIND_LABELS: Final = {"pilot": "Pilotbüros", "conventional": "konventionelle Standorte"}


def number(value: float, digits: int = 2) -> str:
    """A number the German way (decimal comma)."""
    return f"{value:.{digits}f}".replace(".", ",")


def item_labels(items: Sequence[Item]) -> dict[str, str]:
    """Short German names of the items: the dimension, plus the id where two share one."""
    dimensions = [item.dimension for item in items]
    return {
        item.id: DIMENSION_LABELS.get(item.dimension, item.id)
        + (f" ({item.id})" if dimensions.count(item.dimension) > 1 else "")
        for item in items
    }


def polarity_note(item: Item) -> str:
    if item.polarity == "lower_is_better":
        return "niedriger ist besser"
    return "höher ist besser"


def scale_text(item: Item, survey: Survey) -> str:
    """What 1 and 5 mean for an item, in German."""
    answers = item.labels_for("de", survey.default_lang).labels
    return f"1 = {answers[0]}, 5 = {answers[-1]}"


def stat_text(stat: Stat, k: int) -> str:
    """A cell in words: mean (95 % interval), n; or why there is no number."""
    if stat.suppressed:
        return f"unterdrückt (weniger als {k} Antworten)"
    if stat.mean is None or stat.ci_low is None or stat.ci_high is None or not stat.n:
        return "keine Antworten"
    return f"{number(stat.mean)} ({number(stat.ci_low)}–{number(stat.ci_high)}), n = {stat.n}"


def alert_text(alert: Alert, label: str, item: Item, k: int) -> str:
    """The control-chart verdict of one item in plain German."""
    if alert.status == "not_enough_history":
        return (
            f"{label}: noch nicht genug Verlauf. Für Kontrollgrenzen braucht es mindestens "
            f"{spc.MIN_BASELINE_WEEKS} frühere Wochen mit je mindestens {k} Antworten "
            f"(bisher {alert.baseline_weeks})."
        )
    if alert.status == "too_few_responses" or alert.mean is None or alert.n is None:
        return (
            f"{label}: In der Woche {alert.week} gab es weniger als {k} Antworten, keine Prüfung."
        )
    assert alert.lower is not None
    assert alert.upper is not None
    assert alert.centre is not None
    usual = f"Mittel der {alert.baseline_weeks} Vorwochen {number(alert.centre)}"
    if alert.status == "in_control":
        return (
            f"{label}: Woche {alert.week} im üblichen Bereich: {number(alert.mean)} "
            f"(n = {alert.n}), Kontrollgrenzen {number(alert.lower)} bis {number(alert.upper)}; "
            f"{usual}."
        )
    above = alert.mean > alert.upper
    bound = (
        f"über der oberen Kontrollgrenze {number(alert.upper)}"
        if above
        else f"unter der unteren Kontrollgrenze {number(alert.lower)}"
    )
    judged = "schlechter" if alert.verdict == "worse" else "besser"
    return (
        f"{label}: In der Woche {alert.week} lag der Mittelwert mit {number(alert.mean)} "
        f"(n = {alert.n}) {bound}, also deutlich {judged} als üblich für dieses Büro "
        f"({usual}; {polarity_note(item)})."
    )


def kiosk_row(kiosk: KioskInfo, zone: ZoneInfo) -> dict[str, Any]:
    if kiosk.revoked:
        status = "gesperrt"
    elif not kiosk.paired:
        status = "noch nicht gekoppelt"
    elif kiosk.silent:
        minutes = int(SILENT_AFTER.total_seconds() // 60)
        status = f"still: seit über {minutes} Minuten kein Lebenszeichen"
    else:
        status = "in Betrieb"
    heartbeat = (
        kiosk.last_heartbeat.astimezone(zone).strftime("%d.%m.%Y %H:%M")
        if kiosk.last_heartbeat
        else "noch nie"
    )
    return {
        "name": kiosk.name,
        "placement": kiosk.placement or "–",
        "status": status,
        "silent": kiosk.silent,
        "heartbeat": heartbeat,
        "queue": "–" if kiosk.queue_length is None else str(kiosk.queue_length),
    }


# -- charts (aggregated rows only) ----------------------------------------------------------


def trend_chart(rows: list[dict[str, Any]], weeks: list[str], order: list[str]) -> charts.Chart:
    """Weekly means with 95 % interval bars, one small panel per item."""
    data = alt.Data(values=rows)  # type: ignore[no-untyped-call]
    x = alt.X("week:O", title=None, scale=alt.Scale(domain=weeks))
    y = alt.Y("mean:Q", title="Mittelwert (1–5)", scale=alt.Scale(domain=[1, 5]))
    base = alt.Chart(data).encode(x=x)
    bars = base.mark_errorbar(ticks=True, color="#555555").encode(
        y=alt.Y("ci_low:Q", title="Mittelwert (1–5)", scale=alt.Scale(domain=[1, 5])),
        y2="ci_high:Q",
    )
    line = base.mark_line(point=True, color=charts.GROUP_COLOURS[0]).encode(y=y)
    return (
        alt.layer(bars, line, data=data)
        .properties(width=520, height=110)
        .facet(row=alt.Row("item:N", title=None, sort=order))
        .properties(title="Wochenmittel mit 95-%-Intervall")
    )


def control_chart(rows: list[dict[str, Any]], order: list[str]) -> charts.Chart:
    """Control chart per item: weekly means, the centre line and the limits for each week."""
    data = alt.Data(values=rows)  # type: ignore[no-untyped-call]
    base = alt.Chart(data).encode(x=alt.X("week:O", title=None, sort=None))
    limits = base.mark_rule(color="#9e9e9e", strokeWidth=6, opacity=0.6).encode(
        y=alt.Y("lower:Q", title="Mittelwert", scale=alt.Scale(zero=False)), y2="upper:Q"
    )
    centre = base.mark_line(color="#555555", strokeDash=[4, 3]).encode(y="centre:Q")
    points = base.mark_point(filled=True, size=50).encode(
        y="mean:Q",
        color=alt.Color(
            "position:N",
            title=None,
            scale=alt.Scale(domain=list(POSITIONS), range=[charts.GROUP_COLOURS[0], "#b2182b"]),
        ),
        shape=alt.Shape("position:N", title=None, scale=alt.Scale(domain=list(POSITIONS))),
    )
    return (
        alt.layer(limits, centre, points, data=data)
        .properties(width=520, height=110)
        .facet(row=alt.Row("item:N", title=None, sort=order))
        .properties(title="Kontrollkarte: Wochenmittel, Mittellinie und Kontrollgrenzen")
    )


FAVOURABILITY: Final = ("sehr ungünstig", "ungünstig", "mittel", "günstig", "sehr günstig")


def favourable_distribution_chart(counts: list[dict[str, Any]]) -> charts.Chart:
    """Diverging bars of the five answers, ordered from unfavourable (left) to favourable.

    ``counts`` (label, value, count) must already have stress items mirrored, so that value 5
    is the favourable end for every item; the legend then names favourability, not answers.
    """
    segments = [
        dict(row, grade=FAVOURABILITY[int(row["value"]) - 1])
        for row in charts.diverging_rows(counts)
    ]
    data = alt.Data(values=segments)  # type: ignore[no-untyped-call]
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("label:N", title=None, sort=None),
            x=alt.X("start:Q", title="Anteil der Antworten", axis=alt.Axis(format="%")),
            x2="end:Q",
            color=alt.Color(
                "grade:N",
                title="Antwort",
                scale=alt.Scale(domain=list(FAVOURABILITY), range=list(charts.LIKERT_COLOURS)),
            ),
            tooltip=["label:N", "grade:N", alt.Tooltip("share:Q", format=".0%")],
        )
        .properties(title="Verteilung der Antworten", width=480)
    )


def svg(chart: charts.Chart) -> str:
    rendered: str = vl_convert.vegalite_to_svg(chart.to_json())
    return rendered


# -- the page ------------------------------------------------------------------------------


class PageData(msgspec.Struct, frozen=True, kw_only=True):
    summary: OfficeSummary
    comments: WeekComments
    kiosks: list[KioskInfo]


def build_page(
    summary: OfficeSummary,
    comments: WeekComments,
    kiosks: list[KioskInfo],
    survey: Survey,
    *,
    zone: ZoneInfo,
    running: dt.date,
    hourly: bool,
) -> dict[str, Any]:
    """Everything the template shows, worded and drawn (charts as SVG strings)."""
    k = summary.k
    items = summary_items(survey)
    by_id = {item.id: item for item in items}
    labels = item_labels(items)
    order = [labels[item.id] for item in items]

    comparison = [
        {
            "label": labels[row.item],
            "question": by_id[row.item].text_for("de", survey.default_lang).text,
            "polarity": polarity_note(by_id[row.item]),
            "this_week": stat_text(row.this_week, k),
            "previous": stat_text(row.previous_weeks, k),
            "peers": stat_text(row.peers, k),
        }
        for row in summary.comparison
    ]

    trend_rows: list[dict[str, Any]] = []
    trend_table = {week: {item.id: "keine Antworten" for item in items} for week in summary.weeks}
    for trend in summary.items:
        for cell in trend.cells:
            trend_table[cell.week][trend.item] = stat_text(cell, k)
            if not cell.suppressed and cell.mean is not None:
                trend_rows.append(
                    {
                        "item": labels[trend.item],
                        "week": cell.week,
                        "mean": cell.mean,
                        "ci_low": cell.ci_low,
                        "ci_high": cell.ci_high,
                        "n": cell.n,
                    }
                )

    heat = summary.heatmap
    heat_hours = sorted({c.hour for c in heat.cells})
    heat_days = sorted({c.weekday for c in heat.cells})
    heat_lookup = {(c.weekday, c.hour): c for c in heat.cells}
    heat_table = [
        {
            "day": WEEKDAY_NAMES[day - 1],
            "cells": [
                "–"
                if (day, hour) not in heat_lookup
                else "< k"
                if heat_lookup[(day, hour)].suppressed
                else f"{number(heat_lookup[(day, hour)].mean or 0.0, 1)} "
                f"(n = {heat_lookup[(day, hour)].n})"
                for hour in heat_hours
            ],
        }
        for day in heat_days
    ]
    heat_rows = [
        {"weekday": c.weekday, "hour": c.hour, "mean": c.mean, "n": c.n} for c in heat.cells
    ]

    distribution_counts: list[dict[str, Any]] = []
    distribution_table: list[dict[str, Any]] = []
    for found in summary.distribution:
        item = by_id[found.item]
        if found.suppressed or not found.counts or not found.n:
            distribution_table.append(
                {"label": labels[found.item], "n": None, "suppressed": found.suppressed}
            )
            continue
        # Drawn with the favourable answers on the right for every item: for stress items
        # (lower is better) the scale is mirrored, 1 = "not tense" becomes the right end.
        mirrored = item.polarity == "lower_is_better"
        distribution_counts += [
            {
                "label": labels[found.item],
                "value": 6 - value if mirrored else value,
                "count": count,
            }
            for value, count in enumerate(found.counts, start=1)
        ]
        distribution_table.append(
            {
                "label": labels[found.item],
                "n": found.n,
                "shares": [f"{number(100 * c / found.n, 0)} %" for c in found.counts],
                "suppressed": False,
                "scale": scale_text(item, survey),
            }
        )

    alerts = []
    control_rows: list[dict[str, Any]] = []
    for alert in summary.alerts:
        item = by_id[alert.item]
        alerts.append(
            {
                "status": alert.status,
                "verdict": alert.verdict,
                "text": alert_text(alert, labels[alert.item], item, k),
            }
        )
        if alert.centre is None:
            continue
        for point in alert.points:
            outside = (
                point.lower is not None
                and point.upper is not None
                and not point.lower <= point.mean <= point.upper
            )
            control_rows.append(
                {
                    "item": labels[alert.item],
                    "week": point.week,
                    "mean": point.mean,
                    "n": point.n,
                    "lower": point.lower,
                    "upper": point.upper,
                    "centre": alert.centre,
                    "position": "außerhalb" if outside else "innerhalb",
                }
            )

    selected = summary.week_start
    previous = week_label(selected - dt.timedelta(weeks=1))
    following = week_label(selected + dt.timedelta(weeks=1)) if selected < running else None
    peer = summary.peer_group
    if peer is None:
        peer_text = "Es gibt kein anderes Büro desselben Typs oder derselben Art."
    elif peer.basis == "type_label":
        peer_text = f"{peer.offices} andere(s) Büro(s) vom Typ „{peer.label}“"
    else:
        peer_text = f"{peer.offices} andere {KIND_LABELS.get(peer.label, peer.label)}"

    return {
        "summary": summary,
        "k": k,
        "labels": labels,
        "comparison": comparison,
        "previous_weeks": len(summary.weeks) - 1,
        "peer_text": peer_text,
        "trend_svg": svg(trend_chart(trend_rows, summary.weeks, order)) if trend_rows else None,
        "trend_table": trend_table,
        "item_ids": [item.id for item in items],
        "heat_svg": svg(charts.heatmap_chart(heat_rows, "Anspannung nach Wochentag und Uhrzeit"))
        if any(not c.suppressed for c in heat.cells)
        else None,
        "heat_hours": heat_hours,
        "heat_table": heat_table,
        "heat_weeks": heat.weeks,
        "distribution_svg": svg(favourable_distribution_chart(distribution_counts))
        if distribution_counts
        else None,
        "distribution_table": distribution_table,
        "alerts": alerts,
        "alert_count": sum(1 for a in alerts if a["status"] == "alert"),
        "control_svg": svg(control_chart(control_rows, order)) if control_rows else None,
        "control_rows": control_rows,
        "false_alarm": number(100 * spc.false_alarm_rate(), 2),
        "min_baseline": spc.MIN_BASELINE_WEEKS,
        "baseline_weeks": spc.BASELINE_WEEKS,
        "comments": comments,
        "kiosks": [kiosk_row(kiosk, zone) for kiosk in kiosks],
        "previous_week": previous,
        "next_week": following,
        "current_week": week_label(running),
        "hourly": hourly,
    }


@get("/dashboard/office/{office_id:str}", opt={"access": "office"})
async def office_dashboard(
    request: Request[Any, Any, Any],
    state: State,
    office_id: FromPath[str],
    week: FromQuery[str | None] = None,
) -> Response[str]:
    """One office's week: means against earlier weeks and peers, stress by hour, alerts."""
    principal = await require_principal(request)
    runtime: Runtime = state.runtime
    settings = runtime.settings
    try:
        selected, running = selected_week(week or None, settings.zone)
    except WeekError:
        return message_page(
            request,
            400,
            "Ungültige Woche",
            [
                "Bitte eine Kalenderwoche in der Form JJJJ-Www wählen (zum Beispiel 2026-W07), "
                "die nicht in der Zukunft liegt."
            ],
        )
    survey = runtime.surveys.latest(settings.default_survey)
    assert survey is not None  # the runtime refuses to open without its default survey
    now = dt.datetime.now(dt.UTC)

    def read(cur: Cursor) -> PageData | None:
        summary = office_summary(
            cur,
            office_id=office_id,
            survey=survey,
            k=settings.min_group_size,
            selected=selected,
            weeks=DEFAULT_WEEKS,
            today=running,
            open_from=open_bucket(settings),
        )
        if summary is None:
            return None
        return PageData(
            summary=summary,
            comments=week_comments(cur, office_id, summary.week_start, summary.k, summary.complete),
            kiosks=[kiosk for kiosk in list_kiosks(cur, now) if kiosk.office == office_id],
        )

    found = await anyio.to_thread.run_sync(lambda: runtime.store.read(read))
    if found is None:
        raise NotFoundException(f"Es gibt kein Büro {office_id!r}.")
    # Rendering the charts takes a while (vl-convert): off the event loop.
    values = await anyio.to_thread.run_sync(
        lambda: build_page(
            found.summary,
            found.comments,
            found.kiosks,
            survey,
            zone=settings.zone,
            running=running,
            hourly=settings.time_granularity == "hour",
        )
    )
    await audit.log(
        runtime, principal.name, "view.dashboard", office_id, f"week={found.summary.week}"
    )
    return renderer(request).render(
        request,
        "dashboard_office.html",
        page_title=f"{found.summary.office.name}: Woche {found.summary.week}",
        **values,
    )


router = Router(
    path="/",
    route_handlers=[office_dashboard],
    exception_handlers=STAFF_EXCEPTION_HANDLERS,
    include_in_schema=False,
)
