"""Weekly statistics of one office from aggregated weeks, and its control chart (X-bar).

Everything here works on *weekly aggregates* (n, mean, standard deviation of one item in one
week), never on responses: DuckDB computes those in :mod:`officepulse.summary`, and only weeks
that passed the minimum group size ever reach this module. No database, no I/O.

Pooling
    :func:`pool` combines visible weeks (or visible offices of one week) exactly as if the
    responses had been averaged together: the pooled mean is weighted by n and the pooled
    variance adds the spread *between* the weeks to the spread *within* them. Pooling only
    visible cells is what keeps a pooled figure from revealing a suppressed one: a total that
    included a hidden week, minus the visible weeks next to it, would give the hidden week away.

The control chart (statistical process control)
    The question an office manager asks is "is this week unusual *for us*?". A Shewhart X-bar
    chart answers it with the office's own history as the yardstick, so offices in very
    different districts are never measured against each other here:

    * Each week is a subgroup of responses. The **baseline** is the office's previous weeks
      (up to :data:`BASELINE_WEEKS` before the week under review) that have at least *k*
      responses; at least :data:`MIN_BASELINE_WEEKS` of them are needed, otherwise there is
      "not enough history" and no limits are drawn.
    * **Centre line** = mean of all baseline responses (the n-weighted mean of the weekly
      means), the usual grand mean of an X-bar chart with unequal subgroup sizes.
    * **Sigma** = pooled within-week standard deviation, sqrt(sum (n_i - 1) s_i² / sum (n_i - 1)).
      Using the within-week spread (not the spread of the weekly means) is what makes an
      X-bar chart sensitive to shifts between weeks: week-to-week movement is the signal, not
      part of the noise estimate.
    * **Limits** for a week with n responses = centre ± 3 · sigma / sqrt(n): they widen for
      quiet weeks and tighten for busy ones. With approximately normal weekly means (the
      central limit theorem; weeks have at least *k* responses) a week of an unchanged office
      leaves them with probability 2 · (1 - Φ(3)) ≈ 0.27 % (:func:`false_alarm_rate`), i.e.
      about one false alarm in seven years per item. With five items checked each week that is
      still only about one false alarm every 15 months for the office.
    * An alert says **worse** or **better** by the item's polarity: for ``lower_is_better``
      items (stress) a mean above the upper limit is worse; for the others it is better.

    Assumptions worth knowing: weeks are treated as independent (a slow drift is absorbed by
    the moving baseline rather than flagged), the 1-5 codes are averaged as interval data (the
    reporting convention for Likert means), and who answers is not a random sample of visitors
    (a kiosk moved to another room changes the clientele). An alert is a reason to look, not a
    proof. With identical answers in every baseline week sigma is 0, and any change alerts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final, Literal

import msgspec
import numpy as np
from scipy import special
from scipy import stats as sps

__all__ = [
    "BASELINE_WEEKS",
    "MIN_BASELINE_WEEKS",
    "SIGMAS",
    "Check",
    "ControlLimits",
    "Pooled",
    "WeekStat",
    "check_week",
    "control_limits",
    "false_alarm_rate",
    "mean_interval",
    "pool",
]

#: How far back the baseline of a control chart reaches (weeks before the week under review).
#: Half a year: long enough to find enough weeks with k responses in a small office, short
#: enough that last year's office (other staff, other rooms) is not the yardstick.
BASELINE_WEEKS: Final = 26
#: Fewer baseline weeks than this give limits too uncertain to alert on.
MIN_BASELINE_WEEKS: Final = 8
#: Width of the control limits in standard errors (Shewhart's three sigma).
SIGMAS: Final = 3.0

Status = Literal["alert", "in_control", "not_enough_history", "too_few_responses"]
Verdict = Literal["worse", "better"]


class WeekStat(msgspec.Struct, frozen=True, kw_only=True):
    """One item in one week (or one office in one week): only ever a visible cell (n >= k)."""

    label: str
    n: int
    mean: float
    sd: float


class Pooled(msgspec.Struct, frozen=True, kw_only=True):
    """Several visible cells taken together, with a t interval for the mean."""

    n: int
    mean: float
    sd: float
    ci_low: float
    ci_high: float
    cells: int


def mean_interval(n: int, mean: float, sd: float, level: float = 0.95) -> tuple[float, float]:
    """The t interval of a mean from its aggregate: ``scipy.stats.t.interval``'s numbers.

    The same interval as :func:`officepulse.stats.mean_ci` gives for the responses themselves.
    With no spread (all answers equal) the interval has zero width.

    The quantiles come from ``scipy.special.stdtrit``, the function behind ``t.ppf``, with
    ``t.interval``'s arithmetic, so the results are identical to the last bit; the generic
    distribution machinery around it (argument checks, array handling) costs a third of a
    millisecond per call, and a summary computes dozens of intervals.
    """
    if n < 2:
        raise ValueError("an interval needs at least two responses")
    if sd <= 0.0 or not math.isfinite(sd):
        return mean, mean
    scale = sd / math.sqrt(n)
    low = float(special.stdtrit(n - 1, (1.0 - level) / 2)) * scale + mean
    high = float(special.stdtrit(n - 1, (1.0 + level) / 2)) * scale + mean
    return low, high


def pool(cells: Sequence[WeekStat], level: float = 0.95) -> Pooled | None:
    """Visible cells pooled as one group (None when there are none).

    Total sum of squares = within-cell part sum (n_i - 1) s_i² plus between-cell part
    sum n_i (m_i - M)², so the pooled standard deviation equals that of all their responses.
    """
    if not cells:
        return None
    n = np.asarray([c.n for c in cells], dtype=np.float64)
    means = np.asarray([c.mean for c in cells], dtype=np.float64)
    sds = np.asarray([c.sd for c in cells], dtype=np.float64)
    total = float(n.sum())
    grand = float(np.average(means, weights=n))
    squares = float(np.sum((n - 1.0) * sds**2) + np.sum(n * (means - grand) ** 2))
    sd = math.sqrt(squares / (total - 1.0)) if total > 1 else 0.0
    low, high = mean_interval(int(total), grand, sd, level)
    return Pooled(n=int(total), mean=grand, sd=sd, ci_low=low, ci_high=high, cells=len(cells))


class ControlLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Centre line and sigma of an X-bar chart, from the baseline weeks."""

    centre: float
    sigma: float
    baseline_weeks: int
    baseline_n: int

    def limits(self, n: int, sigmas: float = SIGMAS) -> tuple[float, float]:
        """Lower and upper control limit for a week with ``n`` responses."""
        half = sigmas * self.sigma / math.sqrt(n)
        return self.centre - half, self.centre + half


def control_limits(
    baseline: Sequence[WeekStat], min_weeks: int = MIN_BASELINE_WEEKS
) -> ControlLimits | None:
    """X-bar centre and pooled within-week sigma, or None with fewer than ``min_weeks`` weeks."""
    if len(baseline) < min_weeks:
        return None
    n = np.asarray([w.n for w in baseline], dtype=np.float64)
    means = np.asarray([w.mean for w in baseline], dtype=np.float64)
    sds = np.asarray([w.sd for w in baseline], dtype=np.float64)
    centre = float(np.average(means, weights=n))
    sigma = math.sqrt(float(np.sum((n - 1.0) * sds**2)) / float(np.sum(n - 1.0)))
    return ControlLimits(
        centre=centre, sigma=sigma, baseline_weeks=len(baseline), baseline_n=int(n.sum())
    )


def false_alarm_rate(sigmas: float = SIGMAS) -> float:
    """Chance that a week of an unchanged office leaves the limits (two-sided, normal)."""
    return float(2.0 * sps.norm.sf(sigmas))


class Check(msgspec.Struct, frozen=True, kw_only=True):
    """The verdict on one week of one item."""

    status: Status
    verdict: Verdict | None = None
    lower: float | None = None
    upper: float | None = None
    z: float | None = None


def check_week(
    limits: ControlLimits | None,
    week: WeekStat | None,
    higher_is_better: bool,
    sigmas: float = SIGMAS,
) -> Check:
    """Whether ``week`` (None: fewer than k responses) lies outside the control limits.

    ``verdict`` is set only for an alert: "worse" or "better" by the item's polarity.
    """
    if limits is None:
        return Check(status="not_enough_history")
    if week is None:
        return Check(status="too_few_responses")
    lower, upper = limits.limits(week.n, sigmas)
    standard_error = limits.sigma / math.sqrt(week.n)
    difference = week.mean - limits.centre
    # With no spread in the baseline there is no standard error to measure a distance in.
    z = difference / standard_error if standard_error > 0 else None
    if lower <= week.mean <= upper:
        return Check(status="in_control", lower=lower, upper=upper, z=z)
    went_up = week.mean > upper
    verdict: Verdict = "better" if went_up == higher_is_better else "worse"
    return Check(status="alert", verdict=verdict, lower=lower, upper=upper, z=z)
