"""The evaluation's statistics from counts: what a report over millions of responses runs.

Every estimate of :mod:`officepulse.stats` depends on the responses only through counts: a mean,
a t interval and a Wilson share through how often each answer was given; the cluster-robust
interval of a difference through each office's number of responses, sum and sum of squares;
Mann-Whitney U through the answer counts of the two groups; a two-way fixed-effects regression
on responses through the number of responses, the mean and the sum of squared deviations of
each office x period cell. The functions here take such counts (:class:`CountTable`) and return
the same result types, to the same numbers up to floating-point rounding, as the response-level
functions of :mod:`officepulse.stats`, which stay the reference: the tests compare the two on
random and degenerate data. The placebo randomisation of a difference-in-differences needs no
refit per placebo office (see :meth:`_Fixed.placebo_estimates`).

Only numpy and ``scipy.special`` are imported at module level. statsmodels, scipy.stats and
pandas take longer to import than a report takes to compute, so the distributions come from
``scipy.special`` (the functions scipy.stats itself calls), Holm's and Wilson's formulas are
written out, and the sandwich covariances are computed by hand: statsmodels has no estimator
for aggregated data, and its response-level one would need every response again. statsmodels
is imported only where its pseudo-inverse must decide the numbers (a rank-deficient or badly
conditioned regression design), scipy.stats only for Mann-Whitney's exact distribution
(a handful of responses without a single tie).
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

import msgspec
import numpy as np
import numpy.typing as npt
from scipy import special

__all__ = [
    "CAVEAT_FEW_OFFICES",
    "CAVEAT_FEW_PRE_PERIODS",
    "CAVEAT_FEW_RESPONSES",
    "CAVEAT_ONE_OFFICE_PER_GROUP",
    "FEW_OFFICES",
    "FEW_RESPONSES",
    "Comparison",
    "CountTable",
    "DiD",
    "EventStudyPoint",
    "MeanCI",
    "Share",
    "compare_groups",
    "did",
    "holm",
    "mean_ci",
    "top2_share",
]

#: Below this many responses an interval is flagged as wide (domain notes §4.6: ±18 pp at n=30).
FEW_RESPONSES: Final = 30
#: Below this many offices cluster-robust inference is unreliable (MacKinnon & Webb: ~11).
FEW_OFFICES: Final = 10

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
T = TypeVar("T")

_NAN: Final = float("nan")

CAVEAT_ONE_OFFICE_PER_GROUP: Final = (
    "only one office per group: the comparison cannot separate the pilot from the office"
)
CAVEAT_FEW_RESPONSES: Final = "few responses: wide interval"
CAVEAT_FEW_OFFICES: Final = (
    "few offices: cluster-robust interval is unreliable, see the randomisation p-value"
)
CAVEAT_FEW_PRE_PERIODS: Final = (
    "fewer than 2 pre-event periods: parallel trends before the event cannot be checked"
)


# --------------------------------------------------------------------------- result types


class MeanCI(msgspec.Struct, frozen=True, kw_only=True):
    """Mean of one item with a t interval."""

    n: int
    mean: float
    sd: float
    ci_low: float
    ci_high: float
    caveat: str | None = None


class Share(msgspec.Struct, frozen=True, kw_only=True):
    """Share of responses in the best categories (top-2-box) with a Wilson interval."""

    n: int
    successes: int
    share: float
    ci_low: float
    ci_high: float
    caveat: str | None = None


class Comparison(msgspec.Struct, frozen=True, kw_only=True):
    """Group ``a`` (pilot) against group ``b`` (conventional) on one item.

    ``diff``, ``ci_low``/``ci_high`` and ``effect_size`` are all "a minus b" on the item's own
    scale: a negative ``diff`` on ``stress_now`` means less stress in group ``a``. ``favours``
    turns the sign into a group name using ``higher_is_better``; it describes the point estimate
    only and is not a test.
    """

    item: str
    group_a: str
    group_b: str
    higher_is_better: bool
    n_a: int
    n_b: int
    offices_a: int
    offices_b: int
    mean_a: float
    mean_b: float
    diff: float
    ci_low: float
    ci_high: float
    effect_size: float
    effect_size_kind: str
    prob_superiority: float
    favours: str | None
    p_mann_whitney: float
    randomization_stat: float
    p_randomization: float | None
    permutations_used: int
    randomization_exact: bool
    p_holm: float | None = None
    p_holm_basis: Literal["randomization", "mann_whitney"] | None = None
    caveat: str | None = None


class EventStudyPoint(msgspec.Struct, frozen=True, kw_only=True):
    """Treated-minus-comparison difference ``period_offset`` periods from the event.

    Offsets are relative to the last period before the event (offset -1), which is the
    reference and is reported with estimate 0 and a zero-width interval.
    """

    period_offset: int
    estimate: float
    ci_low: float
    ci_high: float
    is_reference: bool = False


class DiD(msgspec.Struct, frozen=True, kw_only=True):
    """Difference-in-differences around an event in one (or a few) treated offices."""

    estimate: float
    ci_low: float
    ci_high: float
    p: float
    n: int
    offices: int
    periods: int
    pre_trend_p: float | None
    event_study: list[EventStudyPoint]
    treated_offices: list[str]
    se_kind: str
    p_randomization: float | None
    permutations_used: int
    randomization_exact: bool
    caveat: str | None = None


# --------------------------------------------------------------------------- small helpers


def _quietly(call: Callable[[], T]) -> tuple[T, list[str]]:
    """Run a library call and hand back its warnings instead of letting them escape.

    The test suite (and any careful caller) runs with warnings as errors; a warning from
    statsmodels or scipy on degenerate data is information for the reader, so it becomes
    a caveat rather than an exception.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [f"numerical warning ({w.category.__name__}: {w.message})" for w in caught]


def _join(caveats: Iterable[str]) -> str | None:
    unique = list(dict.fromkeys(c for c in caveats if c))
    return "; ".join(unique) if unique else None


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, got {level}")


def _randomization_p(
    draw_stat: Callable[[npt.NDArray[np.intp]], FloatArray],
    observed: float,
    n_units: int,
    n_treated: int,
    permutations: int,
    seed: int,
) -> tuple[float | None, int, bool, float]:
    """Randomisation p-value over assignments of ``n_treated`` labels to ``n_units`` units.

    ``draw_stat`` maps an (assignments x n_treated) array of unit indices to the statistic of
    each assignment. If all C(n_units, n_treated) assignments fit in ``permutations`` they are
    enumerated and the p-value is exact (share of assignments at least as extreme, the observed
    one included); otherwise ``permutations`` assignments are drawn with a seeded generator and
    p = (extreme draws + 1) / (draws + 1), which counts the observed assignment and can never
    be 0. Returns (p, assignments used, exact?, smallest attainable p).
    """
    if permutations <= 0:
        return None, 0, False, _NAN
    chosen, exact = _assignments(n_units, n_treated, permutations, seed)
    n_assignments = len(chosen)
    values = np.abs(draw_stat(chosen))
    # Ties matter: office means of Likert data tie often, and the observed assignment must
    # count as "at least as extreme" as itself despite floating-point summation order.
    tolerance = 1e-9 * max(1.0, abs(observed))
    extreme = values >= abs(observed) - tolerance
    if exact:
        p = float(np.mean(extreme))
        floor = float(np.mean(values >= values.max() - tolerance))
        return p, n_assignments, True, floor
    p = (float(np.sum(extreme)) + 1.0) / (permutations + 1.0)
    return p, permutations, False, 1.0 / (permutations + 1.0)


@functools.lru_cache(maxsize=8)
def _assignments(
    n_units: int, n_treated: int, permutations: int, seed: int
) -> tuple[npt.NDArray[np.intp], bool]:
    """The assignments :func:`_randomization_p` uses (all, or ``permutations`` seeded draws),
    as sorted unit indices per row; kept, since every item of a report draws the same ones."""
    n_assignments = math.comb(n_units, n_treated)
    exact = n_assignments <= permutations
    if exact:
        flat = itertools.chain.from_iterable(itertools.combinations(range(n_units), n_treated))
        chosen = np.fromiter(flat, dtype=np.intp, count=n_assignments * n_treated)
        chosen = chosen.reshape(n_assignments, n_treated)
    else:
        rng = np.random.default_rng(seed)
        # A uniformly random subset per row: the units of the n_treated smallest of n_units
        # uniform draws (the first n_treated of a random permutation; partitioning finds the
        # same set as sorting, in linear time).
        draws = rng.random((permutations, n_units))
        chosen = np.argpartition(draws, n_treated - 1, axis=1)[:, :n_treated]
        chosen = np.sort(chosen, axis=1)
    chosen.setflags(write=False)
    return chosen, exact


def _floor_caveat(floor: float, assignments: int, what: str) -> str | None:
    if math.isfinite(floor) and floor > 0.05:
        return (
            f"only {assignments} possible assignments of the {what}: "
            f"the randomisation p-value cannot fall below {floor:.2f}"
        )
    return None


# --------------------------------------------------------------------------- distributions
# The functions scipy.stats.t, .f and .norm call, without importing scipy.stats.


def _t_quantile(df: float, level: float) -> float:
    """``scipy.stats.t.ppf(1 - alpha / 2, df)`` with alpha = 1 - level, as statsmodels uses."""
    return float(special.stdtrit(df, 1 - (1.0 - level) / 2))


def _t_pvalue(t: float, df: float) -> float:
    """Two-sided p-value of a t statistic, as statsmodels' ``pvalues`` with ``use_t=True``."""
    return float(special.stdtr(df, -abs(t)) * 2)


def _holm_adjust(p: FloatArray) -> FloatArray:
    """Holm's step-down adjustment, as ``multipletests(p, method="holm")[1]`` computes it."""
    order = np.argsort(p)
    adjusted = np.maximum.accumulate(p[order] * np.arange(len(p), 0, -1))
    adjusted[adjusted > 1] = 1
    result = np.empty_like(adjusted)
    result[order] = adjusted
    return result


# --------------------------------------------------------------------------- counts


@dataclass(frozen=True)
class CountTable:
    """Responses to one item, counted by office, period and answer.

    Row ``i`` says that ``count[i]`` responses of office ``offices[office[i]]`` in period
    ``periods[period[i]]`` gave the answer ``value[i]``. A combination may occur in several rows
    (they add up); labels without rows are ignored. Period labels only need to sort.
    """

    office: IntArray
    period: IntArray
    value: FloatArray
    count: npt.NDArray[np.int64]
    offices: Sequence[str]
    periods: Sequence[Any]

    @functools.cached_property
    def cells(self) -> _Cells:
        """The responses by office x period: how many, their mean and the sum of squared
        deviations from it (computed once; a report asks for it once per event)."""
        keep = np.isfinite(self.value) & (self.count > 0)
        grid = self.office[keep] * len(self.periods) + self.period[keep]
        cells, row_cell = np.unique(grid, return_inverse=True)
        count = self.count[keep].astype(np.float64)
        value = self.value[keep]
        n = np.bincount(row_cell, weights=count, minlength=len(cells))
        mean = np.bincount(row_cell, weights=count * value, minlength=len(cells)) / n
        within = np.bincount(row_cell, weights=count * (value - mean[row_cell]) ** 2)
        return _Cells(
            office=np.asarray(cells // len(self.periods), dtype=np.intp),
            period=np.asarray(cells % len(self.periods), dtype=np.intp),
            n=np.asarray(n, dtype=np.float64),
            mean=np.asarray(mean, dtype=np.float64),
            within=np.asarray(within, dtype=np.float64),
        )

    @classmethod
    def of_responses(
        cls, offices: Sequence[str], periods: Sequence[Any], values: npt.ArrayLike
    ) -> CountTable:
        """Count responses given one per row; missing answers (NaN) are not counted."""
        value = np.asarray(values, dtype=np.float64)
        answered = np.isfinite(value)
        office_labels, office = np.unique(
            np.asarray(offices, dtype=object)[answered], return_inverse=True
        )
        period_labels, period = np.unique(
            np.asarray(periods, dtype=object)[answered], return_inverse=True
        )
        keys = np.stack([office, period, value[answered]], axis=1)
        rows, count = np.unique(keys, axis=0, return_counts=True)
        return cls(
            office=rows[:, 0].astype(np.intp),
            period=rows[:, 1].astype(np.intp),
            value=rows[:, 2].copy(),
            count=count.astype(np.int64),
            offices=[str(o) for o in office_labels],
            periods=list(period_labels),
        )


@dataclass(frozen=True)
class _Cells:
    office: IntArray
    period: IntArray
    n: FloatArray
    mean: FloatArray
    within: FloatArray


def _value_counts(values: npt.ArrayLike, counts: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    value = np.asarray(values, dtype=np.float64).ravel()
    count = np.asarray(counts, dtype=np.float64).ravel()
    keep = np.isfinite(value) & (count > 0)
    return value[keep], count[keep]


def mean_ci(values: npt.ArrayLike, counts: npt.ArrayLike, level: float = 0.95) -> MeanCI:
    """:func:`officepulse.stats.mean_ci` of the responses that ``counts`` of ``values`` make up."""
    _check_level(level)
    value, count = _value_counts(values, counts)
    n = int(count.sum())
    if n == 0:
        return MeanCI(n=0, mean=_NAN, sd=_NAN, ci_low=_NAN, ci_high=_NAN, caveat="no responses")
    mean = float(np.dot(count, value)) / n
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
    sd = math.sqrt(float(np.dot(count, (value - mean) ** 2)) / (n - 1))
    if sd == 0.0:
        low = high = mean
        caveats.append("all responses are identical: the interval has zero width")
    else:
        sem = sd / math.sqrt(n)
        low = float(special.stdtrit(n - 1, (1.0 - level) / 2)) * sem + mean
        high = float(special.stdtrit(n - 1, (1.0 + level) / 2)) * sem + mean
    if n < FEW_RESPONSES:
        caveats.append(CAVEAT_FEW_RESPONSES)
    return MeanCI(n=n, mean=mean, sd=sd, ci_low=low, ci_high=high, caveat=_join(caveats))


def top2_share(
    values: npt.ArrayLike,
    counts: npt.ArrayLike,
    best: Sequence[int] = (4, 5),
    level: float = 0.95,
) -> Share:
    """:func:`officepulse.stats.top2_share` (Wilson interval) from answer counts."""
    _check_level(level)
    value, count = _value_counts(values, counts)
    n = int(count.sum())
    successes = int(count[np.isin(value, np.asarray(best, dtype=np.float64))].sum())
    if n == 0:
        return Share(n=0, successes=0, share=_NAN, ci_low=_NAN, ci_high=_NAN, caveat="no responses")
    # Wilson's score interval, term by term as statsmodels' proportion_confint computes it.
    crit = -float(special.ndtri((1.0 - level) / 2.0))
    crit2 = crit**2
    share = successes / n
    denom = 1 + crit2 / n
    center = (share + crit2 / (2 * n)) / denom
    dist = crit * math.sqrt(share * (1.0 - share) / n + crit2 / (4.0 * n**2)) / denom
    low = min(max(center - dist, 0.0), 1.0)
    high = min(max(center + dist, 0.0), 1.0)
    caveats = [CAVEAT_FEW_RESPONSES] if n < FEW_RESPONSES else []
    return Share(
        n=n,
        successes=successes,
        share=share,
        ci_low=min(low, share),
        ci_high=max(high, share),
        caveat=_join(caveats),
    )


# --------------------------------------------------------------------------- two groups


def _mann_whitney(
    value: FloatArray, count: FloatArray, in_a: npt.NDArray[np.bool_]
) -> tuple[float, float]:
    """U of group a and the two-sided p of ``scipy.stats.mannwhitneyu``, from answer counts.

    With ties (always, once more responses than answer categories) scipy uses the normal
    approximation with tie and continuity correction, written out here term by term. Without
    ties the data are tiny and scipy's exact distribution is asked directly.
    """
    answers, which = np.unique(value, return_inverse=True)
    count_a = np.bincount(which, weights=np.where(in_a, count, 0.0), minlength=len(answers))
    count_b = np.bincount(which, weights=np.where(in_a, 0.0, count), minlength=len(answers))
    n1, n2 = int(count_a.sum()), int(count_b.sum())
    ties = count_a + count_b
    if not (ties > 1).any() and (n1 <= 8 or n2 <= 8):
        from scipy import stats as scipy_stats  # only for a handful of untied responses

        exact = scipy_stats.mannwhitneyu(
            np.repeat(answers, count_a.astype(np.intp)),
            np.repeat(answers, count_b.astype(np.intp)),
            alternative="two-sided",
        )
        return float(exact.statistic), float(exact.pvalue)
    # Midranks: every answer ranks after all smaller ones, ties sharing the average rank.
    ranks = np.cumsum(ties) - ties + (ties + 1) / 2
    u1 = float(np.dot(count_a, ranks)) - n1 * (n1 + 1) / 2
    u = max(u1, n1 * n2 - u1)
    n = n1 + n2
    tie_term = float(np.sum(ties**3 - ties))
    s = math.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1))))
    numerator = u - n1 * n2 / 2 - 0.5
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.float64(numerator) / np.float64(s)
    p = float(special.ndtr(-z)) * 2
    return u1, min(max(p, 0.0), 1.0)


def compare_groups(
    table: CountTable,
    item: str,
    groups: Mapping[str, str],
    a: str = "pilot",
    b: str = "conventional",
    permutations: int = 10000,
    seed: int = 0,
    higher_is_better: bool = True,
    level: float = 0.95,
) -> Comparison:
    """:func:`officepulse.stats.compare_groups` from counts; ``groups`` maps office to group.

    The cluster-robust interval of the OLS of value on a group dummy needs only each office's
    residual sum r_g = sum_g - n_g * (its group's mean): the coefficient's variance is
    c * (sum over a's offices of r_g^2 / n_a^2 + the same for b), with statsmodels' correction
    c = G / (G - 1) * (N - 1) / (N - 2) and t on G - 1 degrees of freedom.
    """
    _check_level(level)
    if a == b:
        raise ValueError("groups a and b must differ")
    # Per office: 1 in group a, 0 in group b, -1 in neither.
    side = np.asarray(
        [{a: 1, b: 0}.get(groups.get(o, ""), -1) for o in table.offices], dtype=np.int8
    )
    row_side = side[table.office]
    keep = np.isfinite(table.value) & (table.count > 0) & (row_side >= 0)
    office = table.office[keep]
    value = table.value[keep]
    count = table.count[keep].astype(np.float64)
    in_a = row_side[keep] == 1
    n_a, n_b = int(count[in_a].sum()), int(count[~in_a].sum())
    if n_a == 0 or n_b == 0:
        raise ValueError(f"no responses for item {item!r} in group {a if n_a == 0 else b!r}")

    present = sorted(np.unique(office).tolist(), key=lambda code: table.offices[code])
    rank = np.zeros(len(table.offices), dtype=np.intp)
    rank[present] = np.arange(len(present))
    office_code = rank[office]
    n_offices = len(present)
    office_n = np.bincount(office_code, weights=count, minlength=n_offices)
    office_sum = np.bincount(office_code, weights=count * value, minlength=n_offices)
    office_means = office_sum / office_n
    office_is_a = np.zeros(n_offices, dtype=bool)
    office_is_a[office_code[in_a]] = True
    offices_a = int(office_is_a.sum())
    offices_b = n_offices - offices_a

    caveats: list[str] = []
    mean_a = float(np.dot(count[in_a], value[in_a])) / n_a
    mean_b = float(np.dot(count[~in_a], value[~in_a])) / n_b
    diff = mean_a - mean_b

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
        residual = office_sum - office_n * np.where(office_is_a, mean_a, mean_b)
        n = n_a + n_b
        correction = n_offices / (n_offices - 1.0) * ((n - 1.0) / float(n - 2))
        variance = correction * (
            float(np.sum(residual[office_is_a] ** 2)) / n_a**2
            + float(np.sum(residual[~office_is_a] ** 2)) / n_b**2
        )
        half = _t_quantile(n_offices - 1, level) * math.sqrt(variance)
        ci_low, ci_high = diff - half, diff + half
        if n_offices < FEW_OFFICES:
            caveats.append(CAVEAT_FEW_OFFICES)
    if min(n_a, n_b) < FEW_RESPONSES:
        caveats.append(CAVEAT_FEW_RESPONSES)

    u1, p_mann_whitney = _mann_whitney(value, count, in_a)
    prob_superiority = u1 / (n_a * n_b)

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
        p_mann_whitney=p_mann_whitney,
        office_means=office_means,
        office_is_a=office_is_a,
        permutations=permutations,
        seed=seed,
        caveats=caveats,
    )


# --------------------------------------------------------------------------- several items


def holm(comparisons: Sequence[Comparison]) -> list[Comparison]:
    """Holm-adjust the p-values of several items of one comparison (same groups a and b).

    Holm's step-down adjustment (as ``statsmodels.stats.multitest.multipletests(method="holm")``
    computes it) controls the family-wise error rate without assuming independence between
    items. Each comparison
    contributes its office-level ``p_randomization``; only when that is missing (randomisation
    switched off) does it fall back to ``p_mann_whitney`` — that p-value ignores clustering by
    office, which the comparison's caveat then says. ``p_holm_basis`` records which was used.
    Comparisons without any finite p-value keep ``p_holm=None``. Returns new comparisons in the
    input order.
    """
    pairs = {(c.group_a, c.group_b) for c in comparisons}
    if len(pairs) > 1:
        raise ValueError(f"holm() adjusts one comparison across items, got groups {pairs}")
    raw: list[float] = []
    basis: list[Literal["randomization", "mann_whitney"] | None] = []
    for c in comparisons:
        if c.p_randomization is not None and math.isfinite(c.p_randomization):
            raw.append(c.p_randomization)
            basis.append("randomization")
        elif math.isfinite(c.p_mann_whitney):
            raw.append(c.p_mann_whitney)
            basis.append("mann_whitney")
        else:
            raw.append(_NAN)
            basis.append(None)
    usable = [i for i, kind in enumerate(basis) if kind is not None]
    adjusted: dict[int, float] = {}
    if usable:
        corrected = _holm_adjust(np.asarray([raw[i] for i in usable], dtype=np.float64))
        adjusted = {i: float(p) for i, p in zip(usable, corrected, strict=True)}
    result: list[Comparison] = []
    for i, c in enumerate(comparisons):
        caveat = c.caveat
        if basis[i] == "mann_whitney":
            caveat = _join(
                [
                    c.caveat or "",
                    "Holm p-value uses the response-level Mann-Whitney p, "
                    "which ignores clustering by office",
                ]
            )
        result.append(
            msgspec.structs.replace(c, p_holm=adjusted.get(i), p_holm_basis=basis[i], caveat=caveat)
        )
    return result


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class _Panel:
    """Office x period cells (sorted by office, then period) with what a regression needs.

    An OLS on responses whose regressors are constant within a cell equals the WLS on cell
    means weighted by n; a response's residual is its cell's residual plus its deviation from
    the cell mean, and those deviations' squares add up to ``within``.
    """

    office: IntArray
    period: IntArray
    n: FloatArray
    mean: FloatArray
    within: FloatArray
    n_offices: int
    n_periods: int
    office_start: IntArray

    @property
    def responses(self) -> int:
        return int(self.n.sum())

    def by_office(self, x: FloatArray) -> FloatArray:
        """Sums over each office's cells (of the rows of ``x``)."""
        return np.asarray(np.add.reduceat(x, self.office_start, axis=0), dtype=np.float64)

    def design(self, interest: FloatArray) -> FloatArray:
        """The full design of ``value ~ interest + C(office) + C(period)`` at the cells."""
        columns = [np.ones((len(self.n), 1))]
        columns.append((self.office[:, np.newaxis] == np.arange(1, self.n_offices)).astype(float))
        columns.append((self.period[:, np.newaxis] == np.arange(1, self.n_periods)).astype(float))
        columns.append(interest)
        return np.hstack(columns)


@dataclass(frozen=True)
class _Fit:
    params: FloatArray
    cov: FloatArray
    df: float
    notes: list[str]


def _panel(table: CountTable, keep: npt.NDArray[np.bool_], periods: list[Any]) -> _Panel:
    """The cells ``keep`` of the table, offices numbered in label order, periods as listed."""
    cells = table.cells
    office_code = cells.office[keep]
    seen = np.flatnonzero(np.bincount(office_code, minlength=len(table.offices)))
    present = sorted(seen.tolist(), key=lambda c: table.offices[c])
    office_rank = np.zeros(len(table.offices), dtype=np.intp)
    office_rank[present] = np.arange(len(present))
    period_index = {label: i for i, label in enumerate(periods)}
    period_rank = np.asarray(
        [period_index.get(label, -1) for label in table.periods], dtype=np.intp
    )
    office = office_rank[office_code]
    period = period_rank[cells.period[keep]]
    order = np.argsort(office * len(periods) + period, kind="stable")
    office, period = office[order], period[order]
    return _Panel(
        office=office,
        period=period,
        n=cells.n[keep][order],
        mean=cells.mean[keep][order],
        within=cells.within[keep][order],
        n_offices=len(present),
        n_periods=len(periods),
        office_start=np.flatnonzero(np.r_[True, office[1:] != office[:-1]]),
    )


def _sandwich(
    panel: _Panel,
    x: FloatArray,
    residual: FloatArray,
    bread: FloatArray,
    n_params: int,
    rank: int,
    clustered: bool,
) -> tuple[FloatArray, float]:
    """The covariance statsmodels gives the response-level fit, and its t degrees of freedom.

    ``x`` holds each cell's regressors, ``residual`` its mean's residual and ``bread`` is
    (X'WX)^-1 (or its pseudo-inverse).
    """
    n_resp = panel.responses
    if clustered:
        # Office g's score is the sum over its cells of n * residual * x; statsmodels'
        # correction G / (G - 1) * (N - 1) / (N - K) with K the number of columns.
        if n_resp - n_params <= 0:
            raise ValueError("fewer responses than parameters in the regression")
        scores = panel.by_office(x * (panel.n * residual)[:, np.newaxis])
        g = panel.n_offices
        correction = g / (g - 1.0) * ((n_resp - 1.0) / float(n_resp - n_params))
        return bread @ (scores.T @ scores) @ bread * correction, g - 1.0
    # HC1: a response's squared residual is its cell's squared residual plus its own squared
    # deviation from the cell mean; scaled by N / (N - rank) as statsmodels' nobs / df_resid.
    if n_resp - rank <= 0:
        raise ValueError("fewer responses than parameters in the regression")
    squares = panel.within + panel.n * residual**2
    meat = (x * squares[:, np.newaxis]).T @ x
    return bread @ meat @ bread * (n_resp / float(n_resp - rank)), float(n_resp - rank)


def _conditioned_inverse(
    gram: FloatArray, limit: float, raw: FloatArray | None = None
) -> tuple[FloatArray, float] | None:
    """The inverse of a positive definite Gram matrix and the condition number of its
    unit-diagonal scaling, or None when that condition number exceeds ``limit`` or (given the
    columns' squared size ``raw`` before something was partialled out of them, which the
    diagonal is computed as a difference from) a column kept less than 1e-6 of it."""
    diagonal = np.diag(gram)
    if gram.size == 0:
        return gram.copy(), 1.0
    if not (diagonal > (0.0 if raw is None else 1e-6 * raw)).all():
        return None
    scale = 1.0 / np.sqrt(diagonal)
    scaled = gram * scale[:, np.newaxis] * scale[np.newaxis, :]
    eigen = np.linalg.eigvalsh(scaled)
    if eigen[0] <= 0 or eigen[-1] > limit * eigen[0]:
        return None
    inverse = np.linalg.inv(scaled) * scale[:, np.newaxis] * scale[np.newaxis, :]
    return inverse, float(eigen[-1] / eigen[0])


class _Fixed:
    """Two-way fixed effects (office and period) on one panel, partialled out once.

    Frisch-Waugh-Lovell: the coefficients of regressors of interest in ``value ~ interest +
    C(office) + C(period)`` are those of the regression with both residualised on the fixed
    effects, and the matching block of any sandwich covariance has the residualised regressors
    as scores. Office effects go by demeaning within office; the period dummies, so demeaned,
    have the Gram matrix diag(N_p) - C' diag(1 / n_o) C (C: responses by office x period), and
    their products with any office-demeaned column are its sums by period. So no matrix larger
    than periods x periods is ever inverted, and nothing costs more than a pass over the cells.

    Where that would lose precision (an ill-conditioned design, a regressor mostly explained by
    the fixed effects) or the design is collinear, the numbers come from the full cell design
    through statsmodels' pseudo-inverse, as on responses.
    """

    #: Largest condition number (after scaling to unit diagonal) of a Gram matrix that is
    #: inverted here: its inverse then keeps about 12 of the 16 digits.
    LIMIT: Final = 1e4

    def __init__(self, panel: _Panel) -> None:
        self.panel = panel
        counts = np.zeros((panel.n_offices, panel.n_periods))
        counts[panel.office, panel.period] = panel.n
        self.counts = counts
        self.share = counts / counts.sum(axis=1)[:, np.newaxis]
        period_n = counts.sum(axis=0)
        gram = np.diag(period_n) - counts.T @ self.share
        found = _conditioned_inverse(gram[1:, 1:], self.LIMIT, period_n[1:])
        self.inverse: FloatArray | None = None if found is None else found[0]
        self.condition = _NAN if found is None else found[1]
        self.outcome = None if found is None else self.residualise(panel.mean)

    def residualise(self, y: FloatArray) -> FloatArray:
        """y (one value per cell) with office and period effects partialled out, weighted by n:
        demeaned within office, then less its period effects gamma = H^-1 (sums by period)."""
        assert self.inverse is not None
        panel = self.panel
        demeaned = y - (panel.by_office(panel.n * y) / panel.by_office(panel.n))[panel.office]
        sums = np.bincount(panel.period, weights=panel.n * demeaned, minlength=panel.n_periods)
        gamma = np.zeros(panel.n_periods)
        gamma[1:] = self.inverse @ sums[1:]
        return np.asarray(
            demeaned - (gamma[panel.period] - (self.share @ gamma)[panel.office]), dtype=np.float64
        )

    def fit(self, interest: FloatArray, clustered: bool) -> _Fit:
        """Coefficients of ``interest`` (cells x k), their covariance and its t df.

        The regressors of interest are nonzero only in a few offices' cells (the treated
        ones). Residualised, they are x_c - Gamma' z_c there and -Gamma' z_c everywhere else,
        with Gamma their period effects and z_c = e_period - (the office's period shares), so
        every sum over the other cells is a periods x periods matrix built from office x
        period totals.
        """
        panel = self.panel
        if self.outcome is None or self.inverse is None:
            return self._fit_full(interest, clustered)
        g, p, k = panel.n_offices, panel.n_periods, interest.shape[1]
        involved = panel.by_office(np.abs(interest).sum(axis=1)) > 0
        cells = np.flatnonzero(involved[panel.office])
        office, period, n = panel.office[cells], panel.period[cells], panel.n[cells]
        totals = np.zeros((g, k))
        np.add.at(totals, office, n[:, np.newaxis] * interest[cells])
        demeaned = interest[cells] - (totals / panel.by_office(panel.n)[:, np.newaxis])[office]
        sums = np.zeros((p, k))
        np.add.at(sums, period, n[:, np.newaxis] * demeaned)
        gamma = np.zeros((p, k))
        gamma[1:] = self.inverse @ sums[1:]
        x = demeaned - (gamma[period] - (self.share @ gamma)[office])
        elsewhere = np.where(involved[:, np.newaxis], 0.0, self.counts)
        gram = (x * n[:, np.newaxis]).T @ x + gamma.T @ self._outer(elsewhere) @ gamma
        found = _conditioned_inverse(gram, self.LIMIT)
        # A regressor the fixed effects nearly explain is a difference of nearly equal
        # numbers; partialling out must keep enough of it for about 1e-10 precision.
        before = n @ demeaned**2
        if found is None or not (np.diag(gram) > 1e-12 * self.condition**2 * before).all():
            return self._fit_full(interest, clustered)
        bread = found[0]
        params = bread @ ((demeaned * n[:, np.newaxis]).T @ self.outcome[cells])
        shift = gamma @ params
        residual = self.outcome + shift[panel.period] - (self.share @ shift)[panel.office]
        residual[cells] = self.outcome[cells] - x @ params

        n_resp = panel.responses
        n_params = g + p - 1 + k
        if n_resp - n_params <= 0:
            raise ValueError("fewer responses than parameters in the regression")
        grid = np.zeros((g, p))
        if clustered:
            # Office scores: sum over its cells of n * residual * (residualised regressors).
            scores = np.zeros((g, k))
            np.add.at(scores, office, (n * residual[cells])[:, np.newaxis] * x)
            grid[panel.office, panel.period] = panel.n * residual
            outside = -(grid - grid.sum(axis=1)[:, np.newaxis] * self.share) @ gamma
            scores[~involved] = outside[~involved]
            correction = g / (g - 1.0) * ((n_resp - 1.0) / float(n_resp - n_params))
            return _Fit(params, bread @ (scores.T @ scores) @ bread * correction, g - 1.0, [])
        # HC1: each response's squared residual is its cell's plus its deviation from the cell
        # mean; statsmodels scales by N / (N - K).
        squares = panel.within + panel.n * residual**2
        grid[panel.office, panel.period] = squares
        grid[involved] = 0.0
        meat = (x * squares[cells][:, np.newaxis]).T @ x + gamma.T @ self._outer(grid) @ gamma
        cov = bread @ meat @ bread * (n_resp / float(n_resp - n_params))
        return _Fit(params, cov, float(n_resp - n_params), [])

    def _outer(self, weights: FloatArray) -> FloatArray:
        """sum over cells of w_c z_c z_c' (periods x periods), given w by office x period."""
        share = self.share
        cross = weights.T @ share
        return np.asarray(
            np.diag(weights.sum(axis=0))
            - cross
            - cross.T
            + share.T @ (weights.sum(axis=1)[:, np.newaxis] * share),
            dtype=np.float64,
        )

    def _fit_full(self, interest: FloatArray, clustered: bool) -> _Fit:
        import statsmodels.api as sm  # only for collinear designs: its pseudo-inverse decides

        panel = self.panel
        design = panel.design(interest)
        model = sm.WLS(panel.mean, design, weights=panel.n)
        fit, notes = _quietly(lambda: model.fit())
        params = np.asarray(fit.params, dtype=np.float64)
        bread = np.asarray(fit.normalized_cov_params, dtype=np.float64)
        residual = panel.mean - design @ params
        cov, df = _sandwich(
            panel, design, residual, bread, design.shape[1], int(model.rank), clustered
        )
        k = interest.shape[1]
        return _Fit(params[-k:], cov[-k:, -k:], df, notes)

    def notes_without_interest(self) -> list[str]:
        """What statsmodels says fitting the fixed effects alone: only a collinear design
        (offices and periods that never meet) makes it say anything."""
        if self.inverse is not None:
            return []
        import statsmodels.api as sm  # as above: the collinear design decides

        design = self.panel.design(np.zeros((len(self.panel.n), 0)))
        _, notes = _quietly(lambda: sm.WLS(self.panel.mean, design, weights=self.panel.n).fit())
        return notes

    def placebo_estimates(
        self, post: npt.NDArray[np.bool_]
    ) -> tuple[Callable[[npt.NDArray[np.intp]], FloatArray], list[str]]:
        """The treated_post coefficient for any set of offices given the event, without refits.

        With D_o the column "office o, after the event" residualised on the fixed effects, the
        coefficient for a set P of offices is sum_P D_o'Wy / (sum_P D_o)'W(sum_P D_o). Demeaned
        within office, the columns d_o have disjoint cells; with b_o their sums by period,
        (sum_P D_o)'W(sum_P D_o) = sum_P d_o'Wd_o - (sum_P b_o)' H^-1 (sum_P b_o). A set whose
        column the fixed effects (nearly) explain, such as an office seen only before or only
        after the event, is refitted on the full cell design instead, as the reference refits
        every placebo.
        """
        panel = self.panel
        notes: list[str] = []
        post_share = panel.by_office(np.where(post, panel.n, 0.0)) / panel.by_office(panel.n)
        demeaned = post - post_share[panel.office]
        weighted = panel.n * demeaned
        own = panel.by_office(weighted * demeaned)
        by_period = np.zeros((panel.n_offices, panel.n_periods))
        by_period[panel.office, panel.period] = weighted
        covariance = (
            panel.by_office(weighted * self.outcome)
            if self.outcome is not None
            else np.zeros(panel.n_offices)
        )

        def refit(offices: npt.NDArray[np.intp]) -> float:
            column = (np.isin(panel.office, offices) & post).astype(np.float64)
            fit, caught = _quietly(self._refit(column))
            notes.extend(caught)
            return fit

        def estimates(chosen: npt.NDArray[np.intp]) -> FloatArray:
            numerator = covariance[chosen].sum(axis=1)
            out = np.empty(len(chosen), dtype=np.float64)
            usable = np.zeros(len(chosen), dtype=bool)
            if self.inverse is not None:
                summed = by_period[chosen].sum(axis=1)[:, 1:]
                size = own[chosen].sum(axis=1)
                denominator = size - ((summed @ self.inverse) * summed).sum(axis=1)
                # Exact to about 1e-10 unless the fixed effects nearly explain the column.
                usable = denominator > 1e-6 * self.condition * size
                out[usable] = numerator[usable] / denominator[usable]
            for row in np.flatnonzero(~usable):
                out[row] = refit(chosen[row])
            return out

        return estimates, notes

    def _refit(self, column: FloatArray) -> Callable[[], float]:
        def call() -> float:
            import statsmodels.api as sm  # as the reference's refit, for a collinear placebo

            design = self.panel.design(column[:, np.newaxis])
            fit = sm.WLS(self.panel.mean, design, weights=self.panel.n).fit()
            return float(fit.params[-1])

        return call


#: Singular values of a pre-trend covariance below this share of the largest count as zero.
_SINGULAR: Final = 1e-9


def _wald_pre_trend(
    params: FloatArray, cov: FloatArray, pre: list[int], df: float
) -> tuple[float, list[str]]:
    """The joint F test that the coefficients ``pre`` are zero, as statsmodels' wald_test."""
    restriction = np.zeros((len(pre), len(params)))
    restriction[np.arange(len(pre)), pre] = 1.0
    estimates = restriction @ params
    cov_p = restriction @ cov @ restriction.T
    if np.isnan(cov_p).max():
        raise ValueError(
            "r_matrix performs f_test for using dimensions that are asymptotically non-normal"
        )
    # statsmodels keeps singular values above rounding level (about 1e-16 of the largest), so
    # a covariance that is singular in exact arithmetic (cluster-robust, with fewer offices than
    # restrictions) gets a rank and an F decided by rounding noise; a cut-off well above
    # rounding gives the rank and the generalised Wald test the algebra says.
    inverse = np.linalg.pinv(cov_p, rcond=_SINGULAR)
    constraints = len(pre)
    rank = int(np.linalg.matrix_rank(cov_p, rtol=_SINGULAR))
    notes: list[str] = []
    if rank < constraints:
        notes.append(
            "numerical warning (ValueWarning: covariance of constraints does not have full "
            f"rank. The number of constraints is {constraints:d}, but rank is {rank:d})"
        )
        constraints = rank
    if constraints == 0:
        # No variance at all (identical answers): statsmodels divides by zero here.
        return _NAN, notes
    f_value = float(estimates @ inverse @ estimates) / constraints
    return float(special.fdtrc(constraints, df, f_value)), notes


def _interval(fit: _Fit, index: int, level: float) -> tuple[float, float]:
    estimate = float(fit.params[index])
    with np.errstate(invalid="ignore"):
        half = _t_quantile(fit.df, level) * float(np.sqrt(fit.cov[index, index]))
    return estimate - half, estimate + half


def did(
    table: CountTable,
    treated_office: str | Sequence[str],
    event_period: Any,
    comparison_offices: Sequence[str] | None = None,
    permutations: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> DiD:
    """:func:`officepulse.stats.did` from office x period x answer counts.

    The same two-way fixed-effects regressions, intervals, event study, pre-trend test and
    placebo randomisation, computed on the office x period cells (see :class:`_Fixed`): the
    HC1 and cluster-robust covariances from each cell's n, mean and within-cell sum of
    squares, the placebo estimates from one residualisation instead of a refit per placebo.
    """
    _check_level(level)
    treated = [treated_office] if isinstance(treated_office, str) else list(treated_office)
    if not treated:
        raise ValueError("no treated office given")
    cells = table.cells
    keep = np.ones(len(cells.n), dtype=bool)
    if comparison_offices is not None:
        allowed = {*treated, *comparison_offices}
        codes = [i for i, office in enumerate(table.offices) if office in allowed]
        keep &= np.isin(cells.office, codes)
    present = {table.offices[c] for c in np.unique(cells.office[keep]).tolist()}
    missing = [o for o in treated if o not in present]
    if missing:
        raise ValueError(f"treated office(s) without responses: {missing}")
    comparison = sorted(map(str, present - set(treated)))
    if not comparison:
        raise ValueError("no comparison office with responses")

    periods: list[Any] = sorted({table.periods[c] for c in np.unique(cells.period[keep]).tolist()})
    event_index = bisect.bisect_left(periods, event_period)
    if event_index == 0:
        raise ValueError("no period before the event: nothing to compare against")
    if event_index == len(periods):
        raise ValueError("no period at or after the event")

    panel = _panel(table, keep, periods)
    office_labels = sorted(present)
    treated_codes = [i for i, office in enumerate(office_labels) if office in set(treated)]
    is_treated = np.isin(panel.office, treated_codes)
    offset = panel.period - event_index
    post = offset >= 0
    n_offices = panel.n_offices

    caveats: list[str] = []
    clustered = len(treated) >= 2 and len(comparison) >= 2
    if clustered:
        se_kind = "cluster-robust by office"
        if n_offices < FEW_OFFICES:
            caveats.append(CAVEAT_FEW_OFFICES)
    else:
        se_kind = "HC1 (responses)"
        lone = "treated" if len(treated) < 2 else "comparison"
        caveats.append(
            f"one {lone} office: the interval uses response-level (HC1) standard errors, "
            "which ignore office-by-period shocks; see the randomisation p-value"
        )
    fixed = _Fixed(panel)
    main = fixed.fit((is_treated & post).astype(np.float64)[:, np.newaxis], clustered)
    caveats.extend(main.notes)
    estimate = float(main.params[0])
    ci_low, ci_high = _interval(main, 0, level)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_value = float(np.float64(estimate) / np.sqrt(main.cov[0, 0]))
    p = _t_pvalue(t_value, main.df)

    treated_pre = int(panel.n[is_treated & ~post].sum())
    treated_post = int(panel.n[is_treated & post].sum())
    if min(treated_pre, treated_post) < FEW_RESPONSES:
        caveats.append(
            f"{CAVEAT_FEW_RESPONSES} (treated office(s): {treated_pre} before, "
            f"{treated_post} after the event)"
        )

    points, pre_trend_p, notes = _event_study(fixed, is_treated, offset, clustered, level)
    caveats.extend(notes)

    draw, notes = fixed.placebo_estimates(post)
    p_rand, used, exact, floor = _randomization_p(
        draw, estimate, n_offices, len(treated), permutations, seed
    )
    caveats.extend(notes)
    caveats.append(_floor_caveat(floor, used, "event to offices") or "")

    return DiD(
        estimate=estimate,
        ci_low=ci_low,
        ci_high=ci_high,
        p=p,
        n=panel.responses,
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


def _event_study(
    fixed: _Fixed,
    is_treated: npt.NDArray[np.bool_],
    offset: IntArray,
    clustered: bool,
    level: float,
) -> tuple[list[EventStudyPoint], float | None, list[str]]:
    observed = {int(o) for o in offset[is_treated]}
    if -1 not in observed:
        return (
            [],
            None,
            [
                "no responses from the treated office(s) in the last period before the event: "
                "no event study",
                CAVEAT_FEW_PRE_PERIODS,
            ],
        )
    offsets = sorted(observed - {-1})
    points = [
        EventStudyPoint(period_offset=-1, estimate=0.0, ci_low=0.0, ci_high=0.0, is_reference=True)
    ]
    if not offsets:
        # Only the reference period: the regression has the fixed effects alone.
        return points, None, [*fixed.notes_without_interest(), CAVEAT_FEW_PRE_PERIODS]
    columns = np.stack([(is_treated & (offset == o)) for o in offsets], axis=1).astype(np.float64)
    fit = fixed.fit(columns, clustered)
    caveats = list(fit.notes)
    for index, o in enumerate(offsets):
        low, high = _interval(fit, index, level)
        points.append(
            EventStudyPoint(
                period_offset=o, estimate=float(fit.params[index]), ci_low=low, ci_high=high
            )
        )
    points.sort(key=lambda point: point.period_offset)
    pre = [index for index, o in enumerate(offsets) if o < -1]
    if not pre:
        caveats.append(CAVEAT_FEW_PRE_PERIODS)
        return points, None, caveats
    pre_trend_p, notes = _wald_pre_trend(fit.params, fit.cov, pre, fit.df)
    caveats.extend(notes)
    return points, pre_trend_p, caveats


def finish_comparison(
    *,
    item: str,
    a: str,
    b: str,
    higher_is_better: bool,
    n_a: int,
    n_b: int,
    mean_a: float,
    mean_b: float,
    ci: tuple[float, float],
    prob_superiority: float,
    p_mann_whitney: float,
    office_means: FloatArray,
    office_is_a: npt.NDArray[np.bool_],
    permutations: int,
    seed: int,
    caveats: list[str],
) -> Comparison:
    """The office-level randomisation test and the result, shared with the response-level
    reference (:func:`officepulse.stats.compare_groups`), which reaches the same office means.

    The statistic is the difference of unweighted office means, recomputed for every way of
    giving the ``a`` label to the same number of offices (see ``compare_groups``).
    """
    offices_a = int(office_is_a.sum())
    offices_b = len(office_means) - offices_a
    total = float(office_means.sum())

    def office_mean_diff(chosen: npt.NDArray[np.intp]) -> FloatArray:
        sums = office_means[chosen].sum(axis=1)
        return np.asarray(sums / offices_a - (total - sums) / offices_b, dtype=np.float64)

    observed = float(office_mean_diff(np.flatnonzero(office_is_a)[np.newaxis, :])[0])
    p_rand, used, exact, floor = _randomization_p(
        office_mean_diff, observed, len(office_means), offices_a, permutations, seed
    )
    caveats.append(_floor_caveat(floor, used, f"{a!r} label to offices") or "")
    diff = mean_a - mean_b
    favours: str | None = None
    if diff != 0.0:
        favours = a if (diff > 0) == higher_is_better else b
    return Comparison(
        item=item,
        group_a=a,
        group_b=b,
        higher_is_better=higher_is_better,
        n_a=n_a,
        n_b=n_b,
        offices_a=offices_a,
        offices_b=offices_b,
        mean_a=mean_a,
        mean_b=mean_b,
        diff=diff,
        ci_low=ci[0],
        ci_high=ci[1],
        effect_size=2.0 * prob_superiority - 1.0,
        effect_size_kind="rank-biserial",
        prob_superiority=prob_superiority,
        favours=favours,
        p_mann_whitney=p_mann_whitney,
        randomization_stat=observed,
        p_randomization=p_rand,
        permutations_used=used,
        randomization_exact=exact,
        caveat=_join(caveats),
    )
