"""officepulse.cellstats: every statistic from counts equals the response-level reference.

The reference is :mod:`officepulse.stats` (statsmodels and scipy on one row per response).
Each test builds responses, counts them, and compares every field of the two results: numbers
to 1e-9, caveats, flags and counts exactly — on random data and on the degenerate cases
(one office per group, one treated office, missing periods, ties everywhere, identical
answers, collinear designs).
"""

from __future__ import annotations

import math
import re
import warnings
from typing import Any

import msgspec
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from officepulse import cellstats, stats
from officepulse.cellstats import CountTable

SEEDS = st.integers(min_value=0, max_value=2**32 - 1)


def assert_same(counted: Any, reference: Any, path: str = "") -> None:
    """Every field equal: floats to 1e-9 (NaN equals NaN), everything else exactly."""
    if isinstance(reference, msgspec.Struct):
        assert type(counted) is type(reference), path
        for field in reference.__struct_fields__:
            assert_same(getattr(counted, field), getattr(reference, field), f"{path}.{field}")
    elif isinstance(reference, dict):
        assert set(counted) == set(reference), path
        for key in reference:
            assert_same(counted[key], reference[key], f"{path}.{key}")
    elif isinstance(reference, list | tuple):
        assert len(counted) == len(reference), path
        for index, (c, r) in enumerate(zip(counted, reference, strict=True)):
            assert_same(c, r, f"{path}[{index}]")
    elif isinstance(reference, float) and not isinstance(counted, bool):
        assert isinstance(counted, float), path
        if math.isnan(reference):
            assert math.isnan(counted), f"{path}: {counted} is not NaN"
        else:
            assert math.isclose(counted, reference, rel_tol=1e-9, abs_tol=1e-10), (
                f"{path}: {counted!r} != {reference!r}"
            )
    else:
        assert counted == reference, f"{path}: {counted!r} != {reference!r}"


def counts_of(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    answers, counts = np.unique(values[np.isfinite(values)], return_counts=True)
    return answers, counts


def table_of(df: pd.DataFrame, period: str | None = None) -> CountTable:
    periods = df[period].tolist() if period else [0] * len(df)
    return CountTable.of_responses(df["office"].tolist(), periods, df["value"].to_numpy())


# --------------------------------------------------------------------------- mean and share

ratings = st.lists(st.integers(min_value=1, max_value=5), max_size=60)


@settings(max_examples=60, deadline=None)
@given(ratings, st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_mean_ci_from_counts_equals_the_reference(answers: list[int], level: float) -> None:
    values = np.asarray(answers, dtype=np.float64)
    assert_same(cellstats.mean_ci(*counts_of(values), level=level), stats.mean_ci(values, level))


@settings(max_examples=60, deadline=None)
@given(ratings, st.sampled_from([(4, 5), (1, 2)]), st.sampled_from([0.9, 0.95]))
def test_top2_share_from_counts_equals_the_reference(
    answers: list[int], best: tuple[int, int], level: float
) -> None:
    values = np.asarray(answers, dtype=np.float64)
    assert_same(
        cellstats.top2_share(*counts_of(values), best=best, level=level),
        stats.top2_share(values, best=best, level=level),
    )


def test_descriptives_of_a_large_sample_and_of_identical_answers() -> None:
    rng = np.random.default_rng(3)
    values = rng.integers(1, 6, size=200_000).astype(np.float64)
    assert_same(cellstats.mean_ci(*counts_of(values)), stats.mean_ci(values))
    assert_same(cellstats.top2_share(*counts_of(values)), stats.top2_share(values))
    same = np.full(40, 3.0)
    assert_same(cellstats.mean_ci(*counts_of(same)), stats.mean_ci(same))
    assert cellstats.mean_ci([3.0], [40]).caveat == stats.mean_ci(same).caveat


# --------------------------------------------------------------------------- two groups


def random_groups(
    seed: int, *, max_offices: int = 6, max_per_office: int = 40, spread: float = 1.0
) -> pd.DataFrame:
    """Responses of 1..max_offices offices per group, each with its own answer distribution."""
    rng = np.random.default_rng(seed)
    frames = []
    for group in ("pilot", "conventional"):
        for j in range(int(rng.integers(1, max_offices + 1))):
            size = int(rng.integers(1, max_per_office + 1))
            weights = rng.dirichlet(np.full(5, spread))
            values = rng.choice(np.arange(1.0, 6.0), size=size, p=weights)
            frames.append(pd.DataFrame({"group": group, "office": f"{group}-{j}", "value": values}))
    return pd.concat(frames, ignore_index=True)


def compare_both(df: pd.DataFrame, **kwargs: Any) -> tuple[Any, Any]:
    groups = dict(zip(df["office"], df["group"], strict=True))
    counted = cellstats.compare_groups(table_of(df), "x", groups, **kwargs)
    return counted, stats.compare_groups(df, "x", **kwargs)


@settings(max_examples=40, deadline=None)
@given(SEEDS, st.sampled_from([0, 50, 400]), st.booleans())
def test_compare_groups_from_counts_equals_the_reference(
    seed: int, permutations: int, higher_is_better: bool
) -> None:
    df = random_groups(seed)
    counted, reference = compare_both(
        df, permutations=permutations, seed=seed % 7, higher_is_better=higher_is_better
    )
    assert_same(counted, reference)


@pytest.mark.parametrize(
    "case",
    [
        "one office per group",
        "one office in a",
        "identical answers",
        "ties everywhere",
        "untied few responses",
        "group below k",
        "many offices",
    ],
)
def test_compare_groups_edge_cases_equal_the_reference(case: str) -> None:
    rng = np.random.default_rng(len(case))

    def office(group: str, name: str, values: list[float] | np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({"group": group, "office": name, "value": np.asarray(values, float)})

    if case == "one office per group":
        parts = [office("pilot", "p", rng.integers(1, 6, 50)), office("conventional", "c", [2] * 9)]
    elif case == "one office in a":
        parts = [office("pilot", "p", rng.integers(1, 6, 20))] + [
            office("conventional", f"c{i}", rng.integers(1, 6, 15)) for i in range(4)
        ]
    elif case == "identical answers":
        parts = [
            office(g, f"{g}{i}", [4] * 12) for g in ("pilot", "conventional") for i in range(3)
        ]
    elif case == "ties everywhere":
        parts = [office("pilot", f"p{i}", [1, 1, 5, 5]) for i in range(2)] + [
            office("conventional", f"c{i}", [5, 5, 1, 1, 3]) for i in range(3)
        ]
    elif case == "untied few responses":
        # No answer given twice: scipy's exact Mann-Whitney distribution.
        parts = [
            office("pilot", "p0", [1]),
            office("pilot", "p1", [4]),
            office("conventional", "c0", [2]),
            office("conventional", "c1", [3, 5]),
        ]
    elif case == "group below k":
        parts = [
            office("pilot", "p0", [2, 3]),
            office("pilot", "p1", [1]),
            *(office("conventional", f"c{i}", rng.integers(1, 6, 30)) for i in range(5)),
        ]
    else:
        parts = [
            office("pilot" if i < 12 else "conventional", f"o{i:02d}", rng.integers(1, 6, 25))
            for i in range(60)
        ]
    df = pd.concat(parts, ignore_index=True)
    for permutations in (0, 100, 10_000):
        counted, reference = compare_both(df, permutations=permutations)
        assert_same(counted, reference)


def test_compare_groups_rejects_what_the_reference_rejects() -> None:
    df = random_groups(1)
    groups = dict(zip(df["office"], df["group"], strict=True))
    with pytest.raises(ValueError, match="must differ"):
        cellstats.compare_groups(table_of(df), "x", groups, a="pilot", b="pilot")
    only_a = df.loc[df["group"] == "pilot"]
    with pytest.raises(ValueError, match="no responses") as reference:
        stats.compare_groups(only_a, "x")
    with pytest.raises(ValueError, match=re.escape(str(reference.value))):
        cellstats.compare_groups(table_of(only_a), "x", groups)


def test_holm_equals_multipletests_and_keeps_the_order() -> None:
    from statsmodels.stats.multitest import multipletests

    p = np.asarray([0.04, 0.001, 0.2, 0.04, 0.9, 0.011])
    assert np.array_equal(cellstats._holm_adjust(p), multipletests(p, method="holm")[1])


# --------------------------------------------------------------------------- DiD


def random_panel(
    seed: int,
    *,
    offices: int,
    periods: int,
    treated: tuple[int, ...],
    event: int,
    empty_share: float = 0.0,
    max_per_cell: int = 25,
) -> pd.DataFrame:
    """Office x period responses with effects; some cells (never a whole office) left empty."""
    rng = np.random.default_rng(seed)
    level = rng.normal(3.0, 0.4, offices)
    trend = rng.normal(0.0, 0.2, periods)
    frames = []
    for o in range(offices):
        for t in range(periods):
            if t > 0 and rng.random() < empty_share:
                continue
            mu = level[o] + trend[t] + (0.7 if o in treated and t >= event else 0.0)
            size = int(rng.integers(1, max_per_cell + 1))
            values = np.clip(np.round(rng.normal(mu, 1.0, size)), 1, 5)
            frames.append(pd.DataFrame({"office": f"o{o}", "period": t, "value": values}))
    return pd.concat(frames, ignore_index=True)


SINGULAR_WALD = "covariance of constraints does not have full rank"


def zero_width_as_such(result: Any) -> Any:
    """An interval whose half-width is below 1e-7 made exactly zero wide (NaN included).

    A variance that is zero in exact arithmetic (a cluster-robust variance with fewer offices
    than coefficients) comes out as rounding noise of about 1e-17, its square root as 1e-8
    or NaN when the noise is negative; no two computations agree on that noise.
    """

    def fix(estimate: float, bound: float) -> float:
        return estimate if not abs(bound - estimate) >= 1e-7 else bound

    points = [
        msgspec.structs.replace(
            p, ci_low=fix(p.estimate, p.ci_low), ci_high=fix(p.estimate, p.ci_high)
        )
        for p in result.event_study
    ]
    return msgspec.structs.replace(
        result,
        ci_low=fix(result.estimate, result.ci_low),
        ci_high=fix(result.estimate, result.ci_high),
        event_study=points,
    )


def without_wald(caveat: str | None) -> str:
    return re.sub(
        r"; numerical warning \(ValueWarning: covariance of constraints[^)]*\)", "", caveat or ""
    )


def did_both(df: pd.DataFrame, treated: Any, event: Any, **kwargs: Any) -> tuple[Any, Any]:
    """Both results, or both errors with the same message.

    statsmodels' ``conf_int`` takes the square root of every variance, including those of
    fixed effects that rounding made slightly negative: the reference may warn where the
    numbers of interest are fine, so its RuntimeWarnings are ignored (ours are errors).
    """
    failure: Exception | None = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            reference = stats.did(df, treated, event, **kwargs)
    except (ValueError, ZeroDivisionError) as exc:
        failure = exc
    if isinstance(failure, ValueError):
        with pytest.raises(ValueError, match=re.escape(str(failure))):
            cellstats.did(table_of(df, "period"), treated, event, **kwargs)
        return None, None
    if failure is not None:
        # The reference crashes on a regression without residual degrees of freedom (then we
        # say it cannot be estimated) and on a pre-trend test without any variance (then our
        # test has no p-value).
        outcome: Any
        try:
            outcome = cellstats.did(table_of(df, "period"), treated, event, **kwargs)
        except ValueError as exc:
            outcome = str(exc)
        if isinstance(outcome, str):
            assert "fewer responses than parameters" in outcome
        else:
            assert outcome.pre_trend_p is not None
            assert math.isnan(outcome.pre_trend_p)
        return None, None
    counted = zero_width_as_such(cellstats.did(table_of(df, "period"), treated, event, **kwargs))
    reference = zero_width_as_such(reference)
    if SINGULAR_WALD in (reference.caveat or "") + (counted.caveat or ""):
        # A pre-trend covariance that is singular in exact arithmetic (cluster-robust, fewer
        # offices than pre-event periods): statsmodels' rank and F then depend on rounding
        # noise (see cellstats._wald_pre_trend); everything else must still agree.
        assert counted.pre_trend_p is not None
        assert reference.pre_trend_p is not None
        reference = msgspec.structs.replace(
            reference, pre_trend_p=counted.pre_trend_p, caveat=without_wald(reference.caveat)
        )
        counted = msgspec.structs.replace(counted, caveat=without_wald(counted.caveat))
    return counted, reference


@settings(max_examples=25, deadline=None)
@given(
    SEEDS,
    st.integers(min_value=3, max_value=7),
    st.integers(min_value=3, max_value=7),
    st.integers(min_value=1, max_value=3),
    st.sampled_from([0.0, 0.25]),
)
def test_did_from_counts_equals_the_reference(
    seed: int, offices: int, periods: int, n_treated: int, empty_share: float
) -> None:
    treated = tuple(range(min(n_treated, offices - 1)))
    event = 1 + seed % (periods - 1)
    df = random_panel(
        seed,
        offices=offices,
        periods=periods,
        treated=treated,
        event=event,
        empty_share=empty_share,
    )
    names = [f"o{i}" for i in treated]
    counted, reference = did_both(df, names if len(names) > 1 else names[0], event, permutations=30)
    assert_same(counted, reference)


def test_did_with_a_comparison_subset_and_date_periods() -> None:
    df = random_panel(5, offices=7, periods=6, treated=(0,), event=3)
    dated = df.assign(period=pd.Timestamp("2025-01-01") + pd.to_timedelta(df["period"] * 31, "D"))
    dated["period"] = dated["period"].dt.to_period("M").dt.start_time.dt.date
    event = sorted(dated["period"].unique())[3]
    counted, reference = did_both(dated, "o0", event, comparison_offices=["o2", "o3", "o5"])
    assert_same(counted, reference)


@pytest.mark.parametrize(
    "case",
    [
        "identical answers",
        "treated office only after the event",
        "treated office missing before the event",
        "comparison office only before the event",
        "one comparison office",
        "disconnected panel",
        "single response cells",
    ],
)
def test_did_edge_cases_equal_the_reference(case: str) -> None:
    df = random_panel(11, offices=5, periods=6, treated=(0, 1), event=3)
    treated: Any = ["o0", "o1"]
    if case == "identical answers":
        df["value"] = 3.0
    elif case == "treated office only after the event":
        df = df.loc[~((df["office"] == "o0") & (df["period"] < 3))]
        treated = "o0"
    elif case == "treated office missing before the event":
        df = df.loc[~((df["office"] == "o0") & (df["period"] == 2))]
        treated = "o0"
    elif case == "comparison office only before the event":
        df = df.loc[~((df["office"] == "o4") & (df["period"] >= 3))]
    elif case == "one comparison office":
        df = df.loc[df["office"].isin(["o0", "o1", "o2"])]
    elif case == "disconnected panel":
        # o3 and o4 answer only in periods the others never answered in.
        df = df.loc[(df["office"].isin(["o3", "o4"])) == (df["period"] >= 4)]
        treated = "o0"
    else:
        df = df.groupby(["office", "period"], as_index=False).first()
    counted, reference = did_both(df, treated, 3, permutations=40)
    if case == "identical answers":
        # The reference's estimates are rounding noise (1e-15) and its p-values ratios of
        # noise; from counts every estimate is exactly 0 and no p-value exists.
        assert counted.estimate == 0.0
        assert math.isnan(counted.p)
        assert counted.pre_trend_p is not None
        assert math.isnan(counted.pre_trend_p)
        assert without_wald(counted.caveat) == reference.caveat
        reference = msgspec.structs.replace(
            reference, p=counted.p, pre_trend_p=counted.pre_trend_p, caveat=counted.caveat
        )
    assert_same(counted, reference)


def test_did_rejects_what_the_reference_rejects() -> None:
    df = random_panel(2, offices=4, periods=5, treated=(0,), event=2)
    for treated, event, comparison in (
        ("o0", 0, None),
        ("o0", 99, None),
        ("nowhere", 2, None),
        ("o0", 2, []),
    ):
        with pytest.raises(ValueError, match=r"^(no|treated)") as reference:
            stats.did(df, treated, event, comparison_offices=comparison)
        with pytest.raises(ValueError, match=re.escape(str(reference.value))):
            cellstats.did(table_of(df, "period"), treated, event, comparison)
