"""Settings: one struct, built at the edge from ``OFFICEPULSE_*`` variables and CLI flags.

Nothing here is read at import time. ``load_settings`` is called by the CLI (and by tests with
their own mapping), and the resulting :class:`Settings` is passed into ``create_app``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

ENV_PREFIX: Final = "OFFICEPULSE_"
SECRET_FILE: Final = "secret_key"  # noqa: S105 - a file name, not a secret
DEFAULT_DATA_DIR: Final = "officepulse-data"

TimeGranularity = Literal["hour", "day"]
LogLevel = Literal["debug", "info", "warning", "error"]


def _doc(text: str, **kw: Any) -> msgspec.Meta:
    return msgspec.Meta(description=text, **kw)


class Settings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Every setting of officepulse, each with its default and a one-line help."""

    data_dir: Annotated[
        Path,
        _doc("Folder holding the DuckDB file and the secret key (keep backups elsewhere)."),
    ] = Path(DEFAULT_DATA_DIR)
    host: Annotated[
        str,
        _doc("Address the server listens on; keep the loopback default behind a reverse proxy."),
    ] = "127.0.0.1"
    port: Annotated[int, _doc("TCP port the server listens on.", ge=0, le=65535)] = 8000
    public_url: Annotated[
        str | None,
        _doc("Base URL printed in QR codes and links; defaults to http://HOST:PORT."),
    ] = None
    secret_key: Annotated[
        Annotated[str, msgspec.Meta(min_length=32)] | None,
        _doc(
            "Secret for signing and token hashing (at least 32 characters); generated into "
            "DATA_DIR/secret_key (mode 0600) on first start when not given."
        ),
    ] = None
    min_group_size: Annotated[
        int,
        _doc("Smallest number of responses an aggregate may show or export (k, at least 3).", ge=3),
    ] = 5
    time_granularity: Annotated[
        TimeGranularity,
        _doc("Precision of stored response times: hour or day; nothing finer is allowed."),
    ] = "hour"
    timezone: Annotated[
        str,
        _doc("IANA time zone of the offices; stored times are local wall-clock times."),
    ] = "Europe/Berlin"
    surveys_dir: Annotated[
        Path | None,
        _doc("Folder of survey definitions (*.toml); defaults to the shipped surveys."),
    ] = None
    default_survey: Annotated[
        str,
        _doc("Id of the survey the phone page and the kiosk show (its latest version)."),
    ] = "atmosphere"
    accessibility_contact: Annotated[
        str | None,
        _doc("E-mail address for reports of accessibility barriers, shown on the statement page."),
    ] = None
    trusted_proxies: Annotated[
        str | None,
        _doc(
            "Comma-separated addresses of reverse proxies whose X-Forwarded-For is believed "
            "(used only for the in-memory repeat limiter; never stored)."
        ),
    ] = None
    kiosk_idle_seconds: Annotated[
        float, _doc("Kiosk: seconds without a touch before the 'Still there?' prompt.", gt=0)
    ] = 30
    kiosk_prompt_seconds: Annotated[
        float,
        _doc("Kiosk: seconds the 'Still there?' prompt stays before the reset (WCAG: 20).", gt=0),
    ] = 20
    kiosk_thanks_seconds: Annotated[
        float, _doc("Kiosk: seconds the thank-you screen stays before the start screen.", gt=0)
    ] = 5
    burst_gap_seconds: Annotated[
        float,
        _doc(
            "Kiosk: a response completed this soon after the previous one is flagged burst.", ge=0
        ),
    ] = 2
    burst_window_seconds: Annotated[
        float, _doc("Kiosk: length of the window in which too many responses are a burst.", gt=0)
    ] = 60
    burst_window_count: Annotated[
        int, _doc("Kiosk: responses allowed in that window; the next ones are flagged burst.", ge=1)
    ] = 10
    session_idle_minutes: Annotated[
        int,
        _doc("Staff sessions end after this many minutes without a request.", ge=1, le=1440),
    ] = 30
    session_max_hours: Annotated[
        int, _doc("Staff sessions end this many hours after the login at the latest.", ge=1, le=168)
    ] = 12
    comment_retention_months: Annotated[
        int,
        _doc(
            "Client comments older than this many months (1 to 120) are deleted, daily and by "
            "`officepulse purge`; the ratings are kept.",
            ge=1,
            le=120,
        ),
    ] = 24
    min_free_mb: Annotated[
        int,
        _doc(
            "Free space (MiB) the data directory's file system must keep; below it submissions "
            "answer 503 and nothing is written until space is freed.",
            ge=0,
        ),
    ] = 64
    memory_limit_mb: Annotated[
        int,
        _doc(
            "Memory (MiB) the database engine may use; a sort, join or aggregate that needs "
            "more spills to a temporary folder beside the database file (slower, but it fits). "
            "0: the engine's own default, 80% of the machine's memory.",
            ge=0,
        ),
    ] = 1024
    log_level: Annotated[LogLevel, _doc("Lowest level of log lines written to standard error.")] = (
        "info"
    )

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise msgspec.ValidationError(
                f"unknown time zone {self.timezone!r} - `$.timezone`"
            ) from None
        if self.public_url is not None and not self.public_url.startswith(("http://", "https://")):
            raise msgspec.ValidationError(
                "public_url must start with http:// or https:// - `$.public_url`"
            )

    @property
    def database_path(self) -> Path:
        """The DuckDB file inside the data directory."""
        return self.data_dir / "officepulse.duckdb"

    @property
    def base_url(self) -> str:
        """The URL clients reach the server at, without a trailing slash."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    @property
    def zone(self) -> ZoneInfo:
        """The offices' time zone."""
        return ZoneInfo(self.timezone)


class SettingsError(ValueError):
    """A setting has a bad value; the message names the variable or flag."""


def setting_names() -> tuple[str, ...]:
    """Names of all settings, in declaration order."""
    return Settings.__struct_fields__


def setting_help() -> dict[str, tuple[str, object]]:
    """Each setting's one-line help and default, for the README table and ``--help``."""
    info = msgspec.inspect.type_info(Settings)
    assert isinstance(info, msgspec.inspect.StructType)
    result: dict[str, tuple[str, object]] = {}
    for field in info.fields:
        description = ""
        if isinstance(field.type, msgspec.inspect.Metadata) and field.type.extra_json_schema:
            description = str(field.type.extra_json_schema.get("description", ""))
        result[field.name] = (description, field.default)
    return result


def env_name(field: str) -> str:
    """The environment variable of a setting."""
    return ENV_PREFIX + field.upper()


def load_settings(
    env: Mapping[str, str] | None = None, overrides: Mapping[str, object] | None = None
) -> Settings:
    """Build settings from ``OFFICEPULSE_*`` variables, then CLI flags (which win).

    An unknown ``OFFICEPULSE_*`` variable is refused, so a typo never silently falls back to a
    default (a mistyped ``OFFICEPULSE_MIN_GROUP_SIZE`` would otherwise weaken anonymity).
    """
    env = os.environ if env is None else env
    raw: dict[str, object] = {}
    known = set(setting_names())
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name not in known:
            raise SettingsError(f"{key}: unknown setting (known: {', '.join(sorted(known))})")
        if value == "" and name in (
            "public_url",
            "secret_key",
            "surveys_dir",
            "accessibility_contact",
            "trusted_proxies",
        ):
            continue
        raw[name] = value
    sources = {name: env_name(name) for name in raw}
    for name, override in (overrides or {}).items():
        if override is not None:
            raw[name] = override
            sources[name] = "--" + name.replace("_", "-")
    try:
        # strict=False lets "8000" from the environment become an int.
        return msgspec.convert(raw, Settings, strict=False, dec_hook=_decode_path)
    except msgspec.ValidationError as exc:
        message = str(exc)
        for name, source in sources.items():
            if f"`$.{name}`" in message:
                message = message.replace(f" - at `$.{name}`", "").replace(f" - `$.{name}`", "")
                raise SettingsError(f"{source}: {message}") from None
        raise SettingsError(message) from None


def _decode_path(kind: type, value: object) -> object:
    # msgspec has no built-in Path type: paths arrive as strings (environment) or Paths (flags).
    if kind is Path and isinstance(value, str | Path):
        return Path(value)
    raise NotImplementedError(f"cannot convert {value!r} to {kind}")


def ensure_secret_key(settings: Settings) -> Settings:
    """Return settings with a secret key: given, read from the data directory, or generated.

    A generated key is written with mode 0600 before it is used, so that a restart keeps it.
    """
    if settings.secret_key:
        return settings
    path = settings.data_dir / SECRET_FILE
    if path.exists():
        key = path.read_text(encoding="utf-8").strip()
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(key + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    return msgspec.structs.replace(settings, secret_key=key)
