"""Pages for evaluators: the offices overview, reports on the site and as files, API tokens.

Reports are built from the specifications in ``analytics/reports/`` (see :mod:`officepulse.report`)
with the parameters an evaluator picks in a form. On the site a report is a staff page with its
numbers in tables and its charts as server-rendered SVG images (the self-contained report file
carries inline script and style, which the staff pages' policy forbids); as a download it is
the report file itself (HTML, PDF, JSON) or its aggregate tables (CSV, Parquet), never a
response. Every view and every download is audited.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

import anyio.to_thread
import duckdb
import msgspec
from litestar import Request, Response, Router, get, post
from litestar.datastructures import MultiDict, State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from officepulse import accounts, audit, report
from officepulse.aggregates import EXCLUDED_FLAGS
from officepulse.auth import Principal, require_principal
from officepulse.content import content_dir
from officepulse.languages import LANGUAGES
from officepulse.offices import UNKNOWN_PLACEMENT, Office, list_offices, office_placements
from officepulse.report import FilterSpec, Groups, GroupSpec, Report, ReportSpec
from officepulse.runtime import Runtime
from officepulse.staff import STAFF_EXCEPTION_HANDLERS, message_page, renderer
from officepulse.storage import Cursor

KIND_LABELS: Final = {"pilot": "Pilot", "conventional": "Herkömmlich"}
CHANNEL_LABELS: Final = {"qr": "QR-Code (Telefon)", "kiosk": "Kiosk-Tablet", "web": "Web"}
SPEC_NAME_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
DATE_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_LABEL: Final = 60
RECENT_DAYS: Final = 28
# Media type of each download (Litestar adds "; charset=utf-8" to text types).
DOWNLOADS: Final[dict[str, str]] = {
    "html": "text/html",
    "pdf": "application/pdf",
    "json": "application/json",
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
}
# A downloaded report must never run on our origin: the HTML file carries the Vega scripts
# inline, so it is an attachment and sandboxed should a browser render it anyway.
DOWNLOAD_HEADERS: Final = {
    "Content-Security-Policy": "sandbox",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _runtime(state: State) -> Runtime:
    runtime: Runtime = state.runtime
    return runtime


def shown_count(n: int, k: int) -> str:
    """A count as staff may see it: below *k* only "< k", never the small number itself."""
    return str(n) if n >= k else f"< {k}"


def _num(value: float | None, digits: int = 2, signed: bool = False) -> str:
    """A number the German way (decimal comma); "–" for a missing one."""
    if value is None:
        return "–"
    text = f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return text.replace(".", ",").replace("-", "−")


def _interval(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "–"
    return f"{_num(low)} … {_num(high)}"


def _p(value: float | None) -> str:
    if value is None:
        return "–"
    return "< 0,001" if value < 0.001 else _num(value, 3)


# -- the offices overview ------------------------------------------------------------------------

_OVERVIEW_SQL: Final = """
SELECT office_id,
       count(*) AS total,
       count(*) FILTER (received_at >= $since) AS recent,
       strftime(min(received_at), 'KW %V/%G') AS first_week,
       strftime(max(received_at), 'KW %V/%G') AS last_week
FROM responses
WHERE list_contains($offices, office_id) AND NOT list_has_any(flags, $excluded)
GROUP BY office_id
"""


class OfficeRow(msgspec.Struct, frozen=True, kw_only=True):
    """One office of the overview, with its counts already made safe to show."""

    office: Office
    kind: str
    total: str
    recent: str
    first_week: str
    last_week: str


def office_overview(
    cur: Cursor, visible: frozenset[str], since: dt.datetime, k: int
) -> list[OfficeRow]:
    """The offices in ``visible`` with response counts (flagged responses left out)."""
    offices = [o for o in list_offices(cur) if o.id in visible]
    found = {
        row[0]: row[1:]
        for row in cur.execute(
            _OVERVIEW_SQL,
            {"offices": [o.id for o in offices], "since": since, "excluded": list(EXCLUDED_FLAGS)},
        ).fetchall()
    }
    rows = []
    for office in offices:
        total, recent, first_week, last_week = found.get(office.id, (0, 0, None, None))
        # The weeks of an office with fewer than k responses would date those few responses.
        dated = total >= k
        rows.append(
            OfficeRow(
                office=office,
                kind=KIND_LABELS.get(office.kind, office.kind),
                total=shown_count(int(total), k),
                recent=shown_count(int(recent), k),
                first_week=first_week if dated and first_week else "–",
                last_week=last_week if dated and last_week else "–",
            )
        )
    return rows


@get("/dashboard/offices", opt={"access": "login"})
async def offices_page(request: Request[Any, Any, Any], state: State) -> Response[str]:
    """All offices the account may see, with counts and links to their dashboards."""
    principal = await require_principal(request)
    runtime = _runtime(state)
    k = runtime.settings.min_group_size
    today = dt.datetime.now(runtime.settings.zone).date()
    # received_at is local wall-clock time without a zone: compare with local midnight.
    since = dt.datetime.combine(today - dt.timedelta(days=RECENT_DAYS - 1), dt.time())
    visible = principal.visible_offices(runtime.office_ids)
    rows = await anyio.to_thread.run_sync(
        lambda: runtime.store.read(lambda cur: office_overview(cur, visible, since, k))
    )
    await audit.log(runtime, principal.name, "view.dashboard", "offices")
    return renderer(request).render(
        request,
        "evaluate_offices.html",
        page_title="Standorte",
        rows=rows,
        k=k,
        recent_days=RECENT_DAYS,
        synthetic=any(row.office.synthetic for row in rows),
        evaluator=principal.role in ("evaluator", "admin"),
    )


# -- report specifications ---------------------------------------------------------------------


class SpecEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A shipped report specification, or the one-line reason it does not load."""

    name: str
    title: str
    description: str
    spec: ReportSpec | None = None
    error: str | None = None


def reports_dir() -> Path:
    """The folder of report specifications in force."""
    return content_dir("analytics") / "reports"


def _description(text: str) -> str:
    """The comment block at the top of a specification file: what the report is for."""
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            lines.append(line.lstrip("#").strip())
        elif line.strip() or lines:
            break
    return " ".join(lines)


def available_specs(runtime: Runtime) -> dict[str, SpecEntry]:
    """Every specification of the reports folder by name (the file name without ``.toml``).

    Only names found here are ever opened: a name from a URL is looked up, never used as a path.
    """
    survey = runtime.surveys.latest(runtime.settings.default_survey)
    assert survey is not None
    found: dict[str, SpecEntry] = {}
    folder = reports_dir()
    for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
        if not SPEC_NAME_RE.match(path.stem):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            spec = report.load_spec(path, survey)
        except report.ReportSpecError as exc:
            found[path.stem] = SpecEntry(
                name=path.stem, title=path.stem, description=_description(text), error=str(exc)
            )
            continue
        found[path.stem] = SpecEntry(
            name=path.stem, title=spec.title, description=_description(text), spec=spec
        )
    return found


def _spec(runtime: Runtime, name: str) -> SpecEntry:
    entry = available_specs(runtime).get(name) if SPEC_NAME_RE.match(name) else None
    if entry is None:
        raise NotFoundException("Diesen Bericht gibt es nicht.")
    return entry


# -- the report form ---------------------------------------------------------------------------


class Choices(msgspec.Struct, frozen=True, kw_only=True):
    """What the form offers: offices, their type labels, placements, languages."""

    offices: list[Office]
    type_labels: list[str]
    placements: list[str]
    languages: dict[str, str]


def load_choices(cur: Cursor) -> Choices:
    offices = list_offices(cur)
    placements = {p for places in office_placements(cur).values() for p in places}
    return Choices(
        offices=offices,
        type_labels=sorted({o.type_label for o in offices if o.type_label}),
        placements=sorted(placements | {UNKNOWN_PLACEMENT}),
        languages={tag: lang.native_name for tag, lang in LANGUAGES.items()},
    )


class FormValues(msgspec.Struct, kw_only=True):
    """The report parameters as the form shows them (strings, as typed)."""

    date_from: str = ""
    date_to: str = ""
    a_label: str
    a_by: str
    a_offices: list[str]
    b_label: str
    b_by: str
    b_offices: list[str]
    include_flagged: bool
    verified_only: bool
    channel: str = ""
    lang: str = ""
    placement: str = ""

    def pairs(self) -> list[tuple[str, str]]:
        """The values as query parameters, in the form's names."""
        pairs = [("sent", "1"), ("from", self.date_from), ("to", self.date_to)]
        for side in ("a", "b"):
            pairs += [(f"{side}_label", getattr(self, f"{side}_label"))]
            pairs += [(f"{side}_by", getattr(self, f"{side}_by"))]
            pairs += [(f"{side}_office", o) for o in getattr(self, f"{side}_offices")]
        if self.include_flagged:
            pairs.append(("include_flagged", "1"))
        if self.verified_only:
            pairs.append(("verified_only", "1"))
        pairs += [("channel", self.channel), ("lang", self.lang), ("placement", self.placement)]
        return pairs

    def query(self) -> str:
        return urlencode(self.pairs())


def _group_by(group: GroupSpec) -> tuple[str, list[str]]:
    if group.kind is not None:
        return f"kind:{group.kind}", []
    if group.type is not None:
        return f"type:{group.type}", []
    return "offices", list(group.offices or [])


def default_values(spec: ReportSpec) -> FormValues:
    """The form as the specification sets it."""
    a_by, a_offices = _group_by(spec.groups.a)
    b_by, b_offices = _group_by(spec.groups.b)
    return FormValues(
        a_label=spec.groups.a.label,
        a_by=a_by,
        a_offices=a_offices,
        b_label=spec.groups.b.label,
        b_by=b_by,
        b_offices=b_offices,
        include_flagged=spec.filters.include_flagged,
        verified_only=spec.filters.verified_only,
        channel=spec.filters.channel or "",
        lang=spec.filters.lang or "",
        placement=spec.filters.placement or "",
    )


def read_values(query: MultiDict[Any], spec: ReportSpec) -> FormValues:
    """The parameters of a request, the specification's defaults for those not given.

    ``sent=1`` marks a submitted form: then a missing checkbox means "off" (browsers send
    nothing for an unticked box); a bare link keeps the specification's settings.
    """
    values = default_values(spec)

    def text(name: str, current: str) -> str:
        given = query.get(name)
        return current if given is None else str(given).strip()[:200]

    submitted = query.get("sent") == "1"
    return FormValues(
        date_from=text("from", values.date_from),
        date_to=text("to", values.date_to),
        a_label=text("a_label", values.a_label),
        a_by=text("a_by", values.a_by),
        a_offices=[str(o)[:100] for o in query.getall("a_office", [])][:200]
        if "a_by" in query
        else values.a_offices,
        b_label=text("b_label", values.b_label),
        b_by=text("b_by", values.b_by),
        b_offices=[str(o)[:100] for o in query.getall("b_office", [])][:200]
        if "b_by" in query
        else values.b_offices,
        include_flagged=query.get("include_flagged") == "1"
        if submitted
        else values.include_flagged,
        verified_only=query.get("verified_only") == "1" if submitted else values.verified_only,
        channel=text("channel", values.channel),
        lang=text("lang", values.lang),
        placement=text("placement", values.placement),
    )


class Parameters(msgspec.Struct, frozen=True, kw_only=True):
    """Checked parameters: the specification as the evaluator changed it, and the period."""

    spec: ReportSpec
    date_from: dt.date | None
    date_to: dt.date | None


def _date(value: str, field: str, errors: dict[str, str]) -> dt.date | None:
    if not value:
        return None
    try:
        if not DATE_RE.match(value):
            raise ValueError(value)
        day = dt.date.fromisoformat(value)
    except ValueError:
        errors[field] = "Bitte ein gültiges Datum im Format JJJJ-MM-TT angeben."
        return None
    if not 2000 <= day.year <= 2099:
        errors[field] = "Das Datum muss zwischen 2000 und 2099 liegen."
        return None
    return day


def _group(
    values: FormValues, side: str, choices: Choices, errors: dict[str, str]
) -> dict[str, Any] | None:
    name = "A" if side == "a" else "B"
    label: str = getattr(values, f"{side}_label")
    by: str = getattr(values, f"{side}_by")
    chosen: list[str] = getattr(values, f"{side}_offices")
    if not label or len(label) > MAX_LABEL or not label.isprintable():
        errors[f"{side}_label"] = f"Gruppe {name}: eine Bezeichnung mit 1 bis {MAX_LABEL} Zeichen."
    kind, _, rest = by.partition(":")
    group: dict[str, Any] = {"label": label}
    if kind == "kind" and rest in KIND_LABELS:
        group["kind"] = rest
        members = [o for o in choices.offices if o.kind == rest]
    elif kind == "type" and rest in choices.type_labels:
        group["type"] = rest
        members = [o for o in choices.offices if o.type_label == rest]
    elif by == "offices":
        known = {o.id for o in choices.offices}
        unknown = [o for o in chosen if o not in known]
        if unknown:
            errors[f"{side}_office"] = (
                f"Gruppe {name}: unbekannter Standort {', '.join(unknown[:3])}."
            )
            return None
        if not chosen:
            errors[f"{side}_office"] = f"Gruppe {name}: bitte mindestens einen Standort ankreuzen."
            return None
        group["offices"] = list(dict.fromkeys(chosen))
        members = [o for o in choices.offices if o.id in chosen]
    else:
        errors[f"{side}_by"] = f"Gruppe {name}: bitte eine Auswahl aus der Liste treffen."
        return None
    if not members:
        errors[f"{side}_by"] = f"Gruppe {name}: zu dieser Auswahl gibt es keinen Standort."
        return None
    return group


def check_values(
    values: FormValues, spec: ReportSpec, choices: Choices
) -> tuple[Parameters | None, dict[str, str]]:
    """Check every parameter; the errors name the form field (German, for the page)."""
    errors: dict[str, str] = {}
    date_from = _date(values.date_from, "from", errors)
    date_to = _date(values.date_to, "to", errors)
    if date_from and date_to and date_from > date_to:
        errors["to"] = "Das Ende des Zeitraums liegt vor seinem Anfang."
    group_a = _group(values, "a", choices, errors)
    group_b = _group(values, "b", choices, errors)
    if group_a and group_b and values.a_label == values.b_label and "b_label" not in errors:
        # The report tells the groups apart by their labels.
        errors["b_label"] = "Die beiden Gruppen brauchen verschiedene Bezeichnungen."
    if values.channel and values.channel not in CHANNEL_LABELS:
        errors["channel"] = "Bitte einen Kanal aus der Liste wählen."
    if values.lang and values.lang not in choices.languages:
        errors["lang"] = "Bitte eine Sprache aus der Liste wählen."
    if values.placement and values.placement not in choices.placements:
        errors["placement"] = "Bitte einen Aufstellort aus der Liste wählen."
    if errors or group_a is None or group_b is None:
        return None, errors
    changed = msgspec.structs.replace(
        spec,
        groups=msgspec.convert({"a": group_a, "b": group_b}, Groups),
        filters=msgspec.convert(
            {
                "include_flagged": values.include_flagged,
                "verified_only": values.verified_only,
                "channel": values.channel or None,
                "lang": values.lang or None,
                "placement": values.placement or None,
            },
            FilterSpec,
        ),
    )
    return Parameters(spec=changed, date_from=date_from, date_to=date_to), errors


def _render_form(
    request: Request[Any, Any, Any],
    entry: SpecEntry,
    values: FormValues,
    choices: Choices,
    errors: dict[str, str],
) -> Response[str]:
    return renderer(request).render(
        request,
        "evaluate_form.html",
        status=422 if errors else 200,
        page_title=("Fehler: " if errors else "") + entry.title,
        entry=entry,
        values=values,
        choices=choices,
        errors=errors,
        kinds=KIND_LABELS,
        channels=CHANNEL_LABELS,
        formats=list(DOWNLOADS),
        synthetic=any(o.synthetic for o in choices.offices),
    )


class Prepared(msgspec.Struct, frozen=True, kw_only=True):
    entry: SpecEntry
    values: FormValues
    choices: Choices
    params: Parameters | None
    errors: dict[str, str]


async def _prepare(request: Request[Any, Any, Any], runtime: Runtime, name: str) -> Prepared:
    """The specification, the form values and their check (specification files read in a thread)."""
    entry = await anyio.to_thread.run_sync(_spec, runtime, name)
    if entry.spec is None:
        raise SpecBroken(entry)
    choices = await anyio.to_thread.run_sync(lambda: runtime.store.read(load_choices))
    values = read_values(request.query_params, entry.spec)
    params, errors = check_values(values, entry.spec, choices)
    return Prepared(entry=entry, values=values, choices=choices, params=params, errors=errors)


class SpecBroken(Exception):
    """The specification file does not load (a deployment error, shown as a page)."""

    def __init__(self, entry: SpecEntry) -> None:
        super().__init__(entry.error)
        self.entry = entry


def _broken_page(request: Request[Any, Any, Any], exc: SpecBroken) -> Response[str]:
    return message_page(
        request,
        500,
        "Berichtsdefinition fehlerhaft",
        [
            "Dieser Bericht kann nicht erstellt werden, weil seine Definition fehlerhaft ist:",
            exc.entry.error or "",
            "Bitte wenden Sie sich an die Administration.",
        ],
    )


@get("/dashboard/reports", opt={"access": "evaluator"})
async def reports_page(request: Request[Any, Any, Any], state: State) -> Response[str]:
    """The report specifications, each with a link to its form."""
    runtime = _runtime(state)
    entries = await anyio.to_thread.run_sync(available_specs, runtime)
    return renderer(request).render(
        request, "evaluate_reports.html", page_title="Berichte", entries=list(entries.values())
    )


@get("/dashboard/reports/{name:str}", opt={"access": "evaluator"})
async def report_form(
    request: Request[Any, Any, Any], state: State, name: FromPath[str]
) -> Response[str]:
    """The parameters of one report: period, groups, filters; buttons to view or download."""
    runtime = _runtime(state)
    try:
        prepared = await _prepare(request, runtime, name)
    except SpecBroken as exc:
        return _broken_page(request, exc)
    # A bare link shows the specification's settings without complaint; a sent form its errors.
    errors = prepared.errors if request.query_params.get("sent") == "1" else {}
    return _render_form(request, prepared.entry, prepared.values, prepared.choices, errors)


# -- the report on the site --------------------------------------------------------------------


class Table(msgspec.Struct, frozen=True, kw_only=True):
    """A table for a page: headers, rows of formatted cells, which columns are numbers."""

    caption: str
    headers: list[str]
    rows: list[list[str]]
    numeric: list[bool]
    notes: list[str] = []


class _Notes:
    """Caveats of a table's rows, each written once below the table and cited by number.

    The statistics repeat the same caveat for every item; in a column it would swamp the
    numbers.
    """

    def __init__(self) -> None:
        self.texts: list[str] = []

    def cite(self, text: str | None) -> str:
        if not text:
            return ""
        if text not in self.texts:
            self.texts.append(text)
        return f"Hinweis {self.texts.index(text) + 1}"


class ChartView(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    title: str
    svg: str
    table: Table


class ReportPage(msgspec.Struct, frozen=True, kw_only=True):
    """A built report with everything its page shows, formatted."""

    report: Report
    overview: list[tuple[str, str]]
    comparison: Table | None
    charts: list[ChartView]
    events: Table | None
    context: Table | None
    context_note: str | None
    methods: list[tuple[str, str]]


# Columns of each chart's table: (key in the chart's rows, German header, format).
_CHART_COLUMNS: Final[dict[str, list[tuple[str, str, str]]]] = {
    "comparison": [
        ("item", "Frage", "text"),
        ("group", "Gruppe", "text"),
        ("n", "n", "int"),
        ("mean", "Mittelwert", "num"),
        ("ci_low", "95 % von", "num"),
        ("ci_high", "95 % bis", "num"),
    ],
    "trend": [
        ("period", "Zeitraum ab", "text"),
        ("group", "Gruppe", "text"),
        ("n", "n", "int"),
        ("mean", "Mittelwert", "num"),
        ("ci_low", "95 % von", "num"),
        ("ci_high", "95 % bis", "num"),
    ],
    "distribution": [
        ("label", "Frage · Gruppe", "text"),
        ("value", "Antwort", "int"),
        ("share", "Anteil", "pct"),
    ],
    "heatmap": [
        ("day", "Wochentag", "text"),
        ("hour", "Stunde", "int"),
        ("n", "n", "int"),
        ("mean", "Mittelwert", "num"),
    ],
    "context": [
        ("office", "Standort", "text"),
        ("kind", "Gruppe", "text"),
        ("indicator", "Indikator", "num"),
        ("mean", "Mittelwert", "num"),
    ],
    "event": [
        ("offset", "Periode relativ zum Ereignis", "text"),
        ("estimate", "Schätzung", "signed"),
        ("ci_low", "95 % von", "num"),
        ("ci_high", "95 % bis", "num"),
    ],
}


def _chart_rows(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The aggregated rows a chart draws (inline data, possibly inside a layer)."""
    data = spec.get("data")
    if isinstance(data, dict) and isinstance(data.get("values"), list):
        return list(data["values"])
    for key in ("layer", "vconcat", "hconcat", "concat"):
        for part in spec.get(key, []):
            found = _chart_rows(part)
            if found:
                return found
    return []


def _cell(value: Any, kind: str, suppressed: bool) -> str:
    if kind == "text":
        return "–" if value is None else str(value)
    if suppressed or value is None:
        return "unter k" if suppressed else "–"
    if kind == "int":
        return str(int(value))
    if kind == "pct":
        return _num(100 * float(value), 1) + " %"
    return _num(float(value), signed=kind == "signed")


def chart_view(name: str, chart: Any) -> ChartView:
    """A chart as an SVG image plus a table of the very rows it draws."""
    import vl_convert

    spec_json = chart.to_json()
    spec = json.loads(spec_json)
    title = spec.get("title", name)
    title = title.get("text", name) if isinstance(title, dict) else str(title)
    columns = _CHART_COLUMNS.get(name.split("-", 1)[0], [])
    rows = _chart_rows(spec)
    table = Table(
        caption=f"Zahlen zum Diagramm „{title}“",
        headers=[header for _, header, _ in columns],
        rows=[
            [_cell(row.get(key), kind, bool(row.get("suppressed"))) for key, _, kind in columns]
            for row in rows
        ],
        numeric=[kind != "text" for _, _, kind in columns],
    )
    return ChartView(
        name=name, title=title, svg=str(vl_convert.vegalite_to_svg(spec_json)), table=table
    )


def _comparison_table(built: Report) -> Table:
    a, b = built.groups["a"]["label"], built.groups["b"]["label"]
    notes = _Notes()
    rows = []
    for c in built.comparisons:
        if c.get("suppressed"):
            rows.append([c["item"], *(["unter k"] * 9), "zu wenige Antworten"])
            continue
        rows.append(
            [
                c["item"],
                str(c["n_a"]),
                str(c["n_b"]),
                _num(c["mean_a"]),
                _num(c["mean_b"]),
                _num(c["diff"], signed=True),
                _interval(c["ci_low"], c["ci_high"]),
                _p(c["p_mann_whitney"]),
                _p(c.get("p_randomization")),
                _p(c.get("p_holm")),
                notes.cite(c.get("caveat")),
            ]
        )
    headers = [
        "Frage",
        f"n {a}",
        f"n {b}",
        f"Mittel {a}",
        f"Mittel {b}",
        "Differenz",
        "95 %-Intervall",
        "p (Mann-Whitney)",
        "p (Randomisierung)",
        "p (Holm)",
        "Hinweis",
    ]
    numeric = [False, *([True] * 9), False]
    return Table(
        caption=f"{a} gegenüber {b} je Frage",
        headers=headers,
        rows=rows,
        numeric=numeric,
        notes=notes.texts,
    )


def _events_table(built: Report) -> Table:
    notes = _Notes()
    rows = []
    for e in built.events:
        if e["period"] != "post":
            continue
        if e["estimate"] is None:
            rows.append([e["event"], e["item"], "–", "–", "–", "–", notes.cite(e.get("caveat"))])
            continue
        rows.append(
            [
                e["event"],
                e["item"],
                _num(e["estimate"], signed=True),
                _interval(e["ci_low"], e["ci_high"]),
                _p(e.get("p")),
                _p(e.get("pre_trend_p")),
                notes.cite(e.get("caveat")),
            ]
        )
    return Table(
        caption="Effekt je Ereignis und Frage (Differenz-von-Differenzen)",
        headers=["Ereignis", "Frage", "Effekt", "95 %-Intervall", "p", "Vortrend p", "Hinweis"],
        rows=rows,
        numeric=[False, False, True, True, True, True, False],
        notes=notes.texts,
    )


def _context_table(built: Report) -> Table:
    notes = _Notes()
    rows = []
    for a in built.context.get("adjusted", []):
        if "raw_diff" not in a:
            rows.append([a["item"], "–", "–", "–", "–", "–", notes.cite(a.get("caveat"))])
            continue
        rows.append(
            [
                a["item"],
                _num(a["raw_diff"], signed=True),
                _interval(*a["raw_ci"]),
                _num(a["adjusted_diff"], signed=True),
                _interval(*a["adjusted_ci"]),
                str(a["n_offices"]),
                notes.cite(a.get("caveat")),
            ]
        )
    return Table(
        caption="Standort-Mittelwerte: Unterschied roh und bereinigt um die Stadtteil-Indikatoren",
        headers=[
            "Frage",
            "Differenz roh",
            "95 %-Intervall",
            "Differenz bereinigt",
            "95 %-Intervall",
            "Standorte",
            "Hinweis",
        ],
        rows=rows,
        numeric=[False, True, True, True, True, True, False],
        notes=notes.texts,
    )


def report_page(built: Report) -> ReportPage:
    """Everything the report's page shows (charts rendered to SVG: call in a worker thread)."""
    counts = built.counts
    a, b = built.groups["a"], built.groups["b"]
    overview = [
        (a["label"], f"{len(a['offices'])} Standorte: {', '.join(a['offices']) or '–'}"),
        (b["label"], f"{len(b['offices'])} Standorte: {', '.join(b['offices']) or '–'}"),
        ("Zeitraum", f"{built.date_from or 'Anfang'} bis {built.date_to or 'heute'}"),
        ("Antworten", str(counts["responses"])),
        ("ausgeschlossene markierte Antworten", str(counts["excluded_flagged"])),
        ("vor Ort bestätigte Antworten", str(counts["verified_onsite"])),
    ]
    context = None
    context_note = None
    if "context" in built.sections:
        if built.context.get("available"):
            context = _context_table(built)
            neighbours = built.context.get("neighbours") or {}
            if neighbours:
                context_note = "Ähnlichste herkömmliche Standorte: " + "; ".join(
                    f"{pilot} → {', '.join(others)}" for pilot, others in neighbours.items()
                )
        else:
            context_note = "Für diesen Vergleich sind keine Stadtteil-Indikatoren zugeordnet."
    methods = [
        (key, ", ".join(map(str, value)) if isinstance(value, list) else str(value))
        for key, value in built.methods.items()
    ]
    methods.append(("erstellt mit", built.generated_with))
    return ReportPage(
        report=built,
        overview=overview,
        comparison=_comparison_table(built) if "comparison" in built.sections else None,
        charts=[chart_view(name, chart) for name, chart in report.report_charts(built)],
        events=_events_table(built) if "before_after" in built.sections else None,
        context=context,
        context_note=context_note,
        methods=methods,
    )


def _build(runtime: Runtime, params: Parameters) -> Report:
    return report.build_report(runtime, params.spec, params.date_from, params.date_to)


@get("/dashboard/reports/{name:str}/view", opt={"access": "evaluator"})
async def report_view(
    request: Request[Any, Any, Any], state: State, name: FromPath[str]
) -> Response[str]:
    """The report on the site: tables and SVG charts, built in a worker thread."""
    principal = await require_principal(request)
    runtime = _runtime(state)
    try:
        prepared = await _prepare(request, runtime, name)
    except SpecBroken as exc:
        return _broken_page(request, exc)
    params = prepared.params
    if params is None:
        return _render_form(
            request, prepared.entry, prepared.values, prepared.choices, prepared.errors
        )
    page = await anyio.to_thread.run_sync(lambda: report_page(_build(runtime, params)))
    query = prepared.values.query()
    await audit.log(runtime, principal.name, "view.report", name, query)
    return renderer(request).render(
        request,
        "evaluate_report.html",
        page_title=prepared.entry.title,
        entry=prepared.entry,
        page=page,
        query=query,
        formats=list(DOWNLOADS),
    )


# -- downloads ---------------------------------------------------------------------------------

# The one table of a report's aggregates for CSV and Parquet: every section in long form.
# (name, DuckDB type); rows leave a column empty where it does not apply.
TABLE_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("section", "VARCHAR"),
    ("item", "VARCHAR"),
    ("grp", "VARCHAR"),
    ("period", "VARCHAR"),
    ("weekday", "INTEGER"),
    ("hour", "INTEGER"),
    ("answer", "INTEGER"),
    ("n", "BIGINT"),
    ("count", "BIGINT"),
    ("mean", "DOUBLE"),
    ("estimate", "DOUBLE"),
    ("ci_low", "DOUBLE"),
    ("ci_high", "DOUBLE"),
    ("p", "DOUBLE"),
    ("p_randomization", "DOUBLE"),
    ("p_holm", "DOUBLE"),
    ("suppressed", "BOOLEAN"),
    ("note", "VARCHAR"),
)


def report_table_rows(built: Report) -> list[dict[str, Any]]:
    """The report's aggregates as rows: only what the report itself shows (k applied)."""
    rows: list[dict[str, Any]] = []
    for c in built.comparisons:
        if c.get("suppressed"):
            rows.append({"section": "comparison", "item": c["item"], "suppressed": True})
            continue
        for side in ("a", "b"):
            low, high = c[f"mean_ci_{side}"]
            rows.append(
                {
                    "section": "comparison",
                    "item": c["item"],
                    "grp": c[f"group_{side}"],
                    "n": c[f"n_{side}"],
                    "mean": c[f"mean_{side}"],
                    "ci_low": low,
                    "ci_high": high,
                }
            )
        rows.append(
            {
                "section": "comparison",
                "item": c["item"],
                "grp": f"{c['group_a']} - {c['group_b']}",
                "estimate": c["diff"],
                "ci_low": c["ci_low"],
                "ci_high": c["ci_high"],
                "p": c["p_mann_whitney"],
                "p_randomization": c.get("p_randomization"),
                "p_holm": c.get("p_holm"),
                "note": c.get("caveat"),
            }
        )
    for t in built.trends:
        rows.append(
            {
                "section": "trend",
                "item": t["item"],
                "grp": t["group"],
                "period": t["period"],
                **{key: t.get(key) for key in ("n", "mean", "ci_low", "ci_high")},
                "suppressed": t["suppressed"],
            }
        )
    for d in built.distribution:
        rows.append(
            {
                "section": "distribution",
                "item": d["item"],
                "grp": d["group"],
                "answer": d["value"],
                "count": d["count"],
            }
        )
    for h in built.heatmap:
        rows.append(
            {
                "section": "heatmap",
                "item": "stress_now",
                "weekday": h["weekday"],
                "hour": h["hour"],
                "n": h["n"],
                "mean": h["mean"],
                "suppressed": h["suppressed"],
            }
        )
    for e in built.events:
        rows.append(
            {
                "section": "before_after",
                "item": e["item"],
                "grp": e["event"],
                "period": str(e["period"]),
                "n": e.get("n"),
                "estimate": e["estimate"],
                "ci_low": e["ci_low"],
                "ci_high": e["ci_high"],
                "p": e.get("p"),
                "note": e.get("caveat"),
            }
        )
    for a in built.context.get("adjusted", []):
        if "raw_diff" not in a:
            rows.append({"section": "context", "item": a["item"], "note": a.get("caveat")})
            continue
        for kind in ("raw", "adjusted"):
            low, high = a[f"{kind}_ci"]
            rows.append(
                {
                    "section": f"context_{kind}",
                    "item": a["item"],
                    "estimate": a[f"{kind}_diff"],
                    "ci_low": low,
                    "ci_high": high,
                    "note": a.get("caveat"),
                }
            )
    return [{**row, "suppressed": bool(row.get("suppressed"))} for row in rows]


def _literal(path: Path) -> str:
    # COPY takes its target as a literal, not a parameter: quote it as an SQL string.
    return "'" + str(path).replace("'", "''") + "'"


def report_table_file(built: Report, fmt: str) -> bytes:
    """The report's aggregates as CSV or Parquet, written by DuckDB (no pyarrow needed).

    A private in-memory DuckDB does the writing: the rows are already aggregated and
    suppressed, so nothing here touches the responses.
    """
    rows = report_table_rows(built)
    # Only the fixed column names and types above are formatted into the SQL; values are
    # parameters.
    select = ", ".join(f"unnest(${name}::{kind}[]) AS {name}" for name, kind in TABLE_COLUMNS)
    params = {name: [row.get(name) for row in rows] for name, _ in TABLE_COLUMNS}
    options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
    with tempfile.TemporaryDirectory(prefix="officepulse-report-") as folder:
        out = Path(folder) / f"report.{fmt}"
        with duckdb.connect(":memory:") as conn:
            conn.execute(f"COPY (SELECT {select}) TO {_literal(out)} ({options})", params)
        return out.read_bytes()


def render_download(built: Report, fmt: str) -> bytes:
    """A report file in one of :data:`DOWNLOADS`."""
    renderers: dict[str, Callable[[Report], bytes]] = {
        "html": lambda r: report.render_html(r).encode("utf-8"),
        "pdf": report.render_pdf,
        "json": report.render_json,
        "csv": lambda r: report_table_file(r, "csv"),
        "parquet": lambda r: report_table_file(r, "parquet"),
    }
    return renderers[fmt](built)


def download_name(name: str, params: Parameters, fmt: str) -> str:
    """``officepulse-<report>-<from>-bis-<to>.<ext>``: ASCII only, safe in a header."""
    start = params.date_from.isoformat() if params.date_from else "anfang"
    end = params.date_to.isoformat() if params.date_to else "heute"
    return f"officepulse-{name}-{start}-bis-{end}.{fmt}"


@get("/dashboard/reports/{name:str}/download", opt={"access": "evaluator"})
async def report_download(
    request: Request[Any, Any, Any], state: State, name: FromPath[str]
) -> Response[Any]:
    """The report as a file: html, pdf, json, or its aggregate tables as csv or parquet."""
    principal = await require_principal(request)
    runtime = _runtime(state)
    try:
        prepared = await _prepare(request, runtime, name)
    except SpecBroken as exc:
        return _broken_page(request, exc)
    fmt = str(request.query_params.get("format") or "")
    errors = dict(prepared.errors)
    if fmt not in DOWNLOADS:
        errors["format"] = "Bitte ein Dateiformat wählen: " + ", ".join(DOWNLOADS) + "."
    params = prepared.params
    if errors or params is None:
        return _render_form(request, prepared.entry, prepared.values, prepared.choices, errors)
    data = await anyio.to_thread.run_sync(lambda: render_download(_build(runtime, params), fmt))
    await audit.log(runtime, principal.name, "export.report", name, fmt)
    filename = download_name(name, params, fmt)
    return Response(
        data,
        media_type=DOWNLOADS[fmt],
        headers={
            **DOWNLOAD_HEADERS,
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )


# -- API tokens --------------------------------------------------------------------------------


def _tokens_of(runtime: Runtime, principal: Principal) -> list[accounts.ApiToken]:
    # Administrators see (and may revoke) every account's tokens; everyone else their own.
    owner = None if principal.role == "admin" else principal.name
    return runtime.store.read(lambda cur: accounts.list_tokens(cur, owner))


def _example_office(runtime: Runtime, principal: Principal) -> str:
    visible = sorted(principal.visible_offices(runtime.office_ids))
    return visible[0] if visible else "{office}"


async def _tokens_response(
    request: Request[Any, Any, Any],
    runtime: Runtime,
    principal: Principal,
    *,
    status: int = 200,
    new_token: accounts.NewToken | None = None,
    errors: dict[str, str] | None = None,
    label: str = "",
    notice: str | None = None,
) -> Response[str]:
    tokens = await anyio.to_thread.run_sync(_tokens_of, runtime, principal)
    base = str(request.base_url).rstrip("/")
    return renderer(request).render(
        request,
        "tokens.html",
        status=status,
        page_title=("Fehler: " if errors else "") + "API-Tokens",
        tokens=tokens,
        show_user=principal.role == "admin",
        new_token=new_token,
        errors=errors or {},
        label=label,
        notice=notice,
        example_url=f"{base}/api/v1/offices/{_example_office(runtime, principal)}/summary",
    )


@get("/dashboard/tokens", opt={"access": "login"})
async def tokens_page(request: Request[Any, Any, Any], state: State) -> Response[str]:
    """The account's API tokens (an administrator's page lists every account's)."""
    principal = await require_principal(request)
    return await _tokens_response(request, _runtime(state), principal)


@post("/dashboard/tokens", opt={"access": "login"})
async def create_token(request: Request[Any, Any, Any], state: State) -> Response[str]:
    """Create a token for the account; its secret is on this one answer and nowhere else."""
    principal = await require_principal(request)
    runtime = _runtime(state)
    form = await request.form()
    label = str(form.get("label") or "").strip()
    if not label or len(label) > 100 or not label.isprintable():
        return await _tokens_response(
            request,
            runtime,
            principal,
            status=422,
            errors={"label": "Bitte eine Bezeichnung mit 1 bis 100 Zeichen angeben."},
            label=label[:100],
        )
    secret = runtime.settings.secret_key or ""
    now = dt.datetime.now(dt.UTC)

    def create(cur: Cursor) -> accounts.NewToken:
        new = accounts.create_token(cur, secret, principal.name, label, now)
        # In the same transaction: a token exists only together with its audit entry.
        audit.record(cur, principal.name, "token.create", new.id, new.label)
        return new

    try:
        new = await asyncio.wrap_future(runtime.store.write(create))
    except accounts.AccountError:
        return await _tokens_response(
            request,
            runtime,
            principal,
            status=422,
            errors={"label": "Für dieses Konto kann kein Token erstellt werden."},
            label=label,
        )
    return await _tokens_response(request, runtime, principal, status=201, new_token=new)


@post("/dashboard/tokens/{token_id:str}/revoke", opt={"access": "login"})
async def revoke_token(
    request: Request[Any, Any, Any], state: State, token_id: FromPath[str]
) -> Response[str]:
    """Revoke one of the account's tokens (an administrator: any token)."""
    principal = await require_principal(request)
    runtime = _runtime(state)
    owner = None if principal.role == "admin" else principal.name
    now = dt.datetime.now(dt.UTC)

    def revoke(cur: Cursor) -> accounts.ApiToken | None:
        found = [t for t in accounts.list_tokens(cur, owner) if t.id == token_id]
        if not found or not accounts.revoke_token(cur, token_id, now, owner):
            return None
        audit.record(cur, principal.name, "token.revoke", token_id, f"user={found[0].user}")
        return found[0]

    revoked = await asyncio.wrap_future(runtime.store.write(revoke))
    if revoked is None:
        # Someone else's token looks exactly like a missing one.
        raise NotFoundException("Dieses Token gibt es nicht.")
    return await _tokens_response(
        request, runtime, principal, notice=f"Das Token „{revoked.label}“ ist widerrufen."
    )


router = Router(
    path="/",
    route_handlers=[
        offices_page,
        reports_page,
        report_form,
        report_view,
        report_download,
        tokens_page,
        create_token,
        revoke_token,
    ],
    exception_handlers=STAFF_EXCEPTION_HANDLERS,
    include_in_schema=False,
)
