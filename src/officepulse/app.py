"""The application factory: ``create_app(settings)`` is the only place the app is assembled."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final, Literal

import anyio.to_thread
import msgspec
from litestar import Litestar, Request, Response, Router, get
from litestar.config.compression import CompressionConfig
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from officepulse import (
    __version__,
    admin,
    adminpages,
    dashboard,
    evaluate,
    kiosk,
    login,
    pages,
    responses,
    retention,
    summary,
)
from officepulse.auth import LoginThrottle, access_guard
from officepulse.limiter import RepeatLimiter
from officepulse.problems import (
    EXCEPTION_HANDLERS,
    handle_http_exception,
    handle_unavailable,
    not_found_as_problem,
)
from officepulse.runtime import Runtime
from officepulse.settings import Settings
from officepulse.staff import StaffRenderer, staff_error
from officepulse.storage import StoreUnavailableError

access_log = logging.getLogger("officepulse.access")


class Health(msgspec.Struct, frozen=True):
    status: Literal["ok", "degraded"]
    version: str
    # "ok", or why submissions are refused with 503 (the disk is full, the database reopens)
    storage: str


@get("/healthz", tags=["health"], sync_to_thread=False, opt={"access": "public"})
def healthz(state: State) -> Health:
    """Liveness: the server is up. ``degraded`` while it cannot store (e.g. the disk is full).

    Still 200 then: restarting the server would not free the disk, and it recovers by itself.
    """
    problem = state.runtime.store.write_problem()
    return Health(
        status="ok" if problem is None else "degraded",
        version=__version__,
        storage="ok" if problem is None else problem,
    )


# Sent with every answer that does not set its own: pages set a fuller policy, the kiosk shell
# its own, downloads a sandbox. An API answer needs no resources and is never framed.
DEFAULT_HEADERS: Final = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
)


def _with_default_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    present = {name.lower() for name, _ in headers}
    return headers + [(name, value) for name, value in DEFAULT_HEADERS if name not in present]


def access_log_middleware(app: ASGIApp) -> ASGIApp:
    """Log method, path and status, never the client's address, agent, query or time.

    The server's own access log is switched off (it would record the client address); this one
    line per request is what operators get instead. The same pass adds the default security
    headers (one middleware layer instead of two: every layer costs on the ingest path).
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        method = scope["method"]
        status = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = _with_default_headers(list(message.get("headers", [])))
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            # Successes only at debug level: a line per request costs about half of the
            # server's capacity for small requests (see benchmarks/README.md).
            level = logging.DEBUG if 0 < status < 400 else logging.INFO
            access_log.log(level, "%s %s %s", method, scope["path"], status)

    return middleware


STAFF_PREFIXES: Final = ("/dashboard", "/admin")
UNCOMPRESSED_PATHS: Final = ["^/dashboard", "^/admin", "^/login", "^/logout"]


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Errors outside any router (e.g. an unknown path): a page in the staff area, else JSON."""
    if request.url.path.startswith(STAFF_PREFIXES):
        return staff_error(request, exc)
    return handle_http_exception(request, exc)


def create_app(settings: Settings) -> Litestar:
    """Build the officepulse application for ``settings``.

    The database is opened in the lifespan, so building an app has no side effects.
    """

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        runtime = await anyio.to_thread.run_sync(Runtime.open, settings)
        app.state.runtime = runtime
        app.state.kiosks = kiosk.KioskState(
            runtime,
            kiosk.BurstDetector(
                gap_seconds=settings.burst_gap_seconds,
                window_seconds=settings.burst_window_seconds,
                window_count=settings.burst_window_count,
            ),
        )
        purging = retention.start_daily_purge(runtime)
        try:
            yield
        finally:
            await retention.stop_daily_purge(purging)
            await anyio.to_thread.run_sync(runtime.close)

    openapi = OpenAPIConfig(
        title="officepulse",
        version=__version__,
        description="Anonymous client feedback for job centres.",
        # Only the JSON document: the interactive viewers load scripts from CDNs, and no page
        # of officepulse may make a third-party request.
        render_plugins=[JsonRenderPlugin()],
        # The schema's own routes are not part of the API; an unknown /schema/... path is a
        # problem like every other error (Litestar would answer with an HTML page).
        openapi_router=Router(
            path="/schema",
            route_handlers=[],
            include_in_schema=False,
            after_request=not_found_as_problem,
            opt={"access": "public"},
        ),
    )
    handlers: list[Any] = [
        healthz,
        responses.router,
        summary.router,
        admin.router,
        login.router,
        dashboard.router,
        evaluate.router,
        adminpages.router,
        pages.router,
        pages.static_router,
        kiosk.router,
        kiosk.static_router,
    ]
    return Litestar(
        route_handlers=handlers,
        lifespan=[lifespan],
        exception_handlers={
            **EXCEPTION_HANDLERS,
            HTTPException: _http_error,
            StoreUnavailableError: handle_unavailable,
        },
        middleware=[access_log_middleware],
        # One guard for every route: each declares opt["access"]; a route without it is refused.
        guards=[access_guard],
        openapi_config=openapi,
        state=State(
            {
                "settings": settings,
                "pages": pages.PageRenderer(settings.accessibility_contact),
                "limiter": RepeatLimiter(zone=settings.zone),
                "staff": StaffRenderer(),
                "login_throttle": LoginThrottle(),
            }
        ),
        request_max_body_size=1024 * 1024,
        # Clients answer on cheap phones with bad connections: pages, the kiosk shell and its
        # configuration travel gzipped (small API answers stay below the threshold). Staff
        # pages never are: they carry the session's CSRF token next to text an attacker could
        # choose (query values echoed into forms), the precondition of a BREACH-style attack.
        compression_config=CompressionConfig(
            backend="gzip",
            minimum_size=1024,
            gzip_compress_level=6,
            exclude=UNCOMPRESSED_PATHS,
        ),
        debug=False,
        # Logging is configured by the command that runs the app: Litestar's default format
        # would stamp every line with the exact time.
        logging_config=None,
    )


def app_from_environment() -> Litestar:
    """An app configured from ``OFFICEPULSE_*`` variables, for other ASGI servers' factories.

    ``officepulse serve`` is the supported way to run the server; this exists so that the
    benchmarks can run the same app under granian.
    """
    from officepulse.logs import setup_logging
    from officepulse.settings import ensure_secret_key, load_settings

    settings = ensure_secret_key(load_settings())
    setup_logging(settings.log_level)
    return create_app(settings)
