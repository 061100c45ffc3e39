"""Data operations of the CLI, runnable in-process or inside a running server.

DuckDB lets only one process open the database file. So every CLI command that reads or
changes data is an :class:`Operation`: with no server running, the CLI opens the data
directory and runs it itself; with a server running, it posts the parameters to the server's
loopback-only admin API, which runs the very same function. Either way the result is the same.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec

from officepulse import (
    accounts,
    audit,
    backup,
    demo,
    districts,
    events,
    exports,
    history,
    kiosk,
    retention,
)
from officepulse.offices import (
    CsvOffice,
    Office,
    OfficeError,
    insert_offices,
    insert_placement,
    list_offices,
    office_placements,
)
from officepulse.runtime import Runtime


class OperationError(Exception):
    """The operation was refused; the message is one line naming the field or line at fault."""


@dataclass(frozen=True)
class Operation:
    name: str
    params: Any
    result: Any
    run: Callable[[Runtime, Any], Any]


class NoParams(msgspec.Struct, frozen=True):
    pass


class Count(msgspec.Struct, frozen=True):
    count: int


class OfficeImport(msgspec.Struct, frozen=True):
    offices: list[CsvOffice]


class Placement(msgspec.Struct, frozen=True):
    office: str
    placement: str


class PlacementFilter(msgspec.Struct, frozen=True):
    office: str | None = None


class KioskAdd(msgspec.Struct, frozen=True):
    office: str
    name: str
    placement: str | None = None


class KioskCreated(msgspec.Struct, frozen=True):
    id: str
    office: str
    placement: str | None
    pairing_code: str
    url: str
    expires: dt.datetime


class KioskId(msgspec.Struct, frozen=True):
    id: str


class SurveySummary(msgspec.Struct, frozen=True):
    id: str
    version: int
    items: int
    core_items: list[str]
    languages: list[str]
    responses: int


def _office_add(runtime: Runtime, office: Office) -> Office:
    try:
        runtime.store.write(lambda cur: insert_offices(cur, [office])).result()
    except OfficeError as exc:
        raise OperationError(str(exc)) from None
    runtime.changed()
    return office


def _office_import(runtime: Runtime, params: OfficeImport) -> Count:
    offices = [item.office for item in params.offices]
    lines = [item.line for item in params.offices]
    try:
        count = runtime.store.write(lambda cur: insert_offices(cur, offices, lines)).result()
    except OfficeError as exc:
        raise OperationError(str(exc)) from None
    runtime.changed()
    return Count(count=count)


def _office_list(runtime: Runtime, _: NoParams) -> list[Office]:
    return runtime.store.read(list_offices)


def _placement_add(runtime: Runtime, params: Placement) -> Placement:
    try:
        runtime.store.write(
            lambda cur: insert_placement(cur, params.office, params.placement)
        ).result()
    except OfficeError as exc:
        raise OperationError(str(exc)) from None
    runtime.changed()
    return params


def _placement_list(runtime: Runtime, params: PlacementFilter) -> list[Placement]:
    if params.office is not None and params.office not in runtime.office_ids:
        raise OperationError(f"office: unknown office {params.office!r}")
    registered = runtime.store.read(office_placements)
    return [
        Placement(office=office, placement=placement)
        for office in sorted(registered)
        if params.office in (None, office)
        for placement in sorted(registered[office])
    ]


def _kiosk_add(runtime: Runtime, params: KioskAdd) -> KioskCreated:
    if params.office not in runtime.office_ids:
        raise OperationError(f"office: unknown office {params.office!r}")
    if not params.name.strip():
        raise OperationError("--name: must not be empty")
    placement = params.placement
    if placement is not None and runtime.placement_for(params.office, placement) != placement:
        raise OperationError(
            f"--placement: {placement!r} is not registered for {params.office!r}"
            f" (officepulse office placement add {params.office} {placement})"
        )
    now = dt.datetime.now(dt.UTC)
    kiosk_id, code = runtime.store.write(
        lambda cur: kiosk.insert_kiosk(
            cur,
            office=params.office,
            name=params.name.strip(),
            placement=placement,
            secret_key=runtime.settings.secret_key or "",
            now=now,
        )
    ).result()
    runtime.changed()
    return KioskCreated(
        id=kiosk_id,
        office=params.office,
        placement=placement,
        pairing_code=code,
        url=runtime.settings.base_url + "/kiosk/",
        expires=now + kiosk.PAIRING_VALID,
    )


def _kiosk_list(runtime: Runtime, _: NoParams) -> list[kiosk.KioskInfo]:
    now = dt.datetime.now(dt.UTC)
    return runtime.store.read(lambda cur: kiosk.list_kiosks(cur, now))


def _kiosk_revoke(runtime: Runtime, params: KioskId) -> KioskId:
    now = dt.datetime.now(dt.UTC)
    found = runtime.store.write(lambda cur: kiosk.revoke(cur, params.id, now)).result()
    if not found:
        raise OperationError(f"kiosk: unknown kiosk {params.id!r}")
    runtime.changed()
    return params


def _export(runtime: Runtime, request: exports.ExportRequest) -> exports.ExportResult:
    survey = runtime.surveys.latest(runtime.settings.default_survey)
    assert survey is not None  # Runtime.open guarantees the default survey
    target = Path(request.out)
    if not target.parent.is_dir():
        raise OperationError(f"--out: {target.parent} is not a folder")
    try:
        if request.kind == "aggregates":
            k = runtime.settings.min_group_size
            return runtime.store.read(
                lambda cur: exports.export_aggregates(cur, request, survey, k)
            )
        return runtime.store.read(lambda cur: exports.export_responses(cur, request, survey))
    except OSError as exc:
        raise OperationError(f"--out: {exc}") from None


class ReportRequest(msgspec.Struct, frozen=True, kw_only=True):
    spec: str
    out: str
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    charts_dir: str | None = None


class ReportResult(msgspec.Struct, frozen=True):
    out: str
    comparisons: int
    events: int
    charts: int
    seconds: float


def _report(runtime: Runtime, params: ReportRequest) -> ReportResult:
    from officepulse import report

    started = time.monotonic()
    survey = runtime.surveys.latest(runtime.settings.default_survey)
    assert survey is not None
    out = Path(params.out)
    if out.suffix not in (".html", ".json", ".pdf"):
        raise OperationError(f"--out: {out.name}: use the extension .html, .json or .pdf")
    if not out.parent.is_dir():
        raise OperationError(f"--out: {out.parent} is not a folder")
    try:
        spec = report.load_spec(report.spec_path(params.spec), survey)
    except report.ReportSpecError as exc:
        raise OperationError(str(exc)) from None
    built = report.build_report(runtime, spec, params.date_from, params.date_to)
    if out.suffix == ".json":
        data = report.render_json(built)
    elif out.suffix == ".pdf":
        data = report.render_pdf(built)
    else:
        data = report.render_html(built).encode("utf-8")
    tmp = out.with_name(f".{out.name}.part")
    tmp.write_bytes(data)
    tmp.replace(out)
    charts = 0
    if params.charts_dir:
        charts = len(report.write_chart_files(built, Path(params.charts_dir)))
    return ReportResult(
        out=str(out),
        comparisons=len(built.comparisons),
        events=len({e["event"] for e in built.events}),
        charts=charts,
        seconds=round(time.monotonic() - started, 2),
    )


def _survey_list(runtime: Runtime, _: NoParams) -> list[SurveySummary]:
    counts = {
        (row[0], row[1]): row[2]
        for row in runtime.store.read(
            lambda cur: cur.execute(
                "SELECT survey_id, survey_version, count(*) FROM responses GROUP BY ALL"
            ).fetchall()
        )
    }
    return [
        SurveySummary(
            id=survey.id,
            version=survey.version,
            items=len(survey.items),
            core_items=list(survey.core_items),
            languages=list(survey.languages),
            responses=counts.get((survey.id, survey.version), 0),
        )
        for survey in runtime.surveys
    ]


def _backup(runtime: Runtime, params: backup.BackupRequest) -> backup.BackupResult:
    try:
        return backup.make_backup(runtime, Path(params.out))
    except backup.BackupError as exc:
        raise OperationError(str(exc)) from None


def _purge(runtime: Runtime, params: retention.PurgeRequest) -> retention.PurgeResult:
    return retention.purge_comments(runtime, actor=audit.CLI_ACTOR, dry_run=params.dry_run)


def _demo_load(runtime: Runtime, params: demo.DemoParams) -> demo.DemoResult:
    try:
        result = demo.load_demo(runtime, params)
    except demo.DemoError as exc:
        raise OperationError(str(exc)) from None
    runtime.changed()
    return result


# -- events, districts and historical responses -------------------------------------------------


def _event_add(runtime: Runtime, params: events.NewEvent) -> events.Event:
    try:
        event = runtime.store.write(lambda cur: events.insert_event(cur, params)).result()
    except events.EventError as exc:
        raise OperationError(str(exc)) from None
    runtime.changed()
    return event


def _event_list(runtime: Runtime, params: events.EventFilter) -> list[events.Event]:
    if params.office is not None and params.office not in runtime.office_ids:
        raise OperationError(f"--office: unknown office {params.office!r}")
    return runtime.store.read(lambda cur: events.list_events(cur, params.office))


class DistrictImport(msgspec.Struct, frozen=True, kw_only=True):
    rows: list[districts.IndicatorRow]
    part: history.UploadPart | None = None


class DistrictImportResult(msgspec.Struct, frozen=True, kw_only=True):
    """``summary`` is None for a part of a big import that was only staged."""

    complete: bool
    rows: int
    summary: districts.ImportSummary | None = None


class DistrictMap(msgspec.Struct, frozen=True, kw_only=True):
    office: str
    city: str
    district_id: str


_STAGED_DISTRICTS: Final[history.Staging[districts.IndicatorRow]] = history.Staging()
_STAGED_RESPONSES: Final[history.Staging[history.ImportRow]] = history.Staging()


def _districts_import(runtime: Runtime, params: DistrictImport) -> DistrictImportResult:
    try:
        rows = _STAGED_DISTRICTS.collect(params.part, params.rows)
        if rows is None:
            assert params.part is not None
            staged = _STAGED_DISTRICTS.staged(params.part.upload)
            return DistrictImportResult(complete=False, rows=staged)
        summary = runtime.store.write(lambda cur: districts.import_indicators(cur, rows)).result()
    except (districts.DistrictError, history.HistoryError) as exc:
        raise OperationError(str(exc)) from None
    runtime.changed()
    return DistrictImportResult(complete=True, rows=len(rows), summary=summary)


def _districts_map(runtime: Runtime, params: DistrictMap) -> districts.OfficeDistrict:
    try:
        mapped = runtime.store.write(
            lambda cur: districts.map_office(cur, params.office, params.city, params.district_id)
        ).result()
    except districts.DistrictError as exc:
        raise OperationError(str(exc)) from None
    runtime.changed()
    return mapped


def _districts_list(runtime: Runtime, _: NoParams) -> list[districts.District]:
    return runtime.store.read(districts.list_districts)


def _responses_import(runtime: Runtime, params: history.ResponsesImport) -> history.ImportResult:
    try:
        rows = _STAGED_RESPONSES.collect(params.part, params.rows)
        if rows is None:
            assert params.part is not None
            staged = _STAGED_RESPONSES.staged(params.part.upload)
            return history.ImportResult(complete=False, rows=staged)
        result = history.import_responses(runtime, rows, params.unit)
    except history.HistoryError as exc:
        raise OperationError(str(exc)) from None
    runtime.changed()
    # Old history may bring comments already past the retention period: they go now, not at
    # the next daily run (the purge is logged and audited like any other).
    if retention.purge_comments(runtime, actor=audit.CLI_ACTOR, dry_run=True).comments:
        purged = retention.purge_comments(runtime, actor=audit.CLI_ACTOR)
        result = msgspec.structs.replace(result, comments_removed=purged.comments)
    return result


# -- accounts and API tokens --------------------------------------------------------------------


class UserAdd(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    role: str
    offices: list[str] = []
    password: str


class UserName(msgspec.Struct, frozen=True):
    name: str


class TokenCreate(msgspec.Struct, frozen=True, kw_only=True):
    user: str
    label: str


class TokenFilter(msgspec.Struct, frozen=True):
    user: str | None = None


class TokenId(msgspec.Struct, frozen=True):
    id: str


def _account_write(runtime: Runtime, change: Callable[[Any], Any]) -> Any:
    try:
        return runtime.store.write(change).result()
    except accounts.AccountError as exc:
        raise OperationError(str(exc)) from None


def _user_add(runtime: Runtime, params: UserAdd) -> accounts.User:
    now = dt.datetime.now(dt.UTC)
    try:
        # Hash outside the writer: argon2 takes tens of milliseconds on purpose.
        accounts.check_password(params.password)
    except accounts.AccountError as exc:
        raise OperationError(str(exc)) from None

    def add(cur: Any) -> accounts.User:
        user = accounts.add_user(
            cur, params.name, params.role, params.offices, params.password, now
        )
        audit.record(cur, audit.CLI_ACTOR, "user.add", user.name, user.role)
        return user

    user: accounts.User = _account_write(runtime, add)
    return user


def _user_list(runtime: Runtime, _: NoParams) -> list[accounts.User]:
    return runtime.store.read(accounts.list_users)


def _user_disable(runtime: Runtime, params: UserName) -> accounts.User:
    now = dt.datetime.now(dt.UTC)

    def disable(cur: Any) -> accounts.User:
        user = accounts.disable_user(cur, params.name, now)
        audit.record(cur, audit.CLI_ACTOR, "user.disable", user.name)
        return user

    user: accounts.User = _account_write(runtime, disable)
    return user


def _token_create(runtime: Runtime, params: TokenCreate) -> accounts.NewToken:
    now = dt.datetime.now(dt.UTC)
    secret = runtime.settings.secret_key or ""

    def create(cur: Any) -> accounts.NewToken:
        token = accounts.create_token(cur, secret, params.user, params.label, now)
        audit.record(cur, audit.CLI_ACTOR, "token.create", token.id, token.user)
        return token

    token: accounts.NewToken = _account_write(runtime, create)
    return token


def _token_list(runtime: Runtime, params: TokenFilter) -> list[accounts.ApiToken]:
    user = accounts.normalise_name(params.user) if params.user else None
    return runtime.store.read(lambda cur: accounts.list_tokens(cur, user))


def _token_revoke(runtime: Runtime, params: TokenId) -> TokenId:
    now = dt.datetime.now(dt.UTC)

    def revoke(cur: Any) -> bool:
        found = accounts.revoke_token(cur, params.id, now)
        if found:
            audit.record(cur, audit.CLI_ACTOR, "token.revoke", params.id)
        return found

    if not runtime.store.write(revoke).result():
        raise OperationError(f"token: no API token with id {params.id!r}")
    return params


OPERATIONS: Final[dict[str, Operation]] = {
    op.name: op
    for op in (
        Operation("office.add", Office, Office, _office_add),
        Operation("office.import", OfficeImport, Count, _office_import),
        Operation("office.list", NoParams, list[Office], _office_list),
        Operation("placement.add", Placement, Placement, _placement_add),
        Operation("placement.list", PlacementFilter, list[Placement], _placement_list),
        Operation("kiosk.add", KioskAdd, KioskCreated, _kiosk_add),
        Operation("kiosk.list", NoParams, list[kiosk.KioskInfo], _kiosk_list),
        Operation("kiosk.revoke", KioskId, KioskId, _kiosk_revoke),
        Operation("export", exports.ExportRequest, exports.ExportResult, _export),
        Operation("report", ReportRequest, ReportResult, _report),
        Operation("survey.list", NoParams, list[SurveySummary], _survey_list),
        Operation("demo.load", demo.DemoParams, demo.DemoResult, _demo_load),
        Operation("backup", backup.BackupRequest, backup.BackupResult, _backup),
        Operation("purge", retention.PurgeRequest, retention.PurgeResult, _purge),
        Operation("event.add", events.NewEvent, events.Event, _event_add),
        Operation("event.list", events.EventFilter, list[events.Event], _event_list),
        Operation("districts.import", DistrictImport, DistrictImportResult, _districts_import),
        Operation("districts.map", DistrictMap, districts.OfficeDistrict, _districts_map),
        Operation("districts.list", NoParams, list[districts.District], _districts_list),
        Operation("user.add", UserAdd, accounts.User, _user_add),
        Operation("user.list", NoParams, list[accounts.User], _user_list),
        Operation("user.disable", UserName, accounts.User, _user_disable),
        Operation("token.create", TokenCreate, accounts.NewToken, _token_create),
        Operation("token.list", TokenFilter, list[accounts.ApiToken], _token_list),
        Operation("token.revoke", TokenId, TokenId, _token_revoke),
        Operation(
            "responses.import", history.ResponsesImport, history.ImportResult, _responses_import
        ),
    )
}
