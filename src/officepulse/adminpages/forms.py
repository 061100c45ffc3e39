"""What every administrator page shares: running the CLI's operations, reading, form problems.

Every change runs the very operation that the command line runs (``officepulse.operations``),
so a page and the CLI accept and refuse exactly the same input (accounts run the operations'
account functions instead, see :mod:`officepulse.adminpages.users` for why). The operations'
one-line messages name the field at fault (``office: …``, ``--placement: …``, ``line 3: kind: …``);
:func:`operation_problems` turns them into problems shown next to the form field they name.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

import anyio.to_thread
from litestar import Request
from litestar.datastructures import FormMultiDict, UploadFile
from litestar.exceptions import NotFoundException

from officepulse.operations import OPERATIONS, OperationError
from officepulse.runtime import Runtime
from officepulse.storage import Cursor

T = TypeVar("T")

ADMIN: Final = {"access": "admin"}
# Uploaded CSV files may be larger than an ordinary form (1 MiB for the app as a whole).
UPLOAD_LIMIT: Final = 8 * 1024 * 1024
# A problem line starts with the field it names, possibly after the CSV line it is on.
_FIELD_RE: Final = re.compile(r"^(?:line \d+: )?-{0,2}([a-z_]+): ")
# Operations join several problems with "; " (and CSV problems with line breaks); a "; " that
# is followed by plain words belongs to the message itself.
_SPLIT_RE: Final = re.compile(r"; (?=(?:line \d+: )?-{0,2}[a-z_]+: )|\n")
ROLE_NAMES: Final = {"admin": "Administration", "evaluator": "Evaluation", "manager": "Leitung"}
KIND_NAMES: Final = {"pilot": "Pilot", "conventional": "konventionell"}
EVENT_KIND_NAMES: Final[dict[str, str]] = {
    "redesign": "Umgestaltung der Räume",
    "move": "Umzug",
    "staff_training": "Schulung des Personals",
    "opening_hours": "Öffnungszeiten",
    "other": "Sonstiges",
}


class Problem:
    """One thing wrong with a form, shown next to the field with the id ``field``."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message


class Problems:
    """The problems of one submitted form, in the order they were found."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, field: str, message: str) -> None:
        self.items.append(Problem(field, message))

    def at(self, field: str) -> list[str]:
        """The messages for one field (for the template)."""
        return [item.message for item in self.items if item.field == field]

    def __bool__(self) -> bool:
        return bool(self.items)


def split_problems(message: str) -> list[str]:
    """The separate problems in an operation's (or a parser's) message."""
    return [part.strip() for part in _SPLIT_RE.split(message) if part.strip()]


def operation_problems(
    message: str, fields: Mapping[str, str], fallback: str, problems: Problems | None = None
) -> Problems:
    """Attach each problem of ``message`` to the form field it names.

    ``fields`` maps the names the operations use (``name``, ``--placement``, …, without the
    dashes) to the ids of the form's fields; a problem naming no known field goes to
    ``fallback``.
    """
    found = problems if problems is not None else Problems()
    for part in split_problems(message):
        match = _FIELD_RE.match(part)
        field = fields.get(match.group(1), fallback) if match else fallback
        found.add(field, part)
    return found


async def run_operation(runtime: Runtime, name: str, params: Any) -> Any:
    """Run the CLI's operation ``name`` in a worker thread (it waits for the one writer)."""
    operation = OPERATIONS[name]
    return await anyio.to_thread.run_sync(operation.run, runtime, params)


async def read(runtime: Runtime, fn: Callable[[Cursor], T]) -> T:
    """A read on a cursor of its own, off the event loop."""
    return await anyio.to_thread.run_sync(runtime.store.read, fn)


def runtime_of(request: Request[Any, Any, Any]) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def text(form: FormMultiDict, key: str, limit: int = 1000) -> str:
    """A text field, stripped; missing or a file counts as empty. Cut at ``limit`` characters."""
    value = form.get(key)
    return value.strip()[:limit] if isinstance(value, str) else ""


def texts(form: FormMultiDict, key: str, limit: int = 200) -> list[str]:
    """Every value of a repeated field (a multiple select), without empty ones."""
    return [v.strip()[:limit] for v in form.getall(key, []) if isinstance(v, str) and v.strip()]


def upload(form: FormMultiDict, key: str) -> UploadFile | None:
    value = form.get(key)
    return value if isinstance(value, UploadFile) else None


def display_name(file: UploadFile) -> str:
    """The uploaded file's own name (no folders), for messages; never used as a path."""
    name = re.split(r"[\\/]", file.filename or "")[-1].strip()
    return name[:100] or "upload.csv"


def parse_upload(data: bytes, name: str, parse: Callable[[Path], T]) -> T:
    """Run a CSV parser of the CLI on uploaded bytes, with messages naming the uploaded file.

    The parsers read a path (as the CLI gives them), so the upload goes into a private temporary
    folder for the moment of parsing; its path is replaced by the file's name in the messages.
    """
    with tempfile.TemporaryDirectory(prefix="officepulse-upload-") as folder:
        path = Path(folder) / "upload.csv"
        path.write_bytes(data)
        try:
            return parse(path)
        except ValueError as exc:
            raise type(exc)(str(exc).replace(str(path), name)) from None


async def import_upload(
    runtime: Runtime,
    form: FormMultiDict,
    field: str,
    parse: Callable[[Path], T],
    error: type[ValueError],
    run: Callable[[T], Awaitable[Any]],
    problems: Problems,
) -> tuple[str, Any] | None:
    """Parse the uploaded CSV ``file`` and hand its rows to ``run`` (the import operation).

    Returns the file's name and what ``run`` returned; or ``None`` when there is no file, the
    parser (raising ``error``) or the operation refuses it, with the problems on ``field``.
    """
    file = upload(form, "file")
    if file is None or not file.filename:
        problems.add(field, "Bitte wählen Sie eine CSV-Datei aus.")
        return None
    name = display_name(file)
    data = await file.read()
    try:
        rows = parse_upload(data, name, parse)
        result = await run(rows)
    except (error, OperationError) as exc:
        for part in split_problems(str(exc)):
            problems.add(field, part if part.startswith(name) else f"{name}: {part}")
        return None
    return name, result


def local_time(value: dt.datetime | None, zone: dt.tzinfo) -> str:
    """A moment as the offices read it: ``12.03.2025 14:05``."""
    return "" if value is None else value.astimezone(zone).strftime("%d.%m.%Y %H:%M")


def not_found(what: str) -> NotFoundException:
    return NotFoundException(what)
