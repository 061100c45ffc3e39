"""What the benchmark scripts share: a free port, the commit being measured, a server's health."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Final

import httpx

REPO: Final = Path(__file__).resolve().parent.parent
# Every benchmark server uses this key: its data directories are scratch, never real data.
SECRET: Final = "benchmark-secret-key-0123456789abcdef0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def git_commit() -> str:
    """The checkout's short commit, noting changed tracked files; '?' outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return f"{head} with uncommitted changes" if dirty else head


def wait_healthy(base: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Wait until ``GET base/healthz`` answers 200; fail if the server exits or takes too long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited early with status {process.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not become healthy")
