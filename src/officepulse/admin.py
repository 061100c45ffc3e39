"""The loopback-only admin API through which the CLI reaches a running server.

While a server holds the DuckDB file, no other process can open it, so a CLI command sends
its operation here instead. The server writes ``server.json`` (mode 0600) into the data
directory with its port and a token derived from the secret key; only a client that can read
the data directory — the same trust as opening the database file — can call this API, and only
from a loopback address.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import json
import os
from pathlib import Path
from typing import Any, Final

import anyio.to_thread
import msgspec
from litestar import Request, Response, Router, post
from litestar.datastructures import State
from litestar.params import FromPath

from officepulse.operations import OPERATIONS, OperationError
from officepulse.problems import PROBLEM_JSON, ProblemError
from officepulse.responses import MALFORMED_JSON
from officepulse.runtime import Runtime
from officepulse.settings import Settings

SERVER_FILE: Final = "server.json"


class ServerInfo(msgspec.Struct, frozen=True):
    pid: int
    host: str
    port: int
    token: str


def admin_token(secret_key: str) -> str:
    """The admin API token: a keyed digest of the secret, never the secret itself."""
    return hmac.new(secret_key.encode(), b"officepulse admin api", hashlib.sha256).hexdigest()


def write_server_file(settings: Settings, port: int) -> Path:
    """Announce a running server to CLI commands on the same data directory."""
    assert settings.secret_key, "ensure_secret_key first"
    path = settings.data_dir / SERVER_FILE
    info = ServerInfo(
        pid=os.getpid(), host=settings.host, port=port, token=admin_token(settings.secret_key)
    )
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(msgspec.json.encode(info))
    os.replace(tmp, path)
    return path


def remove_server_file(settings: Settings) -> None:
    path = settings.data_dir / SERVER_FILE
    with contextlib.suppress(FileNotFoundError, msgspec.DecodeError, OSError):
        info = msgspec.json.decode(path.read_bytes(), type=ServerInfo)
        if info.pid == os.getpid():
            path.unlink()


def running_server(data_dir: Path) -> ServerInfo | None:
    """The server holding ``data_dir``, if one is running and answers."""
    try:
        info = msgspec.json.decode((data_dir / SERVER_FILE).read_bytes(), type=ServerInfo)
    except (FileNotFoundError, msgspec.DecodeError, msgspec.ValidationError):
        return None
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return None  # a stale file from a server that was killed
    except PermissionError:
        pass
    import httpx  # only with a server to talk to: it costs every command 0.1 s at start

    try:
        answer = httpx.get(f"{_base(info)}/healthz", timeout=5)
    except httpx.HTTPError:
        return None
    return info if answer.status_code == 200 else None


def _base(info: ServerInfo) -> str:
    host = info.host
    if host in ("0.0.0.0", "", "::"):  # noqa: S104 - a wildcard bind is reachable on loopback
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{info.port}"


class RemoteError(Exception):
    """The server refused or failed an operation; the message is its one-line detail."""


def call_remote(info: ServerInfo, operation: str, params: object) -> Any:
    """Run ``operation`` in the server and return its JSON result."""
    import httpx

    try:
        answer = httpx.post(
            f"{_base(info)}/api/v1/admin/ops/{operation}",
            content=msgspec.json.encode(params),
            headers={"Authorization": f"Bearer {info.token}", "Content-Type": "application/json"},
            timeout=600,
        )
    except httpx.HTTPError as exc:
        raise RemoteError(f"the server at {_base(info)} did not answer: {exc}") from None
    if answer.status_code != 200:
        try:
            detail = answer.json().get("detail") or answer.text
        except json.JSONDecodeError:
            detail = answer.text
        raise RemoteError(str(detail))
    return answer.json()


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@post("/api/v1/admin/ops/{operation:str}", include_in_schema=False, status_code=200)
async def run_operation(
    request: Request[Any, Any, Any], state: State, operation: FromPath[str]
) -> Response[bytes]:
    # The client address is only compared here, never stored or logged.
    runtime: Runtime = state.runtime
    client = request.client.host if request.client else None
    expected = admin_token(runtime.settings.secret_key or "")
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not _is_loopback(client) or not hmac.compare_digest(given, expected):
        raise ProblemError(403, "The admin API answers only the CLI on this machine.")
    op = OPERATIONS.get(operation)
    if op is None:
        raise ProblemError(404, f"unknown operation {operation!r}")
    try:
        params = msgspec.json.decode(await request.body(), type=op.params)
    except (*MALFORMED_JSON, msgspec.ValidationError) as exc:
        raise ProblemError(422, f"bad parameters for {operation}: {exc}") from None
    try:
        result = await anyio.to_thread.run_sync(op.run, runtime, params)
    except OperationError as exc:
        raise ProblemError(422, str(exc)) from None
    return Response(msgspec.json.encode(result), media_type="application/json")


# The guard leaves this to the handler, which checks the loopback address and the server token.
router = Router(path="/", route_handlers=[run_operation], opt={"access": "server"})

__all__ = ["PROBLEM_JSON", "ServerInfo", "call_remote", "router", "running_server"]
