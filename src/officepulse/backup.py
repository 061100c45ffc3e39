"""Backups: a consistent copy of a data directory while the server keeps taking submissions.

``make_backup`` runs where the database is open (in the server when one runs, else in the CLI).
It attaches a new DuckDB file and copies the whole database into it with ``COPY FROM
DATABASE`` inside one read transaction: DuckDB's snapshot isolation gives the copy exactly the
commits that preceded the transaction, while the writer thread keeps committing submissions
(measured: no pause). The copy is checkpointed (no WAL), counted again and hashed, then the
folder it was written in is renamed to ``--out``: an interrupted backup is a ``*.part-*``
folder without a manifest, never something that looks complete.

``restore_backup`` is deliberately not an operation: it must never run inside a server. It
only ever fills an empty data directory and links the database into place, so it cannot
overwrite a database, not even one that appears while it runs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import logging
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import duckdb
import msgspec

from officepulse import __version__, audit
from officepulse.runtime import Runtime
from officepulse.settings import SECRET_FILE, Settings
from officepulse.storage import Cursor
from officepulse.storage.migrations import MIGRATIONS

log = logging.getLogger(__name__)

FORMAT: Final = 1
MANIFEST: Final = "backup.json"
DATABASE: Final = "officepulse.duckdb"
# Shown in the summary; --json and the manifest have every table.
MAIN_TABLES: Final = (
    "responses",
    "offices",
    "survey_versions",
    "events",
    "kiosks",
    "users",
    "api_tokens",
    "district_indicators",
    "audit_log",
)
# A file system's own folder: a fresh mount point that holds only this is empty.
_IGNORED_IN_TARGET: Final = frozenset({"lost+found"})


class BackupError(Exception):
    """The backup or restore was refused; the message is one line naming the folder or file."""


class DatabaseFile(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    bytes: int
    sha256: str


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    """``backup.json``: what a backup holds, so that a restore can check it before using it."""

    format: int
    officepulse: str
    created: dt.datetime
    migrations: list[str]
    tables: dict[str, int]
    database: DatabaseFile
    secret_key: bool


class BackupRequest(msgspec.Struct, frozen=True):
    out: str


class BackupResult(msgspec.Struct, frozen=True, kw_only=True):
    out: str
    created: dt.datetime
    tables: dict[str, int]
    bytes: int
    sha256: str
    secret_key: bool
    seconds: float


class RestoreResult(msgspec.Struct, frozen=True, kw_only=True):
    data_dir: str
    backup: str
    created: dt.datetime
    officepulse: str
    tables: dict[str, int]
    bytes: int
    secret_key: bool
    notes: list[str]
    seconds: float


class _Snapshot(msgspec.Struct, frozen=True):
    tables: dict[str, int]
    migrations: list[str]


# -- backup -------------------------------------------------------------------------------------


def make_backup(runtime: Runtime, out: Path) -> BackupResult:
    """Copy the data directory's database (and secret key) into the new folder ``out``."""
    started = time.monotonic()
    _check_out(out)
    created = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    try:
        # mkdtemp makes the folder 0700: it is about to hold the secret key.
        part = Path(tempfile.mkdtemp(prefix=f"{out.name}.part-", dir=out.parent))
    except OSError as exc:
        raise BackupError(f"--out: {_os_error(exc)}") from None
    try:
        database = part / DATABASE
        snapshot = runtime.store.read(lambda cur: _copy_database(cur, database))
        copied = _read_copy(database)
        if copied.tables != snapshot.tables:
            raise BackupError(f"--out: the copy in {part} does not match the database; retry")
        if database.with_name(DATABASE + ".wal").exists():
            raise BackupError(f"--out: the copy in {part} was not checkpointed; retry")
        size, digest = _file_digest(database)
        with_key = _copy_secret_key(runtime.settings, part)
        manifest = Manifest(
            format=FORMAT,
            officepulse=__version__,
            created=created,
            migrations=snapshot.migrations,
            tables=snapshot.tables,
            database=DatabaseFile(name=DATABASE, bytes=size, sha256=digest),
            secret_key=with_key,
        )
        _write_new(part / MANIFEST, msgspec.json.format(msgspec.json.encode(manifest)) + b"\n")
        _fsync(database)
        _fsync(part)
        try:
            # Replaces ``out`` only if it is still an empty folder.
            os.rename(part, out)
        except OSError as exc:
            raise BackupError(f"--out: {out}: {exc.strerror}; the backup was not kept") from None
    except OSError as exc:
        shutil.rmtree(part, ignore_errors=True)
        raise BackupError(f"--out: {_os_error(exc)}; the backup was not kept") from None
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise
    # The backup is in place; a folder that cannot be synced is left to the file system.
    with contextlib.suppress(OSError):
        _fsync(out.parent)
    responses = snapshot.tables.get("responses", 0)
    try:
        runtime.store.write(
            lambda cur: audit.record(
                cur, audit.CLI_ACTOR, "backup", str(out), f"{responses} responses, {size} bytes"
            )
        ).result()
    except Exception:
        # The backup is complete and in place; a data directory that cannot take the audit
        # entry (a full disk, say) must not make it look failed. The log keeps the record.
        log.warning("backup to %s: not recorded in the audit log", out, exc_info=True)
    seconds = round(time.monotonic() - started, 2)
    log.info(
        "backup written to %s: %s; %d bytes in %.2f s",
        out,
        ", ".join(f"{name} {count}" for name, count in snapshot.tables.items()),
        size,
        seconds,
    )
    return BackupResult(
        out=str(out),
        created=created,
        tables=snapshot.tables,
        bytes=size,
        sha256=digest,
        secret_key=with_key,
        seconds=seconds,
    )


def _check_out(out: Path) -> None:
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise BackupError(f"--out: {out} exists and is not a folder")
        try:
            empty = not any(out.iterdir())
        except OSError as exc:
            raise BackupError(f"--out: {_os_error(exc)}") from None
        if not empty:
            raise BackupError(f"--out: {out} exists and is not empty; name a new folder")
    if not out.parent.is_dir():
        raise BackupError(f"--out: {out.parent} is not a folder")


def _copy_database(cur: Cursor, target: Path) -> _Snapshot:
    """Copy the open database into ``target`` from one snapshot; return what it holds."""
    # ATTACH is visible to every cursor of the database instance: a name of its own keeps two
    # backups at once apart, and unqualified table names still mean the main database.
    alias = f"officepulse_backup_{secrets.token_hex(8)}"
    source = _ident(_one(cur, "SELECT current_database()"))
    try:
        cur.execute(f"ATTACH ? AS {alias}", [str(target)])
    except duckdb.Error as exc:
        raise BackupError(f"--out: cannot create {target}: {_first_line(exc)}") from None
    try:
        # One explicit transaction: the counts and the copy see the same snapshot, and commits
        # of the writer thread after BEGIN are in neither.
        cur.execute("BEGIN TRANSACTION")
        try:
            tables = _count_tables(cur)
            migrations = [
                str(row[0])
                for row in cur.execute(
                    "SELECT name FROM schema_migrations ORDER BY name"
                ).fetchall()
            ]
            cur.execute(f"COPY FROM DATABASE {source} TO {alias}")
            cur.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                cur.execute("ROLLBACK")
            raise
        # Fold the copy's WAL into the file, so the backup is a single file.
        cur.execute(f"CHECKPOINT {alias}")
    except duckdb.Error as exc:
        raise BackupError(f"--out: the copy failed: {_first_line(exc)}") from None
    finally:
        with contextlib.suppress(duckdb.Error):
            cur.execute(f"DETACH {alias}")
    return _Snapshot(tables=tables, migrations=migrations)


def _count_tables(cur: Cursor) -> dict[str, int]:
    names = [
        str(row[0])
        for row in cur.execute(
            "SELECT table_name FROM duckdb_tables()"
            " WHERE database_name = current_database() AND schema_name = 'main'"
            " AND NOT temporary ORDER BY table_name"
        ).fetchall()
    ]
    # Table names come from the catalogue and are quoted; values are never formatted in.
    return {
        name: int(_one(cur, f"SELECT count(*) FROM {_ident(name)}"))  # noqa: S608
        for name in names
    }


def _read_copy(path: Path) -> _Snapshot:
    """Open a copy read-only (a DuckDB instance of its own) and count what it holds."""
    try:
        with duckdb.connect(
            str(path),
            read_only=True,
            config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
        ) as conn:
            tables = _count_tables(conn)
            migrations: list[str] = []
            if "schema_migrations" in tables:
                migrations = [
                    str(row[0])
                    for row in conn.execute(
                        "SELECT name FROM schema_migrations ORDER BY name"
                    ).fetchall()
                ]
    except duckdb.Error as exc:
        raise BackupError(f"{path}: not a readable DuckDB database: {_first_line(exc)}") from None
    return _Snapshot(tables=tables, migrations=migrations)


def _copy_secret_key(settings: Settings, part: Path) -> bool:
    """Copy the data directory's secret key file, if it is the key in use.

    A key given as OFFICEPULSE_SECRET_KEY was kept out of the data directory on purpose, so it
    is not written into the backup either; the summary says it must travel separately.
    """
    source = settings.data_dir / SECRET_FILE
    try:
        key = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    if key.strip() != settings.secret_key:
        return False
    _write_new(part / SECRET_FILE, key.encode("utf-8"), mode=0o600)
    return True


# -- restore ------------------------------------------------------------------------------------


def restore_backup(backup: Path, settings: Settings) -> RestoreResult:
    """Restore the backup folder ``backup`` into the empty data directory of ``settings``."""
    started = time.monotonic()
    manifest = read_manifest(backup)
    source = backup / DATABASE
    if not source.is_file():
        raise BackupError(f"{source}: missing; {backup} is not a complete backup")
    key_file = backup / SECRET_FILE
    if manifest.secret_key and not key_file.is_file():
        raise BackupError(f"{key_file}: missing, but {backup / MANIFEST} lists it")
    target = settings.data_dir
    _check_target(target)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"--data-dir: {_os_error(exc)}") from None
    tmp = target / f".{DATABASE}.restore-{secrets.token_hex(4)}"
    wrote_key = False
    try:
        size, digest = _copy_file(source, tmp)
        if (size, digest) != (manifest.database.bytes, manifest.database.sha256):
            raise BackupError(
                f"{source}: checksum does not match {MANIFEST} (the file is damaged or was"
                " changed); nothing restored"
            )
        copied = _read_copy(tmp)
        for name in sorted(set(manifest.tables) | set(copied.tables)):
            expected, found = manifest.tables.get(name), copied.tables.get(name)
            if expected != found:
                raise BackupError(
                    f"{source}: table {name} has {_rows(found)}, {MANIFEST} says"
                    f" {_rows(expected)}; nothing restored"
                )
        if manifest.secret_key:
            _write_new(target / SECRET_FILE, key_file.read_bytes(), mode=0o600)
            wrote_key = True
        _place(tmp, target / DATABASE)
        _fsync(target)
    except FileExistsError as exc:
        _remove_partial(tmp, target / SECRET_FILE if wrote_key else None)
        raise BackupError(
            f"--data-dir: {exc.filename} appeared during the restore; nothing overwritten"
        ) from None
    except OSError as exc:
        _remove_partial(tmp, target / SECRET_FILE if wrote_key else None)
        raise BackupError(f"{_os_error(exc)}; nothing restored") from None
    except BaseException:
        _remove_partial(tmp, target / SECRET_FILE if wrote_key else None)
        raise
    notes: list[str] = []
    if not manifest.secret_key:
        notes.append(
            "the backup holds no secret key (it was given as OFFICEPULSE_SECRET_KEY): start the"
            " server with the same value, or kiosks must be paired again and tokens reissued"
        )
    elif settings.secret_key and settings.secret_key != key_file.read_text("utf-8").strip():
        notes.append(
            "OFFICEPULSE_SECRET_KEY differs from the restored secret_key and takes precedence:"
            " unset it, or kiosks must be paired again and tokens reissued"
        )
    return RestoreResult(
        data_dir=str(target),
        backup=str(backup),
        created=manifest.created,
        officepulse=manifest.officepulse,
        tables=manifest.tables,
        bytes=size,
        secret_key=manifest.secret_key,
        notes=notes,
        seconds=round(time.monotonic() - started, 2),
    )


def read_manifest(backup: Path) -> Manifest:
    """The backup's manifest, checked against what this version of officepulse can restore."""
    if not backup.is_dir():
        raise BackupError(f"{backup}: no such folder")
    path = backup / MANIFEST
    try:
        manifest = msgspec.json.decode(path.read_bytes(), type=Manifest)
    except FileNotFoundError:
        raise BackupError(
            f"{path}: missing; {backup} is not a complete officepulse backup"
        ) from None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise BackupError(f"{path}: not a backup manifest: {exc}") from None
    except OSError as exc:
        raise BackupError(_os_error(exc)) from None
    if manifest.format != FORMAT:
        raise BackupError(
            f"{path}: backup format {manifest.format} is unknown to officepulse {__version__}"
        )
    if manifest.database.name != DATABASE:
        raise BackupError(f"{path}: database: expected {DATABASE!r}")
    known = {migration.name for migration in MIGRATIONS}
    newer = [name for name in manifest.migrations if name not in known]
    if newer:
        raise BackupError(
            f"{path}: made by officepulse {manifest.officepulse} with migrations this version"
            f" does not know ({', '.join(newer)}); restore it with that version or a newer one"
        )
    return manifest


def _check_target(target: Path) -> None:
    # admin imports the operations, which import this module.
    from officepulse.admin import running_server

    server = running_server(target)
    if server is not None:
        raise BackupError(
            f"--data-dir: a server (process {server.pid}) is running on {target};"
            " restore only into an empty data directory"
        )
    if not target.exists():
        return
    if not target.is_dir():
        raise BackupError(f"--data-dir: {target} is not a folder")
    try:
        present = sorted(p.name for p in target.iterdir() if p.name not in _IGNORED_IN_TARGET)
    except OSError as exc:
        raise BackupError(f"--data-dir: {_os_error(exc)}") from None
    if present:
        listed = ", ".join(present[:3]) + (", ..." if len(present) > 3 else "")
        raise BackupError(
            f"--data-dir: {target} is not empty ({listed}); restore only into an empty directory"
        )


def _place(tmp: Path, final: Path) -> None:
    """Move the verified copy into place; never over an existing file."""
    try:
        # A hard link fails if ``final`` exists, where a rename would replace it.
        os.link(tmp, final)
    except FileExistsError:
        raise
    except OSError:
        # A file system without hard links: check, then rename (the window is tiny).
        if final.exists():
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(final)) from None
        os.rename(tmp, final)
        return
    tmp.unlink()


def _remove_partial(tmp: Path, key: Path | None) -> None:
    for path in (tmp, tmp.with_name(tmp.name + ".wal"), key):
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


# -- summaries ----------------------------------------------------------------------------------


def backup_lines(result: BackupResult) -> Iterator[str]:
    """The human summary of a backup."""
    yield (
        f"backup written to {result.out} in {result.seconds:.2f} s"
        f" ({_size(result.bytes)}, sha256 {result.sha256[:16]}…)"
    )
    yield from _table_lines(result.tables)
    if result.secret_key:
        yield "it holds the secret key: keep it as safely as the data directory itself"
    else:
        yield "the secret key is not in it (OFFICEPULSE_SECRET_KEY): keep that value as well"


def restore_lines(result: RestoreResult) -> Iterator[str]:
    """The human summary of a restore."""
    yield (
        f"restored {result.backup} (made {result.created:%Y-%m-%d %H:%M} UTC by officepulse"
        f" {result.officepulse}) into {result.data_dir} in {result.seconds:.2f} s"
        f" ({_size(result.bytes)})"
    )
    yield from _table_lines(result.tables)
    for note in result.notes:
        yield f"note: {note}"


def _table_lines(tables: dict[str, int]) -> Iterator[str]:
    shown = [name for name in MAIN_TABLES if name in tables]
    width = max((len(name) for name in shown), default=0)
    digits = max((len(str(tables[name])) for name in shown), default=0)
    for name in shown:
        yield f"  {name.ljust(width)}  {str(tables[name]).rjust(digits)}"


def _size(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 100_000 else f"{size / 1000:.1f} kB"


def _rows(count: int | None) -> str:
    return "no such table" if count is None else f"{count} rows"


# -- files --------------------------------------------------------------------------------------


def _copy_file(source: Path, target: Path) -> tuple[int, str]:
    """Copy ``source`` to the new file ``target``, hashing on the way; synced to disk."""
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as reader:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as writer:
            while chunk := reader.read(1 << 20):
                digest.update(chunk)
                writer.write(chunk)
                size += len(chunk)
            writer.flush()
            os.fsync(writer.fileno())
    return size, digest.hexdigest()


def _file_digest(path: Path) -> tuple[int, str]:
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
    return path.stat().st_size, digest.hexdigest()


def _write_new(path: Path, data: bytes, mode: int = 0o644) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync(path: Path) -> None:
    """Sync a file or a folder (a rename is durable once its folder is synced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- SQL ----------------------------------------------------------------------------------------


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _one(cur: Cursor, sql: str) -> str:
    row = cur.execute(sql).fetchone()
    assert row is not None
    return str(row[0])


def _os_error(exc: OSError) -> str:
    where = exc.filename if exc.filename is not None else ""
    return f"{where}: {exc.strerror or exc}" if where else str(exc.strerror or exc)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
