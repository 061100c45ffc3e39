"""Fault injection for the reliability tests: a flaky-network proxy and clients that retry.

``FaultProxy`` is a TCP proxy (asyncio, on its own thread) in front of a real server process.
It reads each HTTP/1.1 request from the client (head and ``Content-Length`` body: no client
here sends chunked bodies, and none pipelines) and, per request and at random from a seed,
passes it on or breaks it in one of the ways a bad Wi-Fi or mobile connection does. Responses
are not parsed: a pump copies the server's bytes to the client, and since a client sends its
next request only after it has read the whole previous answer, every byte the pump sees after
a request was forwarded belongs to that request's answer.

The clients behave like the real ones: an API client or a phone resends the same response
(same id, same body) until it is acknowledged (201 or 200; the thank-you page for the form);
a kiosk resends its queue in batches and drops an item only on its own "created" or
"duplicate". Every client keeps one ``httpx.Client``: a connection the proxy broke leaves the
pool, so each retry goes over a new connection.
"""

from __future__ import annotations

import asyncio
import enum
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Self

import httpx

from .conftest import valid_response


class Fault(enum.Enum):
    """What the proxy does to one request."""

    PASS = "pass"
    DELAY = "delay"  # 0-300 ms, then on as usual
    DROP = "drop"  # the connection closes; nothing reaches the server
    CUT_REQUEST = "cut-request"  # half the request reaches the server, then the connection closes
    CUT_AFTER_REQUEST = "cut-after-request"  # the whole request, then closed before any answer
    LOSE_RESPONSE = "lose-response"  # the server answered (it committed); the client hears none
    CUT_RESPONSE = "cut-response"  # the client gets a first part of the answer only


# Faults after which the server may have stored the response although the client heard no ack.
AFTER_REQUEST: Final = (Fault.CUT_AFTER_REQUEST, Fault.LOSE_RESPONSE, Fault.CUT_RESPONSE)
DEFAULT_WEIGHTS: Final = dict.fromkeys(Fault, 1.0) | {Fault.PASS: 2.0}
MAX_DELAY: Final = 0.3


class _Closed(Exception):
    """The client went away, or the connection is to end."""


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        raise _Closed from None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
        elif name.strip().lower() == b"transfer-encoding":
            raise _Closed  # chunked request bodies: no client in these tests sends one
    try:
        return head + await reader.readexactly(length)
    except (asyncio.IncompleteReadError, ConnectionError):
        raise _Closed from None


@dataclass
class _Link:
    """One client connection and, once a request went on, its connection to the server."""

    client: asyncio.StreamWriter
    server: asyncio.StreamWriter | None = None
    pump: asyncio.Task[None] | None = None
    fault: Fault = Fault.PASS

    def close(self) -> None:
        for writer in (self.client, self.server):
            if writer is not None:
                writer.close()
        if self.pump is not None and self.pump is not asyncio.current_task():
            self.pump.cancel()


class FaultProxy:
    """A proxy to ``127.0.0.1:upstream_port`` that breaks requests at random (seeded).

    ``faulty(request_line)`` says which requests may be broken (default: all); others pass.
    ``script`` gives the first decisions in order, before the random ones. ``counts`` says how
    often each fault was applied.
    """

    def __init__(
        self,
        upstream_port: int,
        *,
        seed: int,
        faulty: Callable[[bytes], bool] = lambda line: True,
        weights: dict[Fault, float] | None = None,
        script: Sequence[Fault] = (),
    ) -> None:
        self.upstream_port = upstream_port
        self.faulty = faulty
        self.counts: Counter[Fault] = Counter()
        self.port = 0
        self._rng = random.Random(seed)
        self._weights = weights or DEFAULT_WEIGHTS
        self._script = list(script)
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._links: set[asyncio.Task[None]] = set()
        self._failure: BaseException | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        if not self._ready.wait(timeout=10) or self._failure is not None:
            raise RuntimeError(f"the fault proxy did not start: {self._failure!r}")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)
        if self._thread.is_alive():
            raise RuntimeError("the fault proxy did not stop")

    def choose(self, head: bytes) -> Fault:
        """The fault for the next request (PASS for those not ``faulty``); counted."""
        if not self.faulty(head):
            return Fault.PASS
        with self._lock:
            if self._script:
                fault = self._script.pop(0)
            else:
                kinds = list(self._weights)
                fault = self._rng.choices(kinds, [self._weights[k] for k in kinds])[0]
            self.counts[fault] += 1
            return fault

    def delay(self) -> float:
        with self._lock:
            return self._rng.uniform(0.0, MAX_DELAY)

    # -- the proxy's own thread ----------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by __enter__, or lost with the thread
            self._failure = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
            server.close()
            for task in list(self._links):
                task.cancel()
            await asyncio.gather(*self._links, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._links.add(task)
        link = _Link(client=writer)
        try:
            await self._serve(reader, link)
        except (_Closed, ConnectionError):
            pass
        finally:
            link.close()
            self._links.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, link: _Link) -> None:
        while True:
            request = await _read_request(reader)
            fault = self.choose(request.split(b"\r\n", 1)[0])
            if fault is Fault.DROP:
                return
            if fault is Fault.DELAY:
                await asyncio.sleep(self.delay())
            if link.server is None:
                upstream_reader, link.server = await asyncio.open_connection(
                    "127.0.0.1", self.upstream_port
                )
                link.pump = asyncio.create_task(self._pump(upstream_reader, link))
            link.fault = fault
            if fault is Fault.CUT_REQUEST:
                link.server.write(request[: len(request) // 2])
                await link.server.drain()
                return
            link.server.write(request)
            await link.server.drain()
            if fault is Fault.CUT_AFTER_REQUEST:
                return

    async def _pump(self, upstream: asyncio.StreamReader, link: _Link) -> None:
        """The server's bytes to the client, unless the current request's fault says otherwise."""
        try:
            while chunk := await upstream.read(65536):
                if link.fault is Fault.LOSE_RESPONSE:
                    break
                if link.fault is Fault.CUT_RESPONSE:
                    link.client.write(chunk[: len(chunk) // 2])
                    await link.client.drain()
                    break
                link.client.write(chunk)
                await link.client.drain()
        except ConnectionError:
            pass
        finally:
            link.close()


# -- clients that retry --------------------------------------------------------------------------

TIMEOUT: Final = httpx.Timeout(10.0)


@dataclass
class Ledger:
    """Every id the clients generated, which were acknowledged, and how the server answered."""

    generated: set[str] = field(default_factory=set)
    acknowledged: set[str] = field(default_factory=set)
    answers: Counter[str] = field(default_factory=Counter)  # "201", "200", "created", ...
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, answer: str, acknowledged: Sequence[str] = ()) -> None:
        with self.lock:
            self.attempts += 1
            self.answers[answer] += 1
            self.acknowledged.update(acknowledged)

    def error(self, message: str) -> None:
        with self.lock:
            self.errors.append(message)


def _backoff(rng: random.Random, failures: int) -> None:
    threading.Event().wait(min(0.01 * 2**failures, 0.2) * rng.uniform(0.5, 1.0))


def api_client(base: str, ledger: Ledger, count: int, seed: int, office: str) -> None:
    """``count`` responses to ``POST /api/v1/responses``, each resent until 201 or 200."""
    rng = random.Random(seed)
    with httpx.Client(base_url=base, timeout=TIMEOUT) as http:
        for _ in range(count):
            body = valid_response(id=str(uuid.UUID(int=rng.getrandbits(128), version=4)))
            body["office"] = office
            with ledger.lock:
                ledger.generated.add(body["id"])
            failures = 0
            while True:
                try:
                    answer = http.post("/api/v1/responses", json=body)
                except httpx.HTTPError as exc:
                    ledger.note(type(exc).__name__)
                    failures += 1
                    _backoff(rng, failures)
                    continue
                status = str(answer.status_code)
                if answer.status_code in (200, 201):
                    ledger.note(status, [body["id"]])
                    break
                ledger.note(status)
                if answer.status_code != 503:
                    ledger.error(f"api {body['id']}: {status} {answer.text[:300]}")
                    break
                failures += 1
                _backoff(rng, failures)


def phone_client(base: str, ledger: Ledger, count: int, seed: int, office: str) -> None:
    """``count`` survey forms (``POST /s/{office}``), each sent again until the thank-you page."""
    rng = random.Random(seed)
    # Each phone is an (address, user agent) pair to the repeat limiter: one per form here.
    with httpx.Client(base_url=base, timeout=TIMEOUT) as http:
        for number in range(count):
            form = {"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "lang": "de"}
            form.update({f"answer-{item}": str(rng.randint(1, 5)) for item in CORE})
            with ledger.lock:
                ledger.generated.add(form["id"])
            agent = {"User-Agent": f"flaky-phone-{seed}-{number}"}
            failures = 0
            while True:
                try:
                    answer = http.post(f"/s/{office}", data=form, headers=agent)
                except httpx.HTTPError as exc:
                    ledger.note(type(exc).__name__)
                    failures += 1
                    _backoff(rng, failures)
                    continue
                if answer.status_code == 200:  # the thank-you page, for a new or repeated id
                    ledger.note("form 200", [form["id"]])
                    break
                ledger.note(f"form {answer.status_code}")
                if answer.status_code != 503:
                    ledger.error(f"phone {form['id']}: {answer.status_code}")
                    break
                failures += 1
                _backoff(rng, failures)


CORE: Final = ("stress_now", "respect", "rooms", "effort", "overall")


def kiosk_client(base: str, ledger: Ledger, token: str, count: int, seed: int) -> None:
    """``count`` responses queued a few at a time and sent in batches until each is acknowledged."""
    rng = random.Random(seed)
    queue: dict[str, dict[str, Any]] = {}
    made = failures = 0
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, timeout=TIMEOUT, headers=headers) as http:
        while made < count or queue:
            for _ in range(min(rng.randint(1, 4), count - made)):
                item: dict[str, Any] = {
                    "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "survey": "atmosphere",
                    "version": 1,
                    "lang": "de",
                    "answers": {key: rng.randint(1, 5) for key in CORE},
                }
                queue[item["id"]] = item
                with ledger.lock:
                    ledger.generated.add(item["id"])
                made += 1
            batch = list(queue.values())[:10]
            try:
                answer = http.post("/api/v1/kiosk/responses", json={"responses": batch})
                results = answer.json()["results"] if answer.status_code == 200 else None
            except (httpx.HTTPError, ValueError) as exc:
                ledger.note(type(exc).__name__)
                failures += 1
                _backoff(rng, failures)
                continue
            if results is None:
                ledger.note(f"batch {answer.status_code}")
                if answer.status_code != 503:
                    ledger.error(f"kiosk batch: {answer.status_code} {answer.text[:300]}")
                    return
                failures += 1
                _backoff(rng, failures)
                continue
            failures = 0
            for result in results:
                if result["id"] not in queue or result["status"] not in ("created", "duplicate"):
                    ledger.error(f"kiosk: unexpected result {result}")
                    return
                ledger.note(result["status"], [result["id"]])
                del queue[result["id"]]


def run_clients(ledger: Ledger, clients: Sequence[Callable[[], None]], timeout: float = 120) -> int:
    """Run the clients on threads until all are done; how many were still running at timeout."""

    def guarded(client: Callable[[], None]) -> None:
        try:
            client()
        except Exception as exc:
            ledger.error(f"a client failed: {exc!r}")

    threads = [threading.Thread(target=guarded, args=(c,), daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    return sum(thread.is_alive() for thread in threads)
