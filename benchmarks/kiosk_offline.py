"""A long offline run of the kiosk app in headless Chromium against a real server.

The tablet is paired, goes offline, collects N complete surveys over at least M minutes (with
reloads of the page in between, as a tablet restart would), then comes back online. The script
reports how long the queue took to drain and checks that exactly N rows arrived, once each.

    .venv/bin/python benchmarks/kiosk_offline.py --surveys 200 --minutes 10 --reloads 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
from playwright.sync_api import Page, sync_playwright

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "kiosk-offline"
SECRET = "benchmark-secret-key-0123456789abcdef0123456789"
BIN = Path(sys.executable).parent


def cli(*args: str) -> str:
    env = dict(os.environ, OFFICEPULSE_SECRET_KEY=SECRET)
    result = subprocess.run(
        [str(BIN / "officepulse"), *args, "--data-dir", str(WORK)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return result.stdout


def complete(page: Page, value: int) -> None:
    page.click(f"#start-faces button[data-value='{value}']")
    for _ in range(4):
        page.wait_for_selector("#screen-question", state="visible")
        page.click(f"#question-faces button[data-value='{value}']")
    page.wait_for_selector("#screen-comment", state="visible")
    page.click("#comment-skip")
    page.wait_for_selector("#screen-start", state="visible", timeout=15_000)


def queue(page: Page) -> int:
    return int(page.evaluate("window.officepulseKiosk.queueLength()"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--surveys", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--reloads", type=int, default=5)
    args = parser.parse_args()
    if WORK.exists():
        shutil.rmtree(WORK)  # only the benchmark's own scratch folder
    cli("init")
    cli("office", "add", "bench", "--name", "Benchmark", "--kind", "pilot")
    code = json.loads(cli("kiosk", "add", "bench", "--name", "Eingang", "--json"))["pairing_code"]
    port = 8700 + os.getpid() % 200
    env = dict(
        os.environ,
        OFFICEPULSE_SECRET_KEY=SECRET,
        OFFICEPULSE_DATA_DIR=str(WORK),
        OFFICEPULSE_PORT=str(port),
        OFFICEPULSE_KIOSK_THANKS_SECONDS="0.2",
        OFFICEPULSE_LOG_LEVEL="warning",
    )
    server = subprocess.Popen([str(BIN / "officepulse"), "serve"], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        with sync_playwright() as driver:
            browser = driver.chromium.launch(
                executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            context = browser.new_context(viewport={"width": 1024, "height": 768})
            page = context.new_page()
            page.goto(f"{base}/kiosk/")
            page.fill("#pair-code", code)
            page.click("#pair-form button[type=submit]")
            page.wait_for_selector("#screen-start", state="visible")
            while not page.evaluate("!!navigator.serviceWorker.controller"):
                time.sleep(0.1)
            context.set_offline(True)
            started = time.monotonic()
            reload_every = max(1, args.surveys // (args.reloads + 1))
            pause = args.minutes * 60 / args.surveys
            for number in range(1, args.surveys + 1):
                complete(page, 1 + number % 5)
                if number % reload_every == 0 and number < args.surveys:
                    page.reload()
                    page.wait_for_selector("#screen-start", state="visible")
                remaining = started + number * pause - time.monotonic()
                if remaining > 0:
                    time.sleep(remaining)
            offline_for = time.monotonic() - started
            waiting = queue(page)
            context.set_offline(False)
            online = time.monotonic()
            while queue(page) > 0:
                page.evaluate("window.officepulseKiosk.flush()")
                time.sleep(0.2)
            drained = time.monotonic() - online
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=60)
    with duckdb.connect(str(WORK / "officepulse.duckdb"), read_only=True) as conn:
        rows, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT id) FROM responses"
        ).fetchone()  # type: ignore[misc]
    print(f"# kiosk offline run, {time.strftime('%Y-%m-%d')}, {platform.platform()}")
    print(f"offline for {offline_for / 60:.1f} min, {args.surveys} surveys, {args.reloads} reloads")
    print(f"queued when back online: {waiting}; drained in {drained:.1f} s")
    print(f"rows stored: {rows} ({distinct} distinct)")
    if rows != args.surveys or distinct != rows:
        raise SystemExit("FAILED: rows do not match the surveys answered")


if __name__ == "__main__":
    main()
