"""Charts are tested as Vega-Lite specs; rendering to images is behind the slow marker."""

from __future__ import annotations

import json
from typing import Any

import pytest

from officepulse import charts

COMPARISON = [
    {"item": "stress_now", "group": "pilot", "mean": 2.4, "ci_low": 2.2, "ci_high": 2.6, "n": 80},
    {"item": "stress_now", "group": "conventional", "mean": 3.2, "ci_low": 3.0, "ci_high": 3.4,
     "n": 120},
]  # fmt: skip


def spec(chart: Any) -> dict[str, Any]:
    result = chart.to_dict()
    assert isinstance(result, dict)
    return result


def test_comparison_has_bars_and_interval_bars_from_aggregates_only() -> None:
    result = spec(charts.comparison_chart(COMPARISON, "Anspannung"))
    marks = [layer["mark"]["type"] for layer in result["layer"]]
    assert marks == ["bar", "errorbar"]
    assert result["data"] == {"values": COMPARISON}
    assert "https://" not in json.dumps(result["data"])


def test_diverging_rows_split_the_neutral_answer_across_zero() -> None:
    counts = [
        {"label": "respect", "value": v, "count": c}
        for v, c in zip(range(1, 6), (1, 1, 2, 3, 3), strict=True)
    ]
    segments = charts.diverging_rows(counts)
    by_value = {s["value"]: s for s in segments}
    assert by_value[1]["start"] == pytest.approx(-0.3)
    assert by_value[3]["start"] == pytest.approx(-0.1)
    assert by_value[3]["end"] == pytest.approx(0.1)
    assert by_value[5]["end"] == pytest.approx(0.7)
    assert sum(s["share"] for s in segments) == pytest.approx(1.0)


def test_heatmap_marks_suppressed_cells_without_a_value() -> None:
    rows: list[dict[str, Any]] = [
        {"weekday": 1, "hour": 9, "mean": 3.4},
        {"weekday": 2, "hour": 9, "mean": None},
    ]
    values = spec(charts.heatmap_chart(rows, "Anspannung"))["data"]["values"]
    assert values[1]["mean"] is None
    assert values[1]["shown"].startswith("unterdrückt")
    assert values[0]["day"] == "Mo"


def test_event_study_marks_the_event() -> None:
    rows = [{"offset": o, "estimate": e, "ci_low": e - 0.3, "ci_high": e + 0.3}
            for o, e in ((-3, 0.1), (-2, 0.0), (0, 1.1), (1, 1.3))]  # fmt: skip
    result = spec(charts.event_study_chart(rows, "Räume"))
    marks = [layer["mark"]["type"] for layer in result["layer"]]
    assert marks == ["errorbar", "point", "rule", "rule"]


def test_trend_and_context_specs() -> None:
    trend = spec(charts.trend_chart([{"period": "2026-01", "group": "pilot", "mean": 3.0,
                                       "ci_low": 2.8, "ci_high": 3.2}], "Trend"))  # fmt: skip
    assert [layer["mark"]["type"] for layer in trend["layer"]] == ["area", "line"]
    context = spec(charts.context_chart([{"office": "a", "kind": "pilot", "indicator": 12.5,
                                          "mean": 3.1}], "SGB-II-Quote", "Kontext"))  # fmt: skip
    assert context["mark"]["type"] == "circle"


@pytest.mark.slow
def test_charts_render_to_svg_and_png_offline() -> None:
    import vl_convert

    chart = charts.comparison_chart(COMPARISON, "Anspannung")
    svg = vl_convert.vegalite_to_svg(chart.to_json())
    assert svg.startswith("<svg")
    png = vl_convert.vegalite_to_png(chart.to_json())
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
