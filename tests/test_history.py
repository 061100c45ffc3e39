"""Historical responses: files through the command, validated like the API, all or nothing."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from officepulse import history
from officepulse.history import HistoryError, ImportRow, Staging, UploadPart
from officepulse.offices import Office, insert_offices, insert_placement
from officepulse.runtime import Runtime

from .conftest import make_settings, stored_rows
from .serverproc import cli_env, run_cli, server_process

ITEMS = ("stress_now", "respect", "heard", "next_steps", "rooms", "wayfinding", "effort", "overall")
COLUMNS = ("id", "office", "survey", "version", "channel", "placement", "lang", "time", *ITEMS,
           "comment")  # fmt: skip


def row(**changes: object) -> dict[str, str]:
    """A complete, valid CSV row of the default survey; ``changes`` replace cells."""
    cells: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "office": "mh-u25",
        "survey": "atmosphere",
        "version": 1,
        "channel": "qr",
        "placement": "waiting",
        "lang": "de",
        "time": "2024-03-05 09:47",
        "stress_now": 2,
        "respect": 5,
        "heard": "",
        "next_steps": "",
        "rooms": 4,
        "wayfinding": "",
        "effort": 4,
        "overall": 5,
        "comment": "",
    }
    cells.update(changes)
    return {key: str(value) for key, value in cells.items()}


def csv_text(rows: Sequence[dict[str, str]], columns: Sequence[str] = COLUMNS) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def db_rows(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(data_dir / "officepulse.duckdb"), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def init_data(data_dir: Path, env: dict[str, str] | None = None) -> Path:
    """An initialised data directory with mh-u25 (placement 'waiting') and mh-main."""
    d = str(data_dir)
    for args in (
        ["init"],
        ["office", "add", "mh-u25", "--name", "U-25 Haus", "--kind", "pilot"],
        ["office", "add", "mh-main", "--name", "Jobcenter", "--kind", "conventional"],
        ["office", "placement", "add", "mh-u25", "waiting"],
    ):
        result = run_cli([*args, "--data-dir", d], env=env)
        assert result.returncode == 0, result.stderr
    return data_dir


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return init_data(tmp_path / "data")


# -- through the command -----------------------------------------------------------------------


def test_csv_import_stores_validated_anonymised_rows_once(data: Path, tmp_path: Path) -> None:
    first, second, third = (str(uuid.uuid4()) for _ in range(3))
    rows = [
        row(id=first, comment="Bitte rufen Sie mich an: 0176 123 456 78", heard=3),
        row(id=second, office="mh-main", channel="kiosk", placement="flur", lang="tr",
            time="2024-03-05T09:47:00Z"),
        row(id=third, time="2024-07-01 23:30+00:00", placement="", comment="  "),
    ]  # fmt: skip
    path = tmp_path / "history.csv"
    path.write_text("\ufeff" + csv_text(rows), encoding="utf-8")  # a BOM, as Excel writes it
    # comments from 2024 are kept only with a retention period longer than the default
    keep = cli_env(OFFICEPULSE_COMMENT_RETENTION_MONTHS="120")
    result = run_cli(["import", "responses", str(path), "--data-dir", str(data)], env=keep)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"imported 3 responses from {path}; 0 already present"
    stored = {
        r[0]: r[1:]
        for r in db_rows(
            data,
            "SELECT id::VARCHAR, office_id, channel, placement, lang, received_at, answers,"
            " comment, flags FROM responses",
        )
    }
    core = {"stress_now": 2, "respect": 5, "rooms": 4, "effort": 4, "overall": 5}
    assert stored[first] == (
        "mh-u25",
        "qr",
        "waiting",
        "de",
        dt.datetime(2024, 3, 5, 9, 0),  # 09:47 coarsened to the hour
        {**core, "heard": 3},  # empty cells: not answered
        "Bitte rufen Sie mich an: [entfernt]",  # scrubbed like an API comment
        ["imported"],
    )
    # a time with a zone is converted to the offices' local time before coarsening;
    # an unregistered placement is stored as 'unknown', like the API does
    assert stored[second][:5] == ("mh-main", "kiosk", "unknown", "tr", dt.datetime(2024, 3, 5, 10))
    assert stored[third][2] is None
    assert stored[third][4] == dt.datetime(2024, 7, 2, 1, 0)
    assert stored[third][6] is None

    again = run_cli(["import", "responses", str(path), "--json", "--data-dir", str(data)], env=keep)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {
        "complete": True,
        "rows": 3,
        "stored": 0,
        "present": 3,
        "comments_removed": 0,
    }
    text = run_cli(["import", "responses", str(path), "--data-dir", str(data)], env=keep)
    assert "imported 0 responses" in text.stdout
    assert "3 already present" in text.stdout
    assert db_rows(data, "SELECT count(*) FROM responses") == [(3,)]


def test_comments_past_the_retention_period_are_removed_at_import(
    data: Path, tmp_path: Path
) -> None:
    """Old history brings old comments: they go at once, not at the next daily purge."""
    old, recent = str(uuid.uuid4()), str(uuid.uuid4())
    last_month = (dt.datetime.now(dt.UTC) - dt.timedelta(days=31)).strftime("%Y-%m-%d 10:00")
    rows = [
        row(id=old, time="2023-05-02 10:00", comment="Zu lange Wartezeit"),
        row(id=recent, time=last_month, comment="Freundlich"),
    ]
    path = tmp_path / "history.csv"
    path.write_text(csv_text(rows), encoding="utf-8")
    result = run_cli(["import", "responses", str(path), "--data-dir", str(data)])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"imported 2 responses from {path}; 0 already present;"
        " 1 comment older than the retention period removed (ratings kept)"
    )
    stored = dict(db_rows(data, "SELECT id::VARCHAR, comment FROM responses"))
    assert stored == {old: None, recent: "Freundlich"}
    assert db_rows(data, "SELECT count(*) FROM responses WHERE answers['overall'] = 5") == [(2,)]
    audit = db_rows(data, "SELECT actor, action, detail FROM audit_log WHERE action LIKE 'ret%'")
    assert audit == [("(command line)", "retention.purge", audit[0][2])]
    assert audit[0][2].startswith("1 removed")


def test_bad_rows_are_all_reported_and_nothing_is_stored(data: Path, tmp_path: Path) -> None:
    taken = str(uuid.uuid4())
    good = tmp_path / "good.csv"
    good.write_text(csv_text([row(id=taken)]), encoding="utf-8")
    assert run_cli(["import", "responses", str(good), "--data-dir", str(data)]).returncode == 0
    twice = str(uuid.uuid4())
    rows = [
        row(),  # line 2: fine, but must not be stored
        row(id=taken, respect=4),  # line 3: the id is stored with other content
        row(id="not-a-uuid", office="nowhere", channel="paper", lang="xx"),  # line 4
        row(respect=6, effort="4.5"),  # line 5
        row(stress_now=""),  # line 6: a core item is missing
        row(time="05.03.2024 09:47"),  # line 7
        row(time="2024-03-05"),  # line 8
        row(time="2099-01-01 10:00"),  # line 9
        row(version="2"),  # line 10
        row(version="eins"),  # line 11
        row(comment="x" * 501),  # line 12
        row(id=twice),  # line 13
        row(id=twice),  # line 14
        row(**dict.fromkeys(ITEMS, "")),  # line 15: nothing answered
        row(id=""),  # line 16
    ]
    path = tmp_path / "bad.csv"
    path.write_text(csv_text(rows) + "1,2,3\n", encoding="utf-8")  # line 17: too few fields
    result = run_cli(["import", "responses", str(path), "--data-dir", str(data)])
    assert result.returncode == 1
    errors = result.stderr
    assert "Traceback" not in errors
    for expected in (
        "line 3: id: already stored with different content",
        "line 4: id: must be a UUID",
        "line 4: office: unknown office 'nowhere'",
        "line 4: channel: must be one of 'qr', 'kiosk', 'web'",
        "line 4: lang: unsupported language 'xx'",
        "line 5: effort: must be a whole number",
        "line 6: stress_now: core item is missing",
        "line 7: time: '05.03.2024 09:47' is not a time YYYY-MM-DD HH:MM",
        "line 8: time: '2024-03-05' has no time of day",
        "line 9: time: 2099-01-01 10:00 is in the future",
        "line 10: version: survey 'atmosphere' has no version 2",
        "line 11: version: Expected `int`, got `str`",
        "line 12: comment: longer than 500 characters (501)",
        "line 14: id: listed twice (first at line 13)",
        "line 15: items: must not be empty",
        "line 16: id: required field is missing",
        "line 17: expected 17 fields, got 3",
    ):
        assert f"{path}: {expected}" in errors, errors
    assert "14 bad rows; nothing was imported" in errors
    for fine in ("line 2:", "line 13:"):
        assert fine not in errors
    assert db_rows(data, "SELECT count(*) FROM responses") == [(1,)]


def test_an_answer_out_of_range_is_named_by_its_column(data: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(csv_text([row(), row(respect=6, heard=0)]), encoding="utf-8")
    result = run_cli(["import", "responses", str(path), "--data-dir", str(data)])
    assert result.returncode == 1
    assert f"{path}: line 3: respect: 6 is outside the scale 1 to 5" in result.stderr
    assert f"{path}: line 3: heard: 0 is outside the scale 1 to 5" in result.stderr
    assert db_rows(data, "SELECT count(*) FROM responses") == [(0,)]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "line 1: empty file"),
        ("id,office,survey\n", "line 1: missing columns: version, channel, lang, time"),
        (",".join([*COLUMNS[:8], "comment"]) + "\n", "line 1: no item columns"),
        (",".join([*COLUMNS, "respect"]) + "\n", "line 1: columns listed twice: respect"),
        (",".join(COLUMNS) + "\n", "no responses in the file"),
    ],
)
def test_bad_files(data: Path, tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "history.csv"
    path.write_text(content, encoding="utf-8")
    result = run_cli(["import", "responses", str(path), "--data-dir", str(data)])
    line = one_error_line(result)
    assert message in line
    assert str(path) in line


def test_unknown_types_and_missing_files(data: Path, tmp_path: Path) -> None:
    d = str(data)
    xlsx = tmp_path / "history.xlsx"
    xlsx.write_bytes(b"PK")
    assert "use .csv or .parquet" in one_error_line(
        run_cli(["import", "responses", str(xlsx), "--data-dir", d])
    )
    missing = run_cli(["import", "responses", str(tmp_path / "nope.parquet"), "--data-dir", d])
    assert "nope.parquet: no such file" in one_error_line(missing)
    fake = tmp_path / "fake.parquet"
    fake.write_text("id,office\n", encoding="utf-8")
    assert "not a Parquet file" in one_error_line(
        run_cli(["import", "responses", str(fake), "--data-dir", d])
    )


def _write_parquet(path: Path, select: str) -> None:
    with duckdb.connect() as conn:
        conn.execute(f"COPY ({select}) TO '{path}' (FORMAT parquet)")


def test_parquet_written_by_duckdb(data: Path, tmp_path: Path) -> None:
    path = tmp_path / "history.parquet"
    _write_parquet(
        path,
        """
        SELECT uuid() AS id, 'mh-u25' AS office, 'atmosphere' AS survey, 1 AS version,
               'qr' AS channel, CASE WHEN i % 2 = 0 THEN 'waiting' END AS placement,
               'de' AS lang, TIMESTAMP '2024-03-05 09:47' + INTERVAL (i) DAY AS time,
               1 + i % 5 AS stress_now, 5 AS respect, NULL::INTEGER AS heard, 4 AS rooms,
               4 AS effort, 5 AS overall,
               CASE WHEN i = 0 THEN 'Mail an max@example.org' END AS comment
        FROM range(10) t(i)
        """,
    )
    keep = cli_env(OFFICEPULSE_COMMENT_RETENTION_MONTHS="120")  # the 2024 comment stays
    result = run_cli(["import", "responses", str(path), "--data-dir", str(data)], env=keep)
    assert result.returncode == 0, result.stderr
    assert "imported 10 responses" in result.stdout
    assert db_rows(
        data,
        "SELECT min(received_at), count(*) FILTER (placement IS NULL),"
        " count(*) FILTER (comment = 'Mail an [entfernt]'),"
        " count(*) FILTER (map_contains(answers, 'heard')) FROM responses",
    ) == [(dt.datetime(2024, 3, 5, 9, 0), 5, 1, 0)]
    again = run_cli(["import", "responses", str(path), "--data-dir", str(data)])
    assert "10 already present" in again.stdout

    bad = tmp_path / "bad.parquet"
    _write_parquet(
        bad,
        """
        SELECT uuid() AS id, CASE WHEN i = 2 THEN 'nowhere' ELSE 'mh-u25' END AS office,
               'atmosphere' AS survey, 1 AS version, 'qr' AS channel, 'de' AS lang,
               CASE WHEN i = 1 THEN '2024-03-05' ELSE '2024-03-05 09:47' END AS time,
               2 AS stress_now, 5 AS respect, 4 AS rooms, 4 AS effort, 5 AS overall
        FROM range(3) t(i)
        """,
    )
    refused = run_cli(["import", "responses", str(bad), "--data-dir", str(data)])
    assert refused.returncode == 1
    assert f"{bad}: row 2: time: '2024-03-05' has no time of day" in refused.stderr
    assert f"{bad}: row 3: office: unknown office 'nowhere'" in refused.stderr
    assert "row 1:" not in refused.stderr
    floats = tmp_path / "floats.parquet"
    _write_parquet(
        floats,
        """
        SELECT uuid() AS id, 'mh-u25' AS office, 'atmosphere' AS survey, 1 AS version,
               'qr' AS channel, 'de' AS lang, TIMESTAMP '2024-03-05 09:47' AS time,
               2.0::DOUBLE AS stress_now, 5 AS respect, 4 AS rooms, 4 AS effort, 5 AS overall
        """,
    )
    refused = run_cli(["import", "responses", str(floats), "--data-dir", str(data)])
    assert f"{floats}: row 1: stress_now: must be a whole number, got float" in refused.stderr
    assert refused.stderr.rstrip().endswith("1 bad row; nothing was imported")
    assert db_rows(data, "SELECT count(*) FROM responses") == [(10,)]


def test_parquet_with_zoned_times(data: Path, tmp_path: Path) -> None:
    path = tmp_path / "zoned.parquet"
    _write_parquet(
        path,
        """
        SELECT uuid() AS id, 'mh-u25' AS office, 'atmosphere' AS survey, 1 AS version,
               'web' AS channel, 'de' AS lang, TIMESTAMPTZ '2024-03-05 08:47:00+00' AS time,
               2 AS stress_now, 5 AS respect, 4 AS rooms, 4 AS effort, 5 AS overall
        """,
    )
    result = run_cli(["import", "responses", str(path), "--data-dir", str(data)])
    assert result.returncode == 0, result.stderr
    assert db_rows(data, "SELECT received_at FROM responses") == [(dt.datetime(2024, 3, 5, 9),)]


def test_day_granularity_coarsens_to_the_day(tmp_path: Path) -> None:
    env = cli_env(OFFICEPULSE_TIME_GRANULARITY="day")
    data = init_data(tmp_path / "data", env=env)
    path = tmp_path / "history.csv"
    path.write_text(csv_text([row()]), encoding="utf-8")
    result = run_cli(["import", "responses", str(path), "--data-dir", str(data)], env=env)
    assert result.returncode == 0, result.stderr
    assert db_rows(data, "SELECT received_at FROM responses") == [(dt.datetime(2024, 3, 5),)]


def test_a_big_import_through_a_running_server(data: Path, tmp_path: Path) -> None:
    # more than 1 MiB of rows: the admin API takes them in parts, stored in one transaction
    count = 8_000
    rows = [
        row(time=f"2024-{1 + i % 12:02d}-{1 + i % 28:02d} {8 + i % 8:02d}:{i % 60:02d}",
            stress_now=1 + i % 5, comment="Sehr freundlich" if i % 10 == 0 else "")
        for i in range(count)
    ]  # fmt: skip
    path = tmp_path / "big.csv"
    path.write_text(csv_text(rows), encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text(csv_text([*rows[:3], row(office="nowhere")]), encoding="utf-8")
    # the server decides what is kept: with 10 years, the 2024 comments stay
    with server_process(data, env={"OFFICEPULSE_COMMENT_RETENTION_MONTHS": "120"}):
        result = run_cli(["import", "responses", str(path), "--data-dir", str(data)])
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""  # no progress bar where stderr is not a terminal
        assert result.stdout.strip() == f"imported {count} responses from {path}; 0 already present"
        again = run_cli(["import", "responses", str(path), "--data-dir", str(data)])
        assert f"{count} already present" in again.stdout
        refused = run_cli(["import", "responses", str(bad), "--data-dir", str(data)])
        assert refused.returncode == 1
        assert f"{bad}: line 5: office: unknown office 'nowhere'" in refused.stderr
        surveys = json.loads(run_cli(["survey", "list", "--json", "--data-dir", str(data)]).stdout)
        assert surveys[0]["responses"] == count
    assert db_rows(data, "SELECT count(*), count(DISTINCT id) FROM responses") == [(count, count)]
    assert db_rows(data, "SELECT count(*) FROM responses WHERE minute(received_at) <> 0") == [(0,)]


# -- the module --------------------------------------------------------------------------------


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    opened = Runtime.open(make_settings(tmp_path / "data"))

    def setup(cur: Any) -> None:
        insert_offices(cur, [Office(id="mh-u25", name="U-25", kind="pilot")])
        insert_placement(cur, "mh-u25", "waiting")

    opened.store.write(setup).result()
    opened.changed()
    try:
        yield opened
    finally:
        opened.close()


def _import_row(line: int, **cells: object) -> ImportRow:
    return history.row_from_cells(line, row(**cells), ITEMS)


def test_the_same_body_is_stored_the_same_way_as_through_the_api(
    client: TestClient[Litestar], app: Litestar
) -> None:
    body = {
        "id": str(uuid.uuid4()),
        "office": "mh-u25",
        "survey": "atmosphere",
        "version": 1,
        "channel": "qr",
        "placement": "waiting",
        "lang": "uk",
        "answers": {"stress_now": 2, "respect": 5, "rooms": 4, "effort": 4, "overall": 5},
        "comment": "IBAN DE89 3704 0044 0532 0130 00, danke",
    }
    assert client.post("/api/v1/responses", json=body).status_code == 201
    imported = _import_row(2, lang="uk", comment=body["comment"])
    assert history.raw_body(imported)["answers"] == body["answers"]
    result = history.import_responses(app.state.runtime, [imported], "line")
    assert (result.stored, result.present) == (1, 0)
    rows = stored_rows(
        app,
        "SELECT office_id, survey_id, survey_version, channel, placement, lang, answers, comment,"
        " content_digest FROM responses",
    )
    assert len(rows) == 2
    assert rows[0] == rows[1]
    assert "DE89" not in str(rows[0][7])


def test_check_rows_maps_pointers_to_columns(runtime: Runtime) -> None:
    checked = history.check_rows(
        runtime, [_import_row(2), _import_row(3, rooms=9, survey="nope")], "line"
    )
    assert [line for line, _ in checked.rows] == [2]
    assert checked.rows[0][1].flags == ("imported",)
    assert [message for _, message in checked.problems] == ["line 3: survey: unknown survey 'nope'"]


def test_a_conflict_rolls_back_the_whole_import(runtime: Runtime) -> None:
    taken = _import_row(2)
    history.import_responses(runtime, [taken], "line")
    fresh = [_import_row(line) for line in range(3, 12_003)]
    changed = _import_row(12_003, id=taken.id, respect=1)
    with pytest.raises(HistoryError, match="line 12003: id: already stored with different"):
        history.import_responses(runtime, [*fresh, changed], "line")
    counted = runtime.store.read(
        lambda cur: cur.execute("SELECT count(*) FROM responses").fetchone()
    )
    assert counted == (1,)
    # the same rows without the conflict go in, in several chunks, in one transaction
    result = history.import_responses(runtime, [taken, *fresh], "line")
    assert (result.stored, result.present) == (12_000, 1)


@pytest.mark.parametrize(
    ("pointer", "column"),
    [
        ("#/answers/respect", "respect"),
        ("#/answers/a~1b~0c", "a/b~c"),
        ("#/answers", "items"),
        ("#/office", "office"),
        ("#", "row"),
    ],
)
def test_column_of(pointer: str, column: str) -> None:
    assert history.column_of(pointer) == column


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-05 09:47", dt.datetime(2024, 3, 5, 9, 47)),
        ("2024-03-05T09:47:12", dt.datetime(2024, 3, 5, 9, 47, 12)),
        ("2024-03-05T09:47Z", dt.datetime(2024, 3, 5, 9, 47, tzinfo=dt.UTC)),
        (dt.datetime(2024, 3, 5, 9, 47), dt.datetime(2024, 3, 5, 9, 47)),
    ],
)
def test_times(value: object, expected: dt.datetime) -> None:
    assert history.parse_time(value) == (expected, None)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "required field is missing"),
        (None, "required field is missing"),
        ("2024-03-05", "has no time of day"),
        (dt.date(2024, 3, 5), "has no time of day"),
        ("5.3.2024 9:47", "is not a time"),
        (17, "got int"),
    ],
)
def test_bad_times(value: object, problem: str) -> None:
    moment, found = history.parse_time(value)
    assert moment is None
    assert found is not None
    assert problem in found


def test_cells_become_what_a_json_body_would_carry() -> None:
    parsed = history.row_from_cells(
        7,
        {"id": " x ", "version": "1", "time": "2024-03-05 09:47", "respect": "4",
         "rooms": " ", "effort": "4.0", "overall": 5.0, "heard": True, "comment": ""},
        ("respect", "rooms", "effort", "overall", "heard"),
    )  # fmt: skip
    assert parsed.id == "x"
    assert parsed.version == 1
    assert parsed.answers == {"respect": 4, "effort": "4.0", "overall": 5.0, "heard": "true"}
    assert parsed.comment is None
    assert parsed.office is None
    assert parsed.problems == []


def test_staging_collects_parts_in_order() -> None:
    staging: Staging[int] = Staging()
    assert staging.collect(None, [1, 2]) == [1, 2]
    assert staging.collect(UploadPart(upload="u", index=0, last=False, total=5), [1, 2]) is None
    assert staging.staged("u") == 2
    assert staging.collect(UploadPart(upload="u", index=1, last=False, total=5), [3]) is None
    assert staging.collect(UploadPart(upload="u", index=2, last=True, total=5), [4, 5]) == [
        1,
        2,
        3,
        4,
        5,
    ]
    assert staging.staged("u") == 0
    with pytest.raises(HistoryError, match="part 2 arrived without the parts before it"):
        staging.collect(UploadPart(upload="v", index=1, last=True, total=2), [1])
    assert staging.collect(UploadPart(upload="w", index=0, last=False, total=3), [1]) is None
    with pytest.raises(HistoryError, match="2 of 3 rows arrived"):
        staging.collect(UploadPart(upload="w", index=1, last=True, total=3), [2])


def test_staging_drops_abandoned_uploads() -> None:
    staging: Staging[int] = Staging(ttl=-1.0)
    assert staging.collect(UploadPart(upload="u", index=0, last=False, total=2), [1]) is None
    with pytest.raises(HistoryError, match="expired"):
        staging.collect(UploadPart(upload="u", index=1, last=True, total=2), [2])


def test_split_parts_stays_under_the_limit() -> None:
    items = [b"x" * 10] * 25

    def encode(item: bytes) -> bytes:
        return item

    parts = history.split_parts(items, encode, 100)
    assert [len(part) for part in parts] == [9, 9, 7]
    assert history.split_parts([], encode, 100) == [[]]
    assert history.split_parts([b"y" * 500], encode, 100) == [[b"y" * 500]]
