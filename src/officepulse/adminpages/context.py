"""Events (dated changes at offices) and district statistics with the office mapping."""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from litestar import Request, Response, get, post

from officepulse import audit, events
from officepulse.adminpages.forms import (
    ADMIN,
    EVENT_KIND_NAMES,
    UPLOAD_LIMIT,
    Problems,
    import_upload,
    operation_problems,
    read,
    run_operation,
    runtime_of,
    text,
)
from officepulse.auth import require_principal
from officepulse.districts import (
    DistrictError,
    OfficeDistrict,
    list_districts,
    parse_district_csv,
)
from officepulse.offices import list_offices
from officepulse.operations import DistrictImport, DistrictMap, OperationError
from officepulse.staff import renderer

EVENT_FIELDS: Final = {
    "office": "event-office",
    "date": "event-date",
    "kind": "event-kind",
    "note": "event-note",
}
MAP_FIELDS: Final = {"office": "map-office", "city": "map-city", "district_id": "map-district"}


# -- events -----------------------------------------------------------------------------------


async def _events_page(
    request: Request[Any, Any, Any],
    office_filter: str,
    *,
    status: int = 200,
    problems: Problems | None = None,
    values: dict[str, str] | None = None,
    notice: str | None = None,
) -> Response[str]:
    runtime = runtime_of(request)
    offices = await read(runtime, list_offices)
    problems = problems or Problems()
    found: list[events.Event] = []
    try:
        found = await run_operation(
            runtime, "event.list", events.EventFilter(office=office_filter or None)
        )
    except OperationError as exc:
        operation_problems(str(exc), {}, "filter-office", problems)
        status = 422
    return renderer(request).render(
        request,
        "admin_events.html",
        status=status,
        page_title="Ereignisse",
        offices=offices,
        events=found,
        office_filter=office_filter,
        kinds=EVENT_KIND_NAMES,
        problems=problems,
        values=values or {"office": office_filter, "date": "", "kind": "", "note": ""},
        notice=notice,
    )


@get("/events", opt=ADMIN)
async def events_page(request: Request[Any, Any, Any]) -> Response[str]:
    """Events of all offices or of one (``?office=``), and the form to record one."""
    return await _events_page(request, str(request.query_params.get("office") or "")[:100])


@post("/events", opt=ADMIN)
async def add_event(request: Request[Any, Any, Any]) -> Response[str]:
    """Record an event, with the checks of ``officepulse event add``."""
    runtime = runtime_of(request)
    principal = await require_principal(request)
    form = await request.form()
    values = {key: text(form, key, 2000) for key in ("office", "date", "kind", "note")}
    problems = Problems()
    date: dt.date | None = None
    kind: events.EventKind | None = None
    note: str | None = None
    try:
        date = events.parse_date(values["date"])
    except events.EventError as exc:
        operation_problems(str(exc), EVENT_FIELDS, "event-date", problems)
    try:
        kind = events.kind_from_cli(values["kind"])
    except events.EventError as exc:
        operation_problems(str(exc), EVENT_FIELDS, "event-kind", problems)
    try:
        note = events.clean_note(values["note"])
    except events.EventError as exc:
        operation_problems(str(exc), EVENT_FIELDS, "event-note", problems)
    if not values["office"]:
        problems.add("event-office", "Dienststelle: bitte eine Dienststelle wählen.")
    added: events.Event | None = None
    if not problems and date is not None and kind is not None:
        new = events.NewEvent(office=values["office"], date=date, kind=kind, note=note)
        try:
            added = await run_operation(runtime, "event.add", new)
        except OperationError as exc:
            operation_problems(str(exc), EVENT_FIELDS, "event-office", problems)
    if problems or added is None:
        return await _events_page(request, "", status=422, problems=problems, values=values)
    await audit.log(
        runtime, principal.name, "event.add", added.office, f"{added.kind} {added.date}"
    )
    return await _events_page(
        request,
        "",
        notice=(
            f"Ereignis {added.id} für {added.office} am {added.date:%d.%m.%Y}"
            f" ({EVENT_KIND_NAMES[added.kind]}) ist gespeichert."
        ),
    )


# -- districts --------------------------------------------------------------------------------


async def _districts_page(
    request: Request[Any, Any, Any],
    *,
    status: int = 200,
    problems: Problems | None = None,
    values: dict[str, str] | None = None,
    notice: str | None = None,
    unlabelled: list[str] | None = None,
) -> Response[str]:
    runtime = runtime_of(request)
    districts = await read(runtime, list_districts)
    offices = await read(runtime, list_offices)
    return renderer(request).render(
        request,
        "admin_districts.html",
        status=status,
        page_title="Stadtteile",
        districts=districts,
        offices=offices,
        number=_number,
        problems=problems or Problems(),
        values=values or {"office": "", "city": "", "district_id": ""},
        notice=notice,
        unlabelled=unlabelled or [],
    )


def _number(value: float) -> str:
    """A value as German statistics print it: decimal comma, no needless decimals."""
    shown = str(int(value)) if value == int(value) and abs(value) < 1e15 else f"{value:.10g}"
    return shown.replace(".", ",")


@get("/districts", opt=ADMIN)
async def districts_page(request: Request[Any, Any, Any]) -> Response[str]:
    """Districts with their indicators per year, the offices mapped to each, and the forms."""
    return await _districts_page(request)


@post("/districts/import", opt=ADMIN, request_max_body_size=UPLOAD_LIMIT)
async def import_districts(request: Request[Any, Any, Any]) -> Response[str]:
    """Import indicator values from an uploaded CSV (``officepulse districts import``)."""
    runtime = runtime_of(request)
    principal = await require_principal(request)
    form = await request.form()
    problems = Problems()
    imported = await import_upload(
        runtime,
        form,
        "districts-file",
        parse_district_csv,
        DistrictError,
        lambda rows: run_operation(runtime, "districts.import", DistrictImport(rows=rows)),
        problems,
    )
    if imported is None:
        return await _districts_page(request, status=422, problems=problems)
    name, result = imported
    summary = result.summary
    assert summary is not None  # the whole file went in one part
    await audit.log(runtime, principal.name, "districts.import", name, f"{summary.values} values")
    replaced = f", davon {summary.replaced} ersetzt" if summary.replaced else ""
    return await _districts_page(
        request,
        notice=(
            f"{summary.values} Indikatorwerte für {summary.districts} Stadtteile aus {name}"
            f" importiert{replaced}."
        ),
        unlabelled=summary.unlabelled,
    )


@post("/districts/map", opt=ADMIN)
async def map_district(request: Request[Any, Any, Any]) -> Response[str]:
    """Record the district an office serves (``officepulse districts map``)."""
    runtime = runtime_of(request)
    principal = await require_principal(request)
    form = await request.form()
    values = {key: text(form, key, 300) for key in ("office", "city", "district_id")}
    problems = Problems()
    mapped: OfficeDistrict | None = None
    for key, label in (("office", "Dienststelle"), ("city", "Stadt"), ("district_id", "Stadtteil")):
        if not values[key]:
            problems.add(MAP_FIELDS[key], f"{label}: darf nicht leer sein.")
    if not problems:
        params = DistrictMap(
            office=values["office"], city=values["city"], district_id=values["district_id"]
        )
        try:
            mapped = await run_operation(runtime, "districts.map", params)
        except OperationError as exc:
            operation_problems(str(exc), MAP_FIELDS, "map-office", problems)
    if problems or mapped is None:
        return await _districts_page(request, status=422, problems=problems, values=values)
    await audit.log(
        runtime,
        principal.name,
        "districts.map",
        mapped.office,
        f"{mapped.city} / {mapped.district_id}",
    )
    hint = (
        ""
        if mapped.has_indicators
        else " Für diesen Stadtteil sind noch keine Indikatoren importiert."
    )
    return await _districts_page(
        request,
        notice=f"{mapped.office} ist {mapped.city} / {mapped.district_id} zugeordnet.{hint}",
    )


HANDLERS = [events_page, add_event, districts_page, import_districts, map_district]
