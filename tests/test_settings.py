"""Settings: environment, flags, refusals, the secret key file and the README table."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from officepulse.settings import (
    Settings,
    SettingsError,
    ensure_secret_key,
    env_name,
    load_settings,
    setting_help,
    setting_names,
)

README = Path(__file__).resolve().parents[1] / "README.md"


def test_defaults() -> None:
    settings = load_settings({})
    assert settings.data_dir == Path("officepulse-data")
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.min_group_size == 5
    assert settings.time_granularity == "hour"
    assert settings.base_url == "http://127.0.0.1:8000"


def test_environment_is_read_and_flags_win() -> None:
    env = {
        "OFFICEPULSE_PORT": "9001",
        "OFFICEPULSE_MIN_GROUP_SIZE": "10",
        "OFFICEPULSE_TIME_GRANULARITY": "day",
        "OFFICEPULSE_PUBLIC_URL": "https://feedback.example.org/",
        "OFFICEPULSE_DATA_DIR": "/srv/feedback",
        "OFFICEPULSE_SURVEYS_DIR": "/srv/surveys",
        "PATH": "/usr/bin",
    }
    settings = load_settings(env, {"port": 9002, "data_dir": None})
    assert settings.data_dir == Path("/srv/feedback")
    assert settings.surveys_dir == Path("/srv/surveys")
    assert settings.port == 9002
    assert settings.min_group_size == 10
    assert settings.time_granularity == "day"
    assert settings.base_url == "https://feedback.example.org"


@pytest.mark.parametrize(
    ("env", "overrides", "message"),
    [
        ({"OFFICEPULSE_MIN_GROUP_SIZE": "2"}, {}, "OFFICEPULSE_MIN_GROUP_SIZE"),
        ({"OFFICEPULSE_MIN_GROUP_SIZE": "many"}, {}, "OFFICEPULSE_MIN_GROUP_SIZE"),
        ({"OFFICEPULSE_TIME_GRANULARITY": "minute"}, {}, "OFFICEPULSE_TIME_GRANULARITY"),
        ({"OFFICEPULSE_TIME_GRANULARITY": "second"}, {}, "OFFICEPULSE_TIME_GRANULARITY"),
        ({"OFFICEPULSE_PORT": "70000"}, {}, "OFFICEPULSE_PORT"),
        ({"OFFICEPULSE_MIN_GROUP": "5"}, {}, "OFFICEPULSE_MIN_GROUP: unknown setting"),
        ({"OFFICEPULSE_SECRET_KEY": "short"}, {}, "OFFICEPULSE_SECRET_KEY"),
        ({"OFFICEPULSE_TIMEZONE": "Mars/Olympus"}, {}, "OFFICEPULSE_TIMEZONE"),
        ({"OFFICEPULSE_PUBLIC_URL": "ftp://x"}, {}, "OFFICEPULSE_PUBLIC_URL"),
        ({"OFFICEPULSE_MEMORY_LIMIT_MB": "-1"}, {}, "OFFICEPULSE_MEMORY_LIMIT_MB"),
        ({"OFFICEPULSE_MEMORY_LIMIT_MB": "1GB"}, {}, "OFFICEPULSE_MEMORY_LIMIT_MB"),
        ({}, {"port": -1}, "--port"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(
    env: dict[str, str], overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings(env, overrides)


def test_flag_data_dir_wins_over_the_environment() -> None:
    settings = load_settings({"OFFICEPULSE_DATA_DIR": "/a"}, {"data_dir": Path("/b")})
    assert settings.data_dir == Path("/b")


def test_secret_key_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    first = ensure_secret_key(settings)
    assert first.secret_key
    assert len(first.secret_key) >= 32
    path = tmp_path / "data" / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_secret_key(settings).secret_key == first.secret_key


def test_given_secret_key_is_not_written(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", secret_key="k" * 40)
    assert ensure_secret_key(settings).secret_key == "k" * 40
    assert not (tmp_path / "data" / "secret_key").exists()


def test_every_setting_has_help() -> None:
    helps = setting_help()
    assert set(helps) == set(setting_names())
    for name, (text, _default) in helps.items():
        assert text.strip(), f"{name} has no help text"


def _readme_settings_table() -> dict[str, str]:
    rows: dict[str, str] = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\|\s*`(OFFICEPULSE_[A-Z_]+)`\s*\|\s*([^|]*)\|", line)
        if match:
            rows[match.group(1)] = match.group(2).strip()
    return rows


def test_readme_settings_table_lists_every_setting_with_its_default() -> None:
    table = _readme_settings_table()
    expected = {env_name(name) for name in setting_names()}
    assert set(table) == expected, "README settings table and Settings differ"
    for name, (_text, default) in setting_help().items():
        shown = table[env_name(name)].strip("`")
        if default is None or str(default) == "NODEFAULT":
            continue
        assert shown == str(default), f"README shows default {shown!r} for {name}, not {default}"
