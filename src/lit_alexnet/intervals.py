"""Confidence intervals over seeds, without scipy: Student's t quantiles and Welch's interval.

Results on small data move with the seed, so the results commands (``report``, ``figure1``)
judge a difference by an interval over seeds rather than by one run's number.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95


def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), by its continued fraction
    (Numerical Recipes, section 6.4), on the side of ``x`` where the fraction converges fast."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of :func:`_betainc` (modified Lentz's method)."""
    tiny = 1e-300

    def nonzero(v: float) -> float:
        return v if abs(v) > tiny else tiny

    c, d = 1.0, 1.0 / nonzero(1.0 - (a + b) * x / (a + 1.0))
    fraction = d
    for m in range(1, 1000):
        even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        d, c = 1.0 / nonzero(1.0 + even * d), nonzero(1.0 + even / c)
        fraction *= d * c
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d, c = 1.0 / nonzero(1.0 + odd * d), nonzero(1.0 + odd / c)
        fraction *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return fraction


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` (not necessarily whole) degrees of freedom."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def student_t_quantile(p: float, df: float) -> float:
    """The ``t`` with P(T <= t) = ``p`` for Student's t with ``df`` degrees of freedom
    (``student_t_quantile(0.975, 4)`` is 2.776), found by bisection on :func:`student_t_cdf`."""
    if not 0.0 < p < 1.0 or not df > 0.0:
        raise ValueError(f"student_t_quantile({p}, {df}): needs 0 < p < 1 and df > 0")
    if p < 0.5:
        return -student_t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while student_t_cdf(high, df) < p:
        low, high = high, 2.0 * high
    while high - low > 1e-12 * high:
        middle = (low + high) / 2.0
        low, high = (middle, high) if student_t_cdf(middle, df) < p else (low, middle)
    return (low + high) / 2.0


@dataclass(frozen=True)
class Interval:
    """A mean, or a difference of two means (``a`` minus ``b``), its confidence interval and
    the t distribution's degrees of freedom."""

    difference: float  # the mean, for one sample
    low: float
    high: float
    df: float

    @property
    def excludes_zero(self) -> bool:
        """Whether the difference is distinguishable from zero at the interval's confidence."""
        return self.low > 0.0 or self.high < 0.0


def welch_interval(
    a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE
) -> Interval | None:
    """Welch's t interval for mean(``a``) - mean(``b``), the two samples' variances not taken
    to be equal; None where either has fewer than two values (no spread to judge by)."""
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    difference = statistics.fmean(a) - statistics.fmean(b)
    if va + vb == 0.0:  # every seed alike in both arms: no spread, a point
        return Interval(difference, difference, difference, float(len(a) + len(b) - 2))
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = student_t_quantile(0.5 + confidence / 2.0, df) * math.sqrt(va + vb)
    return Interval(difference, difference - half, difference + half, df)


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval | None:
    """The t interval for the mean of ``values`` (``df`` = n - 1); None with fewer than two."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    df = float(len(values) - 1)
    half = student_t_quantile(0.5 + confidence / 2.0, df) * statistics.stdev(values)
    half /= math.sqrt(len(values))
    return Interval(mean, mean - half, mean + half, df)


@dataclass(frozen=True)
class RatioInterval:
    """The geometric mean of ratios and its 95% interval (a t interval of the mean log ratio,
    back-transformed); ``low`` and ``high`` are NaN with fewer than two ratios."""

    mean: float
    low: float
    high: float
    n: int


def ratio_interval(ratios: Sequence[float]) -> RatioInterval:
    """The geometric mean of ``ratios`` (each > 0) with a 95% t interval over their logs."""
    if not ratios or not all(r > 0 for r in ratios):
        raise ValueError(f"ratios must be a non-empty list of numbers > 0, got {list(ratios)}")
    logs = [math.log(r) for r in ratios]
    mean = math.exp(statistics.fmean(logs))
    interval = mean_interval(logs, CONFIDENCE)
    if interval is None:
        return RatioInterval(mean, math.nan, math.nan, len(logs))
    return RatioInterval(mean, math.exp(interval.low), math.exp(interval.high), len(logs))
