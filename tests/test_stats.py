"""officepulse.stats: every statistic against a direct scipy/statsmodels computation, planted
effects recovered, null p-values not systematically small, and caveats for thin data."""

from __future__ import annotations

import itertools
import math

import msgspec
import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint
from statsmodels.stats.weightstats import DescrStatsW

from officepulse.stats import (
    CAVEAT_FEW_OFFICES,
    CAVEAT_FEW_PRE_PERIODS,
    CAVEAT_FEW_RESPONSES,
    CAVEAT_ONE_OFFICE_PER_GROUP,
    Comparison,
    adjusted_comparison,
    compare_groups,
    did,
    holm,
    mean_ci,
    nearest_neighbours,
    top2_share,
)

FloatArray = npt.NDArray[np.float64]

# --------------------------------------------------------------------------- synthetic data


def likert(rng: np.random.Generator, mu: float, size: int) -> FloatArray:
    """Integer ratings 1-5 whose expected value is exactly ``mu`` (for 2 <= mu < 4).

    floor(mu) plus a Bernoulli(frac(mu)) step plus symmetric -1/0/+1 noise: no clipping, so a
    planted difference in mu is a planted difference in the mean rating.
    """
    assert 2.0 <= mu < 4.0
    base = math.floor(mu)
    step = rng.random(size) < mu - base
    noise = rng.choice(np.array([-1.0, 0.0, 1.0]), size=size, p=[0.25, 0.5, 0.25])
    return np.asarray(base + step + noise, dtype=np.float64)


def two_groups(
    seed: int,
    *,
    pilots: int,
    conventionals: int,
    per_office: int,
    base: float = 3.3,
    effect: float = 0.0,
    office_sd: float = 0.15,
) -> pd.DataFrame:
    """One row per response; each office has its own random level around its group's mean."""
    rng = np.random.default_rng(seed)
    frames = []
    for group, count, mu in (
        ("pilot", pilots, base + effect),
        ("conventional", conventionals, base),
    ):
        for j in range(count):
            office_mu = float(np.clip(mu + rng.normal(0.0, office_sd), 2.0, 3.999))
            values = likert(rng, office_mu, per_office)
            frames.append(pd.DataFrame({"group": group, "office": f"{group}-{j}", "value": values}))
    return pd.concat(frames, ignore_index=True)


def panel(
    seed: int,
    *,
    offices: int = 6,
    periods: int = 8,
    per_cell: int = 30,
    treated: tuple[int, ...] = (0,),
    event: int = 4,
    effect: float = 0.0,
) -> pd.DataFrame:
    """Office x period responses with office and period effects and an effect after ``event``."""
    rng = np.random.default_rng(seed)
    office_effect = rng.normal(0.0, 0.2, offices)
    period_effect = rng.normal(0.0, 0.1, periods)
    frames = []
    for o in range(offices):
        for t in range(periods):
            planted = effect if (o in treated and t >= event) else 0.0
            mu = float(np.clip(2.5 + office_effect[o] + period_effect[t] + planted, 2.0, 3.999))
            frames.append(
                pd.DataFrame({"office": f"o{o}", "period": t, "value": likert(rng, mu, per_cell)})
            )
    return pd.concat(frames, ignore_index=True)


def office_mean_diff(df: pd.DataFrame, pilots: set[str]) -> float:
    means = df.groupby("office")["value"].mean()
    in_pilot = means.index.isin(sorted(pilots))
    return float(means[in_pilot].mean() - means[~in_pilot].mean())


SMALL = np.array([1, 2, 2, 3, 3, 3, 4, 4, 5, 5, 4, 2], dtype=np.float64)

# --------------------------------------------------------------------------- mean and share


def test_mean_ci_matches_scipy_and_statsmodels() -> None:
    result = mean_ci(SMALL)
    low, high = sps.t.interval(0.95, df=SMALL.size - 1, loc=SMALL.mean(), scale=sps.sem(SMALL))
    assert result.n == 12
    assert result.mean == pytest.approx(SMALL.mean())
    assert result.sd == pytest.approx(SMALL.std(ddof=1))
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high))
    assert (result.ci_low, result.ci_high) == pytest.approx(
        DescrStatsW(SMALL).tconfint_mean(alpha=0.05)
    )
    assert result.caveat == CAVEAT_FEW_RESPONSES

    ninety = mean_ci(SMALL, level=0.9)
    assert (ninety.ci_low, ninety.ci_high) == pytest.approx(
        sps.t.interval(0.9, df=11, loc=SMALL.mean(), scale=sps.sem(SMALL))
    )


def test_mean_ci_drops_missing_and_has_no_caveat_when_large() -> None:
    values = np.concatenate([np.tile(SMALL, 4), [np.nan, np.nan]])
    result = mean_ci(values)
    assert result.n == 48
    assert result.caveat is None


def test_mean_ci_degenerate_inputs_give_caveats_not_warnings() -> None:
    empty = mean_ci([])
    assert empty.n == 0
    assert math.isnan(empty.mean)
    assert empty.caveat == "no responses"
    one = mean_ci([4])
    assert one.mean == 4
    assert math.isnan(one.ci_low)
    assert one.caveat is not None
    same = mean_ci([3] * 40)
    assert (same.ci_low, same.ci_high) == (3.0, 3.0)
    assert same.caveat is not None
    assert "identical" in same.caveat
    with pytest.raises(ValueError, match="level"):
        mean_ci(SMALL, level=95)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=5), min_size=2, max_size=80))
def test_intervals_bracket_their_estimate(ratings: list[int]) -> None:
    m = mean_ci(ratings)
    assert m.ci_low <= m.mean <= m.ci_high
    s = top2_share(ratings)
    assert 0.0 <= s.ci_low <= s.share <= s.ci_high <= 1.0


def test_top2_share_matches_wilson_from_statsmodels() -> None:
    result = top2_share(SMALL)
    successes = int(np.isin(SMALL, [4, 5]).sum())
    assert (result.n, result.successes) == (12, successes)
    assert result.share == pytest.approx(successes / 12)
    assert (result.ci_low, result.ci_high) == pytest.approx(
        proportion_confint(successes, 12, alpha=0.05, method="wilson")
    )
    assert result.caveat == CAVEAT_FEW_RESPONSES

    # Lower-is-better items: the caller names the best categories.
    low_best = top2_share(SMALL, best=(1, 2))
    assert low_best.successes == 4
    assert (low_best.ci_low, low_best.ci_high) == pytest.approx(
        proportion_confint(4, 12, alpha=0.05, method="wilson")
    )


def test_top2_share_reproduces_the_worked_examples() -> None:
    # domain notes §4.2: 8/10 -> [0.49, 0.94]; 80/100 -> [0.71, 0.87]
    ten = top2_share([5] * 8 + [1] * 2)
    assert (round(ten.ci_low, 2), round(ten.ci_high, 2)) == (0.49, 0.94)
    hundred = top2_share([4] * 80 + [2] * 20)
    assert (round(hundred.ci_low, 2), round(hundred.ci_high, 2)) == (0.71, 0.87)
    assert hundred.caveat is None
    assert top2_share([]).caveat == "no responses"


# --------------------------------------------------------------------------- two groups


@pytest.fixture(scope="module")
def three_by_three() -> pd.DataFrame:
    """3 pilot and 3 conventional offices, 12 responses each: 20 possible assignments."""
    return two_groups(7, pilots=3, conventionals=3, per_office=12, effect=-0.5, office_sd=0.3)


def test_compare_groups_matches_direct_computations(three_by_three: pd.DataFrame) -> None:
    df = three_by_three
    result = compare_groups(df, "stress_now", higher_is_better=False)
    a = df.loc[df["group"] == "pilot", "value"].to_numpy()
    b = df.loc[df["group"] == "conventional", "value"].to_numpy()

    assert (result.n_a, result.n_b, result.offices_a, result.offices_b) == (36, 36, 3, 3)
    assert result.mean_a == pytest.approx(a.mean())
    assert result.mean_b == pytest.approx(b.mean())
    assert result.diff == pytest.approx(a.mean() - b.mean())

    frame = df.assign(pilot=(df["group"] == "pilot").astype(float))
    direct = smf.ols("value ~ pilot", data=frame).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(frame["office"])[0]}, use_t=True
    )
    assert direct.params["pilot"] == pytest.approx(result.diff)
    assert (result.ci_low, result.ci_high) == pytest.approx(tuple(direct.conf_int().loc["pilot"]))

    mw = sps.mannwhitneyu(a, b, alternative="two-sided")
    assert result.p_mann_whitney == pytest.approx(mw.pvalue)
    assert result.prob_superiority == pytest.approx(mw.statistic / (a.size * b.size))
    assert result.effect_size_kind == "rank-biserial"
    assert result.effect_size == pytest.approx(2 * mw.statistic / (a.size * b.size) - 1)

    assert result.caveat is not None
    assert CAVEAT_FEW_OFFICES in result.caveat
    # 3 of 6 with a symmetric statistic: the smallest attainable p is 2/20.
    assert "cannot fall below 0.10" in result.caveat


def test_randomization_is_exact_for_few_offices(three_by_three: pd.DataFrame) -> None:
    df = three_by_three
    result = compare_groups(df, "stress_now")
    assert result.randomization_exact
    assert result.permutations_used == 20

    offices = sorted(df["office"].unique())
    pilots = {o for o in offices if o.startswith("pilot")}
    observed = office_mean_diff(df, pilots)
    assert result.randomization_stat == pytest.approx(observed)
    brute = [office_mean_diff(df, set(chosen)) for chosen in itertools.combinations(offices, 3)]
    assert len(brute) == 20
    expected = sum(abs(s) >= abs(observed) - 1e-9 for s in brute) / 20
    assert result.p_randomization == pytest.approx(expected)


def test_randomization_monte_carlo_is_seeded_and_close_to_exact() -> None:
    # 7 of 14 offices: C(14, 7) = 3432 assignments.
    df = two_groups(3, pilots=7, conventionals=7, per_office=8, effect=-0.15)
    first = compare_groups(df, "stress_now", permutations=500, seed=11)
    again = compare_groups(df, "stress_now", permutations=500, seed=11)
    exact = compare_groups(df, "stress_now", permutations=5000)
    assert not first.randomization_exact
    assert first.permutations_used == 500
    assert first.p_randomization == again.p_randomization
    assert first.p_randomization is not None
    assert first.p_randomization >= 1 / 501
    assert exact.randomization_exact
    assert exact.permutations_used == math.comb(14, 7)
    assert exact.p_randomization is not None
    # Monte Carlo standard error at 500 draws is at most 0.022.
    assert abs(first.p_randomization - exact.p_randomization) < 0.07


def test_planted_pilot_effect_on_stress_is_recovered() -> None:
    df = two_groups(2024, pilots=8, conventionals=8, per_office=40, effect=-0.8)
    result = compare_groups(df, "stress_now", higher_is_better=False, permutations=2000)
    assert result.ci_low <= -0.8 <= result.ci_high
    assert result.ci_high < 0
    assert result.favours == "pilot"
    assert result.effect_size < 0
    assert result.p_randomization is not None
    assert result.p_randomization < 0.01
    assert result.caveat is None


def test_null_randomization_p_values_are_not_systematically_small() -> None:
    p_values = []
    for seed in range(20):
        df = two_groups(seed, pilots=6, conventionals=6, per_office=15, office_sd=0.3)
        result = compare_groups(df, "stress_now", permutations=500, seed=seed)
        assert not result.randomization_exact  # C(12, 6) = 924 > 500
        assert result.p_randomization is not None
        p_values.append(result.p_randomization)
    assert sum(p < 0.05 for p in p_values) < 4
    assert float(np.mean(p_values)) > 0.3


def test_one_office_per_group_is_flagged() -> None:
    df = two_groups(5, pilots=1, conventionals=1, per_office=50, effect=-0.8)
    result = compare_groups(df, "stress_now")
    assert result.caveat is not None
    assert CAVEAT_ONE_OFFICE_PER_GROUP in result.caveat
    assert math.isnan(result.ci_low)
    assert math.isnan(result.ci_high)
    # Two ways to label one of two offices "pilot": the test cannot say anything.
    assert (result.permutations_used, result.p_randomization) == (2, 1.0)

    one_pilot = compare_groups(two_groups(5, pilots=1, conventionals=4, per_office=50), "x")
    assert one_pilot.caveat is not None
    assert "only one office in group 'pilot'" in one_pilot.caveat


def test_few_responses_are_flagged() -> None:
    df = two_groups(6, pilots=2, conventionals=2, per_office=6)
    result = compare_groups(df, "x")
    assert result.caveat is not None
    assert CAVEAT_FEW_RESPONSES in result.caveat


def test_compare_groups_filters_a_long_table_and_rejects_bad_input() -> None:
    stress = two_groups(8, pilots=3, conventionals=3, per_office=20).assign(item="stress_now")
    rooms = two_groups(9, pilots=3, conventionals=3, per_office=20).assign(item="rooms")
    long = pd.concat([stress, rooms], ignore_index=True)
    assert compare_groups(long, "rooms").mean_a == pytest.approx(
        compare_groups(rooms.drop(columns="item"), "rooms").mean_a
    )
    with pytest.raises(ValueError, match="no responses"):
        compare_groups(long, "overall")
    mixed = stress.copy()
    mixed.loc[0, "office"] = "conventional-0"
    with pytest.raises(ValueError, match="both groups"):
        compare_groups(mixed, "stress_now")


def test_missing_values_from_nullable_columns_are_dropped() -> None:
    ratings = pd.Series([4, None, 5, 2, None, 3], dtype="Int64")
    assert mean_ci(ratings).n == 4
    assert top2_share(ratings).successes == 2

    df = two_groups(12, pilots=3, conventionals=3, per_office=10)
    clean = compare_groups(df, "x")
    holes = pd.concat(
        [
            df.assign(value=df["value"].astype("Int64")),
            pd.DataFrame({"group": ["pilot", "pilot"], "office": ["pilot-0", None]}),
        ],
        ignore_index=True,
    )
    holes.loc[len(holes) - 1, "value"] = 5
    assert holes["value"].isna().sum() == 1
    with_holes = compare_groups(holes, "x")
    assert with_holes.n_a == clean.n_a
    assert with_holes.diff == pytest.approx(clean.diff)


def test_identical_ratings_do_not_raise() -> None:
    df = two_groups(1, pilots=3, conventionals=3, per_office=10).assign(value=3.0)
    result = compare_groups(df, "x")
    assert result.diff == 0.0
    assert result.favours is None
    assert result.p_randomization == 1.0


# --------------------------------------------------------------------------- Holm


def test_holm_matches_multipletests() -> None:
    items = ["stress_now", "respect", "rooms", "overall"]
    comparisons = [
        compare_groups(two_groups(seed, pilots=4, conventionals=5, per_office=15, effect=eff), item)
        for seed, (item, eff) in enumerate(zip(items, [-0.6, 0.0, 0.3, 0.1], strict=True))
    ]
    adjusted = holm(comparisons)
    raw = [c.p_randomization for c in comparisons]
    assert all(p is not None for p in raw)
    expected = multipletests(np.asarray(raw, dtype=float), method="holm")[1]
    assert [c.p_holm for c in adjusted] == pytest.approx(list(expected))
    assert [c.item for c in adjusted] == items
    assert all(c.p_holm_basis == "randomization" for c in adjusted)
    assert all(c.p_holm is None for c in comparisons)  # inputs untouched


def test_holm_falls_back_to_mann_whitney_without_randomization() -> None:
    with_ri = compare_groups(two_groups(1, pilots=3, conventionals=3, per_office=20), "a")
    without = compare_groups(
        two_groups(2, pilots=3, conventionals=3, per_office=20), "b", permutations=0
    )
    assert without.p_randomization is None
    assert without.permutations_used == 0
    adjusted = holm([with_ri, without])
    assert with_ri.p_randomization is not None
    expected = multipletests(
        np.asarray([with_ri.p_randomization, without.p_mann_whitney]), method="holm"
    )[1]
    assert [c.p_holm for c in adjusted] == pytest.approx(list(expected))
    assert [c.p_holm_basis for c in adjusted] == ["randomization", "mann_whitney"]
    assert adjusted[1].caveat is not None
    assert "ignores clustering" in adjusted[1].caveat


def test_holm_rejects_different_comparisons() -> None:
    c = compare_groups(two_groups(1, pilots=2, conventionals=2, per_office=30), "x")
    other: Comparison = msgspec.structs.replace(c, group_b="another")
    with pytest.raises(ValueError, match="one comparison"):
        holm([c, other])
    assert holm([]) == []


# --------------------------------------------------------------------------- DiD


def with_treated_post(df: pd.DataFrame, treated: set[str], event: int) -> pd.DataFrame:
    return df.assign(
        treated_post=(df["office"].isin(sorted(treated)) & (df["period"] >= event)).astype(float)
    )


def test_did_matches_direct_formula_fit() -> None:
    df = panel(31, effect=0.6)
    result = did(df, "o0", 4)
    direct = smf.ols(
        "value ~ treated_post + C(office) + C(period)", data=with_treated_post(df, {"o0"}, 4)
    ).fit(cov_type="HC1", use_t=True)
    assert result.estimate == pytest.approx(direct.params["treated_post"])
    assert (result.ci_low, result.ci_high) == pytest.approx(
        tuple(direct.conf_int().loc["treated_post"])
    )
    assert result.p == pytest.approx(direct.pvalues["treated_post"])
    assert (result.n, result.offices, result.periods) == (len(df), 6, 8)
    assert result.se_kind.startswith("HC1")
    assert result.caveat is not None
    assert "one treated office" in result.caveat

    # Event study against the same regression written out by hand.
    frame = df.copy()
    offset = frame["period"] - 4
    treated = frame["office"] == "o0"
    names = {}
    for k in (-4, -3, -2, 0, 1, 2, 3):
        names[k] = f"d{k + 10}"
        frame[names[k]] = (treated & (offset == k)).astype(float)
    es = smf.ols(
        "value ~ " + " + ".join(names.values()) + " + C(office) + C(period)", data=frame
    ).fit(cov_type="HC1", use_t=True)
    points = {p.period_offset: p for p in result.event_study}
    assert sorted(points) == [-4, -3, -2, -1, 0, 1, 2, 3]
    assert points[-1].is_reference
    assert points[-1].estimate == 0.0
    for k, name in names.items():
        assert points[k].estimate == pytest.approx(es.params[name])
        assert (points[k].ci_low, points[k].ci_high) == pytest.approx(
            tuple(es.conf_int().loc[name])
        )
    wald = es.wald_test(f"{names[-4]} = 0, {names[-3]} = 0, {names[-2]} = 0", scalar=True)
    assert result.pre_trend_p == pytest.approx(float(wald.pvalue))


def test_did_randomization_is_placebo_over_offices() -> None:
    df = panel(32, effect=0.6)
    result = did(df, "o0", 4)
    assert result.randomization_exact
    assert result.permutations_used == 6
    placebo = []
    for office in sorted(df["office"].unique()):
        fit = smf.ols(
            "value ~ treated_post + C(office) + C(period)",
            data=with_treated_post(df, {office}, 4),
        ).fit()
        placebo.append(float(fit.params["treated_post"]))
    expected = np.mean(np.abs(placebo) >= abs(result.estimate) - 1e-9)
    assert result.p_randomization == pytest.approx(expected)
    assert "cannot fall below 0.17" in (result.caveat or "")


def test_planted_did_effect_on_rooms_is_recovered() -> None:
    df = panel(2025, offices=6, periods=8, per_cell=30, effect=1.2)
    result = did(df, "o0", 4)
    assert result.ci_low <= 1.2 <= result.ci_high
    assert result.ci_low > 0
    post = [p for p in result.event_study if p.period_offset >= 0]
    assert all(p.ci_low <= 1.2 <= p.ci_high for p in post)
    pre = [p for p in result.event_study if p.period_offset < -1]
    assert all(p.ci_low <= 0.0 <= p.ci_high for p in pre)
    assert result.pre_trend_p is not None
    assert result.pre_trend_p > 0.05
    # The treated office has the largest of the 6 placebo estimates.
    assert result.p_randomization == pytest.approx(1 / 6)


def test_did_clusters_by_office_with_several_treated_offices() -> None:
    df = panel(33, offices=8, treated=(0, 1), effect=1.0)
    result = did(df, ["o0", "o1"], 4, permutations=10)
    direct = smf.ols(
        "value ~ treated_post + C(office) + C(period)",
        data=with_treated_post(df, {"o0", "o1"}, 4),
    ).fit(
        cov_type="cluster",
        cov_kwds={"groups": pd.factorize(df["office"], sort=True)[0]},
        use_t=True,
    )
    assert result.estimate == pytest.approx(direct.params["treated_post"])
    assert (result.ci_low, result.ci_high) == pytest.approx(
        tuple(direct.conf_int().loc["treated_post"])
    )
    assert result.se_kind == "cluster-robust by office"
    assert result.caveat is not None
    assert CAVEAT_FEW_OFFICES in result.caveat
    # C(8, 2) = 28 placebo assignments exceed 10: seeded Monte Carlo.
    assert not result.randomization_exact
    assert result.permutations_used == 10
    assert result.treated_offices == ["o0", "o1"]


def test_did_with_one_pre_period_has_no_pre_trend_test() -> None:
    df = panel(34, periods=4, event=1, effect=1.0)
    result = did(df, "o0", 1)
    assert result.pre_trend_p is None
    assert result.caveat is not None
    assert CAVEAT_FEW_PRE_PERIODS in result.caveat
    assert [p.period_offset for p in result.event_study] == [-1, 0, 1, 2]


def test_did_accepts_date_periods_and_comparison_subset() -> None:
    df = panel(35, effect=0.8)
    months = pd.Timestamp("2025-01-01") + pd.to_timedelta(df["period"] * 31, unit="D")
    dated = df.assign(period=months.dt.to_period("M").dt.to_timestamp())
    event = pd.Timestamp("2025-05-01")
    assert did(dated, "o0", event).estimate == pytest.approx(did(df, "o0", 4).estimate)

    subset = did(df, "o0", 4, comparison_offices=["o1", "o2"])
    assert subset.offices == 3
    direct = smf.ols(
        "value ~ treated_post + C(office) + C(period)",
        data=with_treated_post(df.loc[df["office"].isin(["o0", "o1", "o2"])], {"o0"}, 4),
    ).fit()
    assert subset.estimate == pytest.approx(direct.params["treated_post"])


def test_did_rejects_impossible_designs() -> None:
    df = panel(36)
    with pytest.raises(ValueError, match="before the event"):
        did(df, "o0", 0)
    with pytest.raises(ValueError, match="at or after"):
        did(df, "o0", 99)
    with pytest.raises(ValueError, match="without responses"):
        did(df, "nowhere", 4)
    with pytest.raises(ValueError, match="comparison"):
        did(df, "o0", 4, comparison_offices=[])


# --------------------------------------------------------------------------- context


def test_nearest_neighbours_on_a_hand_made_table() -> None:
    table = pd.DataFrame(
        {
            "office": ["P1", "P2", "C1", "C2", "C3", "C4"],
            "group": ["pilot", "pilot", "conventional", "conventional", "conventional", "other"],
            "unemployment": [10.0, 4.0, 9.0, 5.0, 7.0, 10.0],
            "sgb2_quota": [20.0, 8.0, 18.0, 9.0, 30.0, 20.0],
            "constant": [1.0] * 6,
        }
    )
    indicators = ["unemployment", "sgb2_quota", "constant"]
    assert nearest_neighbours(table, indicators) == {"P1": ["C1"], "P2": ["C2"]}
    assert nearest_neighbours(table, indicators, k=2) == {"P1": ["C1", "C3"], "P2": ["C2", "C1"]}
    assert nearest_neighbours(table, indicators, k=5)["P1"] == ["C1", "C3", "C2"]

    # Same ranking as a direct scipy computation over the pilot and conventional rows.
    rows = table.loc[table["group"] != "other", ["unemployment", "sgb2_quota"]].to_numpy()
    z = sps.zscore(rows, axis=0)
    p1_to_conventional = np.linalg.norm(z[2:] - z[0], axis=1)
    assert list(np.argsort(p1_to_conventional)) == [0, 2, 1]

    with pytest.raises(ValueError, match="k must"):
        nearest_neighbours(table, indicators, k=0)
    with pytest.raises(ValueError, match="missing"):
        nearest_neighbours(table.assign(unemployment=np.nan), indicators)


def confounded_offices(seed: int, effect: float) -> pd.DataFrame:
    """Pilots sit in districts with high unemployment, which itself lowers the office mean."""
    rng = np.random.default_rng(seed)
    pilot = np.array([1] * 8 + [0] * 12, dtype=np.float64)
    unemployment = rng.normal(6.0, 1.0, 20) + 3.0 * pilot
    n = rng.integers(40, 120, 20).astype(np.float64)
    mean = 4.0 + effect * pilot - 0.3 * (unemployment - 6.0) + rng.normal(0.0, 0.1, 20)
    return pd.DataFrame(
        {
            "office": [f"office-{i}" for i in range(20)],
            "group": np.where(pilot == 1, "pilot", "conventional"),
            "n": n,
            "rooms": mean,
            "unemployment": unemployment,
            "foreign_share": rng.normal(20.0, 5.0, 20),
        }
    )


def test_adjusted_comparison_recovers_an_effect_hidden_by_a_confounder() -> None:
    table = confounded_offices(4, effect=0.8)
    result = adjusted_comparison(table, "rooms", ["unemployment", "foreign_share"])
    assert (result.n_offices, result.offices_pilot, result.n_params) == (20, 8, 4)
    assert result.adjusted_ci[0] <= 0.8 <= result.adjusted_ci[1]
    assert not result.raw_ci[0] <= 0.8 <= result.raw_ci[1]
    assert result.caveat is None

    pilot = (table["group"] == "pilot").astype(float).rename("pilot")
    raw = sm.WLS(table["rooms"], sm.add_constant(pilot), weights=table["n"]).fit()
    exog = sm.add_constant(pd.concat([pilot, table[["unemployment", "foreign_share"]]], axis=1))
    adjusted = sm.WLS(table["rooms"], exog, weights=table["n"]).fit()
    assert result.raw_diff == pytest.approx(raw.params["pilot"])
    assert result.raw_ci == pytest.approx(tuple(raw.conf_int().loc["pilot"]))
    assert result.adjusted_diff == pytest.approx(adjusted.params["pilot"])
    assert result.adjusted_ci == pytest.approx(tuple(adjusted.conf_int().loc["pilot"]))


def test_adjusted_comparison_flags_too_few_offices() -> None:
    table = confounded_offices(5, effect=0.8).iloc[[0, 1, 8, 9, 10]]
    result = adjusted_comparison(table, "rooms", ["unemployment", "foreign_share"])
    assert result.n_offices == 5
    assert result.caveat is not None
    assert "only 5 offices for 4 parameters" in result.caveat

    # As many parameters as offices: a perfect fit without an interval, and no warning escapes.
    exact = adjusted_comparison(table.iloc[:4], "rooms", ["unemployment", "foreign_share"])
    assert math.isnan(exact.adjusted_ci[0])
    assert exact.caveat is not None
    assert "no residual degrees of freedom" in exact.caveat


def test_adjusted_comparison_handles_constant_and_missing_indicators() -> None:
    table = confounded_offices(6, effect=0.8).assign(region=1.0)
    table.loc[3, "foreign_share"] = np.nan
    result = adjusted_comparison(table, "rooms", ["unemployment", "foreign_share", "region"])
    assert result.n_offices == 19
    assert result.n_params == 4
    assert result.caveat is not None
    assert "1 office(s) dropped" in result.caveat
    assert "'region' is the same for all offices" in result.caveat
