"""QR codes and posters of an office as downloads: the files that ``officepulse qr`` writes."""

from __future__ import annotations

from typing import Any, Final

import anyio.to_thread
from litestar import Request, Response, get
from litestar.params import FromPath

from officepulse import audit
from officepulse.adminpages.forms import ADMIN, not_found, read, runtime_of
from officepulse.auth import require_principal
from officepulse.offices import get_office, office_placements
from officepulse.pages import SECURITY_HEADERS
from officepulse.qr import (
    DEFAULT_LANGS,
    PosterError,
    PosterSize,
    parse_langs,
    poster_pdf,
    qr_png,
    qr_svg,
    survey_url,
)
from officepulse.staff import message_page
from officepulse.storage import Cursor

MEDIA_TYPES: Final = {"pdf": "application/pdf", "svg": "image/svg+xml", "png": "image/png"}
SIZES: Final[tuple[PosterSize, ...]] = ("a4", "sticker")


class PosterRequest:
    """The checked query of a download: what the ``qr`` command's options would be."""

    def __init__(self, fmt: str, placement: str | None, langs: list[str], size: PosterSize):
        self.fmt = fmt
        self.placement = placement
        self.langs = langs
        self.size = size

    def url_lang(self) -> str | None:
        """A single-language poster also opens the survey in that language (as the CLI does)."""
        return self.langs[0] if len(self.langs) == 1 else None

    def filename(self, office_id: str) -> str:
        """``qr-mh-u25-waiting-de-en-a4.pdf``: office, placement, languages, format."""
        parts = ["qr", office_id]
        if self.placement:
            parts.append(self.placement)
        if self.fmt == "pdf":
            parts.extend([*self.langs, self.size])
        elif self.url_lang():
            parts.append(self.langs[0])
        return "-".join(parts) + "." + self.fmt


def check_query(query: Any, registered: frozenset[str]) -> tuple[PosterRequest | None, list[str]]:
    """The poster request of a query string, or the problems, each naming its field."""
    problems: list[str] = []
    fmt = str(query.get("format") or "")
    if fmt not in MEDIA_TYPES:
        problems.append(f"format: {fmt!r} ist keines von pdf, svg, png.")
    placement = str(query.get("placement") or "").strip() or None
    if placement is not None and placement not in registered:
        known = ", ".join(sorted(registered)) or "keiner"
        problems.append(
            f"placement: {placement!r} ist für diese Dienststelle nicht registriert"
            f" (registriert: {known})."
        )
    # Languages come as repeated fields from the form's checkboxes, or as "de,en".
    given = ",".join(str(v) for v in query.getall("lang", []) if str(v).strip())
    langs: list[str] = []
    try:
        langs = parse_langs(given or DEFAULT_LANGS)
    except ValueError as exc:
        problems.append("lang: " + str(exc).removeprefix("--lang: "))
    size_text = str(query.get("size") or "a4")
    size: PosterSize = "a4"
    if size_text == "sticker":
        size = "sticker"
    elif size_text != "a4":
        problems.append(f"size: {size_text!r} ist keines von a4, sticker.")
    if problems:
        return None, problems
    return PosterRequest(fmt, placement, langs, size), []


def _office_and_placements(cur: Cursor, office_id: str) -> tuple[str, frozenset[str]] | None:
    office = get_office(cur, office_id)
    if office is None:
        return None
    return office.name, office_placements(cur).get(office_id, frozenset())


def _bad_request(request: Request[Any, Any, Any], problems: list[str]) -> Response[str]:
    return message_page(
        request,
        422,
        "QR-Code kann nicht erstellt werden",
        [*problems, "Bitte ändern Sie die Angaben im Formular der Dienststelle."],
    )


@get("/offices/{office_id:str}/poster", opt=ADMIN)
async def poster(request: Request[Any, Any, Any], office_id: FromPath[str]) -> Response[Any]:
    """Download the QR code (SVG, PNG) or the printable poster or sticker (PDF) of an office."""
    runtime = runtime_of(request)
    principal = await require_principal(request)
    found = await read(runtime, lambda cur: _office_and_placements(cur, office_id))
    if found is None:
        raise not_found(f"Es gibt keine Dienststelle {office_id!r}.")
    office_name, registered = found
    wanted, problems = check_query(request.query_params, registered)
    if wanted is None:
        return _bad_request(request, problems)
    url = survey_url(runtime.settings.base_url, office_id, wanted.placement, wanted.url_lang())
    if wanted.fmt == "svg":
        data = qr_svg(url)
    elif wanted.fmt == "png":
        data = await anyio.to_thread.run_sync(qr_png, url)
    else:
        try:
            # vl-convert lays the poster out and embeds fonts: seconds, so off the event loop.
            data = await anyio.to_thread.run_sync(
                poster_pdf, url, office_name, wanted.langs, wanted.size
            )
        except PosterError as exc:
            return _bad_request(request, [f"lang: {exc}"])
    filename = wanted.filename(office_id)
    await audit.log(runtime, principal.name, "qr.download", office_id, f"{filename} {url}")
    return Response(
        data,
        media_type=MEDIA_TYPES[wanted.fmt],
        headers={
            **SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )


HANDLERS = [poster]
