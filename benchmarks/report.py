"""Reports at scale: the summary endpoint, the pilot-vs-conventional report, and pandas.

    .venv/bin/python benchmarks/report.py                            # 1 and 10 million, ~15 min
    .venv/bin/python benchmarks/report.py --sizes 1000000 --fresh    # regenerate the data
    .venv/bin/python benchmarks/report.py --smoke --work /tmp/x      # what CI runs, ~30 s

For each size, a synthetic data directory from ``synth.py`` (400 offices, two years; reused when
a marker next to it says it was generated completely, unless ``--fresh``), then, in turn:

1. **Summary endpoint.** A real ``officepulse serve`` on a free loopback port and an API token
   of an evaluator; ``GET /api/v1/offices/OFFICE/summary?week=W`` for the last week of the data,
   N times over one keep-alive connection. The first call after the start is reported apart
   ("cold"); p50 and p99 are of the warm ones after it. The server's peak memory is its VmHWM.
2. **Report.** ``officepulse report pilot-vs-conventional`` as JSON and as HTML, each an own
   process: wall time and that process's peak RSS (``os.wait4``), and the HTML file's size.
3. **pandas side by side.** ``officepulse export responses --format parquet`` (timed on its
   own), then pandas reads the file and computes the aggregates; the same aggregates come
   from DuckDB on the database, the way officepulse computes them; the two results must agree
   (the script fails otherwise), and the ratio of the times is printed.

What "the same aggregates" means here -- it is what the report's comparison, trends and
distribution sections are built from, for the report's eight items and its two groups (pilot
offices against conventional ones; every synthetic office is in one of them), over the
responses the report counts (those flagged repeat or burst left out; the export leaves them
out as well):

* per group and item: n, mean, sample standard deviation, and how often each answer was given;
* per group, calendar month and item: n, mean, sample standard deviation.

Both sides are written as one would for their tool, with no trick that changes the computation.
pandas: read the Parquet file (only the columns needed; reading is part of the work, as an
analyst starts from the export), the group as a categorical column, one vectorised ``groupby``
with count, mean and std over all item columns per table, and the answers counted per item with
``groupby(...).size()`` -- no loop over rows. officepulse: DuckDB on the live database (opened
read-only), one query that computes all three tables in one scan with count, avg, stddev_samp
and a filtered count per answer (GROUPING SETS for group and group × month). The report itself
lays its queries out per section and item; that layout is part of the JSON report's time.
Neither side applies the minimum group size, which changes no number shown. Both run with the
file in the page cache; DuckDB uses its default threads, pandas one. Each side runs
``--repeat`` times (alternating) and its fastest run counts, so that a random stall caused by
another process falls on neither. The export is timed on its own: what the pandas route costs
in addition, once per analysis.

The last row sets pandas' aggregates against the whole JSON report, which computes much more
(tests, intervals, models, the before/after analysis): it says how the complete officepulse
answer compares with the bare numbers in pandas, not a like-for-like speed.

``--smoke`` uses 3,000 responses, 5 calls, one run per aggregates side and a lighter report
specification (the same items and groups, 100 permutations, only the overview, comparison,
trends, distribution and methods sections): it checks that the script works, not how fast
anything is.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import duckdb
import httpx
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run as a script: make ``benchmarks.synth`` importable

from benchmarks.common import SECRET, free_port, git_commit, wait_healthy  # noqa: E402
from benchmarks.synth import START, WEEKS, generate  # noqa: E402

PASSWORD: Final = "benchmark-password-of-the-evaluator"
USER: Final = "bench-evaluator"
SPEC: Final = "pilot-vs-conventional"
#: The shipped specification's items, in its order.
REPORT_ITEMS: Final = (
    "stress_now", "respect", "heard", "next_steps", "rooms", "wayfinding", "effort", "overall",
)  # fmt: skip
EXCLUDED: Final = ["repeat", "burst"]
SMOKE_SPEC: Final = """
title = "Smoke run of the reports benchmark"
period = "month"
items = {items}
sections = ["overview", "comparison", "trends", "distribution", "methods"]
permutations = 100

[groups.a]
label = "Pilot"
kind = "pilot"

[groups.b]
label = "Herkömmlich"
kind = "conventional"
"""


# -- processes -------------------------------------------------------------------------------


def officepulse_command() -> list[str]:
    return [str(Path(sys.executable).parent / "officepulse")]


def child_env(**extra: str) -> dict[str, str]:
    """The environment without the caller's OFFICEPULSE_* settings, plus the benchmark's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFICEPULSE_")}
    env.update(OFFICEPULSE_SECRET_KEY=SECRET, OFFICEPULSE_LOG_LEVEL="warning", **extra)
    # The synthetic data starts more than 24 months ago: no retention purge while measuring.
    env["OFFICEPULSE_COMMENT_RETENTION_MONTHS"] = "120"
    return env


@dataclass(frozen=True)
class Child:
    seconds: float
    peak_mib: float
    stdout: str


def run_child(args: Sequence[str], log: Path, stdin: str | None = None) -> Child:
    """Run an officepulse command to its end: wall time and the process's own peak RSS.

    Its output goes to ``log`` (and ``log`` + ``.err``), where a failed run can be read.
    """
    errors = log.with_name(log.name + ".err")
    with open(log, "w+b") as out, open(errors, "w+b") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            [*officepulse_command(), *args],
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=child_env(),
        )
        if stdin is not None and process.stdin is not None:
            process.stdin.write(stdin.encode())
            process.stdin.close()
        # wait4 reaps this very child and returns its own rusage (not the sum of all children).
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text = out.read().decode(errors="replace")
        problems = err.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(
            f"officepulse {' '.join(args)} failed ({process.returncode}):\n{text}{problems}"
        )
    return Child(seconds=seconds, peak_mib=usage.ru_maxrss / 1024, stdout=text)  # KiB on Linux


def peak_memory_mib(pid: int) -> float:
    """The process's high-water mark of resident memory (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


# -- data ------------------------------------------------------------------------------------


def data_dir(work: Path, size: int, fresh: bool) -> tuple[Path, float | None]:
    """The synthetic data directory of ``size`` responses and the seconds it took (None: reused).

    The marker is written only after the generator returned, so a run that died half-way never
    leaves a directory that looks complete.
    """
    folder = work / f"synth-{size}"
    marker = work / f"synth-{size}.complete"
    if (
        not fresh
        and folder.is_dir()
        and marker.exists()
        and json.loads(marker.read_text()).get("responses") == size
    ):
        return folder, None
    marker.unlink(missing_ok=True)
    seconds = generate(folder, size)
    marker.write_text(json.dumps({"responses": size, "seconds": round(seconds, 1)}))
    return folder, seconds


def last_week() -> str:
    """The ISO week of the synthetic data's last week (a fixed week: no 'today' involved)."""
    year, week, _ = (START + dt.timedelta(weeks=WEEKS - 1)).isocalendar()
    return f"{year}-W{week:02d}"


def groups(folder: Path) -> tuple[list[str], list[str]]:
    """The pilot and the conventional offices (the report's groups a and b)."""
    with duckdb.connect(str(folder / "officepulse.duckdb"), read_only=True) as conn:
        rows = conn.execute("SELECT id, kind FROM offices ORDER BY id").fetchall()
    return [o for o, kind in rows if kind == "pilot"], [o for o, kind in rows if kind != "pilot"]


# -- 1. the summary endpoint -----------------------------------------------------------------


@dataclass(frozen=True)
class SummaryTimes:
    first_ms: float
    p50_ms: float
    p99_ms: float
    calls: int
    peak_mib: float


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (p99 of fewer than 100 values is the largest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def api_token(folder: Path, logs: Path) -> str:
    """A fresh API token of the benchmark's evaluator (created on first use of the folder)."""
    listed = run_child(["user", "list", "--json", "--data-dir", str(folder)], logs / "users.log")
    if USER not in {user["name"] for user in json.loads(listed.stdout)}:
        run_child(
            [
                "user",
                "add",
                USER,
                "--role",
                "evaluator",
                "--password-stdin",
                "--data-dir",
                str(folder),
            ],
            logs / "user-add.log",
            stdin=PASSWORD + "\n",
        )
    created = run_child(
        [
            "token",
            "create",
            USER,
            "--label",
            "reports benchmark",
            "--json",
            "--data-dir",
            str(folder),
        ],
        logs / "token.log",
    )
    token: str = json.loads(created.stdout)["token"]
    return token


def summary_endpoint(folder: Path, logs: Path, office: str, calls: int) -> SummaryTimes:
    token = api_token(folder, logs)
    port = free_port()
    env = child_env(OFFICEPULSE_DATA_DIR=str(folder), OFFICEPULSE_PORT=str(port))
    env["OFFICEPULSE_HOST"] = "127.0.0.1"
    with open(logs / "server.log", "wb") as log:
        server = subprocess.Popen(
            [*officepulse_command(), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_healthy(base, server)
            url = f"/api/v1/offices/{office}/summary"
            times: list[float] = []
            with httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120
            ) as client:
                for _ in range(calls):
                    started = time.perf_counter()
                    answer = client.get(url, params={"week": last_week()})
                    times.append((time.perf_counter() - started) * 1000)
                    if answer.status_code != 200:
                        raise RuntimeError(f"GET {url}: {answer.status_code} {answer.text}")
            peak = peak_memory_mib(server.pid)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    warm = times[1:] or times
    return SummaryTimes(
        first_ms=times[0],
        p50_ms=percentile(warm, 0.5),
        p99_ms=percentile(warm, 0.99),
        calls=len(warm),
        peak_mib=peak,
    )


# -- 3. the same aggregates, two ways --------------------------------------------------------

#: (group, item) -> (n, mean, sd); (group, month, item) -> (n, mean, sd); (group, item, value) -> n
Aggregates = tuple[
    dict[tuple[str, str], tuple[int, float, float]],
    dict[tuple[str, dt.date, str], tuple[int, float, float]],
    dict[tuple[str, str, int], int],
]
ANSWERS: Final = (1, 2, 3, 4, 5)


def aggregates_sql(items: int) -> str:
    """All three tables in one scan: per group and month, and per group (month rolled up).

    An item per group of columns: n, mean, sd and how often each answer was given (the counts
    are used for the group rows only). Only positions are written into the text; item ids,
    offices and groups are parameters. Filters as the report's: the two groups' offices, no
    flagged response; an item counts where it was answered.
    """
    columns = []
    for i in range(1, items + 1):
        columns.append(f"count(v{i}), avg(v{i}), stddev_samp(v{i})")
        columns += [f"count(*) FILTER (v{i} = {answer})" for answer in ANSWERS]
    values = ", ".join(f"r.answers[$items[{i}]] AS v{i}" for i in range(1, items + 1))
    return f"""
SELECT grp, month, {", ".join(columns)}
FROM (
    SELECT g.grp, date_trunc('month', r.received_at)::DATE AS month, {values}
    FROM responses r
    JOIN (SELECT unnest($offices) AS office, unnest($groups) AS grp) g ON g.office = r.office_id
    WHERE NOT list_has_any(r.flags, $excluded)
)
GROUP BY GROUPING SETS ((grp), (grp, month))
"""  # noqa: S608 - column positions only, never a value


def officepulse_aggregates(folder: Path, a: list[str], b: list[str]) -> tuple[Aggregates, float]:
    items = list(REPORT_ITEMS)
    width = 3 + len(ANSWERS)
    started = time.perf_counter()
    params = {
        "offices": a + b,
        "groups": ["a"] * len(a) + ["b"] * len(b),
        "excluded": EXCLUDED,
        "items": items,
    }
    with duckdb.connect(str(folder / "officepulse.duckdb"), read_only=True) as conn:
        rows = conn.execute(aggregates_sql(len(items)), params).fetchall()
    seconds = time.perf_counter() - started
    by_group: dict[tuple[str, str], tuple[int, float, float]] = {}
    by_month: dict[tuple[str, dt.date, str], tuple[int, float, float]] = {}
    counts: dict[tuple[str, str, int], int] = {}
    for grp, month, *cells in rows:
        for i, item in enumerate(items):
            n, mean, sd, *answered = cells[i * width : (i + 1) * width]
            if not n:
                continue
            stat = (int(n), float(mean), float(sd) if sd is not None else math.nan)
            if month is None:
                by_group[(grp, item)] = stat
                counts |= {
                    (grp, item, v): int(c) for v, c in zip(ANSWERS, answered, strict=True) if c
                }
            else:
                by_month[(grp, month, item)] = stat
    return (by_group, by_month, counts), seconds


def read_parquet(path: Path, columns: list[str]) -> tuple[pd.DataFrame, str]:
    """The export as a DataFrame: with pyarrow when installed, else with DuckDB's reader."""
    if importlib.util.find_spec("pyarrow") is None:
        # pandas reads Parquet only through pyarrow or fastparquet; neither is a dependency.
        with duckdb.connect() as conn:
            selected = ", ".join(f'"{c}"' for c in columns)
            frame = conn.execute(f"SELECT {selected} FROM read_parquet(?)", [str(path)]).df()  # noqa: S608
        return frame, "DuckDB's Parquet reader (no pyarrow)"
    return pd.read_parquet(path, columns=columns, engine="pyarrow"), "pyarrow"


def pandas_aggregates(
    path: Path, a: list[str], b: list[str]
) -> tuple[Aggregates, float, float, str]:
    """The aggregates with pandas: (results, seconds reading, seconds computing, reader)."""
    items = list(REPORT_ITEMS)
    started = time.perf_counter()
    frame, reader = read_parquet(path, ["office", "time", *items])
    read = time.perf_counter() - started
    started = time.perf_counter()
    group_of = dict.fromkeys(a, "a") | dict.fromkeys(b, "b")
    frame["grp"] = frame["office"].map(group_of).astype("category")
    frame = frame[frame["grp"].notna()]
    frame["month"] = frame["time"].dt.to_period("M")
    by_group = frame.groupby("grp", observed=True)[items].agg(["count", "mean", "std"])
    by_month = frame.groupby(["grp", "month"], observed=True)[items].agg(["count", "mean", "std"])
    counts = {item: frame.groupby(["grp", item], observed=True).size() for item in items}
    computed = time.perf_counter() - started
    results: Aggregates = (
        {
            (str(grp), item): _stat(row, item)
            for grp, row in by_group.iterrows()
            for item in items
            if row[(item, "count")] > 0
        },
        {
            (str(grp), month.to_timestamp().date(), item): _stat(row, item)
            for (grp, month), row in by_month.iterrows()
            for item in items
            if row[(item, "count")] > 0
        },
        {
            (str(grp), item, int(value)): int(n)
            for item, sizes in counts.items()
            for (grp, value), n in sizes.items()
            if n
        },
    )
    return results, read, computed, reader


def _stat(row: Any, item: str) -> tuple[int, float, float]:
    return int(row[(item, "count")]), float(row[(item, "mean")]), float(row[(item, "std")])


def check_same(ours: Aggregates, theirs: Aggregates) -> None:
    """Fail unless both computed the same numbers (else the times compare nothing)."""
    tables: list[tuple[str, Mapping[Any, Any], Mapping[Any, Any]]] = [
        ("by group", ours[0], theirs[0]),
        ("by month", ours[1], theirs[1]),
        ("counts", ours[2], theirs[2]),
    ]
    for name, mine, other in tables:
        if set(mine) != set(other):
            raise RuntimeError(f"{name}: the two results have different cells")
        for key, value in mine.items():
            if not _close(value, other[key]):
                raise RuntimeError(f"{name} {key}: officepulse {value}, pandas {other[key]}")


def _close(x: object, y: object) -> bool:
    if isinstance(x, tuple) and isinstance(y, tuple):
        return len(x) == len(y) and all(_close(p, q) for p, q in zip(x, y, strict=True))
    if isinstance(x, float) and isinstance(y, float):
        return (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-9)
    return x == y


# -- one size ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    measurement: str
    value: str
    notes: str


def one_size(
    work: Path, size: int, *, fresh: bool, office: str, calls: int, spec: str, repeat: int
) -> list[Row]:
    folder, generated = data_dir(work, size, fresh)
    out = work / f"out-{size}"
    if out.exists():
        shutil.rmtree(out)  # only the benchmark's own scratch folder
    out.mkdir(parents=True)
    rows = [
        Row(
            "data",
            "reused" if generated is None else f"generated in {generated:.1f} s",
            f"synth.py: {size:,} responses, 400 offices, {WEEKS} weeks",
        )
    ]

    summary = summary_endpoint(folder, out, office, calls)
    where = f"GET /api/v1/offices/{office}/summary?week={last_week()}, evaluator's API token"
    rows += [
        Row("summary endpoint, cold (first call)", f"{summary.first_ms:.0f} ms", where),
        Row(
            "summary endpoint, p50 / p99",
            f"{summary.p50_ms:.1f} / {summary.p99_ms:.1f} ms",
            f"{summary.calls} further calls on one keep-alive connection",
        ),
        Row("server peak memory", f"{summary.peak_mib:,.0f} MiB", "VmHWM of `officepulse serve`"),
    ]

    reports: dict[str, Child] = {}
    for suffix in ("json", "html"):
        target = out / f"report.{suffix}"
        reports[suffix] = run_child(
            ["report", spec, "--out", str(target), "--data-dir", str(folder)],
            out / f"report-{suffix}.log",
        )
    html_kib = (out / "report.html").stat().st_size / 1024
    name = Path(spec).stem
    rows += [
        Row(
            f"{name} JSON report",
            f"{reports['json'].seconds:.1f} s, peak {reports['json'].peak_mib:,.0f} MiB",
            "`officepulse report`, its own process end to end",
        ),
        Row(
            f"{name} HTML report",
            f"{reports['html'].seconds:.1f} s, peak {reports['html'].peak_mib:,.0f} MiB",
            f"{html_kib:,.0f} KiB file",
        ),
    ]

    parquet = out / "responses.parquet"
    export = run_child(
        [
            "export",
            "responses",
            "--format",
            "parquet",
            "--out",
            str(parquet),
            "--data-dir",
            str(folder),
        ],
        out / "export.log",
    )
    rows.append(
        Row(
            "Parquet export of the responses",
            f"{export.seconds:.1f} s, peak {export.peak_mib:,.0f} MiB",
            f"`officepulse export responses --format parquet`, "
            f"{parquet.stat().st_size / 2**20:,.1f} MiB file",
        )
    )

    a, b = groups(folder)
    # Each side ``repeat`` times, alternating, and the fastest run of each: other processes on
    # the machine slow single runs down at random, and neither side should pay for that.
    pandas_runs: list[tuple[float, float]] = []
    duckdb_runs: list[float] = []
    for _ in range(repeat):
        theirs, read, computed, reader = pandas_aggregates(parquet, a, b)
        ours, seconds = officepulse_aggregates(folder, a, b)
        check_same(ours, theirs)
        pandas_runs.append((read, computed))
        duckdb_runs.append(seconds)
    read, computed = min(pandas_runs, key=sum)
    pandas_total = read + computed
    seconds = min(duckdb_runs)
    rows += [
        Row(
            "pandas: the aggregates from the Parquet file",
            f"{pandas_total:.2f} s",
            f"best of {repeat}: read {read:.2f} s + compute {computed:.2f} s; {reader}",
        ),
        Row(
            "officepulse: the same aggregates",
            f"{seconds:.2f} s",
            f"best of {repeat}: DuckDB on the database, one query; results checked equal",
        ),
        Row(
            "**pandas ÷ officepulse, same aggregates**",
            f"**{pandas_total / seconds:.1f}×**",
            "the issue's target: at least 5×",
        ),
        Row(
            "pandas aggregates ÷ whole JSON report",
            f"{pandas_total / reports['json'].seconds:.2f}×",
            "not like for like: the report also runs tests, models and charts",
        ),
    ]
    return rows


# -- output ------------------------------------------------------------------------------------


def header() -> str:
    commit = git_commit()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"# reports, {time.strftime('%Y-%m-%d')}, commit {commit}, {platform.platform()},"
        f" {os.cpu_count()} cores, {memory:.0f} GiB, Python {platform.python_version()},"
        f" DuckDB {duckdb.__version__}, pandas {pd.__version__}"
    )


def table(size: int, rows: Sequence[Row]) -> str:
    lines = [f"### {size:,} responses", "", "| measurement | value | notes |", "|---|---|---|"]
    lines += [f"| {r.measurement} | {r.value} | {r.notes} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000", help="comma-separated")
    parser.add_argument("--calls", type=int, default=50, help="summary GETs per size")
    parser.add_argument("--office", default="synth-123", help="the office of the summary")
    parser.add_argument("--spec", default=SPEC, help="report specification (name or .toml)")
    parser.add_argument("--work", type=Path, default=HERE / ".work" / "report")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each aggregates side")
    parser.add_argument("--fresh", action="store_true", help="regenerate the data")
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    spec = args.spec
    if args.smoke:
        sizes, args.calls, args.repeat = [3000], 5, 1
        spec_file = args.work / "smoke-report.toml"
        spec_file.write_text(SMOKE_SPEC.format(items=json.dumps(list(REPORT_ITEMS))))
        spec = str(spec_file)
    if args.calls < 2:
        parser.error("--calls must be at least 2 (the first call is reported apart)")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    print(header(), flush=True)
    for size in sizes:
        rows = one_size(
            args.work,
            size,
            fresh=args.fresh,
            office=args.office,
            calls=args.calls,
            spec=spec,
            repeat=args.repeat,
        )
        print("\n" + table(size, rows), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
