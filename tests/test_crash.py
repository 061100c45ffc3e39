"""Repeated SIGKILL under load: the crash benchmark in a bounded size, checked from outside.

``benchmarks/crash.py`` starts ``officepulse serve`` on one data directory, lets API clients,
kiosks and phones submit (and retry) concurrently, and kills the server with SIGKILL at random
moments, restarting it each time; after every kill it opens the database and compares it with
what the clients were told. The script checks itself and exits 1 on any loss; this test also
reads the final file itself and compares it with the ids the script wrote down, so a script
that stopped checking would not pass either. The long run (100 kills) is in benchmarks/.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from .serverproc import db_rows, run_cli

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "crash.py"


def crash_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600
    )


def test_repeated_sigkill_under_load_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    # Seed 3: four kills under load, one during start-up.
    done = crash_run("--kills", "5", "--seed", "3", "--work", str(tmp_path))
    assert done.returncode == 0, done.stderr[-4000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["problems"] == []
    assert summary["kills"] == 5
    assert summary["kills_under_load"] >= 3
    assert summary["kills_during_startup"] >= 1
    assert summary["lost"] == summary["duplicates"] == summary["unknown"] == 0
    # After every kill the file opened and held at least the ids acknowledged until then.
    assert [check["kill"] for check in summary["checks"]] == [1, 2, 3, 4, 5]
    assert all(check["rows"] >= check["acknowledged"] for check in summary["checks"])
    assert summary["restarts_over_stale_server_json"] >= summary["kills_under_load"]
    assert summary["commands_while_down"] >= 1
    assert all(count > 0 for count in summary["acknowledged_by_kind"].values())

    # From outside: every id a client generated was acknowledged and is stored exactly once,
    # and nothing else is stored.
    ids = json.loads((tmp_path / "ids.json").read_text())
    generated, acknowledged = set(ids["generated"]), set(ids["acknowledged"])
    assert acknowledged == generated
    assert len(generated) == summary["acknowledged"]
    data = tmp_path / "data"
    stored = Counter(row[0] for row in db_rows(data, "SELECT id::VARCHAR FROM responses"))
    assert set(stored) == generated
    assert set(stored.values()) == {1}
    # The file also opens read-write for the command line, migrations and all.
    survey = run_cli(["survey", "list", "--json", "--data-dir", str(data)])
    assert survey.returncode == 0, survey.stderr
    assert sum(s["responses"] for s in json.loads(survey.stdout)) == len(generated)
    table = [line for line in done.stdout.splitlines() if line.startswith("| 5 |")]
    assert len(table) == 1
    assert "| 0 | 0 | 0 |" in table[0]  # lost, duplicates, ids nobody sent


def test_crash_run_refuses_nonsense_arguments(tmp_path: Path) -> None:
    for args in (["--kills", "0"], ["--startup-share", "1.5"], ["--kills", "many"]):
        done = crash_run(*args, "--work", str(tmp_path))
        assert done.returncode == 2, (args, done.stderr)
        assert "error:" in done.stderr
        assert not (tmp_path / "data").exists()
