"""Statistics for the pilot-versus-conventional evaluation.

Pure functions over per-response or per-office tables (numpy arrays, pandas frames); no
database and no I/O. Every estimator is a scipy or statsmodels call; this module is glue that
chooses the method, feeds it the right unit of analysis and says in plain language when the
data are too thin for that method (the ``caveat`` field of every result). The result types,
the caveats and :func:`holm` live in :mod:`officepulse.cellstats`, which computes the same
statistics from counts for reports over many responses; the functions here are its reference.

Design decisions that run through the module:

* **The office is the unit that was assigned.** A client does not choose to be "in the pilot";
  an office is made a pilot office. Responses cluster within offices (same staff, rooms,
  waiting times, district), so response-level tests overstate the evidence. Intervals are
  therefore cluster-robust by office, and the headline test is office-level randomisation
  inference, which stays valid with the 1-5 pilot offices a realistic pilot has.
* **Small numbers are reported, not hidden.** Results are computed whenever they can be and
  carry a caveat when the method is unreliable (fewer than 30 responses, fewer than 2 offices
  per group, fewer than 10 offices for a cluster-robust interval, fewer than 2 pre-event
  periods). Where a number would be meaningless (a cluster-robust interval from one office per
  group is exactly zero wide) it is NaN instead, with the reason in the caveat.
* **Library warnings never escape.** Degenerate data make statsmodels and scipy warn; each call
  runs under :func:`warnings.catch_warnings` and a warning becomes part of the caveat.
* Confidence intervals are two-sided at ``level`` (default 95 %); p-values are two-sided.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats as sps
from scipy.spatial.distance import cdist
from statsmodels.stats.proportion import proportion_confint

from officepulse.cellstats import (
    _NAN,
    CAVEAT_FEW_OFFICES,
    CAVEAT_FEW_PRE_PERIODS,
    CAVEAT_FEW_RESPONSES,
    CAVEAT_ONE_OFFICE_PER_GROUP,
    FEW_OFFICES,
    FEW_RESPONSES,
    Comparison,
    DiD,
    EventStudyPoint,
    FloatArray,
    MeanCI,
    Share,
    _check_level,
    _floor_caveat,
    _join,
    _quietly,
    _randomization_p,
    finish_comparison,
    holm,
)

__all__ = [
    "CAVEAT_FEW_OFFICES",
    "CAVEAT_FEW_PRE_PERIODS",
    "CAVEAT_FEW_RESPONSES",
    "CAVEAT_ONE_OFFICE_PER_GROUP",
    "FEW_OFFICES",
    "FEW_RESPONSES",
    "Adjusted",
    "Comparison",
    "DiD",
    "EventStudyPoint",
    "MeanCI",
    "Share",
    "adjusted_comparison",
    "compare_groups",
    "did",
    "holm",
    "mean_ci",
    "nearest_neighbours",
    "top2_share",
]


# --------------------------------------------------------------------------- result types


class Adjusted(msgspec.Struct, frozen=True, kw_only=True):
    """Office-level pilot difference, raw and adjusted for district indicators."""

    item: str
    raw_diff: float
    raw_ci: tuple[float, float]
    adjusted_diff: float
    adjusted_ci: tuple[float, float]
    n_offices: int
    offices_pilot: int
    offices_conventional: int
    n_params: int
    caveat: str | None = None


def _floats(values: Any) -> FloatArray:
    """Float array from numpy or pandas input; pandas' NA (nullable Int64 columns) -> NaN."""
    if isinstance(values, pd.Series | pd.Index | pd.DataFrame):
        return np.asarray(values.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    return np.asarray(values, dtype=np.float64)


def _finite(values: npt.ArrayLike) -> FloatArray:
    """Flatten to float and drop missing answers (NaN): a skipped item is not a rating."""
    array = _floats(values).ravel()
    return array[np.isfinite(array)]


def _interval(fit: Any, name: str, level: float) -> tuple[float, float]:
    """Confidence bounds of one named coefficient (all fits here use named columns)."""
    low, high = fit.conf_int(alpha=1.0 - level).loc[name]
    return float(low), float(high)


def mean_ci(values: npt.ArrayLike, level: float = 0.95) -> MeanCI:
    """Mean with a t confidence interval (``scipy.stats.t.interval`` with ``scipy.stats.sem``).

    Assumes independent responses; treats the 1-5 codes as interval-scaled, which is the
    convention for reporting Likert means (show :func:`top2_share` alongside). Missing answers
    (NaN) are dropped. With one response there is no interval; with identical responses the
    interval has zero width, which says nothing about uncertainty.
    """
    _check_level(level)
    x = _finite(values)
    n = int(x.size)
    if n == 0:
        return MeanCI(n=0, mean=_NAN, sd=_NAN, ci_low=_NAN, ci_high=_NAN, caveat="no responses")
    mean = float(np.mean(x))
    if n == 1:
        return MeanCI(
            n=1,
            mean=mean,
            sd=_NAN,
            ci_low=_NAN,
            ci_high=_NAN,
            caveat="one response: no interval can be computed",
        )
    caveats: list[str] = []
    sd = float(np.std(x, ddof=1))
    if sd == 0.0:
        # scipy returns NaN for scale 0; the honest statement is "no spread observed".
        low = high = mean
        caveats.append("all responses are identical: the interval has zero width")
    else:
        (low, high), notes = _quietly(
            lambda: sps.t.interval(level, df=n - 1, loc=mean, scale=sps.sem(x))
        )
        caveats.extend(notes)
    if n < FEW_RESPONSES:
        caveats.append(CAVEAT_FEW_RESPONSES)
    return MeanCI(
        n=n, mean=mean, sd=sd, ci_low=float(low), ci_high=float(high), caveat=_join(caveats)
    )


def top2_share(values: npt.ArrayLike, best: Sequence[int] = (4, 5), level: float = 0.95) -> Share:
    """Share of responses in ``best`` with a Wilson score interval.

    Uses ``statsmodels.stats.proportion.proportion_confint(method="wilson")``: unlike the Wald
    interval it stays inside [0, 1] and keeps its coverage for small n and shares near 0 or 1.
    For lower-is-better items (``stress_now``) pass ``best=(1, 2)``. Assumes independent
    responses; missing answers (NaN) are dropped.
    """
    _check_level(level)
    x = _finite(values)
    n = int(x.size)
    successes = int(np.isin(x, np.asarray(best, dtype=np.float64)).sum())
    if n == 0:
        return Share(n=0, successes=0, share=_NAN, ci_low=_NAN, ci_high=_NAN, caveat="no responses")
    (low, high), caveats = _quietly(
        lambda: proportion_confint(successes, n, alpha=1.0 - level, method="wilson")
    )
    if n < FEW_RESPONSES:
        caveats.append(CAVEAT_FEW_RESPONSES)
    share = successes / n
    return Share(
        n=n,
        successes=successes,
        share=share,
        # Rounding can put the bound a hair past the estimate at 0 or n successes (5.6e-17
        # for 0 of 3), where the Wilson bound is exactly the estimate.
        ci_low=min(float(low), share),
        ci_high=max(float(high), share),
        caveat=_join(caveats),
    )


# --------------------------------------------------------------------------- two groups


def _responses_for(
    df: pd.DataFrame, item: str, group_col: str, office_col: str, value_col: str, groups: set[str]
) -> pd.DataFrame:
    """The rows of one item in groups a and b, without missing answers.

    A long table with an ``item`` column is filtered to ``item``; a table without one is taken
    to hold that item only (``item`` is then just the label of the result).
    """
    data = df.loc[df["item"] == item] if "item" in df.columns else df
    data = data.loc[data[group_col].isin(groups), [group_col, office_col, value_col]]
    # A response without an office cannot be placed in the design; one without a value is a
    # skipped item.
    data = data.loc[np.isfinite(_floats(data[value_col])) & data[office_col].notna().to_numpy()]
    groups_per_office = data.groupby(office_col, sort=True, observed=True)[group_col].nunique()
    mixed = groups_per_office[groups_per_office > 1]
    if len(mixed) > 0:
        raise ValueError(f"offices in both groups: {sorted(map(str, mixed.index))}")
    return data


def compare_groups(
    df: pd.DataFrame,
    item: str,
    group_col: str = "group",
    office_col: str = "office",
    value_col: str = "value",
    a: str = "pilot",
    b: str = "conventional",
    permutations: int = 10000,
    seed: int = 0,
    higher_is_better: bool = True,
    level: float = 0.95,
) -> Comparison:
    """Compare group ``a`` with group ``b`` on one item, respecting that offices were assigned.

    ``df`` has one row per response with columns ``group_col``, ``office_col`` and
    ``value_col``; if it also has an ``item`` column only rows with ``item == item`` are used.
    Each office must belong to exactly one group.

    * ``diff`` = mean_a - mean_b over responses. Its interval comes from OLS of value on a group
      dummy with a cluster-robust covariance by office (statsmodels ``cov_type="cluster"``, t
      with G - 1 degrees of freedom). Assumes offices are independent and enough of them. With
      a single office in a group the clustered standard error is degenerate (exactly zero with
      one office per group, far too small with one in either), so the interval is NaN then.
    * ``effect_size`` is the rank-biserial correlation 2U/(n_a n_b) - 1 from the Mann-Whitney U
      of group a (between -1 and 1, positive when a tends to score higher); it suits ordinal
      ratings, unlike Cohen's d. ``prob_superiority`` is U/(n_a n_b) = P(a > b) + P(tie)/2.
    * ``p_mann_whitney``: ``scipy.stats.mannwhitneyu`` two-sided on responses. It treats
      responses as independent and so overstates the evidence when offices differ.
    * ``p_randomization``: office-level randomisation inference. The statistic is the
      difference of *unweighted office means* (mean over a's offices of each office's mean
      minus the same for b), so every office counts once, as in the assignment, and one busy
      office cannot dominate. It is recomputed for every way of giving the ``a`` label to the
      same number of offices: all C(offices, offices_a) ways when that is at most
      ``permutations`` (exact), else ``permutations`` seeded random draws. Assumes the label
      could have fallen on any office (sharp null of no effect on any office).
      ``permutations=0`` switches it off (``p_randomization`` is None).
    """
    _check_level(level)
    if a == b:
        raise ValueError("groups a and b must differ")
    data = _responses_for(df, item, group_col, office_col, value_col, {a, b})
    is_a = (data[group_col] == a).to_numpy()
    values = _floats(data[value_col])
    values_a, values_b = values[is_a], values[~is_a]
    n_a, n_b = int(values_a.size), int(values_b.size)
    if n_a == 0 or n_b == 0:
        raise ValueError(f"no responses for item {item!r} in group {a if n_a == 0 else b!r}")

    office_codes, office_labels = pd.factorize(data[office_col], sort=True)
    office_means = np.bincount(office_codes, weights=values) / np.bincount(office_codes)
    office_is_a = np.zeros(len(office_labels), dtype=bool)
    office_is_a[office_codes[is_a]] = True
    offices_a = int(office_is_a.sum())
    offices_b = len(office_labels) - offices_a

    caveats: list[str] = []
    mean_a, mean_b = float(np.mean(values_a)), float(np.mean(values_b))

    # Cluster-robust interval: responses in an office share staff, rooms and district, so the
    # effective sample size is nearer the number of offices than the number of responses.
    if offices_a < 2 or offices_b < 2:
        ci_low = ci_high = _NAN
        if offices_a < 2 and offices_b < 2:
            caveats.append(CAVEAT_ONE_OFFICE_PER_GROUP)
        else:
            lone = a if offices_a < 2 else b
            caveats.append(
                f"only one office in group {lone!r}: the comparison cannot separate "
                "that group from its office"
            )
    else:
        frame = pd.DataFrame({"value": values, "in_a": is_a.astype(np.float64)})
        fit, notes = _quietly(
            lambda: smf.ols("value ~ in_a", data=frame).fit(
                cov_type="cluster", cov_kwds={"groups": office_codes}, use_t=True
            )
        )
        ci_low, ci_high = _interval(fit, "in_a", level)
        caveats.extend(notes)
        if len(office_labels) < FEW_OFFICES:
            caveats.append(CAVEAT_FEW_OFFICES)
    if min(n_a, n_b) < FEW_RESPONSES:
        caveats.append(CAVEAT_FEW_RESPONSES)

    mw, notes = _quietly(lambda: sps.mannwhitneyu(values_a, values_b, alternative="two-sided"))
    caveats.extend(notes)
    prob_superiority = float(mw.statistic) / (n_a * n_b)

    # Office-level randomisation inference: with few pilots the cluster-robust t interval
    # over-rejects badly, whereas permuting the label over offices is valid for any number.
    return finish_comparison(
        item=item,
        a=a,
        b=b,
        higher_is_better=higher_is_better,
        n_a=n_a,
        n_b=n_b,
        mean_a=mean_a,
        mean_b=mean_b,
        ci=(ci_low, ci_high),
        prob_superiority=prob_superiority,
        p_mann_whitney=float(mw.pvalue),
        office_means=office_means,
        office_is_a=office_is_a,
        permutations=permutations,
        seed=seed,
        caveats=caveats,
    )


_FIXED_EFFECTS: Final = "C(office) + C(period)"


def _offset_name(offset: int) -> str:
    return f"ev_m{-offset}" if offset < 0 else f"ev_p{offset}"


def _event_study(
    frame: pd.DataFrame,
    is_treated: npt.NDArray[np.bool_],
    offset: npt.NDArray[np.intp],
    fit_kwargs: dict[str, Any],
    level: float,
) -> tuple[list[EventStudyPoint], float | None, list[str]]:
    """Event-study coefficients and the pre-trend test (see :func:`did`)."""
    caveats: list[str] = []
    observed = {int(o) for o in offset[is_treated]}
    if -1 not in observed:
        # Without the reference period every offset dummy together equals the office dummy.
        return (
            [],
            None,
            [
                "no responses from the treated office(s) in the last period before the event: "
                "no event study",
                CAVEAT_FEW_PRE_PERIODS,
            ],
        )
    # Offsets the treated offices never observed would be all-zero columns: left out.
    offsets = sorted(observed - {-1})
    frame = frame.copy()
    names = [_offset_name(o) for o in offsets]
    for o, name in zip(offsets, names, strict=True):
        frame[name] = (is_treated & (offset == o)).astype(np.float64)
    formula = f"value ~ {' + '.join([*names, _FIXED_EFFECTS])}"
    fit, notes = _quietly(lambda: smf.ols(formula, data=frame).fit(**fit_kwargs))
    caveats.extend(notes)
    points = [
        EventStudyPoint(period_offset=-1, estimate=0.0, ci_low=0.0, ci_high=0.0, is_reference=True)
    ]
    for o, name in zip(offsets, names, strict=True):
        low, high = _interval(fit, name, level)
        points.append(
            EventStudyPoint(
                period_offset=o, estimate=float(fit.params[name]), ci_low=low, ci_high=high
            )
        )
    points.sort(key=lambda point: point.period_offset)

    pre_names = [_offset_name(o) for o in offsets if o < -1]
    if not pre_names:
        caveats.append(CAVEAT_FEW_PRE_PERIODS)
        return points, None, caveats
    hypothesis = ", ".join(f"{name} = 0" for name in pre_names)
    wald, notes = _quietly(lambda: fit.wald_test(hypothesis, use_f=True, scalar=True))
    caveats.extend(notes)
    return points, float(wald.pvalue), caveats


def did(
    df: pd.DataFrame,
    treated_office: str | Sequence[str],
    event_period: Any,
    value_col: str = "value",
    office_col: str = "office",
    period_col: str = "period",
    comparison_offices: Sequence[str] | None = None,
    permutations: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> DiD:
    """Difference-in-differences for an event (e.g. a room redesign) in one office.

    ``df`` has one row per response with ``office_col``, ``period_col`` and ``value_col``.
    Periods are integers or any sortable labels of one type (month-start dates, "2025-03");
    they are ordered by sorting the distinct values present, and offsets count those observed
    periods, so every period should be present (a missing month silently shortens the
    distance). Periods at or after ``event_period`` are "post"; ``event_period`` need not itself
    occur. Comparison offices are all other offices unless ``comparison_offices`` is given.
    ``treated_office`` may also be a list of offices with the same event period.

    * ``estimate``: coefficient of ``treated_post`` in the statsmodels OLS formula
      ``value ~ treated_post + C(office) + C(period)`` (two-way fixed effects). It is the
      treated offices' change minus the comparison offices' change, and means the effect of the
      event only if the offices would have moved in parallel without it (parallel trends).
    * Standard errors: cluster-robust by office (t, G - 1 df) when there are at least two
      treated and two comparison offices; otherwise HC1 on responses. With a single treated
      office the clustered standard error is known to be far too small (MacKinnon & Webb; in a
      simulation here a nominal 95 % interval covered the truth in about 64 % of data sets), so
      HC1 is used; it assumes no office-by-period shocks beyond the fixed effects. ``se_kind``
      says which, and the caveat repeats it.
    * ``event_study``: the same regression with one dummy per offset from the event for the
      treated offices, reference offset -1. ``pre_trend_p`` is the joint Wald F test that all
      offsets before -1 are zero; None when there are fewer than 2 pre-event periods.
    * ``p_randomization``: placebo-in-space randomisation inference — the estimate is recomputed
      with the treatment given to every other set of the same number of offices (exactly, when
      C(offices, treated) <= ``permutations``), p = share of |placebo| >= |estimate|. Valid
      with one treated office, but with K offices it cannot fall below 1/K; offices with fewer
      responses give noisier placebo estimates, which makes it approximate.
    """
    _check_level(level)
    treated = [treated_office] if isinstance(treated_office, str) else list(treated_office)
    if not treated:
        raise ValueError("no treated office given")
    data = df.loc[:, [office_col, period_col, value_col]]
    keep = np.isfinite(_floats(data[value_col]))
    keep &= (data[office_col].notna() & data[period_col].notna()).to_numpy()
    data = data.loc[keep]
    if comparison_offices is not None:
        data = data.loc[data[office_col].isin([*treated, *comparison_offices])]
    present = set(data[office_col].unique())
    missing = [o for o in treated if o not in present]
    if missing:
        raise ValueError(f"treated office(s) without responses: {missing}")
    comparison = sorted(map(str, present - set(treated)))
    if not comparison:
        raise ValueError("no comparison office with responses")

    periods: list[Any] = sorted(data[period_col].unique())
    event_index = bisect.bisect_left(periods, event_period)
    if event_index == 0:
        raise ValueError("no period before the event: nothing to compare against")
    if event_index == len(periods):
        raise ValueError("no period at or after the event")

    # Integer codes keep the formula independent of label types (dates, strings, categories).
    office_codes, office_labels = pd.factorize(data[office_col], sort=True)
    period_index = {p: i for i, p in enumerate(periods)}
    period_codes = np.asarray([period_index[p] for p in data[period_col]], dtype=np.intp)
    treated_codes = np.flatnonzero(np.isin(office_labels, treated))
    is_treated = np.isin(office_codes, treated_codes)
    offset = period_codes - event_index
    frame = pd.DataFrame(
        {
            "value": _floats(data[value_col]),
            "office": office_codes,
            "period": period_codes,
            "treated_post": (is_treated & (offset >= 0)).astype(np.float64),
        }
    )

    n_offices = len(office_labels)
    caveats: list[str] = []
    clustered = len(treated) >= 2 and len(comparison) >= 2
    if clustered:
        fit_kwargs: dict[str, Any] = {
            "cov_type": "cluster",
            "cov_kwds": {"groups": office_codes},
            "use_t": True,
        }
        se_kind = "cluster-robust by office"
        if n_offices < FEW_OFFICES:
            caveats.append(CAVEAT_FEW_OFFICES)
    else:
        fit_kwargs = {"cov_type": "HC1", "use_t": True}
        se_kind = "HC1 (responses)"
        lone = "treated" if len(treated) < 2 else "comparison"
        caveats.append(
            f"one {lone} office: the interval uses response-level (HC1) standard errors, "
            "which ignore office-by-period shocks; see the randomisation p-value"
        )
    model = smf.ols(f"value ~ treated_post + {_FIXED_EFFECTS}", data=frame)
    fit, notes = _quietly(lambda: model.fit(**fit_kwargs))
    caveats.extend(notes)
    estimate = float(fit.params["treated_post"])
    ci_low, ci_high = _interval(fit, "treated_post", level)

    treated_pre = int(np.sum(is_treated & (offset < 0)))
    treated_post = int(np.sum(is_treated & (offset >= 0)))
    if min(treated_pre, treated_post) < FEW_RESPONSES:
        caveats.append(
            f"{CAVEAT_FEW_RESPONSES} (treated office(s): {treated_pre} before, "
            f"{treated_post} after the event)"
        )

    points, pre_trend_p, notes = _event_study(frame, is_treated, offset, fit_kwargs, level)
    caveats.extend(notes)

    # Placebo-in-space randomisation inference: swap the treated_post column of the same
    # design matrix for each alternative set of "treated" offices and refit.
    design = np.asarray(model.exog, dtype=np.float64)
    outcome = np.asarray(model.endog, dtype=np.float64)
    column = list(model.exog_names).index("treated_post")
    post = offset >= 0

    def placebo(chosen: npt.NDArray[np.intp]) -> FloatArray:
        out = np.empty(len(chosen), dtype=np.float64)
        for row, offices in enumerate(chosen):
            swapped = design.copy()
            swapped[:, column] = (np.isin(office_codes, offices) & post).astype(np.float64)
            out[row] = float(sm.OLS(outcome, swapped).fit().params[column])
        return out

    (p_rand, used, exact, floor), notes = _quietly(
        lambda: _randomization_p(placebo, estimate, n_offices, len(treated), permutations, seed)
    )
    caveats.extend(notes)
    caveats.append(_floor_caveat(floor, used, "event to offices") or "")

    return DiD(
        estimate=estimate,
        ci_low=ci_low,
        ci_high=ci_high,
        p=float(fit.pvalues["treated_post"]),
        n=len(frame),
        offices=n_offices,
        periods=len(periods),
        pre_trend_p=pre_trend_p,
        event_study=points,
        treated_offices=[str(o) for o in treated],
        se_kind=se_kind,
        p_randomization=p_rand,
        permutations_used=used,
        randomization_exact=exact,
        caveat=_join(caveats),
    )


# --------------------------------------------------------------------------- context


def _office_table(
    office_df: pd.DataFrame,
    columns: Sequence[str],
    group_col: str,
    office_col: str,
    pilot: str,
    conventional: str,
) -> pd.DataFrame:
    table = office_df.loc[office_df[group_col].isin([pilot, conventional])]
    if table[office_col].duplicated().any():
        raise ValueError("office_df must have one row per office")
    return table.loc[:, [office_col, group_col, *columns]]


def adjusted_comparison(
    office_df: pd.DataFrame,
    item: str,
    indicators: list[str],
    group_col: str = "group",
    office_col: str = "office",
    n_col: str = "n",
    pilot: str = "pilot",
    conventional: str = "conventional",
    level: float = 0.95,
) -> Adjusted:
    """Pilot minus conventional on office means, raw and adjusted for district indicators.

    ``office_df`` has one row per office: ``office_col``, ``group_col``, ``n_col`` (responses
    behind the mean), a column ``item`` with the office mean and one column per indicator
    (e.g. unemployment density, SGB II quota). Both fits are statsmodels weighted least squares
    with weights = office n: raw = ``item ~ pilot``, adjusted = ``item ~ pilot + indicators``.
    Intervals use the classical (model-based) covariance with t on the residual degrees of
    freedom, because heteroskedasticity-robust variants are worse with a dozen offices. The
    weights assume the office means differ only by sampling noise (variance 1/n); real office
    effects make them over-weight big offices. Adjustment is only as good as the linearity of
    the indicators' effect; offices with missing values are dropped (and counted in the caveat).
    """
    _check_level(level)
    table = _office_table(
        office_df, [item, n_col, *indicators], group_col, office_col, pilot, conventional
    )
    reserved = {"const", "pilot"} & set(indicators)
    if reserved:
        raise ValueError(f"indicator names reserved for the model: {sorted(reserved)}")
    numeric = _floats(table.loc[:, [item, n_col, *indicators]])
    complete = np.isfinite(numeric).all(axis=1)
    caveats: list[str] = []
    if not complete.all():
        caveats.append(f"{int((~complete).sum())} office(s) dropped for missing values")
    table = table.loc[complete]
    is_pilot = (table[group_col] == pilot).to_numpy(dtype=np.float64)
    offices_pilot = int(is_pilot.sum())
    offices_conventional = len(table) - offices_pilot
    if offices_pilot == 0 or offices_conventional == 0:
        raise ValueError("need at least one pilot and one conventional office")
    y = table[item].to_numpy(dtype=np.float64)
    weights = table[n_col].to_numpy(dtype=np.float64)

    raw_exog = pd.DataFrame({"const": 1.0, "pilot": is_pilot})
    adjusted_exog = raw_exog.copy()
    for name in indicators:
        column = table[name].to_numpy(dtype=np.float64)
        if np.ptp(column) == 0.0:
            caveats.append(f"indicator {name!r} is the same for all offices and was left out")
            continue
        adjusted_exog[name] = column
    n_params = adjusted_exog.shape[1]
    n_offices = len(table)
    if offices_pilot < 2 and offices_conventional < 2:
        caveats.append(CAVEAT_ONE_OFFICE_PER_GROUP)
    if n_offices <= n_params + 2:
        caveats.append(
            f"only {n_offices} offices for {n_params} parameters: the adjusted estimate rests on "
            "very few degrees of freedom"
        )

    def fit_pilot(exog: pd.DataFrame) -> tuple[float, tuple[float, float]]:
        matrix = exog.to_numpy(dtype=np.float64)
        if np.linalg.matrix_rank(matrix) < matrix.shape[1]:
            caveats.append(
                "the indicators are collinear with the pilot dummy or each other: "
                "the adjusted difference cannot be estimated"
            )
            return _NAN, (_NAN, _NAN)
        if n_offices - matrix.shape[1] < 1:
            caveats.append("no residual degrees of freedom: no interval")
            fit, notes = _quietly(lambda: sm.WLS(y, exog, weights=weights).fit())
            caveats.extend(notes)
            return float(fit.params["pilot"]), (_NAN, _NAN)
        fit, notes = _quietly(lambda: sm.WLS(y, exog, weights=weights).fit())
        caveats.extend(notes)
        return float(fit.params["pilot"]), _interval(fit, "pilot", level)

    raw_diff, raw_ci = fit_pilot(raw_exog)
    adjusted_diff, adjusted_ci = fit_pilot(adjusted_exog)
    return Adjusted(
        item=item,
        raw_diff=raw_diff,
        raw_ci=raw_ci,
        adjusted_diff=adjusted_diff,
        adjusted_ci=adjusted_ci,
        n_offices=n_offices,
        offices_pilot=offices_pilot,
        offices_conventional=offices_conventional,
        n_params=n_params,
        caveat=_join(caveats),
    )


def nearest_neighbours(
    office_df: pd.DataFrame,
    indicators: list[str],
    k: int = 1,
    group_col: str = "group",
    office_col: str = "office",
    pilot: str = "pilot",
    conventional: str = "conventional",
) -> dict[str, list[str]]:
    """For each pilot office, the ``k`` most similar conventional offices.

    Indicators are z-scored over all offices in the table (``scipy.stats.zscore``) so that no
    indicator dominates by its unit, then distances are Euclidean
    (``scipy.spatial.distance.cdist``), as in the IAB Vergleichstypen idea of comparing like
    with like. An indicator that is the same everywhere carries no information and is ignored.
    Ties are broken by office name so the result is reproducible. Missing indicator values are
    an error: a silent imputation would decide who counts as comparable.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    table = _office_table(office_df, indicators, group_col, office_col, pilot, conventional)
    matrix = _floats(table.loc[:, indicators])
    if not np.isfinite(matrix).all():
        raise ValueError("indicators have missing values")
    varying = np.ptp(matrix, axis=0) > 0.0
    scores = np.zeros_like(matrix)
    if varying.any():
        scores[:, varying] = sps.zscore(matrix[:, varying], axis=0)
    is_pilot = (table[group_col] == pilot).to_numpy()
    offices = np.asarray([str(o) for o in table[office_col]])
    pilots, conventionals = offices[is_pilot], offices[~is_pilot]
    if len(conventionals) == 0:
        return {str(p): [] for p in pilots}
    distances = cdist(scores[is_pilot], scores[~is_pilot], metric="euclidean")
    result: dict[str, list[str]] = {}
    for name, row in zip(pilots, distances, strict=True):
        order = np.lexsort((conventionals, row))
        result[str(name)] = [str(c) for c in conventionals[order[:k]]]
    return result
