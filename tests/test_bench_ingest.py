"""The ingest benchmark's smoke run: the script still works end to end (no time is asserted)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "ingest.py"


def test_ingest_benchmark_smoke_run_stores_every_acknowledged_response(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        if os.environ.get("CI"):
            pytest.fail("wrk is missing but CI is set: scripts/test installs Debian's wrk")
        pytest.skip("wrk is not installed")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--work", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| uvicorn |")]
    assert [row.split("|")[3].strip() for row in rows] == ["1", "8"]
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        created, other, stored = (int(re.sub(r"\D", "", cell)) for cell in cells[-3:])
        assert created > 0
        assert other == 0
        # The script itself fails unless every 201 is a stored row; the table says so too.
        assert stored >= created
    assert "commit" in done.stdout.splitlines()[0]
