"""Pages for staff (managers, evaluators, administrators): layout, rendering and error pages.

Staff pages are German, like the reports. They share the survey pages' security headers (a
Content-Security-Policy without 'unsafe-inline', no referrer, nosniff, no framing) and are
never cached. Every form carries the session's CSRF token as ``csrf_token``.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, Final

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.response import Redirect

from officepulse.auth import (
    CSRF_FIELD,
    LoginRequired,
    Principal,
    cached_principal,
    login_url,
    session_expired,
)
from officepulse.pages import SECURITY_HEADERS
from officepulse.storage import StoreUnavailableError

TEMPLATES: Final = Path(__file__).parent / "templates"


class NavLink:
    def __init__(self, href: str, text: str) -> None:
        self.href = href
        self.text = text


def navigation(principal: Principal | None) -> list[NavLink]:
    """The menu of a role: only what the account may open."""
    if principal is None:
        return []
    links = [NavLink("/dashboard", "Übersicht")]
    if principal.role in ("evaluator", "admin"):
        links.append(NavLink("/dashboard/reports", "Berichte"))
    if principal.role == "admin":
        links.append(NavLink("/admin", "Verwaltung"))
    links.append(NavLink("/dashboard/tokens", "API-Tokens"))
    return links


class StaffRenderer:
    """Renders staff templates (autoescaped, strict about undefined names)."""

    def __init__(self) -> None:
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
        )
        self.env.filters["svg_data_uri"] = svg_data_uri

    def html(self, template: str, principal: Principal | None, path: str, **values: Any) -> str:
        context: dict[str, Any] = {
            "principal": principal,
            "nav": navigation(principal),
            "current_path": path,
            "csrf_field": CSRF_FIELD,
            "csrf_token": principal.csrf_token if principal else None,
            "page_title": "",
            "notice": None,
        }
        context.update(values)
        return self.env.get_template(template).render(context)

    def render(
        self,
        request: Request[Any, Any, Any],
        template: str,
        status: int = 200,
        headers: dict[str, str] | None = None,
        **values: Any,
    ) -> Response[str]:
        """A staff page for the request's account (as the guard found it)."""
        principal = cached_principal(request)
        return Response(
            self.html(template, principal, request.url.path, **values),
            status_code=status,
            media_type=MediaType.HTML,
            headers={**SECURITY_HEADERS, **(headers or {})},
        )


def svg_data_uri(svg: str) -> str:
    """An SVG as a data: URI for <img>: charts need no inline script or style in the page."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def renderer(request: Request[Any, Any, Any]) -> StaffRenderer:
    staff: StaffRenderer = request.app.state.staff
    return staff


def message_page(
    request: Request[Any, Any, Any], status: int, heading: str, paragraphs: list[str]
) -> Response[str]:
    return renderer(request).render(
        request,
        "staff_message.html",
        status=status,
        page_title=heading,
        heading=heading,
        paragraphs=paragraphs,
    )


MESSAGES: Final[dict[int, tuple[str, str]]] = {
    400: ("Ungültige Anfrage", "Die Anfrage war unvollständig oder fehlerhaft."),
    403: ("Kein Zugriff", "Ihr Konto darf diese Seite nicht öffnen."),
    404: ("Nicht gefunden", "Diese Seite gibt es nicht."),
    405: ("Nicht erlaubt", "Diese Aktion ist hier nicht möglich."),
    413: ("Zu groß", "Die Datei oder das Formular ist zu groß."),
    503: (
        "Vorübergehend nicht möglich",
        "Der Server kann gerade nichts speichern (etwa weil der Datenträger voll ist); es wurde"
        " nichts geändert. Bitte versuchen Sie es später noch einmal.",
    ),
}


def staff_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Errors on staff pages: 401 sends to the login, others are short German pages."""
    if isinstance(exc, LoginRequired):
        target = login_url(request.url.path, request.url.query)
        if session_expired(request):
            target += "&expired=1"
        return Redirect(target, status_code=303)
    if isinstance(exc, HTTPException):
        status = exc.status_code
    else:
        status = 503 if isinstance(exc, StoreUnavailableError) else 500
    heading, text = MESSAGES.get(
        status, ("Fehler", "Die Seite konnte nicht erstellt werden; es wurde nichts geändert.")
    )
    paragraphs = [text]
    if isinstance(exc, HTTPException) and status in (400, 403) and exc.detail:
        paragraphs.append(str(exc.detail))
    return message_page(request, status if 400 <= status < 600 else 500, heading, paragraphs)


STAFF_EXCEPTION_HANDLERS: Final[dict[type[Exception] | int, Any]] = {
    HTTPException: staff_error,
    # Named, so that it wins over the app's problem-details answer for the same error.
    StoreUnavailableError: staff_error,
    Exception: staff_error,
}
