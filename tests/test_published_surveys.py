"""A survey version with responses is immutable; the shipped content works from a wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from litestar.testing import TestClient

from officepulse.app import create_app
from officepulse.offices import Office, insert_offices
from officepulse.runtime import PublishedSurveyChangedError, Runtime
from officepulse.surveys import default_surveys_dir

from .conftest import make_settings, valid_response

ROOT = Path(__file__).resolve().parents[1]


def _copy_surveys(tmp_path: Path) -> Path:
    folder = tmp_path / "surveys"
    folder.mkdir()
    shutil.copy(default_surveys_dir() / "atmosphere.toml", folder / "atmosphere.toml")
    return folder


def _answer_once(settings_dir: Path, surveys: Path) -> None:
    app = create_app(make_settings(settings_dir, surveys_dir=surveys))
    with TestClient(app=app) as client:
        runtime: Runtime = app.state.runtime
        office = Office(id="mh-u25", name="U-25", kind="pilot")
        runtime.store.write(lambda cur: insert_offices(cur, [office])).result()
        runtime.refresh_offices()
        assert client.post("/api/v1/responses", json=valid_response()).status_code == 201


def test_editing_an_unanswered_version_is_allowed(tmp_path: Path) -> None:
    surveys = _copy_surveys(tmp_path)
    settings = make_settings(tmp_path / "data", surveys_dir=surveys)
    Runtime.open(settings).close()
    path = surveys / "atmosphere.toml"
    path.write_text(path.read_text(encoding="utf-8").replace("jetzt gerade", "im Moment"))
    Runtime.open(settings).close()


def test_changing_an_answered_version_is_refused_naming_the_item(tmp_path: Path) -> None:
    surveys = _copy_surveys(tmp_path)
    _answer_once(tmp_path / "data", surveys)
    path = surveys / "atmosphere.toml"
    original = path.read_text(encoding="utf-8")
    path.write_text(original.replace("jetzt gerade", "im Moment"), encoding="utf-8")
    settings = make_settings(tmp_path / "data", surveys_dir=surveys)
    with pytest.raises(PublishedSurveyChangedError, match="stress_now"):
        Runtime.open(settings)
    # put it back and the data directory opens again; nothing was lost
    path.write_text(original, encoding="utf-8")
    runtime = Runtime.open(settings)
    try:
        rows = runtime.store.read(
            lambda cur: cur.execute("SELECT count(*) FROM responses").fetchall()
        )
        assert rows == [(1,)]
    finally:
        runtime.close()


def test_serve_refuses_a_changed_published_survey_in_one_line(tmp_path: Path) -> None:
    from .serverproc import cli_env, run_cli

    surveys = _copy_surveys(tmp_path)
    _answer_once(tmp_path / "data", surveys)
    path = surveys / "atmosphere.toml"
    path.write_text(path.read_text(encoding="utf-8").replace("jetzt gerade", "im Moment"))
    result = run_cli(
        ["office", "list", "--data-dir", str(tmp_path / "data")],
        env=cli_env(OFFICEPULSE_SURVEYS_DIR=str(surveys)),
    )
    assert result.returncode == 1
    assert "already has responses" in result.stderr
    assert "stress_now" in result.stderr
    assert "Traceback" not in result.stderr


def test_wheel_ships_the_content_and_works_from_any_folder(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("officepulse-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "officepulse/_content/surveys/atmosphere.toml" in names
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "from officepulse.surveys import default_surveys_dir, load_surveys;"
        "d = default_surveys_dir(); print(d); print(len(list(load_surveys(d))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=elsewhere,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    folder, count = result.stdout.split()
    assert folder.startswith(str(target))
    assert int(count) >= 1


def test_serve_refuses_a_bad_survey_file_in_one_line(tmp_path: Path) -> None:
    from .serverproc import cli_env, run_cli

    surveys = tmp_path / "surveys"
    surveys.mkdir()
    (surveys / "broken.toml").write_text('id = "broken"\nversion = 0\n', encoding="utf-8")
    result = run_cli(
        ["serve", "--data-dir", str(tmp_path / "data"), "--port", "0"],
        env=cli_env(OFFICEPULSE_SURVEYS_DIR=str(surveys)),
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("officepulse: error")]
    assert len(errors) == 1
    assert "broken.toml" in errors[0]
    assert "Traceback" not in result.stderr
