"""Offices and their placements: the list, adding one, the CSV import and an office's page."""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

from officepulse import audit
from officepulse.adminpages.forms import (
    ADMIN,
    EVENT_KIND_NAMES,
    KIND_NAMES,
    UPLOAD_LIMIT,
    Problems,
    import_upload,
    local_time,
    not_found,
    operation_problems,
    read,
    run_operation,
    runtime_of,
    text,
)
from officepulse.auth import require_principal
from officepulse.districts import list_districts
from officepulse.events import list_events
from officepulse.kiosk import list_kiosks
from officepulse.languages import LANGUAGES
from officepulse.offices import (
    Office,
    OfficeError,
    get_office,
    list_offices,
    office_placements,
    office_problems,
    parse_office_csv,
    placement_problem,
)
from officepulse.operations import OfficeImport, OperationError, Placement
from officepulse.poster_texts import POSTER_TEXTS
from officepulse.qr import DEFAULT_LANGS
from officepulse.runtime import Runtime
from officepulse.staff import renderer
from officepulse.storage import Cursor

# The names the office operations give their fields, and the ids of this page's inputs.
OFFICE_FIELDS = {
    "id": "office-id",
    "name": "office-name",
    "kind": "office-kind",
    "type_label": "office-type",
    "city": "office-city",
    "district": "office-district",
    "opened_on": "office-opened",
    "default_lang": "office-lang",
}
EMPTY_OFFICE = {
    "id": "",
    "name": "",
    "kind": "",
    "type": "",
    "city": "",
    "district": "",
    "opened_on": "",
    "lang": "de",
}


class OfficeRow:
    """An office as the table shows it."""

    def __init__(self, office: Office, placements: list[str]) -> None:
        self.office = office
        self.placements = placements


def _office_rows(cur: Cursor) -> list[OfficeRow]:
    placements = office_placements(cur)
    return [OfficeRow(o, sorted(placements.get(o.id, ()))) for o in list_offices(cur)]


async def _offices_page(
    request: Request[Any, Any, Any],
    *,
    status: int = 200,
    problems: Problems | None = None,
    values: dict[str, str] | None = None,
    notice: str | None = None,
) -> Response[str]:
    rows = await read(runtime_of(request), _office_rows)
    return renderer(request).render(
        request,
        "admin_offices.html",
        status=status,
        page_title="Dienststellen",
        rows=rows,
        kinds=KIND_NAMES,
        languages=LANGUAGES,
        problems=problems or Problems(),
        values=values or EMPTY_OFFICE,
        notice=notice,
    )


@get("/offices", opt=ADMIN)
async def offices_page(request: Request[Any, Any, Any]) -> Response[str]:
    """Every office, with the forms to add one or import many."""
    return await _offices_page(request)


@post("/offices", opt=ADMIN)
async def add_office(request: Request[Any, Any, Any]) -> Response[str]:
    """Add one office through the operation of ``officepulse office add``."""
    runtime = runtime_of(request)
    principal = await require_principal(request)
    form = await request.form()
    values = {key: text(form, key, 300) for key in EMPTY_OFFICE}
    problems = Problems()
    opened_on: dt.date | None = None
    if values["opened_on"]:
        try:
            opened_on = dt.date.fromisoformat(values["opened_on"])
        except ValueError:
            problems.add(
                "office-opened", f"Eröffnet am: {values['opened_on']!r} ist kein Datum JJJJ-MM-TT."
            )
    kind = values["kind"]
    if kind not in KIND_NAMES:
        problems.add("office-kind", "Art: bitte „Pilot“ oder „konventionell“ wählen.")
        kind = "pilot"  # a placeholder, so that the other fields are still checked
    office = Office(
        id=values["id"],
        name=values["name"],
        kind=kind,  # type: ignore[arg-type]  # checked just above
        type_label=values["type"] or None,
        city=values["city"] or None,
        district=values["district"] or None,
        opened_on=opened_on,
        default_lang=values["lang"] or "de",
    )
    for problem in office_problems(office):
        operation_problems(problem, OFFICE_FIELDS, "office-id", problems)
    if not problems:
        try:
            await run_operation(runtime, "office.add", office)
        except OperationError as exc:
            operation_problems(str(exc), OFFICE_FIELDS, "office-id", problems)
    if problems:
        return await _offices_page(request, status=422, problems=problems, values=values)
    await audit.log(runtime, principal.name, "office.add", office.id, office.kind)
    return await _offices_page(
        request, notice=f"Die Dienststelle {office.id} ({office.name}) ist angelegt."
    )


@post("/offices/import", opt=ADMIN, request_max_body_size=UPLOAD_LIMIT)
async def import_offices(request: Request[Any, Any, Any]) -> Response[str]:
    """Import offices from an uploaded CSV, with the rules of ``officepulse office import``."""
    runtime = runtime_of(request)
    principal = await require_principal(request)
    form = await request.form()
    problems = Problems()
    imported = await import_upload(
        runtime,
        form,
        "import-file",
        parse_office_csv,
        OfficeError,
        lambda rows: run_operation(runtime, "office.import", OfficeImport(offices=rows)),
        problems,
    )
    if imported is None:
        return await _offices_page(request, status=422, problems=problems)
    name, result = imported
    await audit.log(runtime, principal.name, "office.import", name, f"{result.count} offices")
    return await _offices_page(
        request, notice=f"{result.count} Dienststellen aus {name} importiert."
    )


# -- one office -------------------------------------------------------------------------------


class OfficeDetails:
    """Everything the page of one office shows."""

    def __init__(self, runtime: Runtime, cur: Cursor, office: Office) -> None:
        now = dt.datetime.now(dt.UTC)
        self.office = office
        self.placements = sorted(office_placements(cur).get(office.id, ()))
        self.kiosks = [k for k in list_kiosks(cur, now) if k.office == office.id]
        self.events = list_events(cur, office.id)
        self.district = next((d for d in list_districts(cur) if office.id in d.offices), None)
        self.survey_base = runtime.settings.base_url + "/s/" + office.id


async def _details(request: Request[Any, Any, Any], office_id: str) -> OfficeDetails:
    runtime = runtime_of(request)

    def load(cur: Cursor) -> OfficeDetails | None:
        office = get_office(cur, office_id)
        return None if office is None else OfficeDetails(runtime, cur, office)

    details = await read(runtime, load)
    if details is None:
        raise not_found(f"Es gibt keine Dienststelle {office_id!r}.")
    return details


async def _office_page(
    request: Request[Any, Any, Any],
    office_id: str,
    *,
    status: int = 200,
    problems: Problems | None = None,
    placement: str = "",
    notice: str | None = None,
) -> Response[str]:
    details = await _details(request, office_id)
    zone = runtime_of(request).settings.zone
    return renderer(request).render(
        request,
        "admin_office.html",
        status=status,
        page_title=f"Dienststelle {details.office.name}",
        details=details,
        kinds=KIND_NAMES,
        event_kinds=EVENT_KIND_NAMES,
        languages=LANGUAGES,
        poster_languages=[tag for tag in LANGUAGES if tag in POSTER_TEXTS],
        default_poster_languages=DEFAULT_LANGS.split(","),
        heartbeat=lambda value: local_time(value, zone),
        problems=problems or Problems(),
        placement=placement,
        notice=notice,
    )


@get("/offices/{office_id:str}", opt=ADMIN)
async def office_page(request: Request[Any, Any, Any], office_id: FromPath[str]) -> Response[str]:
    """One office: details, placements, kiosks, events and its QR posters."""
    return await _office_page(request, office_id)


@post("/offices/{office_id:str}/placements", opt=ADMIN)
async def add_placement(request: Request[Any, Any, Any], office_id: FromPath[str]) -> Response[str]:
    """Register a placement, as ``officepulse office placement add`` does."""
    runtime = runtime_of(request)
    principal = await require_principal(request)
    await _details(request, office_id)  # an unknown office is a missing page, not a form error
    form = await request.form()
    placement = text(form, "placement", 100)
    problems = Problems()
    problem = placement_problem(placement)
    if problem:
        problems.add("placement-name", problem)
    else:
        try:
            await run_operation(
                runtime, "placement.add", Placement(office=office_id, placement=placement)
            )
        except OperationError as exc:
            operation_problems(str(exc), {}, "placement-name", problems)
    if problems:
        return await _office_page(
            request, office_id, status=422, problems=problems, placement=placement
        )
    await audit.log(runtime, principal.name, "placement.add", office_id, placement)
    return await _office_page(
        request, office_id, notice=f"Der Standort {placement} ist für {office_id} registriert."
    )


HANDLERS = [offices_page, add_office, import_offices, office_page, add_placement]
