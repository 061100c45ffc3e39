"""Durable ingest against the framework's ceiling, at 1, 16, 64 and 256 connections.

For each server and run: a fresh data directory with one office, the server started as a
separate process (one process, as deployed), then for every connection count ``wrk`` (one
thread) on ``GET /healthz`` -- the framework's ceiling -- and on ``POST /api/v1/responses``
(every request a new, valid response with a fresh id, see post.lua), one after the other in the
same run. Per phase it records requests per second, p50 and p99 latency, the server's CPU time
per request (from /proc, user + system of the whole process, writer thread included) and the
answers by status. Afterwards the rows in the database are counted: every 201 must be a stored
row, each exactly once (the primary key makes a second copy impossible, and a retry would be a
200, of which there must be none). Rows may exceed wrk's count by the requests still in flight
when a phase ends, at most one per connection.

Needs ``wrk`` (Debian package ``wrk``; scripts/test installs it) and, for granian, the ``bench``
extra (``.venv/bin/pip install -e '.[bench]'``).

    .venv/bin/python benchmarks/ingest.py                       # the issue's table, ~5 min
    .venv/bin/python benchmarks/ingest.py --smoke --work /tmp/x  # what CI runs, a few seconds
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run as a script: make ``benchmarks`` importable

from benchmarks.common import SECRET, free_port, git_commit  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Phase:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    errors: int
    cpu_us_per_request: float
    created: int = 0
    retried: int = 0


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if found is None:
        raise RuntimeError(f"unexpected wrk latency {text!r}")
    value, unit = found.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, all its threads together."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def run_wrk(url: str, duration: int, connections: int, script: Path | None, pid: int) -> Phase:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    cpu_before = cpu_seconds(pid)
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(pid) - cpu_before
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.MULTILINE))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    total = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    statuses = re.search(r"statuses: created (\d+) retried (\d+) other (\d+)", out)
    if total is None or rps is None or "50" not in latency or "99" not in latency:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    requests = int(total.group(1))
    return Phase(
        requests_per_second=float(rps.group(1)),
        p50_ms=_ms(latency["50"]),
        p99_ms=_ms(latency["99"]),
        requests=requests,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=sum(int(g) for g in errors.groups()) if errors else 0,
        cpu_us_per_request=cpu / max(requests, 1) * 1e6,
        created=int(statuses.group(1)) if statuses else 0,
        retried=int(statuses.group(2)) if statuses else 0,
    )


def officepulse(*args: str | Path, env: dict[str, str]) -> None:
    command = [str(Path(sys.executable).parent / "officepulse"), *map(str, args)]
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)


def prepare(data_dir: Path) -> None:
    if data_dir.exists():
        shutil.rmtree(data_dir)  # only ever the benchmark's own scratch folder
    env = dict(os.environ, OFFICEPULSE_SECRET_KEY=SECRET)
    officepulse("init", "--data-dir", data_dir, env=env)
    officepulse(
        "office", "add", "bench-office", "--name", "Benchmark", "--kind", "pilot",
        "--data-dir", data_dir, env=env,
    )  # fmt: skip


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
    log = open(data_dir.parent / f"{data_dir.name}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{server} did not start; see {log.name}")


def stored_rows(data_dir: Path) -> int:
    with duckdb.connect(str(data_dir / "officepulse.duckdb"), read_only=True) as conn:
        row = conn.execute("SELECT count(*), count(DISTINCT id) FROM responses").fetchone()
    if row is None or row[0] != row[1]:
        raise RuntimeError(f"duplicate ids stored: {row}")
    return int(row[0])


def one_run(
    server: str, work: Path, duration: int, levels: list[int], log_level: str
) -> list[tuple[int, Phase, Phase, int]]:
    """One server process; for each connection count the ceiling, then submissions."""
    data_dir = work / f"ingest-{server}"
    prepare(data_dir)
    port = free_port()
    process = start(server, data_dir, port, log_level)
    base = f"http://127.0.0.1:{port}"
    results: list[tuple[int, Phase, Phase]] = []
    try:
        run_wrk(f"{base}/healthz", 1, 16, None, process.pid)  # warm-up
        for connections in levels:
            health = run_wrk(f"{base}/healthz", duration, connections, None, process.pid)
            ingest = run_wrk(
                f"{base}/api/v1/responses", duration, connections, HERE / "post.lua", process.pid
            )
            results.append((connections, health, ingest))
            time.sleep(0.5)  # let the requests still in flight commit
    finally:
        process.terminate()
        process.wait(timeout=60)
    stored = stored_rows(data_dir)
    created = sum(ingest.created for _, _, ingest in results)
    in_flight = sum(levels)
    # Every acknowledged response is stored; a few more may be, from requests wrk cut off.
    if not created <= stored <= created + in_flight:
        raise RuntimeError(f"{created} acknowledged, but {stored} rows stored")
    if any(ingest.retried for _, _, ingest in results):
        raise RuntimeError("a new id was answered 200 (as a retry)")
    return [(c, h, i, stored) for c, h, i in results]


def header(args: argparse.Namespace) -> str:
    commit = git_commit()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split(" [")[0]
    return (
        f"# ingest, {time.strftime('%Y-%m-%d')}, commit {commit}, {platform.platform()},"
        f" {os.cpu_count()} cores, {memory:.0f} GiB, Python {platform.python_version()},"
        f" DuckDB {duckdb.__version__}, {wrk.strip()} -t1 on the same machine,"
        f" {args.duration} s per phase, log level {args.log_level}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default="uvicorn", help="uvicorn and/or granian")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per phase")
    parser.add_argument("--connections", default="1,16,64,256")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--work", type=Path, default=HERE / ".work", help="scratch folder")
    parser.add_argument("--smoke", action="store_true", help="1 run, 1 s phases, 1 and 8 conns")
    args = parser.parse_args(argv)
    if args.smoke:
        args.runs, args.duration, args.connections = 1, 1, "1,8"
    levels = [int(c) for c in args.connections.split(",")]
    print(header(args))
    print(
        "| server | run | connections | healthz req/s | healthz p50 / p99 ms | healthz CPU µs/req"
        " | submissions/s | submit p50 / p99 ms | submit CPU µs/req | share of healthz"
        " | 201 | other | stored rows (run) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for server in args.servers.split(","):
        for run in range(1, args.runs + 1):
            for connections, health, ingest, stored in one_run(
                server, args.work, args.duration, levels, args.log_level
            ):
                share = ingest.requests_per_second / health.requests_per_second
                print(
                    f"| {server} | {run} | {connections} | {health.requests_per_second:,.0f} |"
                    f" {health.p50_ms:.2f} / {health.p99_ms:.2f} |"
                    f" {health.cpu_us_per_request:.0f} | {ingest.requests_per_second:,.0f} |"
                    f" {ingest.p50_ms:.2f} / {ingest.p99_ms:.2f} |"
                    f" {ingest.cpu_us_per_request:.0f} | {share:.0%} | {ingest.created:,} |"
                    f" {ingest.non_2xx - ingest.retried + ingest.errors} | {stored:,} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
