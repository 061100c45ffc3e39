"""Administrator pages: offices, placements, events, districts, kiosks, QR posters, accounts
and the audit log.

Every route is for administrators only (``opt={"access": "admin"}``; the app's guard checks it
and the CSRF token of every form). Changes run the command line's operations (accounts: the
same account functions), so a page and ``officepulse …`` accept and refuse the same input, and
each change is written to the audit log under the administrator's name.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar import Request, Response, Router, get

from officepulse import accounts
from officepulse.adminpages import context, kiosks, offices, posters, users
from officepulse.adminpages.forms import ADMIN, read, runtime_of
from officepulse.kiosk import list_kiosks
from officepulse.offices import list_offices
from officepulse.staff import STAFF_EXCEPTION_HANDLERS, renderer
from officepulse.storage import Cursor


class Summary:
    """The counts on the administration's start page."""

    def __init__(self, cur: Cursor) -> None:
        found = list_offices(cur)
        self.offices = len(found)
        self.pilots = sum(1 for o in found if o.kind == "pilot")
        all_kiosks = list_kiosks(cur, dt.datetime.now(dt.UTC))
        active = [k for k in all_kiosks if k.paired and not k.revoked]
        self.kiosks = len(all_kiosks)
        self.kiosks_active = len(active)
        self.kiosks_silent = sum(1 for k in active if k.silent)
        self.kiosks_waiting = sum(1 for k in all_kiosks if not k.paired and not k.revoked)
        staff = accounts.list_users(cur)
        self.users_active = sum(1 for u in staff if not u.disabled)
        self.users_disabled = len(staff) - self.users_active
        self.admins = sum(1 for u in staff if u.role == "admin" and not u.disabled)


@get("/", opt=ADMIN)
async def index(request: Request[Any, Any, Any]) -> Response[str]:
    """The administration's start page: links and a summary."""
    summary = await read(runtime_of(request), Summary)
    return renderer(request).render(
        request, "admin_index.html", page_title="Verwaltung", summary=summary
    )


router = Router(
    path="/admin",
    route_handlers=[
        index,
        *offices.HANDLERS,
        *posters.HANDLERS,
        *context.HANDLERS,
        *kiosks.HANDLERS,
        *users.HANDLERS,
    ],
    opt=ADMIN,
    exception_handlers=STAFF_EXCEPTION_HANDLERS,
    include_in_schema=False,
)

__all__ = ["router"]
