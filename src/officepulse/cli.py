"""The ``officepulse`` command.

Every command that reads or changes data runs an :mod:`officepulse.operations` operation: in
this process when no server holds the data directory, or through the running server's
loopback admin API when one does — never ending in a database lock error.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import msgspec

from officepulse import __version__
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
    SurveySummary,
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
from officepulse.storage import StoreLockedError
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
    except OperationError as exc:
        fail(str(exc))
    finally:
        runtime.close()


def open_runtime(settings: Settings) -> Runtime:
    try:
        return Runtime.open(settings)
    except (StoreLockedError, SurveyError, PublishedSurveyChangedError, OSError) as exc:
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
    except (StoreLockedError, SurveyError, PublishedSurveyChangedError, OSError) as exc:
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

    from officepulse.demo import DemoError, DemoParams, load_demo

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
    click.echo(f"  offices:  {base}/api/v1/offices")
    click.echo(f"  submit:   POST {base}/api/v1/responses")
    click.echo(f"  API spec: {base}/schema/openapi.json")
    click.echo("Press Ctrl+C to stop.")
    serve_settings(settings)


main.add_command(qr_command, "qr")


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
