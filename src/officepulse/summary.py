"""The staff read API: offices and an office's summary as JSON (session or API token)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from litestar import Request, Router, get
from litestar.datastructures import State

from officepulse.auth import require_principal
from officepulse.offices import OfficeKind, list_offices
from officepulse.runtime import Runtime


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


@get("/api/v1/offices", tags=["offices"], opt={"access": "login"})
async def get_offices(request: Request[Any, Any, Any], state: State) -> list[OfficeOut]:
    """The offices this account may see (demo offices are marked ``synthetic``)."""
    principal = await require_principal(request)
    runtime: Runtime = state.runtime
    offices = runtime.store.read(list_offices)
    return [
        OfficeOut(
            id=o.id,
            name=o.name,
            kind=o.kind,
            type_label=o.type_label,
            city=o.city,
            district=o.district,
            opened_on=o.opened_on,
            synthetic=o.synthetic,
        )
        for o in offices
        if principal.sees_office(o.id)
    ]


router = Router(path="/", route_handlers=[get_offices])
