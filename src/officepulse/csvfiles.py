"""Opening the CSV files that the CLI imports (offices, districts, historical responses).

One place decides how a file that is missing, a folder, not UTF-8 or empty is reported: as one
line naming the file (and line 1), raised as the importer's own error type.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _csv import Reader


def open_csv(
    path: Path, error: type[Exception], expected: str = "a header"
) -> tuple[Reader, list[str], str]:
    """The reader positioned after the header, the header row, and the whole text.

    ``expected`` describes the header for the message about an empty file. A byte-order mark
    (as spreadsheet programs write it) is dropped.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not a CSV file") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise error(f"{path}: line 1: empty file, expected {expected}") from None
    except csv.Error as exc:
        raise error(f"{path}: line 1: {exc}") from None
    return reader, header, text


def check_header(
    path: Path, header: list[str], expected: tuple[str, ...], error: type[Exception]
) -> None:
    """A fixed header, compared without case and surrounding spaces."""
    found = [name.strip().lower() for name in header]
    if tuple(found) != expected:
        raise error(
            f"{path}: line 1: header is {','.join(found)!r}, expected {','.join(expected)!r}"
            " (comma-separated)"
        )


def records(
    path: Path, rows: Reader, columns: tuple[str, ...], problems: list[str]
) -> Iterator[tuple[int, dict[str, str]]]:
    """Non-blank rows as (line, fields); wrong widths and CSV syntax go to ``problems``."""
    try:
        for values in rows:
            line = rows.line_num
            if not any(value.strip() for value in values):
                continue
            if len(values) != len(columns):
                problems.append(
                    f"{path}: line {line}: expected {len(columns)} fields, got {len(values)}"
                )
                continue
            yield line, dict(zip(columns, (value.strip() for value in values), strict=True))
    except csv.Error as exc:
        problems.append(f"{path}: line {rows.line_num}: {exc}")
