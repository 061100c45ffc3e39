"""The client languages officepulse speaks, each named in its own script.

The list follows the client groups in German job centres (see the project's domain research):
German, German easy language, English, and the languages of the largest groups of clients
with a migration background. Right-to-left scripts are marked so that pages can set
``dir="rtl"``.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

Direction = Literal["ltr", "rtl"]


class Language(msgspec.Struct, frozen=True):
    """One interface language."""

    tag: str
    """BCP 47 tag used in URLs, survey files and stored responses."""
    native_name: str
    """The language's name in its own script (used by language switchers, never flags)."""
    english_name: str
    direction: Direction = "ltr"


# German easy language (Leichte Sprache) has no registered subtag; ``de-x-ls`` is a private-use
# tag under ``de`` so that anything unaware of it still falls back to German.
LANGUAGES: Final[dict[str, Language]] = {
    lang.tag: lang
    for lang in (
        Language("de", "Deutsch", "German"),
        Language("de-x-ls", "Leichte Sprache", "German easy language"),
        Language("en", "English", "English"),
        Language("uk", "Українська", "Ukrainian"),
        Language("ru", "Русский", "Russian"),
        Language("ar", "العربية", "Arabic", "rtl"),
        Language("fa", "دری / فارسی", "Dari/Persian", "rtl"),
        Language("ps", "پښتو", "Pashto", "rtl"),
        Language("tr", "Türkçe", "Turkish"),
        Language("kmr", "Kurmancî", "Kurdish (Kurmanji)"),
        Language("ro", "Română", "Romanian"),
        Language("bg", "Български", "Bulgarian"),
        Language("pl", "Polski", "Polish"),
    )
}

DEFAULT_LANGUAGE: Final = "de"


def is_supported(tag: str) -> bool:
    """Whether ``tag`` names one of the interface languages (exact, case-sensitive tag)."""
    return tag in LANGUAGES
