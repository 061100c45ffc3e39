"""Events and district statistics: the commands through their entry point, and the modules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from officepulse import districts, events
from officepulse.offices import Office, insert_offices
from officepulse.runtime import Runtime

from .conftest import make_settings
from .serverproc import db_rows, one_error_line, run_cli, server_process

CITY = "Mülheim an der Ruhr"
HEADER = "city,district_id,district_name,year,indicator,value,unit,source\n"
GOOD_DISTRICTS = (
    HEADER
    + f'{CITY},010,Altstadt I,2023,unemployment_rate,"9,1",%,Bundesagentur für Arbeit\n'
    + f"{CITY},010,Altstadt I,2023,unemp_density_15_64,7.4,%,Stadt Mülheim\n"
    + f"{CITY},010,Altstadt I,2022,pop_total,12000,,Stadt Mülheim\n"
    + f"{CITY},020,Styrum,2023,sgb2_quota,21.5,%,Stadt Mülheim\n"
    + f"{CITY},020,Styrum,2023,kita_rate,55,%,Stadt Mülheim\n"
)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """An initialised data directory with one office, mh-u25."""
    data_dir = tmp_path / "data"
    assert run_cli(["init", "--data-dir", str(data_dir)]).returncode == 0
    result = run_cli(
        ["office", "add", "mh-u25", "--name", "U-25 Haus", "--kind", "pilot",
         "--data-dir", str(data_dir)]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return data_dir


# -- events through the command ----------------------------------------------------------------


def test_event_add_and_list(data: Path) -> None:
    d = str(data)
    added = run_cli(
        ["event", "add", "mh-u25", "--date", "2024-05-01", "--kind", "opening-hours",
         "--note", " Longer hours on Thursdays ", "--json", "--data-dir", d]
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    event = json.loads(added.stdout)
    assert event == {
        "id": event["id"],
        "office": "mh-u25",
        "date": "2024-05-01",
        "kind": "opening_hours",
        "note": "Longer hours on Thursdays",
        "synthetic": False,
    }
    text = run_cli(["event", "add", "mh-u25", "--date", "2024-02-01", "--kind", "training",
                    "--data-dir", d])  # fmt: skip
    assert text.returncode == 0, text.stderr
    assert "training on 2024-02-01" in text.stdout
    assert db_rows(data, "SELECT kind, note FROM events ORDER BY happened_on") == [
        ("staff_training", None),
        ("opening_hours", "Longer hours on Thursdays"),
    ]
    listed = json.loads(run_cli(["event", "list", "--json", "--data-dir", d]).stdout)
    assert [(e["date"], e["kind"]) for e in listed] == [
        ("2024-02-01", "staff_training"),
        ("2024-05-01", "opening_hours"),
    ]
    table = run_cli(["event", "list", "--office", "mh-u25", "--data-dir", d])
    assert table.returncode == 0, table.stderr
    assert "opening-hours" in table.stdout
    assert "Longer hours on Thursdays" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["mh-u25", "--date", "2024-13-01", "--kind", "move"],
            "--date: '2024-13-01' is not a date",
        ),
        (["mh-u25", "--date", "yesterday", "--kind", "move"], "--date: 'yesterday'"),
        (["mh-u25", "--date", "2024-05-01", "--kind", "party"], "--kind: 'party' is not one of"),
        (["mh-u25", "--date", "2024-05-01", "--kind", "move", "--note", "x" * 501], "--note"),
        (["nowhere", "--date", "2024-05-01", "--kind", "move"], "office: unknown office 'nowhere'"),
    ],
)
def test_event_add_refuses_bad_fields(data: Path, args: list[str], message: str) -> None:
    result = run_cli(["event", "add", *args, "--data-dir", str(data)])
    assert message in one_error_line(result)
    assert db_rows(data, "SELECT count(*) FROM events") == [(0,)]


def test_event_add_names_every_bad_field_at_once(data: Path) -> None:
    result = run_cli(
        ["event", "add", "mh-u25", "--date", "1.5.2024", "--kind", "x", "--data-dir", str(data)]
    )
    line = one_error_line(result)
    assert "--date" in line
    assert "--kind" in line


def test_event_list_of_an_unknown_office(data: Path) -> None:
    result = run_cli(["event", "list", "--office", "nowhere", "--data-dir", str(data)])
    assert "--office: unknown office 'nowhere'" in one_error_line(result)


# -- districts through the command -------------------------------------------------------------


def test_districts_import_map_and_list(data: Path, tmp_path: Path) -> None:
    d = str(data)
    csv_file = tmp_path / "districts.csv"
    csv_file.write_text(GOOD_DISTRICTS, encoding="utf-8")
    # an office may be mapped before its district has any figures
    early = run_cli(["districts", "map", "mh-u25", "--city", CITY, "--district-id", "010",
                     "--data-dir", d])  # fmt: skip
    assert early.returncode == 0, early.stderr
    assert "no indicators imported for this district yet" in early.stdout

    imported = run_cli(["districts", "import", str(csv_file), "--data-dir", d])
    assert imported.returncode == 0, imported.stderr
    out = imported.stdout
    assert "imported 5 indicator values for 2 districts" in out
    assert "all new" in out
    assert "not an unemployment rate" in out
    assert "unlabelled indicators: kita_rate" in out
    assert db_rows(
        data,
        "SELECT value FROM district_indicators WHERE indicator = 'unemployment_rate'",
    ) == [(9.1,)]

    # re-importing replaces the values of the same keys, and says so
    csv_file.write_text(GOOD_DISTRICTS.replace('"9,1"', "9.3"), encoding="utf-8")
    again = run_cli(["districts", "import", str(csv_file), "--json", "--data-dir", d])
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert (summary["values"], summary["new"], summary["replaced"]) == (5, 0, 5)
    assert summary["unlabelled"] == ["kita_rate"]
    assert db_rows(data, "SELECT count(*), sum(value) FILTER (year = 2023 AND district_id = '010'"
                         " AND indicator = 'unemployment_rate') FROM district_indicators") == [
        (5, 9.3)
    ]  # fmt: skip
    text = run_cli(["districts", "import", str(csv_file), "--data-dir", d]).stdout
    assert "5 replaced the values imported before" in text

    listed = json.loads(run_cli(["districts", "list", "--json", "--data-dir", d]).stdout)
    assert [(x["city"], x["district_id"], x["name"], x["offices"]) for x in listed] == [
        (CITY, "010", "Altstadt I", ["mh-u25"]),
        (CITY, "020", "Styrum", []),
    ]
    labels = {v["indicator"]: v["label"] for x in listed for v in x["indicators"]}
    assert labels["unemployment_rate"] == "Arbeitslosenquote (official, BA)"
    assert labels["unemp_density_15_64"] == (
        "Arbeitslosendichte: unemployed per 100 residents aged 15–64 — not an unemployment rate"
    )
    assert labels["kita_rate"] is None
    table = run_cli(["districts", "list", "--data-dir", d]).stdout
    assert f"{CITY} / 010 Altstadt I" in table
    assert "offices: mh-u25" in table
    assert "(unlabelled)" in table
    assert "12000" in table


def test_districts_import_reports_every_bad_line_and_imports_nothing(
    data: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        HEADER
        + f"{CITY},010,Altstadt I,2023,unemployment_rate,9.1,%,BA\n"
        + f"{CITY},010,Altstadt I,1989,pop_total,100,,Stadt\n"
        + f"{CITY},010,Altstadt I,2023,sgb2_quota,viel,%,Stadt\n"
        + f"{CITY},010,Altstadt I,2023,foreign_share,1.234,5,%,Stadt\n"
        + f'{CITY},010,Altstadt I,2023,foreign_share,"1.234,5",%,Stadt\n'
        + ",010,Altstadt I,2023,pop_u25_share,20,%,Stadt\n"
        + f"{CITY},,Altstadt I,2023,pop_u25_share,20,%,Stadt\n"
        + f"{CITY},010,Altstadt I,2023,,20,%,Stadt\n"
        + f"{CITY},010,Altstadt I,2023,unemployment_rate,9.2,%,BA\n"
        + f"{CITY},010,Altstadt I,2023,pop_u25_share,140,%,Stadt\n",
        encoding="utf-8",
    )
    result = run_cli(["districts", "import", str(bad), "--data-dir", str(data)])
    assert result.returncode == 1
    errors = result.stderr
    for expected in (
        "line 3: year: 1989 is not between 1990 and 2100",
        "line 4: value: 'viel' is not a number",
        "line 5: expected 8 fields, got 9",
        "line 6: value: '1.234,5' is not a number",
        "line 7: city: must not be empty",
        "line 8: district_id: must not be empty",
        "line 9: indicator: must not be empty",
        "line 10: indicator: 'unemployment_rate' for Mülheim an der Ruhr / 010 in 2023 is listed"
        " twice (first at line 2)",
        "line 11: value: 140 is outside 0 to 100",
    ):
        assert f"{bad}: {expected}" in errors, errors
    assert "line 2:" not in errors
    assert "Traceback" not in errors
    assert db_rows(data, "SELECT count(*) FROM district_indicators") == [(0,)]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "line 1: empty file"),
        ("city;district_id;district_name;year;indicator;value;unit;source\n", "line 1: header"),
        (HEADER, "no indicator values in the file"),
        (HEADER.replace("value", "wert"), "line 1: header"),
    ],
)
def test_districts_import_bad_files(data: Path, tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "districts.csv"
    path.write_text(content, encoding="utf-8")
    result = run_cli(["districts", "import", str(path), "--data-dir", str(data)])
    line = one_error_line(result)
    assert message in line
    assert str(path) in line


def test_districts_import_of_a_missing_file(data: Path, tmp_path: Path) -> None:
    result = run_cli(["districts", "import", str(tmp_path / "nope.csv"), "--data-dir", str(data)])
    assert "nope.csv: no such file" in one_error_line(result)


def test_districts_map_refuses_an_unknown_office_and_empty_fields(data: Path) -> None:
    d = str(data)
    unknown = run_cli(["districts", "map", "nowhere", "--city", CITY, "--district-id", "010",
                       "--data-dir", d])  # fmt: skip
    assert "office: unknown office 'nowhere'" in one_error_line(unknown)
    empty = run_cli(["districts", "map", "mh-u25", "--city", " ", "--district-id", "010",
                     "--data-dir", d])  # fmt: skip
    assert "--city: must not be empty" in one_error_line(empty)
    assert db_rows(data, "SELECT count(*) FROM office_districts") == [(0,)]


def test_remapping_an_office_says_what_it_replaced(data: Path) -> None:
    d = str(data)
    first = ["districts", "map", "mh-u25", "--city", CITY, "--district-id", "010", "--data-dir", d]
    assert run_cli(first).returncode == 0
    second = run_cli(["districts", "map", "mh-u25", "--city", "Essen", "--district-id", "5",
                      "--data-dir", d])  # fmt: skip
    assert second.returncode == 0, second.stderr
    assert f"(was {CITY} / 010)" in second.stdout
    assert db_rows(data, "SELECT office_id, city, district_id FROM office_districts") == [
        ("mh-u25", "Essen", "5")
    ]


# -- with a running server ---------------------------------------------------------------------


def test_events_and_districts_through_a_running_server(data: Path, tmp_path: Path) -> None:
    d = str(data)
    small = tmp_path / "districts.csv"
    small.write_text(GOOD_DISTRICTS, encoding="utf-8")
    # big enough to need several requests: the admin API takes at most 1 MiB per request
    big = tmp_path / "big.csv"
    lines = [
        f"{CITY},{district:03d},Bezirk {district},{year},{indicator},{(district + year) % 97}.5,"
        f"%,Statistikstelle der Stadt {CITY} Tabelle {district}-{year}"
        for district in range(1, 101)
        for year in range(1995, 2025)
        for indicator in ("unemployment_rate", "sgb2_quota", "foreign_share", "pop_u25_share")
    ]
    big.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    assert big.stat().st_size > 1024 * 1024
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + f"{CITY},010,Altstadt I,2023,foreign_share,120,%,Stadt\n")
    with server_process(data):
        added = run_cli(["event", "add", "mh-u25", "--date", "2024-05-01", "--kind", "redesign",
                         "--note", "Wartebereich neu gestaltet", "--data-dir", d])  # fmt: skip
        assert added.returncode == 0, added.stderr
        unknown = run_cli(["event", "add", "nowhere", "--date", "2024-05-01", "--kind", "move",
                           "--data-dir", d])  # fmt: skip
        assert "office: unknown office 'nowhere'" in one_error_line(unknown)
        listed = json.loads(run_cli(["event", "list", "--json", "--data-dir", d]).stdout)
        assert [(e["office"], e["kind"]) for e in listed] == [("mh-u25", "redesign")]

        imported = run_cli(["districts", "import", str(small), "--data-dir", d])
        assert imported.returncode == 0, imported.stderr
        assert "imported 5 indicator values" in imported.stdout
        refused = run_cli(["districts", "import", str(bad), "--data-dir", d])
        assert f"{bad}: line 2: value: 120 is outside 0 to 100" in one_error_line(refused)
        many = run_cli(["districts", "import", str(big), "--json", "--data-dir", d])
        assert many.returncode == 0, many.stderr
        summary = json.loads(many.stdout)
        # two values of the small file (010 and 020 in 2023) are replaced
        assert (summary["values"], summary["replaced"]) == (len(lines), 2)
        mapped = run_cli(["districts", "map", "mh-u25", "--city", CITY, "--district-id", "010",
                          "--data-dir", d])  # fmt: skip
        assert mapped.returncode == 0, mapped.stderr
        assert "no indicators" not in mapped.stdout
        shown = json.loads(run_cli(["districts", "list", "--json", "--data-dir", d]).stdout)
        assert len(shown) == 100
        assert next(x for x in shown if x["district_id"] == "010")["offices"] == ["mh-u25"]
    assert db_rows(data, "SELECT count(*) FROM district_indicators") == [(len(lines) + 3,)]
    assert db_rows(data, "SELECT count(*) FROM events") == [(1,)]


# -- the modules -------------------------------------------------------------------------------


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    opened = Runtime.open(make_settings(tmp_path / "data"))
    opened.store.write(
        lambda cur: insert_offices(
            cur,
            [
                Office(id="mh-u25", name="U-25", kind="pilot"),
                Office(id="demo-x", name="Demo (Demo)", kind="pilot", synthetic=True),
            ],
        )
    ).result()
    opened.changed()
    try:
        yield opened
    finally:
        opened.close()


@pytest.mark.parametrize(
    ("word", "kind"),
    [
        ("redesign", "redesign"),
        ("move", "move"),
        ("training", "staff_training"),
        ("opening-hours", "opening_hours"),
        ("other", "other"),
        ("staff_training", "staff_training"),
        ("Opening-Hours", "opening_hours"),
    ],
)
def test_kind_words(word: str, kind: str) -> None:
    assert events.kind_from_cli(word) == kind
    assert events.kind_from_cli(events.cli_word(kind)) == kind


def test_an_event_at_a_demo_office_is_synthetic(runtime: Runtime) -> None:
    new = events.NewEvent(office="demo-x", date=events.parse_date("2024-01-02"), kind="move")
    event = runtime.store.write(lambda cur: events.insert_event(cur, new)).result()
    assert event.synthetic
    assert runtime.store.read(events.list_events) == [event]
    assert runtime.store.read(lambda cur: events.list_events(cur, "mh-u25")) == []


@pytest.mark.parametrize(
    ("text", "value"),
    [("12.5", 12.5), ("12,5", 12.5), ("-3", -3.0), (",5", 0.5), ("1e3", 1000.0), (" 7 ", 7.0)],
)
def test_values_with_a_point_or_a_decimal_comma(text: str, value: float) -> None:
    assert districts.parse_value(text) == value


@pytest.mark.parametrize("text", ["", "1.234,5", "1 234", "nan", "inf", "12 %", "1_000", "--1"])
def test_values_that_are_not_numbers(text: str) -> None:
    with pytest.raises(ValueError, match="number"):
        districts.parse_value(text)


def _row(line: int, **changes: object) -> districts.IndicatorRow:
    values: dict[str, object] = {
        "line": line,
        "city": CITY,
        "district_id": "010",
        "district_name": "Altstadt I",
        "year": 2023,
        "indicator": "unemployment_rate",
        "value": 9.1,
        "unit": "%",
        "source": "BA",
    }
    values.update(changes)
    return districts.IndicatorRow(**values)  # type: ignore[arg-type]


def test_import_checks_the_rows_again_and_refuses_them_all(runtime: Runtime) -> None:
    rows = [_row(2), _row(3, year=1800), _row(4, indicator="pop_total", value=1.5), _row(5)]
    with pytest.raises(districts.DistrictError) as caught:
        runtime.store.write(lambda cur: districts.import_indicators(cur, rows)).result()
    assert str(caught.value).splitlines() == [
        "line 3: year: 1800 is not between 1990 and 2100",
        "line 4: value: 1.5 is not a number of residents",
        f"line 5: indicator: 'unemployment_rate' for {CITY} / 010 in 2023 is listed twice"
        " (first at line 2)",
    ]
    assert runtime.store.read(districts.list_districts) == []


def test_import_replaces_values_of_the_same_key(runtime: Runtime) -> None:
    first = [_row(2), _row(3, year=2022, value=9.5)]
    summary = runtime.store.write(lambda cur: districts.import_indicators(cur, first)).result()
    assert (summary.new, summary.replaced, summary.districts) == (2, 0, 1)
    second = [
        _row(2, value=8.8, district_name="Altstadt"),
        _row(3, indicator="kita_rate", district_name="Altstadt"),
    ]
    summary = runtime.store.write(lambda cur: districts.import_indicators(cur, second)).result()
    assert (summary.new, summary.replaced) == (1, 1)
    assert summary.unlabelled == ["kita_rate"]
    (district,) = runtime.store.read(districts.list_districts)
    assert district.name == "Altstadt"
    assert [(v.indicator, v.year, v.value) for v in district.indicators] == [
        ("kita_rate", 2023, 9.1),
        ("unemployment_rate", 2022, 9.5),
        ("unemployment_rate", 2023, 8.8),
    ]
