"""Kiosk tablets: every kiosk with its state, creating one (with its pairing code), revoking."""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from litestar import Request, Response, get, post
from litestar.params import FromPath

from officepulse import audit
from officepulse.adminpages.forms import (
    ADMIN,
    Problems,
    local_time,
    operation_problems,
    read,
    run_operation,
    runtime_of,
    text,
)
from officepulse.auth import require_principal
from officepulse.kiosk import KioskInfo
from officepulse.offices import list_offices, office_placements
from officepulse.operations import KioskAdd, KioskCreated, KioskId, NoParams, OperationError
from officepulse.staff import renderer
from officepulse.storage import Cursor

KIOSK_FIELDS: Final = {
    "office": "kiosk-office",
    "name": "kiosk-name",
    "placement": "kiosk-placement",
}
MAX_NAME: Final = 100


class KioskRow:
    """A kiosk as the table shows it: its state in words, and whether it is silent."""

    def __init__(self, info: KioskInfo, zone: dt.tzinfo) -> None:
        self.info = info
        self.heartbeat = local_time(info.last_heartbeat, zone)
        if info.revoked:
            self.state = "widerrufen"
        elif not info.paired:
            self.state = "wartet auf Kopplung"
        elif info.silent and info.last_heartbeat is None:
            self.state = "stumm: noch kein Lebenszeichen"
        elif info.silent:
            self.state = f"stumm seit {self.heartbeat}"
        else:
            self.state = "gekoppelt, meldet sich"


class Pairing:
    """A kiosk just created: its one-time code, shown on this page and never again."""

    def __init__(self, created: KioskCreated, zone: dt.tzinfo) -> None:
        self.created = created
        self.expires = local_time(created.expires, zone)


def _choices(cur: Cursor) -> tuple[list[Any], dict[str, list[str]]]:
    placements = office_placements(cur)
    return list_offices(cur), {key: sorted(value) for key, value in placements.items()}


async def _kiosks_page(
    request: Request[Any, Any, Any],
    *,
    status: int = 200,
    problems: Problems | None = None,
    values: dict[str, str] | None = None,
    notice: str | None = None,
    pairing: KioskCreated | None = None,
) -> Response[str]:
    runtime = runtime_of(request)
    zone = runtime.settings.zone
    kiosks: list[KioskInfo] = await run_operation(runtime, "kiosk.list", NoParams())
    offices, placements = await read(runtime, _choices)
    return renderer(request).render(
        request,
        "admin_kiosks.html",
        status=status,
        page_title="Kiosk-Tablets",
        rows=[KioskRow(k, zone) for k in kiosks],
        silent=sum(1 for k in kiosks if k.silent),
        offices=offices,
        placements=placements,
        problems=problems or Problems(),
        values=values or {"office": "", "name": "", "placement": ""},
        notice=notice,
        pairing=Pairing(pairing, zone) if pairing else None,
    )


@get("/kiosks", opt=ADMIN)
async def kiosks_page(request: Request[Any, Any, Any]) -> Response[str]:
    """Every kiosk: office, placement, state, last heartbeat and queue; silent ones marked."""
    values = {
        "office": str(request.query_params.get("office") or "")[:100],
        "name": "",
        "placement": "",
    }
    return await _kiosks_page(request, values=values)


@post("/kiosks", opt=ADMIN)
async def add_kiosk(request: Request[Any, Any, Any]) -> Response[str]:
    """Create a kiosk (``officepulse kiosk add``) and show its pairing code once."""
    runtime = runtime_of(request)
    principal = await require_principal(request)
    form = await request.form()
    values = {key: text(form, key, 300) for key in ("office", "name", "placement")}
    problems = Problems()
    if not values["office"]:
        problems.add("kiosk-office", "Dienststelle: bitte eine Dienststelle wählen.")
    if len(values["name"]) > MAX_NAME:
        problems.add("kiosk-name", f"Name: höchstens {MAX_NAME} Zeichen.")
    created: KioskCreated | None = None
    if not problems:
        params = KioskAdd(
            office=values["office"], name=values["name"], placement=values["placement"] or None
        )
        try:
            created = await run_operation(runtime, "kiosk.add", params)
        except OperationError as exc:
            operation_problems(str(exc), KIOSK_FIELDS, "kiosk-office", problems)
    if problems or created is None:
        return await _kiosks_page(request, status=422, problems=problems, values=values)
    # The pairing code is a secret of this one page: it is never logged.
    await audit.log(runtime, principal.name, "kiosk.add", created.id, created.office)
    return await _kiosks_page(request, pairing=created)


@post("/kiosks/{kiosk_id:str}/revoke", opt=ADMIN)
async def revoke_kiosk(request: Request[Any, Any, Any], kiosk_id: FromPath[str]) -> Response[str]:
    """Revoke a kiosk (``officepulse kiosk revoke``): its token stops working at once."""
    runtime = runtime_of(request)
    principal = await require_principal(request)
    try:
        await run_operation(runtime, "kiosk.revoke", KioskId(id=kiosk_id[:200]))
    except OperationError as exc:
        problems = operation_problems(str(exc), {}, "kiosks")
        return await _kiosks_page(request, status=422, problems=problems)
    await audit.log(runtime, principal.name, "kiosk.revoke", kiosk_id)
    return await _kiosks_page(
        request, notice=f"Das Kiosk-Tablet {kiosk_id} ist widerrufen; es muss neu gekoppelt werden."
    )


HANDLERS = [kiosks_page, add_kiosk, revoke_kiosk]
