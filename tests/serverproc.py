"""Start the real ``officepulse`` command as a process, for tests that need a live server."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import httpx

from .conftest import SECRET


def officepulse_command() -> list[str]:
    """The installed console script (the real entry point)."""
    script = Path(sys.executable).parent / "officepulse"
    if script.exists():
        return [str(script)]
    found = shutil.which("officepulse")
    assert found, "the officepulse console script is not installed"
    return [found]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFICEPULSE_")}
    env["OFFICEPULSE_SECRET_KEY"] = SECRET
    env.update(extra)
    return env


def run_cli(args: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = kwargs.pop("env", None) or cli_env()
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [*officepulse_command(), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        **kwargs,
    )


def wait_healthy(base: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early with status {process.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError("server did not become healthy")


@contextmanager
def server_process(
    data_dir: Path,
    *,
    args: Sequence[str] = ("serve",),
    log: Path | None = None,
    log_level: str = "info",
    env: dict[str, str] | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run ``officepulse serve`` (or ``args``) on a free port until the block ends."""
    port = free_port()
    out = open(log or data_dir.parent / f"server-{port}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [*officepulse_command(), *args, "--data-dir", str(data_dir), "--port", str(port)],
        stdout=out,
        stderr=subprocess.STDOUT,
        env=cli_env(OFFICEPULSE_LOG_LEVEL=log_level, **(env or {})),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process, timeout=120)
        yield base, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        out.close()


def db_rows(data_dir: Path, sql: str) -> list[tuple[object, ...]]:
    """Rows of the data directory's database, opened read-only (no server may hold it)."""
    with duckdb.connect(str(data_dir / "officepulse.duckdb"), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single error line of a failed command (exit 1, no traceback)."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]
