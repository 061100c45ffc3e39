"""Data operations of the CLI, runnable in-process or inside a running server.

DuckDB lets only one process open the database file. So every CLI command that reads or
changes data is an :class:`Operation`: with no server running, the CLI opens the data
directory and runs it itself; with a server running, it posts the parameters to the server's
loopback-only admin API, which runs the very same function. Either way the result is the same.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec

from officepulse import demo, exports, kiosk
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
    code = kiosk.new_pairing_code()
    kiosk_id = f"{params.office}-{secrets.token_hex(3)}"
    now = dt.datetime.now(dt.UTC)
    secret = runtime.settings.secret_key or ""
    runtime.store.write(
        lambda cur: kiosk.insert_kiosk(
            cur,
            kiosk_id=kiosk_id,
            office=params.office,
            name=params.name.strip(),
            placement=placement,
            code_hash=kiosk.keyed_hash(secret, "pairing-code", code),
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


def _demo_load(runtime: Runtime, params: demo.DemoParams) -> demo.DemoResult:
    try:
        result = demo.load_demo(runtime, params)
    except demo.DemoError as exc:
        raise OperationError(str(exc)) from None
    runtime.changed()
    return result


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
        Operation("survey.list", NoParams, list[SurveySummary], _survey_list),
        Operation("demo.load", demo.DemoParams, demo.DemoResult, _demo_load),
    )
}
