"""Logging in and out, and where an account lands after the login."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from typing import Any, Final

import anyio.to_thread
from litestar import Request, Response, Router, get, post
from litestar.datastructures import Cookie, State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect

from officepulse import accounts, audit
from officepulse.auth import (
    CSRF_FIELD,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    LoginThrottle,
    create_session,
    delete_session,
    login_csrf,
    principal_of,
    require_principal,
    safe_next,
    session_expired,
)
from officepulse.runtime import Runtime
from officepulse.staff import STAFF_EXCEPTION_HANDLERS, renderer

MAX_LOGIN_BODY: Final = 8 * 1024


def _secure(state: State) -> bool:
    runtime: Runtime = state.runtime
    return runtime.settings.base_url.startswith("https://")


def _cookie(state: State, key: str, value: str, path: str, max_age: int | None) -> Cookie:
    return Cookie(
        key=key,
        value=value,
        path=path,
        httponly=True,
        samesite="strict",
        secure=_secure(state),
        max_age=max_age,
    )


async def _login_page(
    request: Request[Any, Any, Any],
    state: State,
    *,
    status: int = 200,
    error: str | None = None,
    name: str = "",
    next_path: str = "/dashboard",
    headers: dict[str, str] | None = None,
) -> Response[str]:
    runtime: Runtime = state.runtime
    await anyio.to_thread.run_sync(accounts.prepare_login)
    nonce = secrets.token_urlsafe(24)
    notice = None
    if session_expired(request) or request.query_params.get("expired") == "1":
        notice = "Ihre Sitzung ist abgelaufen. Bitte melden Sie sich erneut an."
    await principal_of(request)
    response = renderer(request).render(
        request,
        "login.html",
        status=status,
        headers=headers,
        page_title="Anmelden",
        login_token=login_csrf(runtime.settings.secret_key or "", nonce),
        next=next_path,
        name=name,
        error=error,
        notice=notice,
    )
    response.cookies.append(_cookie(state, LOGIN_COOKIE, nonce, "/login", 3600))
    return response


@get("/login", opt={"access": "public"})
async def login_form(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    """The login form (a logged-in account goes straight on)."""
    next_path = safe_next(request.query_params.get("next"))
    if await principal_of(request) is not None:
        return Redirect(next_path, status_code=303)
    return await _login_page(request, state, next_path=next_path)


def _throttle(state: State) -> LoginThrottle:
    throttle: LoginThrottle = state.login_throttle
    return throttle


@post("/login", opt={"access": "public"}, request_max_body_size=MAX_LOGIN_BODY)
async def login(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    """Check the name and password; on success a new session, then on to ``next``."""
    runtime: Runtime = state.runtime
    form = await request.form()
    name = str(form.get("name") or "")[:64]
    password = str(form.get("password") or "")
    next_path = safe_next(str(form.get("next") or ""))
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    token = str(form.get(CSRF_FIELD) or "")
    if not nonce or not secrets.compare_digest(
        token, login_csrf(runtime.settings.secret_key or "", nonce)
    ):
        return await _login_page(
            request,
            state,
            status=403,
            error="Das Formular war abgelaufen. Bitte noch einmal anmelden.",
            name=name,
            next_path=next_path,
        )
    throttle = _throttle(state)
    # The client address is only fed into the in-memory HMAC key, never stored or logged.
    keys = throttle.keys(request.client.host if request.client else "", name)
    wait = throttle.retry_after(keys)
    if wait:
        minutes = max(1, (wait + 59) // 60)
        return await _login_page(
            request,
            state,
            status=429,
            error=(
                "Zu viele fehlgeschlagene Anmeldungen. "
                f"Bitte versuchen Sie es in {minutes} Minuten wieder."
            ),
            name=name,
            next_path=next_path,
            headers={"Retry-After": str(wait)},
        )
    stored = await anyio.to_thread.run_sync(
        lambda: runtime.store.read(lambda cur: accounts.password_hash_of(cur, name))
    )
    ok = await anyio.to_thread.run_sync(accounts.password_matches, stored, password)
    if not ok:
        throttle.failed(keys)
        if stored is not None:
            await audit.log(runtime, accounts.normalise_name(name), "login.failed")
        return await _login_page(
            request,
            state,
            status=401,
            error="Name oder Passwort ist falsch.",
            name=name,
            next_path=next_path,
        )
    user = accounts.normalise_name(name)
    secret = runtime.settings.secret_key or ""

    def start(cur: Any) -> str:
        session = create_session(cur, secret, user, dt.datetime.now(dt.UTC))
        audit.record(cur, user, "login")
        return session

    session = await asyncio.wrap_future(runtime.store.write(start))
    response: Response[Any] = Redirect(next_path, status_code=303)
    max_age = runtime.settings.session_max_hours * 3600
    response.cookies.append(_cookie(state, SESSION_COOKIE, session, "/", max_age))
    response.cookies.append(_cookie(state, LOGIN_COOKIE, "", "/login", 0))
    return response


@post("/logout", opt={"access": "login"}, request_max_body_size=MAX_LOGIN_BODY)
async def logout(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    """End the session (a POST form with the CSRF token; a link could be forged)."""
    runtime: Runtime = state.runtime
    principal = await require_principal(request)
    session_hash = principal.session_hash

    def end(cur: Any) -> None:
        if session_hash:
            delete_session(cur, session_hash)
        audit.record(cur, principal.name, "logout")

    await asyncio.wrap_future(runtime.store.write(end))
    response: Response[Any] = Redirect("/login", status_code=303)
    response.cookies.append(_cookie(state, SESSION_COOKIE, "", "/", 0))
    return response


@get("/dashboard", opt={"access": "login"})
async def home(request: Request[Any, Any, Any]) -> Response[Any]:
    """Where an account lands: a manager of one office at its dashboard, others at the overview."""
    principal = await require_principal(request)
    if principal.role == "manager" and len(principal.offices) == 1:
        (office,) = principal.offices
        return Redirect(f"/dashboard/office/{office}", status_code=303)
    return Redirect("/dashboard/offices", status_code=303)


@get(["/dashboard/{rest:path}", "/admin/{rest:path}"], opt={"access": "login"})
async def staff_not_found(rest: FromPath[str]) -> None:
    """Unknown staff pages: a 404 page with the account's menu, after the login check.

    Anonymous visitors are sent to the login first, so the staff area does not reveal which
    of its paths exist.
    """
    raise NotFoundException(f"Unknown page: {rest}")


router = Router(
    path="/",
    route_handlers=[login_form, login, logout, home, staff_not_found],
    exception_handlers=STAFF_EXCEPTION_HANDLERS,
    include_in_schema=False,
)
