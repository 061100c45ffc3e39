"""Durable ingest against the framework's ceiling, under uvicorn and granian.

For each server and run: a fresh data directory with one office, the server started as a
separate process, then ``wrk`` (one thread, N connections) on ``GET /healthz`` and on
``POST /api/v1/responses`` (every request a new response, see post.lua) in the same run.
Afterwards the rows in the database are counted: every 2xx that wrk saw must be a stored row.

Needs ``wrk`` (Debian package ``wrk``) and, for granian, the ``bench`` extra:
    .venv/bin/pip install -e '.[bench]' && apt-get install -y wrk
    .venv/bin/python benchmarks/ingest.py --runs 3 --duration 10 --connections 32
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import httpx

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
SECRET = "benchmark-secret-key-0123456789abcdef0123456789"


@dataclass
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    errors: int


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip()).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def run_wrk(url: str, duration: int, connections: int, script: Path | None) -> WrkResult:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.MULTILINE))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    total = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if total is None or rps is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    return WrkResult(
        requests_per_second=float(rps.group(1)),
        p50_ms=_ms(latency["50"]),
        p99_ms=_ms(latency["99"]),
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=sum(int(g) for g in errors.groups()) if errors else 0,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(data_dir: Path) -> None:
    if data_dir.exists():
        shutil.rmtree(data_dir)  # only ever the benchmark's own scratch folder
    env = dict(os.environ, OFFICEPULSE_SECRET_KEY=SECRET)
    bin_dir = Path(sys.executable).parent
    subprocess.run([bin_dir / "officepulse", "init", "--data-dir", data_dir], check=True, env=env)
    subprocess.run(
        [
            bin_dir / "officepulse",
            "office",
            "add",
            "bench-office",
            "--name",
            "Benchmark",
            "--kind",
            "pilot",
            "--data-dir",
            data_dir,
        ],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def start(server: str, data_dir: Path, port: int, log_level: str) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        OFFICEPULSE_LOG_LEVEL=log_level,
        OFFICEPULSE_SECRET_KEY=SECRET,
        OFFICEPULSE_DATA_DIR=str(data_dir),
        OFFICEPULSE_PORT=str(port),
    )
    bin_dir = Path(sys.executable).parent
    if server == "uvicorn":
        command = [str(bin_dir / "officepulse"), "serve"]
    else:
        command = [
            str(bin_dir / "granian"), "--interface", "asgi", "--factory", "--host", "127.0.0.1",
            "--port", str(port), "--workers", "1", "--no-access-log",
            "officepulse.app:app_from_environment",
        ]  # fmt: skip
    log = open(data_dir.parent / f"{server}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{server} did not start")


def one_run(
    server: str, duration: int, connections: int, log_level: str
) -> tuple[WrkResult, WrkResult, int]:
    data_dir = WORK / f"ingest-{server}"
    prepare(data_dir)
    port = free_port()
    process = start(server, data_dir, port, log_level)
    try:
        base = f"http://127.0.0.1:{port}"
        run_wrk(f"{base}/healthz", 2, connections, None)  # warm-up
        health = run_wrk(f"{base}/healthz", duration, connections, None)
        ingest = run_wrk(f"{base}/api/v1/responses", duration, connections, HERE / "post.lua")
    finally:
        process.terminate()
        process.wait(timeout=60)
    with duckdb.connect(str(data_dir / "officepulse.duckdb"), read_only=True) as conn:
        row = conn.execute("SELECT count(*) FROM responses").fetchone()
    stored = int(row[0]) if row else 0
    acknowledged = ingest.requests - ingest.non_2xx
    # Requests in flight when wrk stops may be stored without being counted by wrk.
    assert stored >= acknowledged, f"{acknowledged} acknowledged but only {stored} stored"
    return health, ingest, stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default="uvicorn,granian")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--log-level",
        default="info",
        help="OFFICEPULSE_LOG_LEVEL of the server (info logs a line per request)",
    )
    args = parser.parse_args()
    print(
        f"# ingest benchmark, {time.strftime('%Y-%m-%d')}, {platform.platform()},"
        f" {os.cpu_count()} cores, python {platform.python_version()},"
        f" duckdb {duckdb.__version__}, c={args.connections}, {args.duration} s per run,"
        f" log level {args.log_level}"
    )
    print(
        "| server | run | healthz req/s | healthz p50/p99 ms | submissions/s | submit p50/p99 ms"
        " | share of healthz | non-2xx | stored rows |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for server in args.servers.split(","):
        shares: list[float] = []
        rates: list[float] = []
        p99s: list[float] = []
        for run in range(1, args.runs + 1):
            health, ingest, stored = one_run(
                server, args.duration, args.connections, args.log_level
            )
            share = ingest.requests_per_second / health.requests_per_second
            shares.append(share)
            rates.append(ingest.requests_per_second)
            p99s.append(ingest.p99_ms)
            print(
                f"| {server} | {run} | {health.requests_per_second:,.0f} |"
                f" {health.p50_ms:.1f} / {health.p99_ms:.1f} | {ingest.requests_per_second:,.0f} |"
                f" {ingest.p50_ms:.1f} / {ingest.p99_ms:.1f} | {share:.0%} |"
                f" {ingest.non_2xx} | {stored:,} |",
                flush=True,
            )
        print(
            f"| {server} | median | | | {statistics.median(rates):,.0f} |"
            f" p99 {statistics.median(p99s):.1f} | {statistics.median(shares):.0%} | | |",
            flush=True,
        )


if __name__ == "__main__":
    main()
