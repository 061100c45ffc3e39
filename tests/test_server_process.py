"""The real server process: graceful SIGTERM, anonymity on disk and in logs, the demo.

SIGKILL under load is tests/test_crash.py (and benchmarks/crash.py).
"""

from __future__ import annotations

import re
import signal
import threading
import time
import uuid
from pathlib import Path

import duckdb
import httpx

from .conftest import submit_login, valid_response
from .serverproc import run_cli, server_process

CORE = ("stress_now", "respect", "rooms", "effort", "overall")
OFFICES_CSV = """\
id,name,kind,type,city,district,opened_on
mh-u25,U-25 Haus Mülheim,pilot,U-25 Haus,Mülheim an der Ruhr,Innenstadt,2019-09-01
mh-main,Jobcenter Mülheim,conventional,Hauptstelle,Mülheim an der Ruhr,Stadtmitte,
"""


def prepared_data_dir(tmp_path: Path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = tmp_path / "data"
    csv_file = tmp_path / "offices.csv"
    csv_file.write_text(OFFICES_CSV, encoding="utf-8")
    assert run_cli(["init", "--data-dir", str(data)]).returncode == 0
    assert run_cli(["office", "import", str(csv_file), "--data-dir", str(data)]).returncode == 0
    return data


def query(data: Path, sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(data / "officepulse.duckdb"), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def test_no_client_address_or_agent_reaches_disk_or_logs(tmp_path: Path) -> None:
    data = prepared_data_dir(tmp_path)
    log = tmp_path / "server.log"
    agent = "AnonymityProbe/1.0 (probe-7f3a9c)"
    forwarded = "203.0.113.77"
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with (
        server_process(data, log=log, log_level="debug") as (base, _process),
        httpx.Client(
            transport=transport, headers={"User-Agent": agent, "X-Forwarded-For": forwarded}
        ) as http,
    ):
        for index in range(100):
            body = valid_response(id=str(uuid.uuid4()), comment=f"Kommentar {index}")
            assert http.post(f"{base}/api/v1/responses", json=body).status_code == 201
        # the phone page too, whose repeat limiter reads the address (in memory only)
        for _ in range(5):
            page = http.get(f"{base}/s/mh-u25?lang=de")
            hidden = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page.text))
            fields = {key: hidden[key] for key in ("id", "lang", "p", "survey", "version")}
            fields.update({f"answer-{item}": "3" for item in CORE})
            assert http.post(f"{base}/s/mh-u25", data=fields).status_code == 200
        # errors must not leak the client either
        assert http.post(f"{base}/api/v1/responses", json={"id": "x"}).status_code == 422
        assert http.get(f"{base}/no/such/page").status_code == 404
    assert query(data, "SELECT count(*) FROM responses") == [(105,)]
    assert query(data, "SELECT count(*) FROM responses WHERE 'repeat' IN flags") == [(2,)]
    needles = [b"127.0.0.2", agent.encode(), b"probe-7f3a9c", forwarded.encode()]
    files = [path for path in data.rglob("*") if path.is_file()]
    assert any(path.name == "officepulse.duckdb" for path in files)
    for path in files:
        content = path.read_bytes()
        for needle in needles:
            assert needle not in content, f"{needle!r} found in {path.name}"
    output = log.read_bytes()
    assert b"POST /api/v1/responses 201" in output  # the log exists and has request lines
    for needle in needles:
        assert needle not in output, f"{needle!r} found in the server's output"


def test_demo_command_serves_synthetic_data(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    args = ("demo", "--responses", "4000")
    with server_process(data, args=args) as (base, _process):
        # the demo's evaluator account, with the password the demo printed and kept
        password = (data / "demo-password").read_text(encoding="utf-8").strip()
        assert (data / "demo-password").stat().st_mode & 0o777 == 0o600
        with httpx.Client(base_url=base) as staff:
            assert submit_login(staff, "demo-evaluator", password).status_code == 303
            offices = staff.get("/api/v1/offices").json()
        assert len(offices) == 6
        assert all(o["synthetic"] and "(Demo)" in o["name"] for o in offices)
        assert sum(o["kind"] == "pilot" for o in offices) == 3
        body = valid_response(office="demo-muelheim-u25", id=str(uuid.uuid4()))
        assert httpx.post(f"{base}/api/v1/responses", json=body).status_code == 201
    assert query(data, "SELECT count(*) FROM responses WHERE synthetic") == [(4000,)]
    assert query(data, "SELECT count(*) FROM responses WHERE NOT synthetic") == [(1,)]
    # the planted differences are there to be found
    (pilot_minus_conventional,) = query(
        data,
        "SELECT avg(answers['stress_now']) FILTER (o.kind = 'pilot')"
        " - avg(answers['stress_now']) FILTER (o.kind = 'conventional')"
        " FROM responses r JOIN offices o ON o.id = r.office_id WHERE r.synthetic",
    )[0]
    assert float(pilot_minus_conventional) < -0.5  # type: ignore[arg-type]
    (room_gain,) = query(
        data,
        "SELECT avg(answers['rooms']) FILTER (r.received_at >= e.happened_on)"
        " - avg(answers['rooms']) FILTER (r.received_at < e.happened_on)"
        " FROM responses r JOIN events e ON e.office_id = r.office_id"
        " WHERE e.kind = 'redesign' AND r.synthetic",
    )[0]
    assert float(room_gain) > 0.8  # type: ignore[arg-type]
    comments = [
        row[0] for row in query(data, "SELECT comment FROM responses WHERE comment IS NOT NULL")
    ]
    assert comments
    assert not any("0176" in str(comment) for comment in comments)
    # a second run keeps the data; a data directory with real data is refused
    again = run_cli(["demo", "--data-dir", str(data), "--no-serve"])
    assert again.returncode == 0
    assert "already loaded" in again.stdout
    real = prepared_data_dir(tmp_path / "real")
    refused = run_cli(["demo", "--data-dir", str(real), "--no-serve"])
    assert refused.returncode == 1
    assert "holds real data" in refused.stderr


def test_sigterm_answers_in_flight_requests_before_exit(tmp_path: Path) -> None:
    """SIGTERM: the server stops taking connections, commits and answers what it holds, exits."""
    data = prepared_data_dir(tmp_path)
    # (sent, answered, status or None for a connection error, id) of every request
    records: list[tuple[float, float, int | None, str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(base: str) -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                body = valid_response(id=str(uuid.uuid4()))
                sent = time.monotonic()
                try:
                    status: int | None = http.post(
                        f"{base}/api/v1/responses", json=body
                    ).status_code
                except httpx.HTTPError:
                    status = None
                with lock:
                    records.append((sent, time.monotonic(), status, body["id"]))
                if status is None:
                    return  # the server has closed the connection: it is going away

    log = tmp_path / "server.log"
    with server_process(data, log=log) as (base, process):
        threads = [threading.Thread(target=client, args=(base,)) for _ in range(24)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while len(records) < 500 and time.monotonic() < deadline:
            time.sleep(0.02)
        terminated = time.monotonic()
        process.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal after its graceful shutdown, so that a supervisor sees
        # the process end by SIGTERM (systemd counts that as a clean stop).
        assert process.wait(timeout=60) in (0, -signal.SIGTERM)
        stop.set()
        for thread in threads:
            thread.join()

    lines = log.read_text(encoding="utf-8").splitlines()
    assert "INFO uvicorn.error: Application shutdown complete." in lines
    assert any(line.startswith("INFO officepulse.storage.store: writer:") for line in lines)
    statuses = {status for _, _, status, _ in records}
    assert statuses <= {201, None}, statuses  # no 5xx, no "shutting down" refusals
    in_flight = [r for r in records if r[0] < terminated < r[1]]
    answered = [r for r in in_flight if r[2] == 201]
    assert answered, f"no request was answered after SIGTERM ({len(in_flight)} in flight)"
    acknowledged = {response_id for _, _, status, response_id in records if status == 201}
    stored = {str(row[0]) for row in query(data, "SELECT id FROM responses")}
    assert acknowledged <= stored, f"{len(acknowledged - stored)} acknowledged responses lost"
    total, distinct = query(data, "SELECT count(*), count(DISTINCT id) FROM responses")[0]
    assert total == distinct
    # Whatever was neither answered nor stored was never acknowledged: the client retries it.
    assert not (server_file := data / "server.json").exists(), server_file
