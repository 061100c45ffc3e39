"""Crash run: the server under concurrent load, killed with SIGKILL again and again.

One data directory with one office, its placement and two paired kiosks. Then, ``--kills``
times: start ``officepulse serve`` (a new port each time; the clients follow), let the clients
submit, and SIGKILL the process at a random moment (seeded): mostly 50-800 ms after it became
healthy, sometimes at any moment of its start-up (between spawning and the median time it took
to become healthy so far: while Python imports, while it opens the database and replays DuckDB's
write-ahead log, or as it begins to listen). After each kill the process must be gone, and
the database must open (read-only), hold every id acknowledged so far exactly once, and no id
that no client sent. The next start runs over the killed server's stale ``server.json``, and
now and then a command (``officepulse kiosk list``) runs while no server is up. At the end the
server runs until every client has been acknowledged for everything it generated, stops with
SIGTERM, and the final file must hold exactly the generated ids, each once.

The clients are threads (httpx) that behave like the real ones:

- API clients send one response at a time to ``POST /api/v1/responses`` and resend it with the
  same id and body, over a new connection, until it is answered 201 or 200;
- kiosks keep producing responses into a queue (people keep answering while the server is
  down), send the queue in batches to ``POST /api/v1/kiosk/responses`` and drop an item only
  on its own "created" or "duplicate"; a heartbeat now and then;
- phones post the survey form (``POST /s/{office}``) with the response id the page carries,
  and send the same form again until they see the thank-you page (200).

A response counts as acknowledged only on those answers. A retry answered 200 or "duplicate"
is a commit whose acknowledgement the kill cut off ("already stored" in the table); a new id
answered that way, a 409 or a rejected item fails the run.

    .venv/bin/python benchmarks/crash.py --kills 100                       # about 6 min
    .venv/bin/python benchmarks/crash.py --kills 5 --seed 3 --work /tmp/x   # the test's size

Writes ``summary.json`` and ``ids.json`` (generated and acknowledged ids) into ``--work``;
exits 1 on any lost, duplicated or unknown id and on any unexpected answer.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Final

import duckdb
import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run as a script: make ``benchmarks`` importable

from benchmarks.common import SECRET, free_port, git_commit, wait_healthy  # noqa: E402

OFFICE: Final = "crash-office"
PLACEMENT: Final = "waiting"
CORE: Final = ("stress_now", "respect", "rooms", "effort", "overall")
TIMEOUT: Final = httpx.Timeout(10.0, connect=2.0)
# Each client keeps one httpx.Client: a connection that failed leaves its pool, so the retry
# goes over a new one. (A new httpx.Client per retry builds a TLS context each time, which
# costs enough CPU to slow the restarting server down several times over.)
BACKOFF_MAX: Final = 0.3  # seconds; the real kiosk waits up to 5 min, this run has no time
DRAIN_TIMEOUT: Final = 180.0
FIRST_STARTUP_WINDOW: Final = 2.0  # seconds; later, the median start-up time so far


# -- what the clients did ----------------------------------------------------------------------


@dataclass
class Ledger:
    """Every id the clients generated and which of them the server acknowledged."""

    generated: dict[str, str] = field(default_factory=dict)  # id -> client kind
    acknowledged: set[str] = field(default_factory=set)
    attempts: int = 0
    already_stored: int = 0  # retries answered 200 / "duplicate"
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def generate(self, response_id: str, kind: str) -> None:
        with self.lock:
            self.generated[response_id] = kind

    def attempt(self, count: int = 1) -> None:
        with self.lock:
            self.attempts += count

    def acknowledge(self, response_id: str, *, already_stored: bool, first_try: bool) -> None:
        with self.lock:
            if already_stored and first_try:
                self.errors.append(f"{response_id}: a new id was answered as already stored")
            self.already_stored += already_stored
            self.acknowledged.add(response_id)

    def error(self, message: str) -> None:
        with self.lock:
            self.errors.append(message)

    def snapshot(self) -> tuple[set[str], set[str]]:
        """(acknowledged, generated) as of now."""
        with self.lock:
            return set(self.acknowledged), set(self.generated)


class Target:
    """Where the server listens now; clients read it before every attempt."""

    def __init__(self) -> None:
        self.base = "http://127.0.0.1:9"  # nothing listens there until the first start


@dataclass
class Run:
    """What every client shares: the target, the ledger, and when to stop."""

    target: Target
    ledger: Ledger
    producing: threading.Event  # cleared: finish what is pending, generate nothing new
    abort: threading.Event  # set: stop at once (the run has failed)


def answers(rng: random.Random) -> dict[str, int]:
    return {item: rng.randint(1, 5) for item in CORE}


def backoff(rng: random.Random, failures: int) -> None:
    time.sleep(min(0.01 * 2**failures, BACKOFF_MAX) * rng.uniform(0.5, 1.0))


def guarded(run: Run, name: str, body: Callable[[], None]) -> Callable[[], None]:
    def target() -> None:
        try:
            body()
        except Exception:
            run.ledger.error(f"{name} crashed: {traceback.format_exc()}")

    return target


def resend_until_acknowledged(
    run: Run,
    rng: random.Random,
    kind: str,
    make: Callable[[], tuple[str, Any]],
    send: Callable[[httpx.Client, Any], httpx.Response],
    acks: dict[int, bool],
) -> None:
    """One item at a time, sent again with the same id and body until acknowledged.

    ``make`` returns a new item and its id; ``acks`` maps the statuses that acknowledge it to
    whether they say it was stored before. A 503 or no answer is retried after a backoff.
    """
    http = httpx.Client(timeout=TIMEOUT)
    item: Any = None
    item_id = ""
    tries = failures = 0
    try:
        while not run.abort.is_set():
            if item is None:
                if not run.producing.is_set():
                    return
                item_id, item = make()
                run.ledger.generate(item_id, kind)
                tries = failures = 0
            tries += 1
            run.ledger.attempt()
            try:
                answer = send(http, item)
            except httpx.HTTPError:
                failures += 1
                backoff(rng, failures)
                continue
            if answer.status_code in acks:
                run.ledger.acknowledge(
                    item_id, already_stored=acks[answer.status_code], first_try=tries == 1
                )
                item = None
            elif answer.status_code == 503:
                failures += 1
                backoff(rng, failures)
            else:
                run.ledger.error(f"{kind} {item_id}: {answer.status_code} {answer.text[:300]}")
                item = None
    finally:
        http.close()


def api_client(run: Run, rng: random.Random) -> None:
    """One response at a time, resent with the same id and body until 201 or 200."""

    def make() -> tuple[str, dict[str, Any]]:
        body = {
            "id": str(uuid.uuid4()),
            "office": OFFICE,
            "survey": "atmosphere",
            "version": 1,
            "channel": "web",
            "placement": PLACEMENT,
            "lang": rng.choice(("de", "en", "ar", "uk")),
            "answers": answers(rng),
            "comment": rng.choice((None, "Sehr freundlich.", "Zu lange gewartet.")),
        }
        return str(body["id"]), body

    def send(http: httpx.Client, body: dict[str, Any]) -> httpx.Response:
        return http.post(f"{run.target.base}/api/v1/responses", json=body)

    resend_until_acknowledged(run, rng, "api", make, send, {201: False, 200: True})


def phone_client(run: Run, rng: random.Random, number: int) -> None:
    """The survey form with the page's hidden id, sent again until the thank-you page."""
    sent = 0

    def make() -> tuple[str, dict[str, str]]:
        nonlocal sent
        sent += 1
        form = {"id": str(uuid.uuid4()), "lang": "de", "p": PLACEMENT}
        form.update({f"answer-{k}": str(v) for k, v in answers(rng).items()})
        return form["id"], form

    def send(http: httpx.Client, form: dict[str, str]) -> httpx.Response:
        # A phone is (address, user agent) to the repeat limiter: a new one every 10 forms.
        agent = f"crash-phone-{number}-{sent // 10}"
        return http.post(f"{run.target.base}/s/{OFFICE}", data=form, headers={"User-Agent": agent})

    # The form answers the thank-you page for new and repeated ids alike.
    resend_until_acknowledged(run, rng, "phone", make, send, {200: False})


def kiosk_client(run: Run, rng: random.Random, token: str, per_second: float) -> None:
    """A queue filled at ``per_second`` and sent in batches; items leave on their own ack."""
    http = httpx.Client(timeout=TIMEOUT, headers={"Authorization": f"Bearer {token}"})
    queue: dict[str, dict[str, Any]] = {}
    tries: dict[str, int] = {}
    failures = 0
    next_response = time.monotonic()
    next_heartbeat = time.monotonic() + 1
    try:
        while not run.abort.is_set():
            now = time.monotonic()
            if run.producing.is_set():
                while next_response <= now:
                    item: dict[str, Any] = {
                        "id": str(uuid.uuid4()),
                        "survey": "atmosphere",
                        "version": 1,
                        "lang": "de",
                        "answers": answers(rng),
                        "completed_at": dt.datetime.now(dt.UTC).isoformat(),
                    }
                    queue[item["id"]] = item
                    run.ledger.generate(item["id"], "kiosk")
                    next_response += rng.expovariate(per_second)
            elif not queue:
                return
            if not queue:
                time.sleep(max(0.0, min(next_response - now, 0.05)))
                continue
            batch = list(queue.values())[:500]
            for item in batch:
                tries[item["id"]] = tries.get(item["id"], 0) + 1
            run.ledger.attempt(len(batch))
            try:
                answer = http.post(
                    f"{run.target.base}/api/v1/kiosk/responses", json={"responses": batch}
                )
                results = answer.json()["results"] if answer.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                failures += 1
                backoff(rng, failures)
                continue
            if results is None:
                if answer.status_code != 503:
                    run.ledger.error(f"kiosk batch: {answer.status_code} {answer.text[:300]}")
                failures += 1
                backoff(rng, failures)
                continue
            failures = 0
            for result in results:
                response_id = result["id"]
                if response_id not in queue:
                    run.ledger.error(f"kiosk: a result for an id it did not send: {result}")
                    continue
                if result["status"] in ("created", "duplicate"):
                    run.ledger.acknowledge(
                        response_id,
                        already_stored=result["status"] == "duplicate",
                        first_try=tries[response_id] == 1,
                    )
                else:
                    run.ledger.error(f"kiosk {response_id}: {result}")
                del queue[response_id], tries[response_id]
            if now >= next_heartbeat:
                # Another kind of write in the log: an UPDATE of the kiosk's row.
                next_heartbeat = now + 1
                with contextlib.suppress(httpx.HTTPError):
                    http.post(
                        f"{run.target.base}/api/v1/kiosk/heartbeat",
                        json={"app_version": "crash", "queue_length": len(queue)},
                    )
            time.sleep(rng.uniform(0.005, 0.03))
    finally:
        http.close()


# -- the server process ------------------------------------------------------------------------


def officepulse_command(*args: str, data_dir: Path) -> list[str]:
    return [str(Path(sys.executable).parent / "officepulse"), *args, "--data-dir", str(data_dir)]


def officepulse(data_dir: Path, *args: str) -> str:
    """Run a CLI command on the data directory; its standard output."""
    done = subprocess.run(
        officepulse_command(*args, data_dir=data_dir),
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFICEPULSE_")}
    env.update(OFFICEPULSE_SECRET_KEY=SECRET, OFFICEPULSE_LOG_LEVEL="warning")
    return env


def spawn(data_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log.open("ab") as out:
        out.write(f"--- start on port {port}\n".encode())
        out.flush()
        process = subprocess.Popen(
            [*officepulse_command("serve", data_dir=data_dir), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=server_env(),
        )
    return process, f"http://127.0.0.1:{port}"


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL, and make sure the process is gone (no shutdown code ran)."""
    process.send_signal(signal.SIGKILL)
    if process.wait(timeout=30) != -signal.SIGKILL:
        raise RuntimeError(f"server ended with {process.returncode}, not by SIGKILL")


def announced_pid(data_dir: Path) -> int | None:
    try:
        return int(json.loads((data_dir / "server.json").read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


@dataclass
class Check:
    """One look at the database file while no server holds it."""

    rows: int
    duplicates: int
    lost: list[str]
    unknown: list[str]


def check_database(data_dir: Path, acknowledged: set[str], generated: set[str]) -> Check:
    """Open the file read-only (it must open), compare its ids with what the clients know."""
    with duckdb.connect(str(data_dir / "officepulse.duckdb"), read_only=True) as conn:
        ids = [row[0] for row in conn.execute("SELECT id::VARCHAR FROM responses").fetchall()]
        conn.execute("SELECT count(*) FROM kiosks").fetchall()
    stored = set(ids)
    return Check(
        rows=len(ids),
        duplicates=len(ids) - len(stored),
        lost=sorted(acknowledged - stored),
        unknown=sorted(stored - generated),
    )


# -- the run -----------------------------------------------------------------------------------


def prepare(data_dir: Path) -> list[str]:
    """A fresh data directory with an office, its placement and two kiosk pairing codes."""
    if data_dir.exists():
        shutil.rmtree(data_dir)  # only ever the run's own scratch folder
    officepulse(data_dir, "init")
    officepulse(data_dir, "office", "add", OFFICE, "--name", "Crash (Test)", "--kind", "pilot")
    officepulse(data_dir, "office", "placement", "add", OFFICE, PLACEMENT)
    codes = []
    for name in ("Eingang", "Wartebereich"):
        created = officepulse(data_dir, "kiosk", "add", OFFICE, "--name", name, "--json")
        codes.append(json.loads(created)["pairing_code"])
    return codes


@dataclass
class Figures:
    kills: int = 0
    startup_kills: int = 0
    before_listening: int = 0
    stale_restarts: int = 0
    commands_while_down: int = 0
    restart_seconds: list[float] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def crash_loop(
    args: argparse.Namespace, data_dir: Path, run: Run, figures: Figures, kiosks: int
) -> None:
    rng = random.Random(args.seed)
    log = args.work / "crash-server.log"
    for number in range(1, args.kills + 1):
        stale = announced_pid(data_dir)
        started = time.monotonic()
        process, base = spawn(data_dir, log)
        run.target.base = base
        try:
            if rng.random() < args.startup_share:
                figures.startup_kills += 1
                window = (
                    statistics.median(figures.restart_seconds)
                    if figures.restart_seconds
                    else FIRST_STARTUP_WINDOW
                )
                time.sleep(rng.uniform(0.0, window))
                if process.poll() is not None:
                    raise RuntimeError(f"the server exited by itself ({process.returncode})")
                figures.before_listening += announced_pid(data_dir) != process.pid
            else:
                wait_healthy(base, process)
                figures.restart_seconds.append(time.monotonic() - started)
                figures.stale_restarts += stale is not None
                time.sleep(rng.uniform(0.05, 0.8))
        except BaseException:
            process.kill()
            process.wait()
            raise
        kill(process)
        figures.kills += 1
        acknowledged, generated = run.ledger.snapshot()
        check = check_database(data_dir, acknowledged, generated)
        figures.checks.append(
            {"kill": number, "acknowledged": len(acknowledged), "rows": check.rows}
        )
        if check.lost or check.duplicates or check.unknown:
            figures.problems.append(
                f"after kill {number}: {len(check.lost)} acknowledged ids lost"
                f" {check.lost[:5]}, {check.duplicates} duplicates,"
                f" {len(check.unknown)} ids nobody sent {check.unknown[:5]}"
            )
            return
        if number % 10 == 1:
            # A command while no server is up: it must not mistake the stale server.json for
            # a running server, nor fail on the killed server's database.
            listed = json.loads(officepulse(data_dir, "kiosk", "list", "--json"))
            if len(listed) != kiosks:
                figures.problems.append(f"kiosk list after kill {number}: {listed}")
            figures.commands_while_down += 1
        print(
            f"kill {number}/{args.kills}: {len(acknowledged):,} acknowledged, {check.rows:,} rows",
            file=sys.stderr,
            flush=True,
        )


def finish(
    args: argparse.Namespace,
    data_dir: Path,
    run: Run,
    figures: Figures,
    threads: list[threading.Thread],
) -> None:
    """A last server that stays up until every client is acknowledged, then SIGTERM."""
    stale = announced_pid(data_dir)
    started = time.monotonic()
    process, base = spawn(data_dir, args.work / "crash-server.log")
    run.target.base = base
    try:
        wait_healthy(base, process)
        figures.restart_seconds.append(time.monotonic() - started)
        figures.stale_restarts += stale is not None
        time.sleep(0.5)
        run.producing.clear()
        deadline = time.monotonic() + DRAIN_TIMEOUT
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in threads):
            figures.problems.append("the clients did not get everything acknowledged in time")
    finally:
        run.abort.set()
        process.send_signal(signal.SIGTERM)
        try:
            status = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            status = process.wait()
        # uvicorn ends a graceful shutdown by raising the signal again: -15 is a clean stop too.
        if status not in (0, -signal.SIGTERM):
            figures.problems.append(f"the last server stopped with status {status} on SIGTERM")


def header(args: argparse.Namespace, kiosks: int) -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"# crash, {time.strftime('%Y-%m-%d')}, commit {git_commit()}, {platform.platform()},"
        f" {os.cpu_count()} cores, {memory:.0f} GiB, Python {platform.python_version()},"
        f" DuckDB {duckdb.__version__}, seed {args.seed}, {args.api_clients} API clients,"
        f" {kiosks} kiosks at {args.kiosk_rate:g}/s each, {args.phones} phones"
    )


def summarise(ledger: Ledger, figures: Figures, final: Check, elapsed: float) -> dict[str, Any]:
    """The run's figures, as ``summary.json`` holds them."""
    acknowledged, generated = ledger.snapshot()
    kinds = dict.fromkeys(("api", "kiosk", "phone"), 0)
    for response_id in acknowledged:
        kinds[ledger.generated[response_id]] += 1
    restarts = figures.restart_seconds or [0.0]
    return {
        "kills": figures.kills,
        "kills_under_load": figures.kills - figures.startup_kills,
        "kills_during_startup": figures.startup_kills,
        "kills_before_listening": figures.before_listening,
        # Kills after which the file held responses no client had been told about yet: the
        # kill fell between a commit and its acknowledgement.
        "kills_between_commit_and_ack": sum(c["rows"] > c["acknowledged"] for c in figures.checks),
        "acknowledged": len(acknowledged),
        "acknowledged_by_kind": kinds,
        "generated": len(generated),
        "attempts": ledger.attempts,
        "already_stored": ledger.already_stored,
        "rows": final.rows,
        "lost": len(final.lost),
        "duplicates": final.duplicates,
        "unknown": len(final.unknown),
        "restarts_over_stale_server_json": figures.stale_restarts,
        "commands_while_down": figures.commands_while_down,
        "restart_seconds_p50": statistics.median(restarts),
        "restart_seconds_max": max(restarts),
        "seconds": elapsed,
        "problems": figures.problems,
        "checks": figures.checks,
    }


def print_table(summary: dict[str, Any]) -> None:
    kinds = summary["acknowledged_by_kind"]
    print(
        "| kills | under load / in start-up (before listening) | between commit and ack"
        " | acknowledged ids (API / kiosk / phone) | attempts | retries found already stored"
        " | lost | duplicates | ids nobody sent | restarts over a stale server.json"
        " | restart p50 / max | run time |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {summary['kills']} | {summary['kills_under_load']} /"
        f" {summary['kills_during_startup']} ({summary['kills_before_listening']})"
        f" | {summary['kills_between_commit_and_ack']} | {summary['acknowledged']:,}"
        f" ({kinds['api']:,} / {kinds['kiosk']:,} / {kinds['phone']:,})"
        f" | {summary['attempts']:,} | {summary['already_stored']:,} | {summary['lost']}"
        f" | {summary['duplicates']} | {summary['unknown']}"
        f" | {summary['restarts_over_stale_server_json']}"
        f" | {summary['restart_seconds_p50']:.2f} / {summary['restart_seconds_max']:.2f} s"
        f" | {summary['seconds']:.0f} s |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--work", type=Path, default=HERE / ".work" / "crash")
    parser.add_argument("--api-clients", type=int, default=6)
    parser.add_argument("--phones", type=int, default=2)
    parser.add_argument("--kiosk-rate", type=float, default=5, help="responses/s per kiosk")
    parser.add_argument(
        "--startup-share", type=float, default=0.2, help="share of kills during start-up"
    )
    args = parser.parse_args(argv)
    if args.kills < 1:
        parser.error("--kills must be at least 1")
    if not 0 <= args.startup_share <= 1:
        parser.error("--startup-share must be between 0 and 1")
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "crash-server.log").unlink(missing_ok=True)
    data_dir = args.work / "data"
    codes = prepare(data_dir)

    run = Run(Target(), Ledger(), threading.Event(), threading.Event())
    run.producing.set()
    figures = Figures()
    began = time.monotonic()
    # Pair the kiosks on a first server, which is then killed like every other.
    process, base = spawn(data_dir, args.work / "crash-server.log")
    try:
        wait_healthy(base, process)
        tokens = [
            httpx.post(f"{base}/api/v1/kiosk/pair", json={"code": code}).json()["token"]
            for code in codes
        ]
    except BaseException:
        process.kill()
        process.wait()
        raise
    kill(process)
    print(header(args, len(tokens)))

    seeds = random.Random(args.seed + 1)
    workers: list[tuple[str, Callable[[], None]]] = []
    for n in range(args.api_clients):
        workers.append((f"api-{n}", partial(api_client, run, random.Random(seeds.random()))))
    for n in range(args.phones):
        rng = random.Random(seeds.random())
        workers.append((f"phone-{n}", partial(phone_client, run, rng, n)))
    for n, token in enumerate(tokens):
        rng = random.Random(seeds.random())
        workers.append((f"kiosk-{n}", partial(kiosk_client, run, rng, token, args.kiosk_rate)))
    threads = [
        threading.Thread(target=guarded(run, name, body), name=name, daemon=True)
        for name, body in workers
    ]
    for thread in threads:
        thread.start()
    try:
        crash_loop(args, data_dir, run, figures, len(tokens))
        if not figures.problems:
            finish(args, data_dir, run, figures, threads)
    finally:
        run.abort.set()
        for thread in threads:
            thread.join(timeout=30)
    elapsed = time.monotonic() - began

    acknowledged, generated = run.ledger.snapshot()
    final = check_database(data_dir, acknowledged, generated)
    if not figures.problems:
        missing = sorted(generated - acknowledged)
        if missing:
            figures.problems.append(f"{len(missing)} ids never acknowledged: {missing[:5]}")
        if final.rows - final.duplicates != len(generated):
            figures.problems.append(f"{final.rows} rows for {len(generated)} generated ids")
    if final.lost or final.duplicates or final.unknown:
        figures.problems.append(
            f"final file: {len(final.lost)} lost {final.lost[:5]}, {final.duplicates} duplicates,"
            f" {len(final.unknown)} unknown {final.unknown[:5]}"
        )
    figures.problems.extend(run.ledger.errors[:20])

    summary = summarise(run.ledger, figures, final, elapsed)
    (args.work / "summary.json").write_text(json.dumps(summary, indent=1))
    (args.work / "ids.json").write_text(
        json.dumps({"generated": sorted(generated), "acknowledged": sorted(acknowledged)})
    )
    print_table(summary)
    for problem in figures.problems:
        print(f"crash.py: {problem}", file=sys.stderr)
    return 1 if figures.problems else 0


if __name__ == "__main__":
    sys.exit(main())
