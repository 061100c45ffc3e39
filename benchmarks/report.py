"""Time `officepulse report` (JSON and HTML) on the demo data at two sizes.

    .venv/bin/python benchmarks/report.py --sizes 50000,1000000

For each size: a fresh demo data directory (synthetic responses over twelve months), then the
shipped `pilot-vs-conventional` report as JSON and as HTML, each timed end to end through the
command line, as an evaluator would run it.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "report"
BIN = Path(sys.executable).parent
SECRET = "benchmark-secret-key-0123456789abcdef0123456789"


def timed(*args: str) -> float:
    env = dict(os.environ, OFFICEPULSE_SECRET_KEY=SECRET)
    started = time.monotonic()
    subprocess.run([str(BIN / "officepulse"), *args], check=True, env=env, capture_output=True)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50000,1000000")
    parser.add_argument("--spec", default="pilot-vs-conventional")
    args = parser.parse_args()
    print(
        f"# report timings, {time.strftime('%Y-%m-%d')}, {platform.platform()}, "
        f"{os.cpu_count()} cores, spec {args.spec}"
    )
    print("| responses | demo load s | JSON report s | HTML report s | HTML size |")
    print("|---|---|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        data = WORK / f"demo-{size}"
        if data.exists():
            shutil.rmtree(data)  # only the benchmark's own scratch folder
        load = timed("demo", "--data-dir", str(data), "--responses", str(size), "--no-serve")
        as_json = timed("report", args.spec, "--out", str(data / "r.json"), "--data-dir", str(data))
        as_html = timed("report", args.spec, "--out", str(data / "r.html"), "--data-dir", str(data))
        size_kb = (data / "r.html").stat().st_size / 1024
        print(
            f"| {size:,} | {load:.1f} | {as_json:.1f} | {as_html:.1f} | {size_kb:,.0f} KB |",
            flush=True,
        )


if __name__ == "__main__":
    main()
