"""The ``officepulse`` command through its entry point, with and without a running server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner

from officepulse import cli
from officepulse.admin import admin_token
from officepulse.storage.migrations import MIGRATIONS

from .conftest import SECRET, valid_response
from .serverproc import db_rows, one_error_line, run_cli, server_process

GOOD_CSV = """\
id,name,kind,type,city,district,opened_on
mh-u25,U-25 Haus Mülheim,pilot,U-25 Haus,Mülheim an der Ruhr,Innenstadt,2019-09-01
mh-main,Jobcenter Mülheim,conventional,Hauptstelle,Mülheim an der Ruhr,Stadtmitte,
"""


def test_init_twice_applies_each_migration_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = run_cli(["init", "--data-dir", str(data)])
    assert first.returncode == 0, first.stderr
    second = run_cli(["init", "--data-dir", str(data)])
    assert second.returncode == 0, second.stderr
    names = [row[0] for row in db_rows(data, "SELECT name FROM schema_migrations ORDER BY name")]
    assert names == [m.name for m in MIGRATIONS]


def test_secret_key_file_is_generated_by_init(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("OFFICEPULSE_")}
    result = run_cli(["init", "--data-dir", str(data)], env=env)
    assert result.returncode == 0, result.stderr
    assert (data / "secret_key").stat().st_mode & 0o777 == 0o600


def test_office_add_list_and_duplicate(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    assert run_cli(["init", "--data-dir", data]).returncode == 0
    added = run_cli(
        [
            "office",
            "add",
            "mh-u25",
            "--name",
            "U-25 Haus",
            "--kind",
            "pilot",
            "--city",
            "Mülheim an der Ruhr",
            "--opened",
            "2019-09-01",
            "--data-dir",
            data,
            "--json",
        ]
    )
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["id"] == "mh-u25"
    listed = run_cli(["office", "list", "--json", "--data-dir", data])
    offices = json.loads(listed.stdout)
    assert [(o["id"], o["kind"], o["opened_on"]) for o in offices] == [
        ("mh-u25", "pilot", "2019-09-01")
    ]
    table = run_cli(["office", "list", "--data-dir", data])
    assert "mh-u25" in table.stdout
    assert "U-25 Haus" in table.stdout
    again = run_cli(
        ["office", "add", "mh-u25", "--name", "X", "--kind", "pilot", "--data-dir", data]
    )
    assert "'mh-u25' already exists" in one_error_line(again)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Bad_Id", "--name", "X", "--kind", "pilot"], "id: 'Bad_Id' is not a lowercase slug"),
        (["ok", "--name", " ", "--kind", "pilot"], "name: must not be empty"),
        (["ok", "--name", "X", "--kind", "pilot", "--opened", "2019-13-01"], "--opened"),
        (["ok", "--name", "X", "--kind", "pilot", "--lang", "xx"], "default_lang"),
    ],
)
def test_office_add_refuses_bad_fields(tmp_path: Path, args: list[str], message: str) -> None:
    data = str(tmp_path / "data")
    assert run_cli(["init", "--data-dir", data]).returncode == 0
    result = run_cli(["office", "add", *args, "--data-dir", data])
    assert message in one_error_line(result)
    assert db_rows(tmp_path / "data", "SELECT count(*) FROM offices") == [(0,)]


def test_office_import_all_or_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run_cli(["init", "--data-dir", str(data)]).returncode == 0
    good = tmp_path / "offices.csv"
    good.write_text(GOOD_CSV, encoding="utf-8")
    result = run_cli(["office", "import", str(good), "--data-dir", str(data)])
    assert result.returncode == 0, result.stderr
    assert "imported 2 offices" in result.stdout

    bad = tmp_path / "bad.csv"
    bad.write_text(
        "id,name,kind,type,city,district,opened_on\n"
        "ok-one,Fine,pilot,,,,\n"
        "Bad Id,Broken,pilot,,,,\n"
        "ok-two,Fine,sideways,,,,\n"
        "ok-three,Fine,pilot,,,,2024-02-30\n"
        "ok-one,Twice,pilot,,,,\n",
        encoding="utf-8",
    )
    result = run_cli(["office", "import", str(bad), "--data-dir", str(data)])
    assert result.returncode == 1
    errors = result.stderr
    for expected in (
        "line 3: id: 'Bad Id'",
        "line 4: kind: 'sideways'",
        "line 5: opened_on: '2024-02-30'",
        "line 6: id: office 'ok-one' is listed twice (first at line 2)",
    ):
        assert expected in errors, errors
    assert str(bad) in errors
    assert db_rows(data, "SELECT count(*) FROM offices") == [(2,)]


def test_office_import_refuses_an_existing_id_naming_the_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    csv_file = tmp_path / "offices.csv"
    csv_file.write_text(GOOD_CSV, encoding="utf-8")
    assert run_cli(["office", "import", str(csv_file), "--data-dir", str(data)]).returncode == 1
    assert run_cli(["init", "--data-dir", str(data)]).returncode == 0
    assert run_cli(["office", "import", str(csv_file), "--data-dir", str(data)]).returncode == 0
    more = tmp_path / "more.csv"
    more.write_text(
        "id,name,kind,type,city,district,opened_on\nnew-one,New,pilot,,,,\nmh-main,Again,pilot,,,,\n",
        encoding="utf-8",
    )
    result = run_cli(["office", "import", str(more), "--data-dir", str(data)])
    line = one_error_line(result)
    assert str(more) in line
    assert "line 3" in line
    assert "'mh-main' already exists" in line
    assert db_rows(data, "SELECT count(*) FROM offices") == [(2,)]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "line 1: empty file"),
        ("id;name;kind\n", "line 1: header"),
        ("id,name,kind,type,city,district,opened_on\nx,y\n", "line 2: expected 7 fields, got 2"),
        ("id,name,kind,type,city,district,opened_on\n", "no offices in the file"),
    ],
)
def test_office_import_bad_files(tmp_path: Path, content: str, message: str) -> None:
    data = str(tmp_path / "data")
    assert run_cli(["init", "--data-dir", data]).returncode == 0
    path = tmp_path / "offices.csv"
    path.write_text(content, encoding="utf-8")
    result = run_cli(["office", "import", str(path), "--data-dir", data])
    assert result.returncode == 1
    assert message in result.stderr
    assert str(path) in result.stderr


def test_office_import_of_a_missing_file(tmp_path: Path) -> None:
    result = run_cli(["office", "import", str(tmp_path / "nope.csv"), "--data-dir", str(tmp_path)])
    assert "nope.csv: no such file" in one_error_line(result)


def test_commands_on_a_missing_data_dir_say_so(tmp_path: Path) -> None:
    result = run_cli(["office", "list", "--data-dir", str(tmp_path / "nowhere")])
    assert "no officepulse database here" in one_error_line(result)


def test_survey_check_and_list(tmp_path: Path) -> None:
    ok = run_cli(["survey", "check"])
    assert ok.returncode == 0, ok.stderr
    assert "atmosphere.toml" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(
        textwrap.dedent(
            """\
            id = "bad"
            version = 1
            default_lang = "de"
            [title]
            de = "Titel"
            [intro]
            de = "Intro"
            [[items]]
            id = "stress_now"
            dimension = "stress"
            kind = "rating"
            polarity = "up"
            core = true
            [items.text]
            de = "Wie angespannt?"
            [items.labels]
            de = ["1", "2", "3", "4", "5"]
            """
        ),
        encoding="utf-8",
    )
    result = run_cli(["survey", "check", str(bad)])
    assert result.returncode == 1
    assert "bad.toml" in result.stderr
    assert "stress_now" in result.stderr
    assert "polarity" in result.stderr
    data = str(tmp_path / "data")
    assert run_cli(["init", "--data-dir", data]).returncode == 0
    listed = json.loads(run_cli(["survey", "list", "--json", "--data-dir", data]).stdout)
    assert [(s["id"], s["version"], s["responses"]) for s in listed] == [("atmosphere", 1, 0)]


def test_bad_setting_is_one_line(tmp_path: Path) -> None:
    from .serverproc import cli_env

    result = run_cli(
        ["init", "--data-dir", str(tmp_path)], env=cli_env(OFFICEPULSE_MIN_GROUP_SIZE="2")
    )
    assert "OFFICEPULSE_MIN_GROUP_SIZE" in one_error_line(result)


def test_database_held_by_a_foreign_process_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run_cli(["init", "--data-dir", str(data)]).returncode == 0
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
            " time.sleep(60)",
            str(data / "officepulse.duckdb"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        result = run_cli(["office", "list", "--data-dir", str(data)])
        line = one_error_line(result)
        assert "held by another process" in line
        assert f"PID {holder.pid}" in line
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def test_commands_go_through_a_running_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run_cli(["init", "--data-dir", str(data)]).returncode == 0
    csv_file = tmp_path / "offices.csv"
    csv_file.write_text(GOOD_CSV, encoding="utf-8")
    with server_process(data) as (base, _process):
        assert (data / "server.json").stat().st_mode & 0o777 == 0o600
        added = run_cli(
            [
                "office",
                "add",
                "ess-kat",
                "--name",
                "Katernberg",
                "--kind",
                "pilot",
                "--data-dir",
                str(data),
            ]
        )
        assert added.returncode == 0, added.stderr
        imported = run_cli(["office", "import", str(csv_file), "--data-dir", str(data)])
        assert imported.returncode == 0, imported.stderr
        again = run_cli(["office", "import", str(csv_file), "--data-dir", str(data)])
        assert "line 2" in one_error_line(again)
        assert "already exists" in again.stderr
        listed = json.loads(run_cli(["office", "list", "--json", "--data-dir", str(data)]).stdout)
        assert sorted(o["id"] for o in listed) == ["ess-kat", "mh-main", "mh-u25"]
        # the server knows the new office at once
        body = valid_response(office="ess-kat", id=str(uuid.uuid4()))
        assert httpx.post(f"{base}/api/v1/responses", json=body).status_code == 201
        surveys = json.loads(run_cli(["survey", "list", "--json", "--data-dir", str(data)]).stdout)
        assert surveys[0]["responses"] == 1
        init = run_cli(["init", "--data-dir", str(data)])
        assert init.returncode == 0
        assert "already initialised" in init.stdout
        second = run_cli(["serve", "--data-dir", str(data), "--port", "1"])
        assert "already running" in one_error_line(second)
    assert not (data / "server.json").exists()
    assert db_rows(data, "SELECT count(*) FROM offices") == [(3,)]


def test_admin_api_refuses_without_the_token(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with server_process(data) as (base, _process):
        answer = httpx.post(f"{base}/api/v1/admin/ops/office.list", content=b"{}")
        assert answer.status_code == 403
        assert answer.headers["content-type"].startswith("application/problem+json")
        wrong = httpx.post(
            f"{base}/api/v1/admin/ops/office.list",
            content=b"{}",
            headers={"Authorization": "Bearer nope"},
        )
        assert wrong.status_code == 403
        # With the token, a broken body is the caller's error, never a 500.
        token = {"Authorization": f"Bearer {admin_token(SECRET)}"}
        for body in (b'{"office": "\xff"}', b"[" * 50_000, b"nope", b'{"office": 5}'):
            bad = httpx.post(f"{base}/api/v1/admin/ops/placement.list", content=body, headers=token)
            assert bad.status_code == 422, (body[:20], bad.text)
            assert bad.headers["content-type"].startswith("application/problem+json")


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found.extend(_commands(command, (*prefix, name)))
    return found


@pytest.mark.parametrize("path", _commands(cli.main), ids=" ".join)
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli.main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    command: click.Command = cli.main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    assert (command.help or "").strip(), f"{' '.join(path)} has no help"
    if not isinstance(command, click.Group):
        assert "--data-dir" in result.output, "every command takes --data-dir"


def test_version_through_python_dash_m() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "officepulse", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.startswith("officepulse, version ")


def test_placements_are_registered_per_office(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    assert run_cli(["init", "--data-dir", data]).returncode == 0
    add = ["office", "add", "mh-u25", "--name", "U-25", "--kind", "pilot", "--data-dir", data]
    assert run_cli(add).returncode == 0
    for placement in ("waiting", "entrance"):
        result = run_cli(["office", "placement", "add", "mh-u25", placement, "--data-dir", data])
        assert result.returncode == 0, result.stderr
    listed = run_cli(["office", "placement", "list", "mh-u25", "--json", "--data-dir", data])
    assert json.loads(listed.stdout) == [
        {"office": "mh-u25", "placement": "entrance"},
        {"office": "mh-u25", "placement": "waiting"},
    ]
    again = run_cli(["office", "placement", "add", "mh-u25", "waiting", "--data-dir", data])
    assert "already registered" in one_error_line(again)
    unknown = run_cli(["office", "placement", "add", "nowhere", "waiting", "--data-dir", data])
    assert "unknown office 'nowhere'" in one_error_line(unknown)
    for bad in ("Warte Zimmer", "unknown", "x" * 40):
        result = run_cli(["office", "placement", "add", "mh-u25", bad, "--data-dir", data])
        assert "placement:" in one_error_line(result)


def test_kiosk_commands_with_and_without_a_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    d = str(data)
    assert run_cli(["init", "--data-dir", d]).returncode == 0
    add = ["office", "add", "mh-u25", "--name", "U-25", "--kind", "pilot", "--data-dir", d]
    assert run_cli(add).returncode == 0
    assert (
        run_cli(["office", "placement", "add", "mh-u25", "entrance", "--data-dir", d]).returncode
        == 0
    )
    offline = run_cli(
        ["kiosk", "add", "mh-u25", "--name", "Eingang", "--placement", "entrance", "--json",
         "--data-dir", d]
    )  # fmt: skip
    assert offline.returncode == 0, offline.stderr
    created = json.loads(offline.stdout)
    assert set(created) == {"id", "office", "placement", "pairing_code", "url", "expires"}
    assert re.fullmatch(r"[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}", created["pairing_code"])
    assert created["url"].endswith("/kiosk/")
    text = run_cli(["kiosk", "add", "mh-u25", "--name", "Warte", "--data-dir", d])
    assert "pairing code" in text.stdout
    bad = run_cli(["kiosk", "add", "mh-u25", "--name", "X", "--placement", "roof", "--data-dir", d])
    assert "not registered" in one_error_line(bad)
    with server_process(data) as (base, _process):
        paired = httpx.post(f"{base}/api/v1/kiosk/pair", json={"code": created["pairing_code"]})
        assert paired.status_code == 201
        token = paired.json()["token"]
        beat = httpx.post(
            f"{base}/api/v1/kiosk/heartbeat",
            json={"app_version": "kiosk-1", "queue_length": 3},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert beat.status_code == 204
        listed = json.loads(run_cli(["kiosk", "list", "--json", "--data-dir", d]).stdout)
        mine = next(k for k in listed if k["id"] == created["id"])
        assert (mine["paired"], mine["queue_length"], mine["app_version"]) == (True, 3, "kiosk-1")
        table = run_cli(["kiosk", "list", "--data-dir", d]).stdout
        assert "not paired" in table
        assert created["id"] in table
        assert run_cli(["kiosk", "revoke", created["id"], "--data-dir", d]).returncode == 0
        after = httpx.post(
            f"{base}/api/v1/kiosk/heartbeat",
            json={"app_version": "kiosk-1", "queue_length": 3},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert after.status_code == 401
        unknown = run_cli(["kiosk", "revoke", "nope", "--data-dir", d])
        assert "unknown kiosk" in one_error_line(unknown)
