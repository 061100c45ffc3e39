"""`officepulse report`: specifications, every number in JSON, a self-contained HTML file."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pytest
from playwright.sync_api import Browser

from officepulse.events import NewEvent, insert_event
from officepulse.offices import Office, insert_offices
from officepulse.report import ReportSpecError, load_spec, spec_path
from officepulse.responses import StoredResponse, commit_responses
from officepulse.runtime import Runtime
from officepulse.surveys import Survey, default_surveys_dir, load_surveys

from .conftest import make_settings
from .serverproc import run_cli

COMPARISON_KEYS = {
    "item", "group_a", "group_b", "n_a", "n_b", "offices_a", "offices_b", "mean_a", "mean_b",
    "diff", "ci_low", "ci_high", "p_mann_whitney", "p_randomization", "p_holm",
}  # fmt: skip
EVENT_KEYS = {"event", "office", "item", "period", "estimate", "ci_low", "ci_high"}

SMALL_SPEC = """\
title = "Test"
period = "month"
items = ["stress_now", "rooms"]
sections = [
    "overview", "comparison", "trends", "distribution", "heatmap", "before_after", "methods",
]
permutations = 200

[groups.a]
label = "Pilot"
kind = "pilot"

[groups.b]
label = "Herkömmlich"
kind = "conventional"
"""


def response(
    office: str,
    when: dt.datetime,
    answers: dict[str, int],
    *,
    channel: Literal["qr", "kiosk"] = "qr",
    flags: tuple[str, ...] = (),
    response_id: uuid.UUID | None = None,
) -> StoredResponse:
    """A stored response of the default survey, as the tests below plant them."""
    return StoredResponse(
        id=response_id or uuid.uuid4(),
        office_id=office,
        survey_id="atmosphere",
        survey_version=1,
        channel=channel,
        placement=None,
        kiosk_id=None,
        lang="de",
        received_at=when,
        answers=answers,
        comment=None,
        flags=flags,
    )


def runtime_with(
    tmp_path: Path,
    offices: list[Office],
    rows: list[StoredResponse],
    events: Sequence[NewEvent] = (),
) -> Runtime:
    """A runtime on a new data directory holding these offices, responses and events."""
    runtime = Runtime.open(make_settings(tmp_path / "data"))

    def setup(cur: Any) -> None:
        insert_offices(cur, offices)
        commit_responses(cur, rows)
        for event in events:
            insert_event(cur, event)

    runtime.store.write(setup).result()
    return runtime


@pytest.fixture(scope="module")
def survey() -> Survey:
    found = load_surveys(default_surveys_dir()).latest("atmosphere")
    assert found is not None
    return found


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("report") / "demo"
    result = run_cli(["demo", "--data-dir", str(data), "--responses", "6000", "--no-serve"])
    assert result.returncode == 0, result.stderr
    return data


def build(demo: Path, tmp_path: Path, out_name: str, *extra: str) -> Path:
    spec = tmp_path / "small.toml"
    spec.write_text(SMALL_SPEC, encoding="utf-8")
    out = tmp_path / out_name
    result = run_cli(["report", str(spec), "--out", str(out), "--data-dir", str(demo), *extra])
    assert result.returncode == 0, result.stderr
    return out


def test_shipped_specifications_load(survey: Survey) -> None:
    for name in ("pilot-vs-conventional", "office-before-after"):
        spec = load_spec(spec_path(name), survey)
        assert spec.title
        assert "methods" in spec.sections


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (('title = "Test"\n', ""), "title"),
        (('"methods",', '"methods", "gossip",'), "sections"),
        (('items = ["stress_now", "rooms"]', 'items = ["stress_now", "mood"]'), "items"),
        (("permutations = 200", "permutations = 5"), "permutations"),
        (('kind = "pilot"', 'kind = "pilot"\noffices = ["a"]'), "groups.a"),
        (('kind = "pilot"', 'kind = "pioneer"'), "groups.a.kind"),
        (('period = "month"', 'period = "fortnight"'), "period"),
        (('title = "Test"', 'title = "Test"\ncolour = "red"'), "colour"),
        (('title = "Test"', 'title = "Test'), "invalid TOML"),
    ],
)
def test_bad_specifications_name_file_and_field(
    tmp_path: Path, survey: Survey, change: tuple[str, str], field: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(SMALL_SPEC.replace(*change), encoding="utf-8")
    with pytest.raises(ReportSpecError) as caught:
        load_spec(path, survey)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    assert field in message


def test_json_report_has_every_number_and_finds_the_planted_effects(
    demo: Path, tmp_path: Path
) -> None:
    report = json.loads(build(demo, tmp_path, "report.json").read_text(encoding="utf-8"))
    comparisons = {c["item"]: c for c in report["comparisons"]}
    for comparison in comparisons.values():
        assert set(comparison) >= COMPARISON_KEYS
        assert comparison["offices_a"] == 3
        assert comparison["offices_b"] == 3
    stress = comparisons["stress_now"]
    share, low, high = stress["top2_a"]  # pilots: share of the two calmest answers, Wilson
    assert low <= share <= high
    assert stress["top2_a"][0] > stress["top2_b"][0]
    assert stress["diff"] < -0.5  # planted: pilots about 0.8 less tense
    assert stress["ci_high"] < 0
    assert stress["p_mann_whitney"] < 0.001
    # three offices against three: the exact randomisation p-value cannot go below 1/10
    assert stress["p_randomization"] >= 0.1
    assert stress["randomization_exact"] is True
    posts = [e for e in report["events"] if e["period"] == "post"]
    assert {e["item"] for e in posts} == {"stress_now", "rooms"}
    for row in report["events"]:
        assert set(row) >= EVENT_KEYS
    rooms = next(e for e in posts if e["item"] == "rooms")
    assert rooms["ci_low"] > 0.5  # planted: rooms about 1.2 better after the redesign
    stress_event = next(e for e in posts if e["item"] == "stress_now")
    assert stress_event["ci_low"] < 0 < stress_event["ci_high"]  # nothing planted there
    assert report["k"] == 5
    assert report["counts"]["synthetic"] == report["counts"]["responses"]
    assert all(t["suppressed"] or t["n"] >= 5 for t in report["trends"])
    assert report["methods"]["minimum_group_size"] == 5


def test_small_groups_are_suppressed_in_the_report(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run_cli(["init", "--data-dir", str(data)]).returncode == 0
    for office, kind in (("p1", "pilot"), ("c1", "conventional")):
        add = ["office", "add", office, "--name", office, "--kind", kind, "--data-dir", str(data)]
        assert run_cli(add).returncode == 0
    csv_file = tmp_path / "history.csv"
    header = "id,office,survey,version,channel,placement,lang,time,"
    rows = [header + "stress_now,respect,rooms,effort,overall,comment"]
    for index in range(12):
        office = "p1" if index < 9 else "c1"  # only three responses for the other group
        rows.append(
            f"00000000-0000-4000-8000-{index:012d},{office},atmosphere,1,web,,de,"
            f"2026-03-0{1 + index % 5} 10:15," + f"{1 + index % 5}," * 5
        )
    csv_file.write_text("\n".join(rows) + "\n", encoding="utf-8")
    spec = tmp_path / "s.toml"
    spec.write_text(SMALL_SPEC, encoding="utf-8")
    out = tmp_path / "r.json"
    imported = run_cli(["import", "responses", str(csv_file), "--data-dir", str(data)])
    if imported.returncode != 0:
        pytest.fail(imported.stderr)
    result = run_cli(["report", str(spec), "--out", str(out), "--data-dir", str(data)])
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    assert all(c == {"item": c["item"], "suppressed": True} for c in report["comparisons"])
    hidden = [t for t in report["trends"] if t["group"] == "Herkömmlich"]
    assert hidden
    assert all(t["suppressed"] and "mean" not in t for t in hidden)
    assert all(d["group"] != "Herkömmlich" for d in report["distribution"])


def test_html_report_is_self_contained_and_renders_offline(
    demo: Path, tmp_path: Path, browser: Browser
) -> None:
    out = build(demo, tmp_path, "report.html", "--charts", str(tmp_path / "charts"))
    html = out.read_text(encoding="utf-8")
    from officepulse.report import _vega_bundle

    assert html.count(_vega_bundle()[:500]) == 1  # the libraries once, not once per chart
    assert "cdn.jsdelivr" not in html
    assert "Methoden" in html
    charts = sorted((tmp_path / "charts").glob("*.svg"))
    assert charts
    assert len(list((tmp_path / "charts").glob("*.png"))) == len(charts)
    context = browser.new_context(offline=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(out.as_uri())
    page.wait_for_function(
        "document.querySelectorAll('.chart svg').length"
        " === document.querySelectorAll('.chart').length"
    )
    assert errors == []
    assert [r for r in requests if not r.startswith("file:")] == []
    data: dict[str, Any] = json.loads(page.locator("#report-data").inner_text())
    assert data["title"] == "Test"
    context.close()


def test_report_errors_are_one_line(demo: Path, tmp_path: Path) -> None:
    bad_out = run_cli(["report", "pilot-vs-conventional", "--out", str(tmp_path / "r.docx"),
                       "--data-dir", str(demo)])  # fmt: skip
    assert bad_out.returncode == 1
    assert ".html, .json or .pdf" in bad_out.stderr
    missing = run_cli(["report", "no-such-spec", "--out", str(tmp_path / "r.json"),
                       "--data-dir", str(demo)])  # fmt: skip
    assert missing.returncode == 1
    assert "no such report specification" in missing.stderr
    assert "Traceback" not in missing.stderr + bad_out.stderr


def test_context_section_adjusts_for_district_indicators(demo: Path, tmp_path: Path) -> None:
    districts = {
        "demo-muelheim-u25": ("Mülheim an der Ruhr", "innenstadt", 14.1, 21.0),
        "demo-muelheim-styrum": ("Mülheim an der Ruhr", "styrum", 16.3, 24.5),
        "demo-essen-katernberg": ("Essen", "katernberg", 19.8, 31.2),
        "demo-muelheim-hauptstelle": ("Mülheim an der Ruhr", "stadtmitte", 12.0, 18.4),
        "demo-essen-mitte": ("Essen", "stadtkern", 15.5, 26.7),
        "demo-oberhausen-mitte": ("Oberhausen", "alt-oberhausen", 17.2, 27.9),
    }
    lines = ["city,district_id,district_name,year,indicator,value,unit,source"]
    for city, district, density, quota in districts.values():
        lines.append(f"{city},{district},{district},2025,unemp_density_15_64,{density},%,test")
        lines.append(f"{city},{district},{district},2025,sgb2_quota,{quota},%,test")
    csv_file = tmp_path / "districts.csv"
    csv_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    imported = run_cli(["districts", "import", str(csv_file), "--data-dir", str(demo)])
    assert imported.returncode == 0, imported.stderr
    for office, (city, district, _d, _q) in districts.items():
        mapped = run_cli(
            ["districts", "map", office, "--city", city, "--district-id", district,
             "--data-dir", str(demo)]
        )  # fmt: skip
        assert mapped.returncode == 0, mapped.stderr
    spec = tmp_path / "context.toml"
    spec.write_text(SMALL_SPEC.replace('"methods",', '"methods", "context",'), encoding="utf-8")
    out = tmp_path / "context.json"
    result = run_cli(["report", str(spec), "--out", str(out), "--data-dir", str(demo)])
    assert result.returncode == 0, result.stderr
    context = json.loads(out.read_text(encoding="utf-8"))["context"]
    assert context["available"] is True
    assert context["indicators"] == ["sgb2_quota", "unemp_density_15_64"]
    adjusted = {a["item"]: a for a in context["adjusted"]}
    assert set(adjusted) == {"stress_now", "rooms"}
    assert adjusted["stress_now"]["raw_diff"] < 0  # pilots less tense, before adjustment
    assert adjusted["stress_now"]["n_offices"] == 6
    assert adjusted["stress_now"]["caveat"]  # six offices, three parameters: said plainly
    assert set(context["neighbours"]) == {
        "demo-muelheim-u25", "demo-muelheim-styrum", "demo-essen-katernberg",
    }  # fmt: skip
    matched = context["matched"]
    assert {m["pilot"] for m in matched} == set(context["neighbours"])
    assert all(m["caveat"] for m in matched)  # one office against one: said plainly
    html_out = tmp_path / "context.html"
    result = run_cli(["report", str(spec), "--out", str(html_out), "--data-dir", str(demo)])
    assert result.returncode == 0, result.stderr
    assert "Kontext der Stadtteile" in html_out.read_text(encoding="utf-8")


# -- differencing: a filtered report next to the unfiltered one ---------------------------------


def _differencing_runtime(tmp_path: Path) -> Runtime:
    offices = [Office(id=f"p{i}", name=f"Pilot {i}", kind="pilot") for i in range(2)] + [
        Office(id=f"c{i}", name=f"Herkömmlich {i}", kind="conventional") for i in range(2)
    ]
    rows = []
    start = dt.datetime(2026, 1, 5, 10)
    for office in offices:
        for i in range(30):
            # Pilot offices: 2 of their 60 responses came by kiosk; the rest by QR code.
            channel: Literal["qr", "kiosk"] = "kiosk" if office.kind == "pilot" and i == 0 else "qr"
            # January has 3 responses per group, February and March the rest.
            month = 0 if i < 2 and office.id.endswith("0") else 1 + i % 2
            when = start + dt.timedelta(days=31 * month + i % 7)
            answers = {"stress_now": 1 + i % 5, "rooms": 1 + (i * 3) % 5}
            rows.append(response(office.id, when, answers, channel=channel))
    return runtime_with(tmp_path, offices, rows)


def test_a_filter_that_leaves_out_fewer_than_k_hides_the_filtered_numbers(
    tmp_path: Path, survey: Survey
) -> None:
    import msgspec

    from officepulse.report import FilterSpec, build_report

    spec_file = tmp_path / "small.toml"
    spec_file.write_text(SMALL_SPEC, encoding="utf-8")
    spec = load_spec(spec_file, survey)
    runtime = _differencing_runtime(tmp_path)
    try:
        plain = build_report(runtime, spec, None, None)
        assert not any(c["suppressed"] for c in plain.comparisons)
        qr_only = msgspec.structs.replace(spec, filters=FilterSpec(channel="qr"))
        filtered = build_report(runtime, qr_only, None, None)
        # The QR-only pilot figures minus the plain ones would be the 2 kiosk responses.
        assert all(c["suppressed"] for c in filtered.comparisons)
        assert not [d for d in filtered.distribution if d["group"] == "Pilot"]
        pilot = {(t["item"], t["period"]): t["suppressed"] for t in filtered.trends
                 if t["group"] == "Pilot"}  # fmt: skip
        # February holds one of the kiosk responses, March none: only March keeps its numbers.
        assert pilot[("rooms", "2026-02-01")] is True
        assert pilot[("rooms", "2026-03-01")] is False
        # Complementary suppression over periods: January (3 responses per group) is hidden,
        # and so is one more month, so that the total cannot give January back.
        for group in ("Pilot", "Herkömmlich"):
            months = [t for t in plain.trends if t["group"] == group and t["item"] == "rooms"]
            assert sum(t["suppressed"] for t in months) >= 2 or all(t["suppressed"] for t in months)
    finally:
        runtime.close()


def _heatmap_runtime(tmp_path: Path) -> Runtime:
    """Heatmap cells whose flagged or unverified responses number 2, 5 or none."""
    offices = [Office(id="p0", name="Pilot", kind="pilot"),
               Office(id="c0", name="Herkömmlich", kind="conventional")]  # fmt: skip
    monday = dt.datetime(2026, 1, 5)
    # (day after Monday, hour): (plain responses, flagged ones, of the plain ones verified)
    cells = {(0, 10): (6, 2, 0), (1, 11): (6, 0, 0), (2, 12): (6, 5, 0),
             (3, 13): (9, 0, 7), (4, 14): (10, 0, 10)}  # fmt: skip
    rows = []
    for (day, hour), (plain, flagged, verified) in cells.items():
        for i in range(plain + flagged):
            flags: tuple[str, ...] = ("repeat",) if i >= plain else ()
            if i < verified:
                flags = ("verified_onsite",)
            when = monday + dt.timedelta(days=day, hours=hour)
            answers = {"stress_now": 1 + i % 5, "rooms": 3}
            rows.append(response(offices[i % 2].id, when, answers, flags=flags))
    return runtime_with(tmp_path, offices, rows)


def test_heatmap_cells_a_filter_changes_by_fewer_than_k_are_hidden(
    tmp_path: Path, survey: Survey
) -> None:
    """Next to the default heatmap, a cell of a filtered one must not give away the few
    responses the filter added or left out."""
    import msgspec

    from officepulse.aggregates import Filters, weekday_hour
    from officepulse.report import FilterSpec, build_report

    spec_file = tmp_path / "small.toml"
    spec_file.write_text(SMALL_SPEC, encoding="utf-8")
    spec = load_spec(spec_file, survey)
    runtime = _heatmap_runtime(tmp_path)

    def shown(filters: FilterSpec) -> dict[tuple[int, int], int | None]:
        built = build_report(runtime, msgspec.structs.replace(spec, filters=filters), None, None)
        cells = {(c["weekday"], c["hour"]): c["n"] for c in built.heatmap}
        # the path for reports whose groups hold no office (all offices) agrees
        every_office = runtime.store.read(
            lambda cur: weekday_hour(
                cur,
                Filters(
                    include_flagged=filters.include_flagged, verified_only=filters.verified_only
                ),
                "stress_now",
                5,
            )
        )
        assert {(c["weekday"], c["hour"]): c["n"] for c in every_office} == cells
        return cells

    try:
        assert shown(FilterSpec()) == {(1, 10): 6, (2, 11): 6, (3, 12): 6, (4, 13): 9, (5, 14): 10}
        # with the flagged responses: Monday's cell differs from the default by 2 (hidden),
        # Wednesday's by 5 = k (shown)
        assert shown(FilterSpec(include_flagged=True)) == {
            (1, 10): None, (2, 11): 6, (3, 12): 11, (4, 13): 9, (5, 14): 10,
        }  # fmt: skip
        # verified only: Thursday leaves out 2 of 9 (hidden), Friday none (shown)
        assert shown(FilterSpec(verified_only=True)) == {(4, 13): None, (5, 14): 10}
    finally:
        runtime.close()


def test_event_estimates_resting_on_fewer_than_k_office_responses_are_hidden(
    tmp_path: Path, survey: Survey
) -> None:
    """An event-study point for a period in which the office had fewer than k responses, and a
    before/after effect with fewer than k on either side, would describe those few."""
    from officepulse.report import build_report

    offices = [Office(id="p0", name="Pilot 0", kind="pilot"),
               Office(id="p1", name="Pilot 1", kind="pilot"),
               Office(id="c0", name="Herkömmlich 0", kind="conventional"),
               Office(id="c1", name="Herkömmlich 1", kind="conventional")]  # fmt: skip
    # responses per month, January to April; p0's event in March, p1's in April
    per_month = {"p0": [2, 10, 10, 10], "p1": [10, 10, 10, 3], "c0": [10] * 4, "c1": [10] * 4}
    rows = [
        response(
            office,
            dt.datetime(2026, 1 + month, 5 + i % 20, 10),
            {"stress_now": 1 + (i + month) % 5, "rooms": 1 + (i * 3 + month) % 5},
        )
        for office, counts in per_month.items()
        for month, count in enumerate(counts)
        for i in range(count)
    ]
    events = [
        NewEvent(office="p0", date=dt.date(2026, 3, 9), kind="redesign"),
        NewEvent(office="p1", date=dt.date(2026, 4, 1), kind="move"),
    ]
    spec_file = tmp_path / "small.toml"
    spec_file.write_text(SMALL_SPEC, encoding="utf-8")
    runtime = runtime_with(tmp_path, offices, rows, events)
    try:
        built = build_report(runtime, load_spec(spec_file, survey), None, None)
    finally:
        runtime.close()
    rooms = [e for e in built.events if e["item"] == "rooms"]
    p0 = {e["period"]: e for e in rooms if e["office"] == "p0"}
    assert sorted(p0, key=str) == sorted([-2, -1, 0, 1, "post"], key=str)
    assert p0[-2]["suppressed"]
    assert p0[-2]["estimate"] is None
    assert p0[-1]["estimate"] == 0.0  # the reference period
    for shown in (0, 1, "post"):
        assert not p0[shown]["suppressed"]
        assert p0[shown]["estimate"] is not None
    p1 = {e["period"]: e for e in rooms if e["office"] == "p1"}
    assert p1[0]["suppressed"]  # April: 3 responses
    assert p1["post"]["estimate"] is None
    assert "p" not in p1["post"]  # nor its p-value
    assert p1["post"]["suppressed"]
    assert "fewer than 5 responses of p1" in p1["post"]["caveat"]
    for hidden in (p0[-2], p1[0], p1["post"]):
        assert hidden["ci_low"] is None
        assert hidden["ci_high"] is None


# -- every number against the response-level statistics ----------------------------------------

REFERENCE_SPEC = SMALL_SPEC.replace(
    'items = ["stress_now", "rooms"]', 'items = ["stress_now", "rooms", "heard"]'
)


def _varied_runtime(tmp_path: Path) -> Runtime:
    """Eight offices over six months: flagged, verified and kiosk responses, a skipped item,
    an office that opens late, and a redesign in one conventional office."""
    import numpy as np

    offices = [Office(id=f"p{i}", name=f"Pilot {i}", kind="pilot") for i in range(3)] + [
        Office(id=f"c{i}", name=f"Herkömmlich {i}", kind="conventional") for i in range(5)
    ]
    rng = np.random.default_rng(7)
    rows = []
    for index, office in enumerate(offices):
        level = 2.5 + rng.normal(0, 0.4) + (0.6 if office.kind == "pilot" else 0.0)
        for month in range(3 if office.id == "c4" else 0, 6):
            for _ in range(int(rng.integers(4, 30))):
                shift = 0.9 if office.id == "c0" and month >= 3 else 0.0
                answers = {
                    item: int(np.clip(np.round(rng.normal(level + shift, 1.1)), 1, 5))
                    for item in ("stress_now", "rooms", "heard")
                    if item != "heard" or rng.random() < 0.6
                }
                flags: tuple[str, ...] = ()
                if rng.random() < 0.05:
                    flags = ("repeat",)
                elif rng.random() < 0.2:
                    flags = ("verified_onsite",)
                response_id = uuid.UUID(int=int(rng.integers(0, 2**62)))
                channel: Literal["qr", "kiosk"] = "kiosk" if rng.random() < 0.3 else "qr"
                when = dt.datetime(2026, 1 + month, int(rng.integers(1, 28))) + dt.timedelta(
                    hours=int(rng.integers(8, 16)) + 24 * index % 3
                )
                rows.append(
                    response(
                        office.id,
                        when,
                        answers,
                        channel=channel,
                        flags=flags,
                        response_id=response_id,
                    )
                )
    events = [NewEvent(office="c0", date=dt.date(2026, 4, 15), kind="redesign")]
    return runtime_with(tmp_path, offices, rows, events)


def test_report_numbers_equal_the_response_level_statistics(tmp_path: Path, survey: Survey) -> None:
    """The report computes from counts; on the responses themselves officepulse.stats (scipy,
    statsmodels) and aggregates.weekday_hour give the same numbers."""
    import msgspec
    import numpy as np
    import pandas as pd
    from scipy import stats as sps

    from officepulse import stats
    from officepulse.aggregates import Filters, weekday_hour
    from officepulse.report import build_report

    from .test_cellstats import assert_same

    spec_file = tmp_path / "reference.toml"
    spec_file.write_text(REFERENCE_SPEC, encoding="utf-8")
    spec = load_spec(spec_file, survey)
    runtime = _varied_runtime(tmp_path)
    try:
        built = build_report(runtime, spec, None, None)

        def responses(cur: Any) -> pd.DataFrame:
            found = cur.execute(
                "SELECT office_id, date_trunc('month', received_at)::DATE, answers, flags"
                " FROM responses"
            ).fetchall()
            return pd.DataFrame(found, columns=["office", "period", "answers", "flags"])

        frame = runtime.store.read(responses)
        heat = runtime.store.read(
            lambda cur: weekday_hour(cur, Filters(offices=tuple(built.groups["a"]["offices"]
                                                                + built.groups["b"]["offices"])),
                                     "stress_now", 5)
        )  # fmt: skip
    finally:
        runtime.close()
    frame = frame.loc[[not set(f) & {"repeat", "burst"} for f in frame["flags"]]]
    frame["group"] = np.where(frame["office"].str.startswith("p"), "Pilot", "Herkömmlich")
    assert built.counts["responses"] == len(frame)
    assert built.counts["excluded_flagged"] > 0
    assert built.heatmap == heat

    reference: list[stats.Comparison] = []
    for item in ("stress_now", "rooms", "heard"):
        answered = frame.assign(value=[a.get(item, np.nan) for a in frame["answers"]])
        answered = answered.loc[answered["value"].notna()]
        higher = item != "stress_now"
        reference.append(
            stats.compare_groups(
                answered,
                item,
                a="Pilot",
                b="Herkömmlich",
                permutations=200,
                higher_is_better=higher,
            )
        )
        shown = next(c for c in built.comparisons if c["item"] == item)
        best = (4, 5) if higher else (1, 2)
        for side, group in (("a", "Pilot"), ("b", "Herkömmlich")):
            values = answered.loc[answered["group"] == group, "value"].to_numpy(dtype=float)
            ci = stats.mean_ci(values)
            share = stats.top2_share(values, best=best)
            assert_same(shown[f"mean_ci_{side}"], [ci.ci_low, ci.ci_high])
            assert_same(shown[f"top2_{side}"], [share.share, share.ci_low, share.ci_high])
            counted = np.unique(values, return_counts=True)
            assert [
                (d["value"], d["count"])
                for d in built.distribution
                if d["item"] == item and d["group"] == group
            ] == [(int(v), int(n)) for v, n in zip(*counted, strict=True)]
        for row in (t for t in built.trends if t["item"] == item and not t["suppressed"]):
            cell = answered.loc[
                (answered["group"] == row["group"])
                & (answered["period"].astype(str) == row["period"]),
                "value",
            ]
            low, high = sps.t.interval(0.95, len(cell) - 1, cell.mean(), sps.sem(cell))
            assert row["n"] == len(cell)
            assert_same([row["mean"], row["ci_low"], row["ci_high"]], [cell.mean(), low, high])

        event_rows = [e for e in built.events if e["item"] == item]
        result = stats.did(
            answered.loc[:, ["office", "period", "value"]],
            "c0",
            dt.date(2026, 4, 1),
            comparison_offices=[o for o in answered["office"].unique() if o != "c0"],
        )
        post = next(e for e in event_rows if e["period"] == "post")
        assert_same(
            [post["estimate"], post["ci_low"], post["ci_high"], post["p"], post["pre_trend_p"]],
            [result.estimate, result.ci_low, result.ci_high, result.p, result.pre_trend_p],
        )
        assert (post["n"], post["caveat"]) == (result.n, result.caveat)
        assert_same(
            [[e["period"], e["estimate"], e["ci_low"], e["ci_high"]] for e in event_rows[:-1]],
            [[p.period_offset, p.estimate, p.ci_low, p.ci_high] for p in result.event_study],
        )
    for shown, expected in zip(built.comparisons, stats.holm(reference), strict=True):
        assert_same(
            {key: shown[key] for key in msgspec.structs.asdict(expected)},
            msgspec.structs.asdict(expected),
        )
