"""`officepulse export`: aggregates respect k, raw responses carry no comments unless asked."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb

from .serverproc import run_cli, server_process


def demo_data(tmp_path: Path, responses: int = 3000) -> Path:
    data = tmp_path / "demo"
    result = run_cli(["demo", "--data-dir", str(data), "--responses", str(responses), "--no-serve"])
    assert result.returncode == 0, result.stderr
    return data


def test_aggregates_csv_and_parquet_respect_k(tmp_path: Path) -> None:
    data = demo_data(tmp_path)
    out_csv = tmp_path / "agg.csv"
    result = run_cli(
        ["export", "aggregates", "--format", "csv", "--out", str(out_csv), "--period", "week",
         "--data-dir", str(data), "--json"]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows"] > 0
    assert summary["suppressed"] > 0  # weekly cells of small offices fall below k
    with out_csv.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == summary["rows"]
    for row in rows:
        if row["suppressed"] == "true":
            assert row["n"] == ""
            assert row["mean"] == ""
            assert row["n_1"] == ""
        else:
            assert int(row["n"]) >= 5
    out_parquet = tmp_path / "agg.parquet"
    result = run_cli(
        ["export", "aggregates", "--format", "parquet", "--out", str(out_parquet),
         "--data-dir", str(data)]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with duckdb.connect() as conn:
        (small,) = conn.execute(
            "SELECT count(*) FROM read_parquet(?) WHERE n < 5", [str(out_parquet)]
        ).fetchone() or (None,)
    assert small == 0
    assert not list(tmp_path.glob(".*.part"))


def test_raw_responses_without_and_with_comments(tmp_path: Path) -> None:
    data = demo_data(tmp_path, responses=2000)
    plain = tmp_path / "responses.csv"
    result = run_cli(
        ["export", "responses", "--format", "csv", "--out", str(plain), "--data-dir", str(data)]
    )
    assert result.returncode == 0, result.stderr
    with plain.open(encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        rows = list(reader)
    assert "comment" not in header
    assert {"stress_now", "respect", "rooms", "effort", "overall", "time"} <= set(header)
    assert all(row["time"].endswith(":00:00") for row in rows)  # only the stored hour
    commented = tmp_path / "with-comments.parquet"
    result = run_cli(
        ["export", "responses", "--format", "parquet", "--with-comments", "--out",
         str(commented), "--data-dir", str(data)]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with duckdb.connect() as conn:
        columns = [
            c[0]
            for c in conn.execute(
                "DESCRIBE SELECT * FROM read_parquet(?)", [str(commented)]
            ).fetchall()
        ]
    assert "comment" in columns


def test_export_through_a_running_server(tmp_path: Path) -> None:
    data = demo_data(tmp_path, responses=1000)
    out = tmp_path / "agg.csv"
    with server_process(data):
        result = run_cli(
            ["export", "aggregates", "--format", "csv", "--out", str(out), "--data-dir", str(data)]
        )
        assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 0


def test_export_errors_are_one_line(tmp_path: Path) -> None:
    data = demo_data(tmp_path, responses=100)
    missing_dir = tmp_path / "no" / "such" / "dir" / "x.csv"
    result = run_cli(
        ["export", "aggregates", "--format", "csv", "--out", str(missing_dir),
         "--data-dir", str(data)]
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert str(missing_dir.parent) in result.stderr
    bad = run_cli(
        ["export", "everything", "--format", "csv", "--out", "x", "--data-dir", str(data)]
    )
    assert bad.returncode != 0
