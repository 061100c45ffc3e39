"""The ``officepulse`` command.

Every command that reads or changes data runs an :mod:`officepulse.operations` operation: in
this process when no server holds the data directory, or through the running server's
loopback admin API when one does — never ending in a database lock error.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, NoReturn, TypeVar

import click
import msgspec

from officepulse import __version__
from officepulse.accounts import ROLES, ApiToken, NewToken, User
from officepulse.admin import RemoteError, call_remote, running_server
from officepulse.exports import ExportRequest, ExportResult
from officepulse.i18n import format_catalogue_status
from officepulse.kiosk import KioskInfo
from officepulse.logs import setup_logging
from officepulse.offices import (
    Office,
    OfficeError,
    office_problems,
    parse_office_csv,
    placement_problem,
)
from officepulse.operations import (
    OPERATIONS,
    Count,
    KioskAdd,
    KioskCreated,
    KioskId,
    NoParams,
    OfficeImport,
    OperationError,
    Placement,
    PlacementFilter,
    ReportRequest,
    ReportResult,
    SurveySummary,
    TokenCreate,
    TokenFilter,
    TokenId,
    UserAdd,
    UserName,
)
from officepulse.qr import qr_command
from officepulse.runtime import PublishedSurveyChangedError, Runtime, surveys_dir
from officepulse.settings import (
    Settings,
    SettingsError,
    ensure_secret_key,
    env_name,
    load_settings,
)
from officepulse.storage import StoreLockedError, StoreUnavailableError
from officepulse.surveys import SurveyError, check_survey_file, format_coverage, load_survey_file

F = TypeVar("F", bound=Callable[..., Any])
DEMO_DATA_DIR = "officepulse-demo"


class CommandError(click.ClickException):
    """A one-line error: printed as ``officepulse: error: …`` with exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"officepulse: error: {self.format_message()}", err=True)


def fail(message: str) -> NoReturn:
    raise CommandError(message)


def data_dir_option(fn: F) -> F:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help=f"Data directory (default: ${env_name('data_dir')} or ./officepulse-data).",
    )(fn)


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(fn)


def make_settings(**overrides: object) -> Settings:
    try:
        return load_settings(os.environ, overrides)
    except SettingsError as exc:
        fail(str(exc))


def run_operation(settings: Settings, name: str, params: object) -> Any:
    """Run an operation in-process, or in the server that holds the data directory."""
    op = OPERATIONS[name]
    server = running_server(settings.data_dir)
    if server is not None:
        try:
            return msgspec.convert(call_remote(server, name, params), op.result)
        except RemoteError as exc:
            fail(str(exc))
    if not settings.database_path.exists():
        fail(
            f"{settings.data_dir}: no officepulse database here"
            f" (run `officepulse init --data-dir {settings.data_dir}` first)"
        )
    runtime = open_runtime(settings)
    try:
        return op.run(runtime, params)
    except (OperationError, StoreUnavailableError) as exc:
        fail(str(exc))
    finally:
        runtime.close()


# What opening a data directory can meet, each a one-line error for the user.
OPEN_ERRORS: Final = (
    StoreLockedError,
    StoreUnavailableError,
    SurveyError,
    PublishedSurveyChangedError,
    OSError,
)


def open_runtime(settings: Settings) -> Runtime:
    try:
        return Runtime.open(settings)
    except OPEN_ERRORS as exc:
        fail(str(exc))


def print_json(value: object) -> None:
    click.echo(msgspec.json.format(msgspec.json.encode(value), indent=2).decode())


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="officepulse")
def main() -> None:
    """officepulse: anonymous client feedback for job centres."""
    # A one-shot command speaks through its output and its one error line; without a handler,
    # Python would also print the library's warnings bare (a full disk twice, say). `serve`
    # configures logging and gets every line.
    logging.getLogger("officepulse").addHandler(logging.NullHandler())


@main.command()
@data_dir_option
def init(data_dir: Path | None) -> None:
    """Create the data directory: secret key, database and migrations."""
    settings = make_settings(data_dir=data_dir)
    server = running_server(settings.data_dir)
    if server is not None:
        click.echo(f"{settings.data_dir}: already initialised and served by process {server.pid}")
        return
    runtime = open_runtime(settings)
    runtime.close()
    click.echo(f"initialised {settings.data_dir} ({settings.database_path.name})")


def serve_settings(settings: Settings) -> None:
    """Run the server in the foreground until interrupted."""
    from officepulse.server import run_server

    if running_server(settings.data_dir) is not None:
        fail(f"{settings.data_dir}: a server is already running on this data directory")
    setup_logging(settings.log_level)
    settings = ensure_secret_key(settings)
    # Open the data directory once before the server starts, so that a bad survey file, a
    # changed published survey or a held lock is one clear line, not a lifespan traceback.
    open_runtime(settings).close()
    try:
        code = run_server(settings)
    except OPEN_ERRORS as exc:
        fail(str(exc))
    if code:
        fail("the server could not start (see the messages above)")


@main.command()
@data_dir_option
@click.option("--host", default=None, help=f"Listen address (default ${env_name('host')}).")
@click.option("--port", type=int, default=None, help=f"Listen port (default ${env_name('port')}).")
def serve(data_dir: Path | None, host: str | None, port: int | None) -> None:
    """Serve the survey, kiosk, API and dashboards."""
    serve_settings(make_settings(data_dir=data_dir, host=host, port=port))


@main.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Data directory (default: ${env_name('data_dir')} or ./{DEMO_DATA_DIR}).",
)
@click.option("--host", default=None, help="Listen address.")
@click.option("--port", type=int, default=None, help="Listen port.")
@click.option("--responses", type=click.IntRange(0, 2_000_000), default=50_000, show_default=True)
@click.option("--seed", type=int, default=2026, show_default=True)
@click.option("--no-serve", is_flag=True, help="Load the demo data and exit.")
def demo(
    data_dir: Path | None,
    host: str | None,
    port: int | None,
    responses: int,
    seed: int,
    no_serve: bool,
) -> None:
    """Load clearly labelled synthetic demo data, then serve it."""
    from rich.progress import Progress

    from officepulse.demo import DemoError, DemoParams, ensure_demo_accounts, load_demo

    if data_dir is None and env_name("data_dir") not in os.environ:
        data_dir = Path(DEMO_DATA_DIR)
    settings = ensure_secret_key(make_settings(data_dir=data_dir, host=host, port=port))
    if running_server(settings.data_dir) is not None:
        fail(f"{settings.data_dir}: a server is already running on this data directory")
    runtime = open_runtime(settings)
    try:
        with Progress(transient=True) as bar:
            task = bar.add_task("synthetic responses", total=responses)
            result = load_demo(
                runtime,
                DemoParams(responses=responses, seed=seed),
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        names, password = ensure_demo_accounts(runtime)
    except DemoError as exc:
        fail(str(exc))
    finally:
        runtime.close()
    if result.loaded:
        click.echo(
            f"loaded SYNTHETIC demo data into {settings.data_dir}: {result.offices} offices,"
            f" {result.responses} responses"
        )
    else:
        click.echo(f"{settings.data_dir}: {result.message}")
    if no_serve:
        return
    base = settings.base_url
    click.echo("officepulse demo (all offices and figures are synthetic):")
    click.echo(f"  survey:   {base}/s/demo-muelheim-u25?p=waiting")
    click.echo(f"  health:   {base}/healthz")
    click.echo(f"  staff:    {base}/login as {', '.join(names)}")
    click.echo(f"            password {password} (kept in {settings.data_dir}/demo-password)")
    click.echo(f"  submit:   POST {base}/api/v1/responses")
    click.echo(f"  API spec: {base}/schema/openapi.json")
    click.echo("Press Ctrl+C to stop.")
    serve_settings(settings)


main.add_command(qr_command, "qr")


# -- backups -----------------------------------------------------------------------------------


@main.command("backup")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="A new (or empty) folder for the backup; it appears only when complete.",
)
@data_dir_option
@json_option
def backup_command(out: Path, data_dir: Path | None, as_json: bool) -> None:
    """Copy the database and secret key consistently, while the server keeps running."""
    from officepulse.backup import BackupRequest, BackupResult, backup_lines

    settings = make_settings(data_dir=data_dir)
    # Absolute: a running server resolves paths against its own working directory.
    result: BackupResult = run_operation(settings, "backup", BackupRequest(out=str(out.absolute())))
    if as_json:
        print_json(result)
        return
    for line in backup_lines(result):
        click.echo(line)


@main.command("restore")
@click.argument("backup_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@data_dir_option
@json_option
def restore_command(backup_dir: Path, data_dir: Path | None, as_json: bool) -> None:
    """Restore the backup DIR into an empty data directory (never one in use)."""
    from officepulse.backup import BackupError, restore_backup, restore_lines

    settings = make_settings(data_dir=data_dir)
    try:
        result = restore_backup(backup_dir, settings)
    except BackupError as exc:
        fail(str(exc))
    if as_json:
        print_json(result)
        return
    for line in restore_lines(result):
        click.echo(line)


# -- offices -----------------------------------------------------------------------------------


@main.group()
def office() -> None:
    """Manage offices."""


@office.command("add")
@click.argument("office_id", metavar="ID")
@click.option("--name", required=True, help="Display name.")
@click.option("--kind", type=click.Choice(["pilot", "conventional"]), required=True)
@click.option("--type", "type_label", default=None, help='Type label, e.g. "U-25 Haus".')
@click.option("--city", default=None)
@click.option("--district", default=None)
@click.option("--opened", default=None, metavar="YYYY-MM-DD", help="Opening date.")
@click.option("--lang", "default_lang", default="de", show_default=True, help="Default language.")
@data_dir_option
@json_option
def office_add(
    office_id: str,
    name: str,
    kind: str,
    type_label: str | None,
    city: str | None,
    district: str | None,
    opened: str | None,
    default_lang: str,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Add an office with a lowercase slug ID."""
    settings = make_settings(data_dir=data_dir)
    opened_on = None
    if opened:
        try:
            opened_on = dt.date.fromisoformat(opened)
        except ValueError:
            fail(f"--opened: {opened!r} is not a date YYYY-MM-DD")
    new = Office(
        id=office_id,
        name=name,
        kind=kind,  # type: ignore[arg-type]  # click.Choice checked it
        type_label=type_label,
        city=city,
        district=district,
        opened_on=opened_on,
        default_lang=default_lang,
    )
    problems = office_problems(new)
    if problems:
        fail(problems[0] if len(problems) == 1 else "; ".join(problems))
    added: Office = run_operation(settings, "office.add", new)
    if as_json:
        print_json(added)
    else:
        click.echo(f"added office {added.id} ({added.kind})")


@office.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@data_dir_option
@json_option
def office_import(file: Path, data_dir: Path | None, as_json: bool) -> None:
    """Import offices from a CSV (id,name,kind,type,city,district,opened_on); all or nothing."""
    settings = make_settings(data_dir=data_dir)
    try:
        rows = parse_office_csv(file)
    except OfficeError as exc:
        fail(str(exc))
    try:
        result: Count = run_operation(settings, "office.import", OfficeImport(offices=rows))
    except CommandError as exc:
        fail(f"{file}: {exc.format_message()}")
    if as_json:
        print_json(result)
    else:
        click.echo(f"imported {result.count} offices from {file}")


@office.command("list")
@data_dir_option
@json_option
def office_list(data_dir: Path | None, as_json: bool) -> None:
    """List offices."""
    settings = make_settings(data_dir=data_dir)
    offices: list[Office] = run_operation(settings, "office.list", NoParams())
    if as_json:
        print_json(offices)
        return
    print_table(
        ["id", "kind", "type", "city", "district", "name"],
        [
            [
                o.id,
                o.kind,
                o.type_label,
                o.city,
                o.district,
                o.name + (" [synthetic]" * o.synthetic),
            ]
            for o in offices
        ],
    )


@office.group("placement")
def office_placement() -> None:
    """Register where in an office feedback is collected (entrance, waiting, ...)."""


@office_placement.command("add")
@click.argument("office_id", metavar="OFFICE")
@click.argument("placement", metavar="PLACEMENT")
@data_dir_option
@json_option
def placement_add(office_id: str, placement: str, data_dir: Path | None, as_json: bool) -> None:
    """Register PLACEMENT (a short lowercase name such as 'waiting') for OFFICE."""
    settings = make_settings(data_dir=data_dir)
    problem = placement_problem(placement)
    if problem:
        fail(problem)
    added: Placement = run_operation(
        settings, "placement.add", Placement(office=office_id, placement=placement)
    )
    if as_json:
        print_json(added)
    else:
        click.echo(f"registered placement {added.placement} for {added.office}")


@office_placement.command("list")
@click.argument("office_id", metavar="[OFFICE]", required=False)
@data_dir_option
@json_option
def placement_list(office_id: str | None, data_dir: Path | None, as_json: bool) -> None:
    """List the registered placements (of one office, or of all)."""
    settings = make_settings(data_dir=data_dir)
    placements: list[Placement] = run_operation(
        settings, "placement.list", PlacementFilter(office=office_id)
    )
    if as_json:
        print_json(placements)
        return
    print_table(["office", "placement"], [[p.office, p.placement] for p in placements])


# -- accounts --------------------------------------------------------------------------------


@main.group()
def user() -> None:
    """Staff accounts: administrators, evaluators and office managers."""


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        # One line; the trailing newline (and a Windows carriage return) is not part of it.
        return sys.stdin.readline().rstrip("\r\n")
    password: str = click.prompt(
        "Password (at least 12 characters)", hide_input=True, confirmation_prompt=True
    )
    return password


@user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the account may do.")
@click.option(
    "--office",
    "offices",
    multiple=True,
    help="An office a manager may see (repeat for several); only for --role manager.",
)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@data_dir_option
@json_option
def user_add(
    name: str,
    role: str,
    offices: tuple[str, ...],
    password_stdin: bool,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Create a staff account (password hashed with argon2id, at least 12 characters)."""
    settings = make_settings(data_dir=data_dir)
    password = _read_password(password_stdin)
    created: User = run_operation(
        settings,
        "user.add",
        UserAdd(name=name, role=role, offices=list(offices), password=password),
    )
    if as_json:
        print_json(created)
        return
    where = f" for {', '.join(created.offices)}" if created.offices else ""
    click.echo(f"added {created.role} {created.name}{where}")


@user.command("list")
@data_dir_option
@json_option
def user_list(data_dir: Path | None, as_json: bool) -> None:
    """List the staff accounts (never their passwords)."""
    settings = make_settings(data_dir=data_dir)
    users: list[User] = run_operation(settings, "user.list", NoParams())
    if as_json:
        print_json(users)
        return
    print_table(
        ["name", "role", "offices", "state"],
        [
            [u.name, u.role, ", ".join(u.offices), "disabled" if u.disabled else "active"]
            for u in users
        ],
    )


@user.command("disable")
@click.argument("name")
@data_dir_option
@json_option
def user_disable(name: str, data_dir: Path | None, as_json: bool) -> None:
    """Disable an account: its sessions end and its API tokens stop working at once."""
    settings = make_settings(data_dir=data_dir)
    disabled: User = run_operation(settings, "user.disable", UserName(name=name))
    if as_json:
        print_json(disabled)
    else:
        click.echo(f"disabled {disabled.name}; its sessions and API tokens ended")


@main.group()
def token() -> None:
    """API tokens for scripted downloads (Authorization: Bearer)."""


@token.command("create")
@click.argument("user_name", metavar="USER")
@click.option("--label", required=True, help='What the token is for, e.g. "nightly export".')
@data_dir_option
@json_option
def token_create(user_name: str, label: str, data_dir: Path | None, as_json: bool) -> None:
    """Create an API token for USER; it is shown this once and stored only as a hash."""
    settings = make_settings(data_dir=data_dir)
    created: NewToken = run_operation(
        settings, "token.create", TokenCreate(user=user_name, label=label)
    )
    if as_json:
        print_json(created)
        return
    click.echo(f"token {created.id} for {created.user} ({created.label}):")
    click.echo(f"  {created.token}")
    click.echo("  shown only now: store it where your script reads it")


@token.command("list")
@click.option("--user", "user_name", default=None, help="Only this account's tokens.")
@data_dir_option
@json_option
def token_list(user_name: str | None, data_dir: Path | None, as_json: bool) -> None:
    """List API tokens (never the tokens themselves)."""
    settings = make_settings(data_dir=data_dir)
    tokens: list[ApiToken] = run_operation(settings, "token.list", TokenFilter(user=user_name))
    if as_json:
        print_json(tokens)
        return
    print_table(
        ["id", "user", "label", "created", "last used", "state"],
        [
            [
                t.id,
                t.user,
                t.label,
                f"{t.created_at:%Y-%m-%d}",
                t.last_used_on,
                "revoked" if t.revoked else "active",
            ]
            for t in tokens
        ],
    )


@token.command("revoke")
@click.argument("token_id", metavar="ID")
@data_dir_option
def token_revoke(token_id: str, data_dir: Path | None) -> None:
    """Revoke an API token: it stops working at once."""
    settings = make_settings(data_dir=data_dir)
    revoked: TokenId = run_operation(settings, "token.revoke", TokenId(id=token_id))
    click.echo(f"revoked token {revoked.id}")


# -- kiosks ----------------------------------------------------------------------------------


@main.group()
def kiosk() -> None:
    """Pair, list and revoke kiosk tablets."""


@kiosk.command("add")
@click.argument("office_id", metavar="OFFICE")
@click.option("--name", required=True, help='Where the tablet stands, e.g. "Eingang".')
@click.option("--placement", default=None, help="A registered placement of the office.")
@data_dir_option
@json_option
def kiosk_add(
    office_id: str, name: str, placement: str | None, data_dir: Path | None, as_json: bool
) -> None:
    """Create a kiosk and print its one-time pairing code (valid 24 hours)."""
    settings = make_settings(data_dir=data_dir)
    created: KioskCreated = run_operation(
        settings, "kiosk.add", KioskAdd(office=office_id, name=name, placement=placement)
    )
    if as_json:
        print_json(created)
        return
    click.echo(f"kiosk {created.id} for {created.office}")
    click.echo(f"  open {created.url} on the tablet and enter the pairing code:")
    click.echo(
        f"  {created.pairing_code}   (single use, valid until {created.expires:%Y-%m-%d %H:%M} UTC)"
    )


@kiosk.command("list")
@data_dir_option
@json_option
def kiosk_list(data_dir: Path | None, as_json: bool) -> None:
    """List kiosks with their last heartbeat and queue; silent ones are marked."""
    settings = make_settings(data_dir=data_dir)
    kiosks: list[KioskInfo] = run_operation(settings, "kiosk.list", NoParams())
    if as_json:
        print_json(kiosks)
        return

    def state(k: KioskInfo) -> str:
        if k.revoked:
            return "revoked"
        if not k.paired:
            return "not paired"
        return "SILENT > 10 min" if k.silent else "ok"

    print_table(
        ["id", "office", "placement", "name", "state", "last heartbeat", "queue", "app"],
        [
            [
                k.id,
                k.office,
                k.placement,
                k.name,
                state(k),
                f"{k.last_heartbeat:%Y-%m-%d %H:%M}" if k.last_heartbeat else None,
                k.queue_length,
                k.app_version,
            ]
            for k in kiosks
        ],
    )


@kiosk.command("revoke")
@click.argument("kiosk_id", metavar="ID")
@data_dir_option
@json_option
def kiosk_revoke(kiosk_id: str, data_dir: Path | None, as_json: bool) -> None:
    """Revoke a kiosk: its token stops working at once."""
    settings = make_settings(data_dir=data_dir)
    revoked: KioskId = run_operation(settings, "kiosk.revoke", KioskId(id=kiosk_id))
    if as_json:
        print_json(revoked)
    else:
        click.echo(f"revoked kiosk {revoked.id}")


# -- reports ----------------------------------------------------------------------------------


@main.command("report")
@click.argument("spec", metavar="SPEC")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The report file; its extension (.html, .json or .pdf) sets the format.",
)
@click.option("--from", "date_from", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--to", "date_to", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option(
    "--charts",
    "charts_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write every chart as SVG and PNG into this folder.",
)
@data_dir_option
@json_option
def report_command(
    spec: str,
    out: Path,
    date_from: dt.datetime | None,
    date_to: dt.datetime | None,
    charts_dir: Path | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Build a report from SPEC (a shipped name such as pilot-vs-conventional, or a .toml)."""
    from rich.console import Console

    settings = make_settings(data_dir=data_dir)
    request = ReportRequest(
        spec=str(Path(spec).resolve()) if Path(spec).exists() else spec,
        out=str(out.resolve()),
        date_from=date_from.date() if date_from else None,
        date_to=date_to.date() if date_to else None,
        charts_dir=str(charts_dir.resolve()) if charts_dir else None,
    )
    with Console(stderr=True).status("computing the report (statistics, charts) …"):
        result: ReportResult = run_operation(settings, "report", request)
    if as_json:
        print_json(result)
        return
    click.echo(
        f"wrote {result.out} ({result.comparisons} comparisons, {result.events} events,"
        f" {result.seconds:.1f} s)"
    )


# -- exports ----------------------------------------------------------------------------------


@main.command("export")
@click.argument("kind", type=click.Choice(["aggregates", "responses"]))
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), required=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--from", "date_from", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--to", "date_to", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option(
    "--period",
    type=click.Choice(["day", "week", "month", "all"]),
    default="month",
    show_default=True,
    help="Aggregates: the period of a cell.",
)
@click.option("--with-comments", is_flag=True, help="Responses: include the scrubbed comments.")
@click.option("--include-flagged", is_flag=True, help="Keep responses flagged repeat or burst.")
@data_dir_option
@json_option
def export(
    kind: str,
    fmt: str,
    out: Path,
    date_from: dt.datetime | None,
    date_to: dt.datetime | None,
    period: str,
    with_comments: bool,
    include_flagged: bool,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Export aggregates (minimum group size applied) or raw responses as CSV or Parquet."""
    settings = make_settings(data_dir=data_dir)
    request = ExportRequest(
        kind=kind,  # type: ignore[arg-type]  # click.Choice checked it
        format=fmt,  # type: ignore[arg-type]
        out=str(out.resolve()),
        date_from=date_from.date() if date_from else None,
        date_to=date_to.date() if date_to else None,
        period=period,  # type: ignore[arg-type]
        with_comments=with_comments,
        include_flagged=include_flagged,
    )
    result: ExportResult = run_operation(settings, "export", request)
    if as_json:
        print_json(result)
        return
    click.echo(
        f"wrote {result.rows} rows to {result.out}"
        + (f" ({result.suppressed} cells suppressed below k)" if kind == "aggregates" else "")
    )


# -- surveys -----------------------------------------------------------------------------------


@main.group()
def survey() -> None:
    """Inspect survey definitions."""


@survey.command("list")
@data_dir_option
@json_option
def survey_list(data_dir: Path | None, as_json: bool) -> None:
    """List the surveys in force with their response counts."""
    settings = make_settings(data_dir=data_dir)
    summaries: list[SurveySummary] = run_operation(settings, "survey.list", NoParams())
    if as_json:
        print_json(summaries)
        return
    print_table(
        ["id", "version", "items", "core", "languages", "responses"],
        [
            [s.id, s.version, s.items, len(s.core_items), ",".join(s.languages), s.responses]
            for s in summaries
        ],
    )


@survey.command("check")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@data_dir_option
def survey_check(files: tuple[Path, ...], data_dir: Path | None) -> None:
    """Check survey files (default: every file of the surveys folder); exit 1 on a problem."""
    settings = make_settings(data_dir=data_dir)
    paths = list(files) or sorted(surveys_dir(settings).glob("*.toml"))
    if not paths:
        fail(f"{surveys_dir(settings)}: no survey files (*.toml)")
    problems: list[str] = []
    for path in paths:
        if not path.exists():
            problems.append(f"{path}: no such file")
            continue
        found = check_survey_file(path)
        problems.extend(str(problem) for problem in found)
        if not found:
            click.echo(f"ok  {path}")
            # Which languages are complete, which are drafts, and what falls back to German.
            click.echo(format_coverage(load_survey_file(path)))
            click.echo("")
    click.echo(format_catalogue_status())
    if problems:
        for problem in problems:
            click.echo(f"officepulse: error: {problem}", err=True)
        sys.exit(1)


# -- events ------------------------------------------------------------------------------------


@main.group()
def event() -> None:
    """Record dated changes at offices (a redesign, a move, ...) that reports mark."""


@event.command("add")
@click.argument("office_id", metavar="OFFICE")
@click.option("--date", "date_text", required=True, metavar="YYYY-MM-DD", help="The day.")
@click.option(
    "--kind",
    required=True,
    metavar="KIND",
    help="redesign, move, training, opening-hours or other.",
)
@click.option(
    "--note", default=None, help="What changed (at most 500 characters; never a person's name)."
)
@data_dir_option
@json_option
def event_add(
    office_id: str,
    date_text: str,
    kind: str,
    note: str | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Record an event at OFFICE, such as a room redesign."""
    from officepulse import events

    settings = make_settings(data_dir=data_dir)
    problems: list[str] = []
    date: dt.date | None = None
    stored_kind: events.EventKind | None = None
    try:
        date = events.parse_date(date_text)
    except events.EventError as exc:
        problems.append(str(exc))
    try:
        stored_kind = events.kind_from_cli(kind)
    except events.EventError as exc:
        problems.append(str(exc))
    try:
        note = events.clean_note(note)
    except events.EventError as exc:
        problems.append(str(exc))
    if problems or date is None or stored_kind is None:
        fail("; ".join(problems))
    new = events.NewEvent(office=office_id, date=date, kind=stored_kind, note=note)
    added: events.Event = run_operation(settings, "event.add", new)
    if as_json:
        print_json(added)
    else:
        click.echo(
            f"recorded event {added.id} at {added.office}: {events.cli_word(added.kind)}"
            f" on {added.date.isoformat()}"
        )


@event.command("list")
@click.option("--office", "office_id", default=None, metavar="OFFICE", help="Only this office.")
@data_dir_option
@json_option
def event_list(office_id: str | None, data_dir: Path | None, as_json: bool) -> None:
    """List events by office and date."""
    from officepulse import events

    settings = make_settings(data_dir=data_dir)
    found: list[events.Event] = run_operation(
        settings, "event.list", events.EventFilter(office=office_id)
    )
    if as_json:
        print_json(found)
        return
    print_table(
        ["id", "office", "date", "kind", "note"],
        [
            [
                e.id,
                e.office,
                e.date.isoformat(),
                events.cli_word(e.kind),
                (e.note or "") + (" [synthetic]" * e.synthetic),
            ]
            for e in found
        ],
    )


# -- imports in parts --------------------------------------------------------------------------

# A running server's admin API takes at most 1 MiB per request: big imports go in parts.
PART_BYTES = 768 * 1024
T = TypeVar("T")


def run_in_parts(
    settings: Settings,
    name: str,
    items: Sequence[T],
    make: Callable[[list[T], Any], object],
    on_part: Callable[[int, int], None] | None = None,
) -> Any:
    """Run an import operation in this process, or in parts through a running server.

    ``make(items, part)`` builds the operation's parameters; ``part`` is None when all the
    items go at once. The server stages the parts and imports them all, or nothing, with the
    last one.
    """
    import secrets

    from officepulse.history import UploadPart, split_parts

    if running_server(settings.data_dir) is None:
        return run_operation(settings, name, make(list(items), None))
    encoder = msgspec.json.Encoder()
    parts = split_parts(items, encoder.encode, PART_BYTES)
    upload = secrets.token_hex(16)
    result: Any = None
    for index, chunk in enumerate(parts):
        part = UploadPart(
            upload=upload, index=index, last=index == len(parts) - 1, total=len(items)
        )
        result = run_operation(settings, name, make(chunk, part))
        if on_part is not None:
            on_part(index + 1, len(parts))
    return result


def fail_in_file(file: Path, message: str) -> NoReturn:
    """Fail with every ``line …``/``row …`` problem prefixed by the file's name."""
    fail(
        "\n".join(
            f"{file}: {line}" if line.startswith(("line ", "row ")) else line
            for line in message.splitlines()
        )
    )


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def format_number(value: float) -> str:
    return str(int(value)) if value == int(value) and abs(value) < 1e15 else f"{value:.10g}"


# -- districts ---------------------------------------------------------------------------------


@main.group()
def districts() -> None:
    """Official statistics per city district, and the district each office serves."""


@districts.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@data_dir_option
@json_option
def districts_import(file: Path, data_dir: Path | None, as_json: bool) -> None:
    """Import district indicator values from a CSV; all or nothing.

    Header: city,district_id,district_name,year,indicator,value,unit,source. Values imported
    before for the same city, district, year and indicator are replaced.
    """
    from officepulse.districts import DistrictError, IndicatorRow, parse_district_csv
    from officepulse.history import UploadPart
    from officepulse.operations import DistrictImport, DistrictImportResult

    settings = make_settings(data_dir=data_dir)
    try:
        rows = parse_district_csv(file)
    except DistrictError as exc:
        fail(str(exc))

    def make(chunk: list[IndicatorRow], part: UploadPart | None) -> DistrictImport:
        return DistrictImport(rows=chunk, part=part)

    try:
        result: DistrictImportResult = run_in_parts(settings, "districts.import", rows, make)
    except CommandError as exc:
        fail_in_file(file, exc.format_message())
    summary = result.summary
    assert summary is not None
    if as_json:
        print_json(summary)
        return
    replaced = (
        f"{summary.replaced} replaced the values imported before, {summary.new} new"
        if summary.replaced
        else "all new"
    )
    click.echo(
        f"imported {plural(summary.values, 'indicator value')} for"
        f" {plural(summary.districts, 'district')} from {file} ({replaced})"
    )
    width = max(len(i.indicator) for i in summary.indicators)
    for indicator in summary.indicators:
        label = indicator.label or "unlabelled: unknown indicator code, check what it measures"
        click.echo(f"  {indicator.indicator.ljust(width)}  {label}")
    if summary.unlabelled:
        click.echo(f"unlabelled indicators: {', '.join(summary.unlabelled)}")


@districts.command("map")
@click.argument("office_id", metavar="OFFICE")
@click.option("--city", required=True, help="The city, as in the district file.")
@click.option("--district-id", "district_id", required=True, help="The district's id there.")
@data_dir_option
@json_option
def districts_map(
    office_id: str, city: str, district_id: str, data_dir: Path | None, as_json: bool
) -> None:
    """Record the district OFFICE serves (its indicators may be imported later)."""
    from officepulse.districts import OfficeDistrict
    from officepulse.operations import DistrictMap

    settings = make_settings(data_dir=data_dir)
    problems = [
        f"{flag}: must not be empty"
        for flag, value in (("--city", city), ("--district-id", district_id))
        if not value.strip()
    ]
    if problems:
        fail("; ".join(problems))
    mapped: OfficeDistrict = run_operation(
        settings,
        "districts.map",
        DistrictMap(office=office_id, city=city, district_id=district_id),
    )
    if as_json:
        print_json(mapped)
        return
    message = f"mapped office {mapped.office} to {mapped.city} / {mapped.district_id}"
    if mapped.previous_city is not None and (mapped.previous_city, mapped.previous_district_id) != (
        mapped.city,
        mapped.district_id,
    ):
        message += f" (was {mapped.previous_city} / {mapped.previous_district_id})"
    if not mapped.has_indicators:
        message += "; no indicators imported for this district yet"
    click.echo(message)


@districts.command("list")
@data_dir_option
@json_option
def districts_list(data_dir: Path | None, as_json: bool) -> None:
    """List districts with their indicator values (labelled) and the offices mapped to each."""
    from officepulse.districts import District

    settings = make_settings(data_dir=data_dir)
    found: list[District] = run_operation(settings, "districts.list", NoParams())
    if as_json:
        print_json(found)
        return
    for index, district in enumerate(found):
        if index:
            click.echo("")
        name = f" {district.name}" if district.name else ""
        click.echo(f"{district.city} / {district.district_id}{name}")
        click.echo(f"  offices: {', '.join(district.offices) or '(none mapped)'}")
        if not district.indicators:
            click.echo("  (no indicators imported)")
            continue
        cells = [
            [
                v.indicator,
                str(v.year),
                format_number(v.value) + (f" {v.unit}" if v.unit else ""),
                f"[{v.source}]" if v.source else "",
                v.label or "(unlabelled)",
            ]
            for v in district.indicators
        ]
        widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
        for row in cells:
            click.echo(
                "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            )


# -- historical responses ----------------------------------------------------------------------


@main.group("import")
def import_group() -> None:
    """Import historical data (paper surveys, earlier tools)."""


@import_group.command("responses")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@data_dir_option
@json_option
def import_responses(file: Path, data_dir: Path | None, as_json: bool) -> None:
    """Import responses from a CSV or Parquet file, validated like the API; all or nothing.

    Columns: id, office, survey, version, channel, placement, lang, time, one per item id (an
    empty cell: not answered) and comment. A time without a zone is the offices' local time.
    Re-importing a file stores nothing twice.
    """
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from officepulse.history import (
        PROGRESS_ROWS,
        HistoryError,
        ImportResult,
        ImportRow,
        ResponsesImport,
        UploadPart,
        read_history_file,
    )

    settings = make_settings(data_dir=data_dir)
    console = Console(stderr=True)
    with Progress(console=console, transient=True, disable=not console.is_terminal) as bar:
        reading: TaskID | None = None

        def on_read(done: int, total: int) -> None:
            nonlocal reading
            if total <= PROGRESS_ROWS:
                return
            if reading is None:
                reading = bar.add_task(f"reading {file.name}", total=total)
            bar.update(reading, completed=done, total=max(done, total))

        try:
            parsed = read_history_file(file, on_read)
        except HistoryError as exc:
            fail(str(exc))
        big = len(parsed.rows) > PROGRESS_ROWS
        storing = bar.add_task(f"checking and storing {len(parsed.rows)} responses", total=None)
        bar.update(storing, visible=big)

        def make(chunk: list[ImportRow], part: UploadPart | None) -> ResponsesImport:
            return ResponsesImport(rows=chunk, unit=parsed.unit, part=part)

        def on_part(done: int, total: int) -> None:
            bar.update(storing, completed=done, total=total)

        try:
            result: ImportResult = run_in_parts(
                settings, "responses.import", parsed.rows, make, on_part
            )
        except CommandError as exc:
            fail_in_file(file, exc.format_message())
    if as_json:
        print_json(result)
        return
    removed = ""
    if result.comments_removed:
        removed = (
            f"; {plural(result.comments_removed, 'comment')} older than the retention period"
            " removed (ratings kept)"
        )
    click.echo(
        f"imported {plural(result.stored, 'response')} from {file};"
        f" {result.present} already present{removed}"
    )


# -- retention ---------------------------------------------------------------------------------


@main.command("purge")
@click.option("--dry-run", is_flag=True, help="Only count the comments that would be removed.")
@data_dir_option
@json_option
def purge_command(dry_run: bool, data_dir: Path | None, as_json: bool) -> None:
    """Delete client comments older than OFFICEPULSE_COMMENT_RETENTION_MONTHS; keep the ratings.

    The server also does this once a day; this command runs it now (through the server when
    one is running, whose setting then applies).
    """
    from officepulse.retention import PurgeRequest, PurgeResult, describe

    settings = make_settings(data_dir=data_dir)
    result: PurgeResult = run_operation(settings, "purge", PurgeRequest(dry_run=dry_run))
    if as_json:
        print_json(result)
    else:
        click.echo(describe(result))
