"""The front-end weight benchmark runs end to end at smoke size and prints its tables.

It starts its own server and drives Debian's Chromium, so like the browser tests it is skipped
only where Chromium is missing and CI is unset; under CI=true a missing browser fails. No time
is asserted: only that the script succeeded and measured real, non-empty pages.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import CHROMIUM

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "frontend.py"


def summary_rows(output: str) -> dict[str, list[str]]:
    """The cells of the summary table's rows, by the page in the first column."""
    rows: dict[str, list[str]] = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        # the summary table has 15 columns; the first row for a page is the summary's
        if line.startswith("| ") and len(cells) == 15 and cells[0] not in rows:
            rows[cells[0]] = cells
    return rows


def number(cell: str) -> int:
    """The median of a cell such as ``6,280`` or ``6,280 (6,271–6,290)``."""
    found = re.match(r"([\d,]+)", cell)
    assert found, cell
    return int(found.group(1).replace(",", ""))


def test_smoke_run_prints_the_tables(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing but CI is set: install Debian's chromium")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--work", str(tmp_path), "--chromium", CHROMIUM],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout
    assert output.startswith("### "), output[:200]
    assert "Chromium " in output.splitlines()[0]
    rows = summary_rows(output)
    for page in (
        "phone survey, German",
        "phone survey, Arabic (RTL)",
        "thank-you page after submit",
        "kiosk shell, first load (unpaired)",
        "kiosk pairing, until the start screen",
        "kiosk paired, reload",
    ):
        assert page in rows, f"no row for {page!r} in:\n{output}"
        requests, wire, decoded = (number(cell) for cell in rows[page][1:4])
        assert requests > 0, rows[page]
        assert wire > 0, rows[page]
        assert decoded > 0, rows[page]
        assert rows[page][13] == "0", f"{page}: requests to another origin"
    survey = rows["phone survey, German"]
    assert survey[4].startswith("1 · "), survey  # one document
    assert survey[5] != "–", survey  # and its stylesheet
    assert survey[10] == "–", survey  # nothing else: the page declares an empty favicon
    shell = rows["kiosk shell, first load (unpaired)"]
    assert shell[11] != "–", shell  # the service worker's script and precache
    # the script kept nothing: its scratch folder inside --work is gone
    assert list(tmp_path.iterdir()) == []
