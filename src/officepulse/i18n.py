"""Interface languages: gettext catalogues (Babel) and choosing a client's language.

Item texts live in the survey files; every other string of the pages is a gettext message in
``locale/<tag>/LC_MESSAGES/messages.po``. The catalogues are compiled in memory when first
used, so a deployment can edit a ``.po`` file without a build step.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Final, NamedTuple

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from officepulse.languages import DEFAULT_LANGUAGE, LANGUAGES

LOCALE_DIR: Final = Path(__file__).parent / "locale"
DOMAIN: Final = "messages"

# Tags that browsers send for our languages under other names: Dari is "prs" or "fa-AF",
# Kurmanji is often just "ku".
_ALIASES: Final = {
    "prs": "fa",
    "fa-af": "fa",
    "ku": "kmr",
    "ku-latn": "kmr",
    "kmr-latn": "kmr",
    "de-x-ls": "de-x-ls",
}


def catalogue_path(lang: str) -> Path:
    """Where the catalogue of ``lang`` lives (``-`` becomes ``_`` in the folder name)."""
    return LOCALE_DIR / lang.replace("-", "_") / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(lang: str) -> NullTranslations:
    """The compiled catalogue of ``lang``, falling back to German message by message.

    The msgids are English, so English needs no catalogue. Every other language falls back to
    the German catalogue for a message it lacks: clients of a German job centre are more
    likely to read German than English, and a label is never left blank.
    """
    if lang == "en":
        return NullTranslations()
    path = catalogue_path(lang)
    if not path.exists():
        return translations("de") if lang != "de" else NullTranslations()
    with path.open("rb") as handle:
        # Babel cannot parse the private-use tag of Leichte Sprache; its plural rules are
        # German ones anyway.
        catalog = read_po(handle, locale="de" if lang == "de-x-ls" else lang.split("-")[0])
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    compiled = Translations(fp=buffer, domain=DOMAIN)
    if lang != "de":
        compiled.add_fallback(translations("de"))
    return compiled


def gettext_for(lang: str) -> Callable[[str], str]:
    """The ``_`` function of the pages in ``lang``."""
    return translations(lang).gettext


def _normalise(tag: str) -> str | None:
    tag = tag.strip().lower().replace("_", "-")
    if not tag or tag == "*":
        return None
    if tag in _ALIASES:
        return _ALIASES[tag]
    for supported in LANGUAGES:
        if tag == supported.lower():
            return supported
    primary = tag.split("-", 1)[0]
    if primary in _ALIASES:
        return _ALIASES[primary]
    return primary if primary in LANGUAGES else None


def parse_accept_language(header: str) -> list[str]:
    """Supported languages from an Accept-Language header, best first."""
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        lang = _normalise(tag)
        if lang is not None and quality > 0:
            weighted.append((-quality, index, lang))
    seen: list[str] = []
    for _, _, lang in sorted(weighted):
        if lang not in seen:
            seen.append(lang)
    return seen


def choose_language(query: str | None, accept_language: str | None, office_default: str) -> str:
    """``?lang=`` if supported, else the browser's preference, else the office's default."""
    if query:
        chosen = _normalise(query)
        if chosen is not None:
            return chosen
    if accept_language:
        preferred = parse_accept_language(accept_language)
        if preferred:
            return preferred[0]
    return office_default if office_default in LANGUAGES else DEFAULT_LANGUAGE


class CatalogueStatus(NamedTuple):
    """How far one language's interface catalogue is translated and reviewed."""

    lang: str
    status: str
    translated: int
    total: int


def catalogue_status() -> list[CatalogueStatus]:
    """Every language's catalogue against ``messages.pot`` (English needs none)."""
    with (LOCALE_DIR / "messages.pot").open("rb") as handle:
        wanted = {message.id for message in read_po(handle) if message.id}
    result: list[CatalogueStatus] = []
    for lang in LANGUAGES:
        if lang == "en":
            result.append(CatalogueStatus(lang, "source", len(wanted), len(wanted)))
            continue
        path = catalogue_path(lang)
        if not path.exists():
            result.append(CatalogueStatus(lang, "missing", 0, len(wanted)))
            continue
        with path.open("rb") as handle:
            catalog = read_po(handle, locale="de" if lang == "de-x-ls" else lang.split("-")[0])
        done = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
        # The status lives in the header comment: pybabel update drops unknown header fields.
        found = re.search(r"^# review-status: *(\w+)", path.read_text("utf-8"), re.MULTILINE)
        status = found.group(1) if found else "draft"
        result.append(CatalogueStatus(lang, status, len(wanted & done), len(wanted)))
    return result


def format_catalogue_status() -> str:
    """A table of the interface catalogues for ``officepulse survey check``."""
    lines = [
        "Interface strings (gettext catalogues; a missing string is shown in German)",
        "",
        f"{'lang':<8} {'status':<7} translated",
    ]
    for row in catalogue_status():
        lines.append(f"{row.lang:<8} {row.status:<7} {row.translated:>3}/{row.total}")
    return "\n".join(lines)
