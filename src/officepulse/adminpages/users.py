"""Staff accounts and the audit log.

Adding and disabling an account run the same account functions as ``officepulse user add`` and
``user disable`` (:mod:`officepulse.accounts`), but in a transaction of their own here, for two
reasons: the audit entry must name the administrator who did it (the CLI's operations record
the command line as the actor), and the refusal to disable the last active administrator must
be checked in the same transaction as the change — two administrators disabling each other at
the same moment would otherwise both see a second administrator and leave none.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, Final

from litestar import Request, Response, get, post
from litestar.params import FromPath

from officepulse import accounts, audit
from officepulse.adminpages.forms import (
    ADMIN,
    ROLE_NAMES,
    Problems,
    local_time,
    operation_problems,
    read,
    runtime_of,
    text,
    texts,
)
from officepulse.auth import require_principal
from officepulse.offices import list_offices
from officepulse.staff import renderer
from officepulse.storage import Cursor

USER_FIELDS: Final = {
    "name": "user-name",
    "role": "user-role",
    "office": "user-offices",
    "password": "user-password",
}
AUDIT_LIMIT: Final = 500


class Refused(Exception):
    """A change the page refuses; the message is German and shown next to the field."""


async def _users_page(
    request: Request[Any, Any, Any],
    *,
    status: int = 200,
    problems: Problems | None = None,
    values: dict[str, Any] | None = None,
    notice: str | None = None,
) -> Response[str]:
    runtime = runtime_of(request)
    principal = await require_principal(request)
    users = await read(runtime, accounts.list_users)
    offices = await read(runtime, list_offices)
    return renderer(request).render(
        request,
        "admin_users.html",
        status=status,
        page_title="Konten",
        users=users,
        offices=offices,
        roles=ROLE_NAMES,
        me=principal.name,
        min_password=accounts.MIN_PASSWORD,
        problems=problems or Problems(),
        values=values or {"name": "", "role": "", "offices": []},
        notice=notice,
    )


@get("/users", opt=ADMIN)
async def users_page(request: Request[Any, Any, Any]) -> Response[str]:
    """Every account (name, role, offices, state) and the form to add one."""
    return await _users_page(request)


def add_account(
    cur: Cursor, actor: str, name: str, role: str, offices: list[str], password: str
) -> accounts.User:
    """Create an account and record who did it, in one transaction."""
    user = accounts.add_user(cur, name, role, offices, password, dt.datetime.now(dt.UTC))
    audit.record(cur, actor, "user.add", user.name, " ".join([user.role, *user.offices]))
    return user


@post("/users", opt=ADMIN)
async def add_user(request: Request[Any, Any, Any]) -> Response[str]:
    """Create an account; problems appear next to the fields and nothing is stored."""
    runtime = runtime_of(request)
    principal = await require_principal(request)
    form = await request.form()
    values: dict[str, Any] = {
        "name": text(form, "name", 100),
        "role": text(form, "role", 20),
        "offices": texts(form, "offices"),
    }
    # Passwords are taken as typed (spaces count) and never shown again.
    password = str(form.get("password") or "")
    confirmation = str(form.get("password_confirm") or "")
    problems = Problems()
    if not values["name"]:
        problems.add("user-name", "Name: bitte einen Namen angeben.")
    if values["role"] not in ROLE_NAMES:
        problems.add("user-role", "Rolle: bitte eine Rolle wählen.")
    try:
        accounts.check_password(password)
    except accounts.AccountError as exc:
        operation_problems(str(exc), USER_FIELDS, "user-password", problems)
    if password != confirmation:
        problems.add("user-password-confirm", "Die beiden Passwörter stimmen nicht überein.")
    user: accounts.User | None = None
    if not problems:
        try:
            user = await asyncio.wrap_future(
                runtime.store.write(
                    lambda cur: add_account(
                        cur,
                        principal.name,
                        values["name"],
                        values["role"],
                        values["offices"],
                        password,
                    )
                )
            )
        except accounts.AccountError as exc:
            operation_problems(str(exc), USER_FIELDS, "user-name", problems)
    if problems or user is None:
        return await _users_page(request, status=422, problems=problems, values=values)
    return await _users_page(
        request, notice=f"Das Konto {user.name} ({ROLE_NAMES[user.role]}) ist angelegt."
    )


def disable_account(cur: Cursor, actor: str, name: str) -> accounts.User:
    """Disable an account (its sessions end, its tokens are revoked) and record who did it.

    Refuses the actor's own account and the last active administrator, checked inside the
    transaction of the change.
    """
    target = accounts.get_user(cur, name)
    if target is None:
        raise accounts.AccountError(f"name: no account {accounts.normalise_name(name)!r}")
    if target.name == accounts.normalise_name(actor):
        raise Refused(
            "Ihr eigenes Konto können Sie hier nicht deaktivieren: bitten Sie eine andere"
            " Administratorin oder einen anderen Administrator darum."
        )
    if target.role == "admin" and not target.disabled and accounts.admin_count(cur) <= 1:
        raise Refused(
            f"{target.name} ist das letzte aktive Administrationskonto und bleibt aktiv;"
            " legen Sie zuerst ein weiteres an."
        )
    user = accounts.disable_user(cur, target.name, dt.datetime.now(dt.UTC))
    audit.record(cur, actor, "user.disable", user.name)
    return user


@post("/users/{name:str}/disable", opt=ADMIN)
async def disable_user(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[str]:
    """Disable an account: its sessions end and its API tokens stop working at once."""
    runtime = runtime_of(request)
    principal = await require_principal(request)
    try:
        user = await asyncio.wrap_future(
            runtime.store.write(lambda cur: disable_account(cur, principal.name, name[:100]))
        )
    except (accounts.AccountError, Refused) as exc:
        problems = Problems()
        problems.add("users", str(exc))
        return await _users_page(request, status=422, problems=problems)
    return await _users_page(
        request,
        notice=f"Das Konto {user.name} ist deaktiviert; Sitzungen und API-Tokens sind beendet.",
    )


# -- the audit log ----------------------------------------------------------------------------


def _actors(cur: Cursor) -> list[str]:
    return [
        row[0] for row in cur.execute("SELECT DISTINCT actor FROM audit_log ORDER BY 1").fetchall()
    ]


@get("/audit", opt=ADMIN)
async def audit_page(request: Request[Any, Any, Any]) -> Response[str]:
    """The audit log, newest first, of one account or one kind of action if asked."""
    runtime = runtime_of(request)
    actor = str(request.query_params.get("actor") or "").strip()[:100]
    action = str(request.query_params.get("action") or "").strip()[:100]
    found = await read(
        runtime,
        lambda cur: audit.entries(
            cur, actor=actor or None, action=action or None, limit=AUDIT_LIMIT
        ),
    )
    actors = await read(runtime, _actors)
    zone = runtime.settings.zone
    return renderer(request).render(
        request,
        "admin_audit.html",
        page_title="Protokoll",
        entries=found,
        actors=actors,
        actor=actor,
        action=action,
        limit=AUDIT_LIMIT,
        when=lambda value: local_time(value, zone),
    )


HANDLERS = [users_page, add_user, disable_user, audit_page]
