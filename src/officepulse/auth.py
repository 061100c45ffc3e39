"""Who is asking: staff sessions, API tokens, roles, CSRF, login throttling and the guard.

Every route declares its access in ``opt["access"]``; one guard on the whole app enforces it and
refuses any route that declares nothing (fail closed). The levels:

``public``     the survey, the kiosk app and API, health, the accessibility statement, login
``server``     the CLI's loopback admin API (its own token, checked by its handler)
``login``      any staff account
``office``     any staff account; a manager only for the offices of the account (``office_id``
               path parameter)
``evaluator``  evaluators and administrators
``admin``      administrators

Sessions live in the database (only a keyed hash of the cookie value), end after
``session_idle_minutes`` without a request and ``session_max_hours`` after the login. Forms of a
session carry its CSRF token. API tokens (``Authorization: Bearer``) are accepted for reading
(GET) only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import quote, urlsplit

import anyio.to_thread
import msgspec
from litestar.connection import ASGIConnection, Request
from litestar.datastructures import FormMultiDict
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types.empty import Empty
from litestar.utils.scope.state import ScopeState

from officepulse import accounts
from officepulse.accounts import Role, User
from officepulse.kiosk import keyed_hash
from officepulse.runtime import Runtime
from officepulse.storage import Cursor

Access = Literal["public", "server", "login", "office", "evaluator", "admin"]
ACCESS_LEVELS: Final[tuple[Access, ...]] = (
    "public",
    "server",
    "login",
    "office",
    "evaluator",
    "admin",
)
SESSION_COOKIE: Final = "officepulse_session"
LOGIN_COOKIE: Final = "officepulse_login"
CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "x-csrf-token"
# A session's last-seen time is written at most this often (each write goes through the one
# writer); the idle expiry is therefore exact to about a minute.
TOUCH_EVERY: Final = dt.timedelta(seconds=60)
PRINCIPAL_KEY: Final = "officepulse.principal"
EXPIRED_KEY: Final = "officepulse.session_expired"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
READERS: Final[frozenset[Role]] = frozenset({"evaluator", "admin"})


class LoginRequired(NotAuthorizedException):
    """No valid session or token (HTTP 401); pages turn this into a redirect to the login."""


class Forbidden(PermissionDeniedException):
    """Logged in, but the role or the office does not allow this (HTTP 403)."""


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """The account behind a request, and how it proved itself."""

    name: str
    role: Role
    offices: frozenset[str]
    via: Literal["session", "token"]
    csrf_token: str | None = None
    session_hash: str | None = None

    def sees_office(self, office_id: str) -> bool:
        return self.role in READERS or office_id in self.offices

    def visible_offices(self, all_ids: frozenset[str]) -> frozenset[str]:
        return all_ids if self.role in READERS else self.offices & all_ids


# -- sessions ----------------------------------------------------------------------------------


def create_session(cur: Cursor, secret_key: str, user: str, now: dt.datetime) -> str:
    """A new session for ``user``; returns the cookie value (kept nowhere but in the cookie)."""
    token = secrets.token_urlsafe(32)
    cur.execute(
        "INSERT INTO sessions (id_hash, user_name, csrf_token, created_at, last_seen)"
        " VALUES (?, ?, ?, ?, ?)",
        [keyed_hash(secret_key, "session", token), user, secrets.token_urlsafe(32), now, now],
    )
    return token


class SessionRow(msgspec.Struct, frozen=True):
    id_hash: str
    user: User
    csrf_token: str
    created_at: dt.datetime
    last_seen: dt.datetime


def find_session(cur: Cursor, secret_key: str, token: str) -> SessionRow | None:
    if not token or len(token) > 100:
        return None
    id_hash = keyed_hash(secret_key, "session", token)
    row = cur.execute(
        "SELECT s.csrf_token, s.created_at, s.last_seen, u.name, u.role, u.offices"
        " FROM sessions s JOIN users u ON u.name = s.user_name"
        " WHERE s.id_hash = ? AND u.disabled_at IS NULL",
        [id_hash],
    ).fetchone()
    if row is None:
        return None
    user = User(name=row[3], role=row[4], offices=list(row[5] or []))
    return SessionRow(id_hash, user, row[0], row[1], row[2])


def delete_session(cur: Cursor, id_hash: str) -> None:
    cur.execute("DELETE FROM sessions WHERE id_hash = ?", [id_hash])


def touch_session(cur: Cursor, id_hash: str, now: dt.datetime) -> None:
    cur.execute("UPDATE sessions SET last_seen = ? WHERE id_hash = ?", [now, id_hash])


def delete_expired_sessions(cur: Cursor, idle_before: dt.datetime, born_before: dt.datetime) -> int:
    row = cur.execute(
        "DELETE FROM sessions WHERE last_seen < ? OR created_at < ? RETURNING 1",
        [idle_before, born_before],
    ).fetchall()
    return len(row)


# -- login throttling --------------------------------------------------------------------------


@dataclass
class LoginThrottle:
    """Refuses logins after ``limit`` failures within ``window`` for an account or a client.

    Keys are HMACs under a random salt that exists only in this process's memory (as for the
    phone survey's limiter): no address or name is kept, and the keys mean nothing to anyone
    who reads the server's memory after the salt is gone.
    """

    limit: int = 5
    window: float = 15 * 60
    clock: Callable[[], float] = time.monotonic
    _salt: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    _failures: dict[bytes, list[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def keys(self, client: str, account: str) -> tuple[bytes, bytes]:
        def key(kind: str, value: str) -> bytes:
            message = f"{kind}\x00{value}".encode("utf-8", "replace")
            return hmac.new(self._salt, message, hashlib.sha256).digest()

        return key("client", client), key("account", accounts.normalise_name(account))

    def retry_after(self, keys: tuple[bytes, ...]) -> int:
        """Seconds until a login may be tried again (0: now)."""
        now = self.clock()
        wait = 0.0
        with self._lock:
            for key in keys:
                recent = self._recent(key, now)
                if len(recent) >= self.limit:
                    wait = max(wait, recent[-self.limit] + self.window - now)
        return int(wait) + 1 if wait > 0 else 0

    def failed(self, keys: tuple[bytes, ...]) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)
            if len(self._failures) > 10_000:
                for stale in [k for k, v in self._failures.items() if not self._recent(k, now)]:
                    del self._failures[stale]

    def _recent(self, key: bytes, now: float) -> list[float]:
        recent = [t for t in self._failures.get(key, []) if now - t < self.window]
        self._failures[key] = recent
        return recent


# -- who is asking -----------------------------------------------------------------------------


def _runtime(connection: ASGIConnection[Any, Any, Any, Any]) -> Runtime:
    runtime: Runtime = connection.app.state.runtime
    return runtime


def _bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = connection.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise LoginRequired("The Authorization header must be 'Bearer <API token>'.")
    return value.strip()


async def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """The account behind the request (cached on the request), or None."""
    scope: dict[str, Any] = connection.scope  # type: ignore[assignment]
    if PRINCIPAL_KEY in scope:
        return scope[PRINCIPAL_KEY]  # type: ignore[no-any-return]
    principal = await _resolve(connection)
    scope[PRINCIPAL_KEY] = principal
    return principal


def cached_principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """The principal the guard found, without looking again (for error pages)."""
    scope: dict[str, Any] = connection.scope  # type: ignore[assignment]
    found = scope.get(PRINCIPAL_KEY)
    return found if isinstance(found, Principal) else None


def session_expired(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """Whether this request came with a session that had just expired."""
    scope: dict[str, Any] = connection.scope  # type: ignore[assignment]
    return bool(scope.get(EXPIRED_KEY))


async def _resolve(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    runtime = _runtime(connection)
    secret = runtime.settings.secret_key or ""
    now = dt.datetime.now(dt.UTC)
    bearer = _bearer(connection)
    if bearer is not None:
        found = await anyio.to_thread.run_sync(
            lambda: runtime.store.read(lambda cur: accounts.user_for_token(cur, secret, bearer))
        )
        if found is None:
            raise LoginRequired(
                "The API token is unknown, revoked or belongs to a disabled account."
            )
        user, token_id = found
        today = now.astimezone(runtime.settings.zone).date()
        runtime.store.write(lambda cur: accounts.mark_token_used(cur, token_id, today))
        return Principal(
            name=user.name, role=user.role, offices=frozenset(user.offices), via="token"
        )
    cookie = connection.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    session = await anyio.to_thread.run_sync(
        lambda: runtime.store.read(lambda cur: find_session(cur, secret, cookie))
    )
    if session is None:
        return None
    settings = runtime.settings
    idle = dt.timedelta(minutes=settings.session_idle_minutes)
    lifetime = dt.timedelta(hours=settings.session_max_hours)
    if now - session.last_seen >= idle or now - session.created_at >= lifetime:
        await asyncio.wrap_future(
            runtime.store.write(lambda cur: delete_session(cur, session.id_hash))
        )
        expired: dict[str, Any] = connection.scope  # type: ignore[assignment]
        expired[EXPIRED_KEY] = True
        return None
    if now - session.last_seen >= TOUCH_EVERY:
        runtime.store.write(lambda cur: touch_session(cur, session.id_hash, now))
    return Principal(
        name=session.user.name,
        role=session.user.role,
        offices=frozenset(session.user.offices),
        via="session",
        csrf_token=session.csrf_token,
        session_hash=session.id_hash,
    )


def access_of(route_handler: BaseRouteHandler) -> Access | None:
    access = route_handler.opt.get("access")
    return access if access in ACCESS_LEVELS else None


async def _csrf_ok(connection: ASGIConnection[Any, Any, Any, Any], expected: str) -> bool:
    given = connection.headers.get(CSRF_HEADER)
    if given is None and isinstance(connection, Request):
        content_type = connection.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await connection.form()
            value = form.get(CSRF_FIELD)
            given = value if isinstance(value, str) else None
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


async def access_guard(
    connection: ASGIConnection[Any, Any, Any, Any], route_handler: BaseRouteHandler
) -> None:
    """The one guard of the app: enforces the route's declared access level."""
    try:
        await _check_access(connection, route_handler)
    except BaseException:
        # Litestar closes a parsed form's uploaded files only after the handler ran; a request
        # refused here (after its form was read for the CSRF token) never gets there.
        form = ScopeState.from_scope(connection.scope).form
        if form is not Empty:
            await FormMultiDict.from_form_data(form).close()
        raise


async def _check_access(
    connection: ASGIConnection[Any, Any, Any, Any], route_handler: BaseRouteHandler
) -> None:
    access = access_of(route_handler)
    if access is None:
        # A route that declares nothing is nobody's: fail closed.
        raise Forbidden("This route declares no access level.")
    if access in ("public", "server"):
        return
    principal = await principal_of(connection)
    if principal is None:
        raise LoginRequired(
            "Log in, or send an API token as 'Authorization: Bearer <token>'.",
            headers={"WWW-Authenticate": 'Bearer realm="officepulse"'},
        )
    method = connection.scope.get("method", "GET")
    if principal.via == "token" and method not in SAFE_METHODS:
        raise Forbidden("API tokens are for reading and downloading only.")
    if (
        principal.via == "session"
        and method not in SAFE_METHODS
        and not await _csrf_ok(connection, principal.csrf_token or "")
    ):
        raise Forbidden("The form has expired or did not come from officepulse; reload it.")
    if access == "admin" and principal.role != "admin":
        raise Forbidden("Only administrators may do this.")
    if access == "evaluator" and principal.role not in READERS:
        raise Forbidden("Only evaluators and administrators may see this.")
    if access == "office":
        office = connection.path_params.get("office_id")
        if office is not None and not principal.sees_office(str(office)):
            raise Forbidden("This account may not see this office.")


async def require_principal(request: Request[Any, Any, Any]) -> Principal:
    """The principal of a request that passed the guard (for handlers)."""
    principal = await principal_of(request)
    if principal is None:
        raise LoginRequired("Log in first.")
    return principal


# -- login form protection ---------------------------------------------------------------------


def login_csrf(secret_key: str, nonce: str) -> str:
    """The login form's token: bound to the nonce in the (SameSite=Strict) login cookie."""
    return keyed_hash(secret_key, "login-csrf", nonce)


def safe_next(target: str | None) -> str:
    """Where to go after the login: a path on this site only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/dashboard"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/dashboard"
    return target


def login_url(path: str, query: str = "") -> str:
    target = path + ("?" + query if query else "")
    return "/login?next=" + quote(target, safe="/")
