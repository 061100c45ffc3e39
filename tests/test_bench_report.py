"""The reports benchmark's smoke run: the script still works end to end (no time is asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "report.py"
MEASUREMENTS = (
    "data",
    "summary endpoint, cold (first call)",
    "summary endpoint, p50 / p99",
    "server peak memory",
    "smoke-report JSON report",
    "smoke-report HTML report",
    "Parquet export of the responses",
    "pandas: the aggregates from the Parquet file",
    "officepulse: the same aggregates",
    "**pandas ÷ officepulse, same aggregates**",
    "pandas aggregates ÷ whole JSON report",
)


def test_reports_benchmark_smoke_run_prints_its_table(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--work", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "commit" in lines[0]
    assert "DuckDB" in lines[0]
    assert "### 3,000 responses" in lines
    assert "| measurement | value | notes |" in lines
    rows = {
        cells[0]: cells[1:]
        for line in lines
        if line.startswith("| ") and not line.startswith("| measurement")
        for cells in [[cell.strip() for cell in line.strip("|").split("|")]]
    }
    assert list(rows) == list(MEASUREMENTS)
    assert all(len(cells) == 2 and cells[0] and cells[1] for cells in rows.values())
    # Numbers where numbers belong; their size is not checked.
    assert re.fullmatch(r"[\d.]+ / [\d.]+ ms", rows["summary endpoint, p50 / p99"][0])
    assert re.fullmatch(r"[\d,]+ MiB", rows["server peak memory"][0])
    assert re.fullmatch(r"[\d.]+ s, peak [\d,]+ MiB", rows["smoke-report JSON report"][0])
    assert re.fullmatch(r"[\d,]+ KiB file", rows["smoke-report HTML report"][1])
    assert re.fullmatch(r"\*\*[\d.]+×\*\*", rows["**pandas ÷ officepulse, same aggregates**"][0])
    # The benchmark's files stay in the folder it was given.
    assert (tmp_path / "synth-3000.complete").exists()
    assert (tmp_path / "out-3000" / "report.html").exists()
