"""Interface catalogues: complete, consistent with the pages, and falling back to German."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from officepulse.i18n import (
    LOCALE_DIR,
    catalogue_path,
    catalogue_status,
    gettext_for,
    translations,
)
from officepulse.languages import LANGUAGES

ROOT = Path(__file__).resolve().parents[1]


def _msgids(path: Path) -> set[str]:
    with path.open("rb") as handle:
        return {message.id for message in read_po(handle) if message.id}  # type: ignore[misc]


def test_messages_pot_is_up_to_date_with_the_pages(tmp_path: Path) -> None:
    fresh = tmp_path / "messages.pot"
    subprocess.run(
        [
            str(Path(sys.executable).parent / "pybabel"),
            "--quiet", "extract", "-F", "babel.cfg", "-k", "_", "--no-location", "--omit-header",
            "-o", str(fresh), ".",
        ],
        cwd=ROOT,
        check=True,
    )  # fmt: skip
    assert _msgids(fresh) == _msgids(LOCALE_DIR / "messages.pot"), "run scripts/messages"


@pytest.mark.parametrize("lang", [tag for tag in LANGUAGES if tag != "en"])
def test_every_catalogue_translates_every_message_with_its_placeholders(lang: str) -> None:
    path = catalogue_path(lang)
    assert path.exists()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale="de" if lang == "de-x-ls" else lang.split("-")[0])
    wanted = _msgids(LOCALE_DIR / "messages.pot")
    strings = {m.id: m.string for m in catalog if m.id}
    assert wanted <= set(strings), wanted - set(strings)
    for msgid in wanted:
        translated = strings[msgid]
        assert isinstance(translated, str)
        assert translated.strip(), msgid
        assert set(re.findall(r"%\(\w+\)s", msgid)) == set(re.findall(r"%\(\w+\)s", translated))
    assert re.search(r"^# review-status: (source|reviewed|draft)", path.read_text("utf-8"), re.M)


def test_status_table_counts_everything() -> None:
    rows = {row.lang: row for row in catalogue_status()}
    assert set(rows) == set(LANGUAGES)
    assert all(row.translated == row.total for row in rows.values())
    assert rows["de"].status == "source"
    assert rows["ar"].status == "draft"


def test_missing_message_falls_back_to_german_not_english() -> None:
    translations.cache_clear()
    german = gettext_for("de")("Thank you for your answers!")
    assert german != "Thank you for your answers!"
    assert gettext_for("en")("Thank you for your answers!") == "Thank you for your answers!"
    # a message no catalogue has is shown as given (the msgid); a language without a
    # catalogue at all gets the German texts
    assert gettext_for("xx")("Thank you for your answers!") == german
