"""Front-end weight of the phone survey and the kiosk shell, measured in headless Chromium.

Starts a real ``officepulse serve`` on a fresh data directory with one office, then loads each
page in a new browser context (a cold cache every time) and records every request: on the wire
(response headers plus the body as it travelled, compressed where it was), the decoded body,
the resource type, and whether it went to another origin (none may). The phone survey is loaded
in German and in Arabic (right to left) on a phone-sized screen over an emulated slow mobile
link; the thank-you page is what follows the submit. The kiosk shell is measured on its first
load (unpaired, with the service worker's precache), while pairing, and on a reload once paired.

    .venv/bin/python benchmarks/frontend.py [--runs 3] [--smoke] [--work DIR] [--keep]

Prints Markdown tables for benchmarks/RESULTS.md; exits 1 if any request left the server's
origin or a page did not show what it should.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from playwright.sync_api import Browser, BrowserContext, CDPSession, Page, Request, sync_playwright
from playwright.sync_api import Error as PlaywrightError

HERE: Final = Path(__file__).resolve().parent
REPO: Final = HERE.parent
sys.path.insert(0, str(REPO))  # run as a script: make ``benchmarks`` importable

from benchmarks.common import SECRET, free_port, git_commit, wait_healthy  # noqa: E402

BIN: Final = Path(sys.executable).parent
OFFICE: Final = "bench"
CHROMIUM_ARGS: Final = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # no requests to the browser vendor's services: they would count as foreign requests
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The phone pages are loaded over an emulated slow mobile link (applied by Chromium to every
# request of the page); only the load times depend on it, the byte counts do not.
SLOW_KBIT: Final = 400
SLOW_RTT_MS: Final = 400
PHONE_VIEWPORT: Final = {"width": 390, "height": 844}
PHONE: Final = {
    "viewport": PHONE_VIEWPORT,
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "de-DE",
}
TABLET: Final = {"viewport": {"width": 1024, "height": 768}, "locale": "de-DE"}
# Sources of a request that crossed the network (a cache or the service worker answered the rest).
ON_WIRE: Final = frozenset({"network", "failed", "server log"})
KINDS: Final = ("document", "stylesheet", "script", "image", "font", "fetch", "other")

SURVEY_DE: Final = "phone survey, German"
SURVEY_AR: Final = "phone survey, Arabic (RTL)"
THANKS: Final = "thank-you page after submit"
KIOSK_FIRST: Final = "kiosk shell, first load (unpaired)"
KIOSK_PAIR: Final = "kiosk pairing, until the start screen"
KIOSK_RELOAD: Final = "kiosk paired, reload"
LABELS: Final = (SURVEY_DE, SURVEY_AR, THANKS, KIOSK_FIRST, KIOSK_PAIR, KIOSK_RELOAD)


class BenchmarkError(Exception):
    """A page did not behave as it should; the script exits 1 with this message."""


# -- recording requests -----------------------------------------------------------------------


@dataclass
class Resource:
    """One request and its response as the browser saw it."""

    method: str
    url: str
    kind: str
    status: int = 0
    wire: int = 0  # response headers + body as transferred; 0 when answered from a cache
    body: int | None = None  # decoded body bytes
    encoding: str = ""
    cache_control: str = ""
    source: str = "network"  # network | service worker | cache | failed | server log
    by_worker: bool = False  # made by the service worker itself (precache, update, its fetch)
    estimated: bool = False  # sizes taken from an earlier identical request

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, _plain_path(self.url))

    @property
    def path(self) -> str:
        parts = urlsplit(self.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")


def _plain_path(url: str) -> str:
    path = urlsplit(url).path
    return path.rstrip("/") or "/"


def bucket(resource_type: str) -> str:
    kind = resource_type.lower()
    if kind == "xhr":
        return "fetch"
    return kind if kind in KINDS else "other"


@dataclass
class Pending:
    method: str
    url: str
    kind: str
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    source: str = "network"
    body: int = 0
    received: int = 0  # bytes on the wire when the response headers arrived


class Recorder:
    """Every request of one page (through CDP) and of its service worker (through Playwright).

    CDP on the page sees everything the page asks for, including the favicon that Playwright's
    own events leave out; the service worker's requests (precache, script update, its network
    fetches) are only visible to Playwright's context events, which report them separately.
    """

    def __init__(self, context: BrowserContext, page: Page, origin: str) -> None:
        self.page = page
        self.origin = origin
        self.resources: list[Resource] = []
        self.history: list[Resource] = []  # everything settled so far in this context
        self.pending: dict[str, Pending] = {}
        self.worker_pending: set[Request] = set()
        self.last_event = time.monotonic()
        self.cdp: CDPSession = context.new_cdp_session(page)
        self.cdp.on("Network.requestWillBeSent", self._will_be_sent)
        self.cdp.on("Network.responseReceived", self._response)
        self.cdp.on("Network.requestServedFromCache", self._from_cache)
        self.cdp.on("Network.dataReceived", self._data)
        self.cdp.on("Network.loadingFinished", self._finished)
        self.cdp.on("Network.loadingFailed", self._failed)
        self.cdp.send("Network.enable")
        context.on("request", self._worker_request)
        context.on("requestfinished", self._worker_finished)
        context.on("requestfailed", self._worker_failed)

    def throttle(self, kbit: int, rtt_ms: int) -> None:
        rate = kbit * 1000 / 8
        self.cdp.send(
            "Network.emulateNetworkConditions",
            {
                "offline": False,
                "latency": rtt_ms,
                "downloadThroughput": rate,
                "uploadThroughput": rate,
            },
        )

    def _touch(self) -> None:
        self.last_event = time.monotonic()

    @staticmethod
    def _is_request(url: str) -> bool:
        """data: and blob: URLs never reach a network (requests to any origin are kept)."""
        return urlsplit(url).scheme not in {"data", "blob"}

    # page requests (CDP)

    def _will_be_sent(self, event: dict[str, Any]) -> None:
        self._touch()
        request = event["request"]
        if not self._is_request(request["url"]):
            return
        request_id = event["requestId"]
        previous = self.pending.pop(request_id, None)
        redirect = event.get("redirectResponse")
        if previous is not None and redirect is not None:
            # one hop of a redirect chain: its own request and response
            previous.status = int(redirect["status"])
            previous.headers = _lower(redirect.get("headers", {}))
            self._close(previous, int(redirect.get("encodedDataLength", 0)))
        self.pending[request_id] = Pending(
            method=request["method"], url=request["url"], kind=bucket(event.get("type", "other"))
        )

    def _response(self, event: dict[str, Any]) -> None:
        self._touch()
        pending = self.pending.get(event["requestId"])
        if pending is None:
            return
        response = event["response"]
        pending.status = int(response["status"])
        pending.headers = _lower(response.get("headers", {}))
        pending.received = int(response.get("encodedDataLength", 0))
        if response.get("fromServiceWorker"):
            pending.source = "service worker"
        elif response.get("fromDiskCache") or response.get("fromPrefetchCache"):
            pending.source = "cache"

    def _from_cache(self, event: dict[str, Any]) -> None:
        self._touch()
        pending = self.pending.get(event["requestId"])
        if pending is not None:
            pending.source = "cache"

    def _data(self, event: dict[str, Any]) -> None:
        self._touch()
        pending = self.pending.get(event["requestId"])
        if pending is not None:
            pending.body += int(event.get("dataLength", 0))

    def _finished(self, event: dict[str, Any]) -> None:
        self._touch()
        pending = self.pending.pop(event["requestId"], None)
        if pending is not None:
            self._close(pending, int(event.get("encodedDataLength", 0)))

    def _failed(self, event: dict[str, Any]) -> None:
        self._touch()
        pending = self.pending.pop(event["requestId"], None)
        if pending is None:
            return
        if pending.status:
            # Chromium reports a 204 whose empty body nobody reads as cancelled; the answer
            # did arrive, with what it had received by then.
            self._close(pending, pending.received)
        else:
            pending.source = "failed"
            self._close(pending, 0)

    def _close(self, pending: Pending, encoded: int) -> None:
        on_wire = pending.source in {"network", "failed"}
        self.resources.append(
            Resource(
                method=pending.method,
                url=pending.url,
                kind=pending.kind,
                status=pending.status,
                wire=encoded if on_wire else 0,
                body=pending.body,
                encoding=pending.headers.get("content-encoding", ""),
                cache_control=pending.headers.get("cache-control", ""),
                source=pending.source,
            )
        )

    # the service worker's own requests (Playwright)

    def _worker_request(self, request: Request) -> None:
        if request.service_worker is None:
            return
        self._touch()
        if self._is_request(request.url):
            self.worker_pending.add(request)

    def _worker_finished(self, request: Request) -> None:
        if request not in self.worker_pending:
            return
        self._touch()
        self.worker_pending.discard(request)
        response = request.response()
        headers = _lower(response.headers) if response else {}
        sizes = request.sizes()
        body_on_wire = int(sizes["responseBodySize"])
        if body_on_wire <= 0:
            # Chromium reports no body size for the worker's own script; its Content-Length
            # is the size as sent (compressed when Content-Encoding says so).
            body_on_wire = int(headers.get("content-length", "0") or 0)
        decoded: int | None = None
        if response is not None:
            try:
                decoded = len(response.body()) or None
            except PlaywrightError:  # the body of a precache fetch is not kept
                decoded = None
        self.resources.append(
            Resource(
                method=request.method,
                url=request.url,
                kind=bucket(request.resource_type),
                status=response.status if response else 0,
                wire=int(sizes["responseHeadersSize"]) + body_on_wire,
                body=decoded,
                encoding=headers.get("content-encoding", ""),
                cache_control=headers.get("cache-control", ""),
                by_worker=True,
            )
        )

    def _worker_failed(self, request: Request) -> None:
        if request in self.worker_pending:
            self._touch()
            self.worker_pending.discard(request)
            self.resources.append(
                Resource(
                    method=request.method,
                    url=request.url,
                    kind=bucket(request.resource_type),
                    source="failed",
                    by_worker=True,
                )
            )

    def settle(self, quiet: float = 0.6, timeout: float = 30) -> list[Resource]:
        """Wait until nothing is in flight and nothing happened for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.page.wait_for_timeout(100)  # lets Playwright deliver the events
            idle = time.monotonic() - self.last_event
            if not self.pending and not self.worker_pending and idle >= quiet:
                break
        else:
            waiting = [p.url for p in self.pending.values()] + [r.url for r in self.worker_pending]
            raise BenchmarkError(f"requests still in flight after {timeout} s: {waiting}")
        resources = self._fill_decoded(self.resources)
        self.resources = []
        self.history += resources
        return resources

    def _fill_decoded(self, resources: list[Resource]) -> list[Resource]:
        """The worker's fetches keep no body: take the decoded size of the same URL."""
        known = {r.url: r.body for r in resources if r.body and not r.by_worker}
        for resource in resources:
            if resource.by_worker and resource.body is None:
                resource.body = known.get(resource.url)
        return resources


def _lower(headers: dict[str, Any]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


# -- the server -------------------------------------------------------------------------------


def server_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFICEPULSE_")}
    env["OFFICEPULSE_SECRET_KEY"] = SECRET
    env.update(extra)
    return env


def cli(data: Path, *args: str) -> str:
    result = subprocess.run(
        [str(BIN / "officepulse"), *args, "--data-dir", str(data)],
        capture_output=True,
        text=True,
        env=server_env(),
        timeout=120,
    )
    if result.returncode != 0:
        raise BenchmarkError(f"officepulse {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


@dataclass
class Server:
    """A running server and its access log (debug level: one line per request)."""

    base: str
    data: Path
    log: Path

    def mark(self) -> int:
        return self.log.stat().st_size

    def requests_since(self, mark: int) -> list[tuple[str, str]]:
        """(method, path) of the browser's requests logged since ``mark``."""
        with open(self.log, "rb") as handle:
            handle.seek(mark)
            text = handle.read().decode("utf-8", "replace")
        found = []
        for line in text.splitlines():
            _, marker, rest = line.partition("officepulse.access: ")
            parts = rest.split()
            if not marker or len(parts) != 3:
                continue
            method, path = parts[0], parts[1].rstrip("/") or "/"
            # the command line's own calls (kiosk add) and health checks are not the browser's
            if path == "/healthz" or path.startswith("/api/v1/admin/"):
                continue
            found.append((method, path))
        return found


@contextmanager
def running_server(data: Path, log: Path) -> Iterator[Server]:
    """``officepulse serve`` on a free loopback port until the block ends."""
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(BIN / "officepulse"), "serve", "--data-dir", str(data), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=server_env(OFFICEPULSE_LOG_LEVEL="debug"),
        )
        base = f"http://127.0.0.1:{port}"
        try:
            try:
                wait_healthy(base, process)
            except RuntimeError as exc:
                raise BenchmarkError(str(exc)) from None
            yield Server(base, data, log)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


# -- the scenarios ----------------------------------------------------------------------------


@dataclass
class Measured:
    label: str
    resources: list[Resource]
    load_ms: float | None = None  # load event on the slow link (phone pages only)


def phase(
    label: str,
    rec: Recorder,
    server: Server,
    mark: int,
    *,
    quiet: float = 0.6,
    load_ms: float | None = None,
) -> Measured:
    """What the browser reported since the phase began, plus requests only the server saw.

    Chromium checks a service worker's script for updates from the browser process, where
    neither CDP on the page nor Playwright see it; the access log does. Such a request gets
    the sizes of an earlier identical one.
    """
    resources = rec.settle(quiet)
    unseen = Counter(server.requests_since(mark))
    unseen.subtract(Counter(r.key for r in resources if r.source in ON_WIRE))
    for (method, path), count in sorted(unseen.items()):
        for _ in range(count):
            earlier = next(
                (r for r in reversed(rec.history) if r.key == (method, path) and r.wire), None
            )
            extra = Resource(
                method=method,
                url=rec.origin + path,
                kind=bucket("script" if path.endswith(".js") else "other"),
                source="server log",
                by_worker=True,
            )
            if earlier is not None:
                extra.status, extra.wire, extra.body = earlier.status, earlier.wire, earlier.body
                extra.encoding, extra.cache_control = earlier.encoding, earlier.cache_control
                extra.estimated = True
            resources.append(extra)
    return Measured(label, resources, load_ms)


PAGE_TIMES: Final = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  return nav ? nav.loadEventEnd : null;
}"""


def wait_loaded(page: Page) -> float | None:
    page.wait_for_load_state("load")
    page.wait_for_function(
        "() => { const n = performance.getEntriesByType('navigation')[0];"
        " return n && n.loadEventEnd > 0; }"
    )
    value = page.evaluate(PAGE_TIMES)
    return float(value) if value else None


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise BenchmarkError(message)


@contextmanager
def new_page(browser: Browser, base: str, options: dict[str, Any]) -> Iterator[Recorder]:
    """A new context (empty cache, no service worker, no storage) with one recorded page."""
    context = browser.new_context(**options)
    try:
        page = context.new_page()
        yield Recorder(context, page, base)
    finally:
        context.close()


def phone_run(
    browser: Browser, server: Server, lang: str, label: str, thanks: bool
) -> list[Measured]:
    results = []
    with new_page(browser, server.base, PHONE) as rec:
        page = rec.page
        rec.throttle(SLOW_KBIT, SLOW_RTT_MS)
        mark = server.mark()
        page.goto(f"{server.base}/s/{OFFICE}?lang={lang}", wait_until="commit")
        load = wait_loaded(page)
        expect(page.locator("html").get_attribute("lang") == lang, f"{label}: wrong language")
        expect(page.locator("form.survey").count() == 1, f"{label}: no survey form")
        results.append(phase(label, rec, server, mark, load_ms=load))
        if thanks:
            core = page.eval_on_selector_all(
                "fieldset.rating", "els => els.filter(e => !e.closest('details')).map(e => e.id)"
            )
            expect(len(core) >= 1, f"{label}: no questions on the form")
            for fieldset in core:
                page.locator(f"#{fieldset} label.face").nth(3).click()
            mark = server.mark()
            with page.expect_navigation(wait_until="commit"):
                page.click("form.survey button[type=submit]")
            load = wait_loaded(page)
            expect(page.locator("form.survey").count() == 0, f"{THANKS}: the form came back")
            results.append(phase(THANKS, rec, server, mark, load_ms=load))
    return results


def kiosk_run(browser: Browser, server: Server) -> list[Measured]:
    # A longer quiet time: Chromium checks the worker's script for updates a moment after a
    # navigation, and that request should land in the phase that caused it.
    quiet = 3.0
    results = []
    with new_page(browser, server.base, TABLET) as rec:
        page = rec.page
        mark = server.mark()
        page.goto(f"{server.base}/kiosk/")
        page.wait_for_selector("#screen-pair", state="visible")
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        results.append(phase(KIOSK_FIRST, rec, server, mark, quiet=quiet))

        created = cli(server.data, "kiosk", "add", OFFICE, "--name", "Eingang", "--json")
        mark = server.mark()
        page.fill("#pair-code", str(json.loads(created)["pairing_code"]))
        page.click("#pair-form button[type=submit]")
        page.wait_for_selector("#screen-start", state="visible")
        results.append(phase(KIOSK_PAIR, rec, server, mark, quiet=quiet))

        mark = server.mark()
        page.reload()
        page.wait_for_selector("#screen-start", state="visible")
        results.append(phase(KIOSK_RELOAD, rec, server, mark, quiet=quiet))
    return results


def one_run(browser: Browser, server: Server) -> list[Measured]:
    results = phone_run(browser, server, "de", SURVEY_DE, thanks=True)
    results += phone_run(browser, server, "ar", SURVEY_AR, thanks=False)
    results += kiosk_run(browser, server)
    return results


# -- the tables -------------------------------------------------------------------------------


@dataclass
class Totals:
    requests: int
    wire: int
    body: int
    cached: int
    worker: tuple[int, int]
    kinds: dict[str, tuple[int, int]]
    foreign: int
    load_ms: float | None


def totals(measured: Measured, origin: str) -> Totals:
    on_wire = [r for r in measured.resources if r.source in ON_WIRE]
    page = [r for r in on_wire if not r.by_worker]
    worker = [r for r in on_wire if r.by_worker]
    kinds = {
        kind: (
            sum(1 for r in page if r.kind == kind),
            sum(r.wire for r in page if r.kind == kind),
        )
        for kind in KINDS
    }
    return Totals(
        requests=len(on_wire),
        wire=sum(r.wire for r in on_wire),
        body=sum(r.body or 0 for r in on_wire),
        cached=sum(1 for r in measured.resources if r.source in {"cache", "service worker"}),
        worker=(len(worker), sum(r.wire for r in worker)),
        kinds=kinds,
        foreign=sum(1 for r in measured.resources if not r.url.startswith(origin)),
        load_ms=measured.load_ms,
    )


def spread(values: Sequence[float]) -> str:
    """The median, with the range when the runs differ."""
    middle = statistics.median(values)
    low, high = min(values), max(values)
    text = f"{middle:,.0f}"
    return text if low == high else f"{text} ({low:,.0f}–{high:,.0f})"


def cell(count: int, size: int) -> str:
    return f"{count} · {size:,}" if count else "–"


def summary_table(runs: list[list[Measured]], origin: str) -> list[str]:
    lines = [
        "| page | requests | on the wire, bytes | decoded, bytes | "
        + " | ".join(KINDS)
        + " | service worker | from a cache | other origins | load on slow link, s |",
        "|---|" + "---:|" * (3 + len(KINDS) + 3) + "---:|",
    ]
    for label in LABELS:
        per_run = [totals(m, origin) for run in runs for m in run if m.label == label]
        if not per_run:
            continue
        first = per_run[0]
        loads = [t.load_ms / 1000 for t in per_run if t.load_ms is not None]
        load = (
            f"{statistics.median(loads):.2f} ({min(loads):.2f}–{max(loads):.2f})"
            if len(loads) > 1
            else (f"{loads[0]:.2f}" if loads else "–")
        )
        row = [
            label,
            spread([t.requests for t in per_run]),
            spread([t.wire for t in per_run]),
            spread([t.body for t in per_run]),
            *(cell(*first.kinds[kind]) for kind in KINDS),
            cell(*first.worker),
            str(first.cached) if first.cached else "–",
            str(max(t.foreign for t in per_run)),
            load,
        ]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def detail_table(run: list[Measured]) -> list[str]:
    lines = [
        "| page | request | type | status | Content-Encoding | Cache-Control | served by"
        " | on the wire, bytes | decoded, bytes |",
        "|---|---|---|---:|---|---|---|---:|---:|",
    ]
    for measured in sorted(run, key=lambda m: LABELS.index(m.label)):
        for r in measured.resources:
            if r.source == "server log":
                served = "seen only in the server log"
            elif r.by_worker:
                served = "the service worker's own request"
            else:
                served = r.source
            approx = "≈" if r.estimated else ""
            lines.append(
                f"| {measured.label} | `{r.method} {r.path}` | {r.kind} | {r.status or '–'}"
                f" | {r.encoding or '–'} | {r.cache_control or '–'} | {served}"
                f" | {approx}{r.wire:,} | {'?' if r.body is None else f'{approx}{r.body:,}'} |"
            )
    return lines


def header(chromium: str, runs: int) -> str:
    machine = f"{platform.system()} {platform.release()}, {platform.machine()}"
    return (
        f"### {dt.date.today().isoformat()}, {machine}, {os.cpu_count()} cores,"
        f" Chromium {chromium}, commit {git_commit()}, {runs} run{'s' if runs != 1 else ''}"
    )


# -- main -------------------------------------------------------------------------------------


def measure(args: argparse.Namespace, work: Path, report: Callable[[str], None]) -> None:
    data = work / "data"
    cli(data, "init")
    cli(data, "office", "add", OFFICE, "--name", "Jobcenter Benchmark", "--kind", "pilot")
    runs: list[list[Measured]] = []
    with (
        running_server(data, work / "server.log") as server,
        sync_playwright() as driver,
    ):
        browser = driver.chromium.launch(
            executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            version = browser.version
            for _ in range(args.runs):
                runs.append(one_run(browser, server))
        finally:
            browser.close()
    base = server.base
    foreign = sorted(
        {r.url for run in runs for m in run for r in m.resources if not r.url.startswith(base)}
    )
    report(header(version, args.runs))
    report("")
    report(
        "Cold cache (a new browser context) for every run. Phone pages:"
        f" {PHONE_VIEWPORT['width']}×{PHONE_VIEWPORT['height']} CSS px, over an emulated"
        f" {SLOW_KBIT} kbit/s link with {SLOW_RTT_MS} ms round trip."
        " Bytes are response headers plus the body as transferred (gzip where the server"
        " compressed it); request headers are not counted. Totals are medians (with the range"
        " when runs differ); type cells, from the first run: requests · bytes on the wire of"
        " the page's own requests; the service worker's own requests (script,"
        " precache, its network fetches) are in their own column and in the totals."
    )
    report("")
    for line in summary_table(runs, base):
        report(line)
    report("")
    report("Every request of the first run:")
    report("")
    for line in detail_table(runs[0]):
        report(line)
    if foreign:
        raise BenchmarkError(f"requests to another origin: {foreign}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--smoke", action="store_true", help="one run, for CI")
    parser.add_argument(
        "--work",
        type=Path,
        default=HERE / ".work",
        help="folder for the scratch data directory (default benchmarks/.work)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the data directory and log")
    parser.add_argument(
        "--chromium",
        default=shutil.which("chromium") or "/usr/bin/chromium",
        help="the Chromium binary (default: chromium on PATH)",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.runs = 1
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if not Path(args.chromium).exists():
        print(f"frontend: error: no Chromium at {args.chromium}", file=sys.stderr)
        return 2
    args.work.mkdir(parents=True, exist_ok=True)
    # A folder of its own per invocation: nothing else in --work is touched.
    work = Path(tempfile.mkdtemp(prefix="frontend-", dir=args.work))
    try:
        measure(args, work, print)
    except BenchmarkError as error:
        print(f"frontend: error: {error}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"\n(data directory and server log kept in {work})", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
