"""Placeholder: filled in by the staff pages work."""

from __future__ import annotations

from litestar import Router

from officepulse.staff import STAFF_EXCEPTION_HANDLERS

router = Router(
    path="/",
    route_handlers=[],
    exception_handlers=STAFF_EXCEPTION_HANDLERS,
    include_in_schema=False,
)
