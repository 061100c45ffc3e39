"""Running the app under uvicorn, configured so that no client address reaches a log.

uvicorn was chosen over granian after measuring both (see ``benchmarks/README.md``): their
throughput is alike once every submission waits for a durable commit, and uvicorn's p99
latency is lower and steadier on a two-core machine.
"""

from __future__ import annotations

import gc
import socket
from typing import Any, Final

import uvicorn

from officepulse.admin import remove_server_file, write_server_file
from officepulse.app import create_app
from officepulse.settings import Settings

SHUTDOWN_GRACE_SECONDS: Final = 30


class _Server(uvicorn.Server):
    """Announces itself in the data directory once it listens, and withdraws on exit."""

    def __init__(self, config: uvicorn.Config, settings: Settings) -> None:
        super().__init__(config)
        self.settings = settings

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            # What exists now (modules, the app, the open database) lives as long as the
            # server: moved out of the collector's sight, it is no longer walked by every
            # full collection, which would otherwise stall requests for milliseconds.
            gc.collect()
            gc.freeze()
            port = self.settings.port
            for server in self.servers:
                for sock in server.sockets:
                    port = sock.getsockname()[1]
                    break
            write_server_file(self.settings, port)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        remove_server_file(self.settings)
        await super().shutdown(sockets)


def uvicorn_config(settings: Settings, **extra: Any) -> uvicorn.Config:
    """The uvicorn configuration: no access log (it would record client addresses)."""
    return uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_config=None,
        log_level=settings.log_level,
        # Client addresses are used only by the in-memory repeat limiter; behind a reverse
        # proxy they come from X-Forwarded-For of the trusted proxies alone.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies,
        server_header=False,
        lifespan="on",
        # SIGTERM: stop accepting, let requests in flight (each waiting for its commit) be
        # answered, then close the store, which commits whatever is still queued. A client that
        # holds its connection longer than this is cut off; its write still commits.
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        **extra,
    )


def run_server(settings: Settings) -> int:
    """Serve until interrupted; return a non-zero status when the server could not start."""
    server = _Server(uvicorn_config(settings), settings)
    server.run()
    return 0 if server.started else 1
