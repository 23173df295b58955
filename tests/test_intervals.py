"""Intervals over seeds (lit_alexnet.intervals) against printed t tables and the textbook
formulas."""

from __future__ import annotations

import math

import pytest

from lit_alexnet.intervals import mean_interval, student_t_quantile, welch_interval


# Student's t 97.5% points as printed in any table (two-sided 95%).
@pytest.mark.parametrize(
    ("df", "t"), [(1, 12.706), (2, 4.303), (4, 2.776), (10, 2.228), (30, 2.042), (120, 1.980)]
)
def test_t_quantiles_match_the_printed_table(df: int, t: float) -> None:
    assert student_t_quantile(0.975, df) == pytest.approx(t, abs=5e-4)
    assert student_t_quantile(0.025, df) == pytest.approx(-t, abs=5e-4)


def test_t_quantiles_at_other_levels_match_the_printed_table() -> None:
    assert student_t_quantile(0.95, 5) == pytest.approx(2.015, abs=5e-4)
    assert student_t_quantile(0.995, 3) == pytest.approx(5.841, abs=5e-4)
    assert student_t_quantile(0.5, 7) == pytest.approx(0.0, abs=1e-9)


def test_t_quantile_at_a_fractional_df_holds_p_under_the_t_density() -> None:
    # Welch's df is seldom whole: integrate the t density (Simpson) from 0 to the quantile.
    df = 2.388
    q = student_t_quantile(0.975, df)
    norm = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)

    def density(t: float) -> float:
        return norm * (1 + t * t / df) ** (-(df + 1) / 2)

    steps = 20_000
    h = q / steps
    weights = [1 if i in (0, steps) else 4 if i % 2 else 2 for i in range(steps + 1)]
    area = h / 3 * sum(w * density(i * h) for i, w in enumerate(weights))
    assert area == pytest.approx(0.475, abs=1e-6)
    assert 3.182 < q < 4.303  # between df 3's and df 2's


def test_welch_interval_is_the_textbook_formula() -> None:
    # Means 0.42 and 0.32, both sample variances 0.0004 (population 0.000267), n = 3 each:
    # se = sqrt(0.0004/3 + 0.0004/3) = 0.016330, Welch df = 2 (n - 1) = 4, t(0.975, 4) = 2.776.
    interval = welch_interval([0.40, 0.42, 0.44], [0.30, 0.32, 0.34])
    assert interval is not None
    half = 2.7764 * math.sqrt(0.0004 / 3 + 0.0004 / 3)
    assert interval.difference == pytest.approx(0.10)
    assert interval.df == pytest.approx(4.0)
    assert (interval.low, interval.high) == pytest.approx((0.10 - half, 0.10 + half), abs=1e-5)


def test_welch_degrees_of_freedom_are_welch_satterthwaites() -> None:
    # [1, 2, 3, 4]: mean 2.5, s^2 = 5/3, s^2/n = 0.41667; [2, 4, 9]: mean 5, s^2 = 13,
    # s^2/n = 4.33333. df = 4.75^2 / (0.41667^2 / 3 + 4.33333^2 / 2) = 22.5625 / 9.44676.
    interval = welch_interval([1, 2, 3, 4], [2, 4, 9])
    assert interval is not None
    assert interval.difference == pytest.approx(-2.5)
    assert interval.df == pytest.approx(2.38839, abs=1e-4)
    half = student_t_quantile(0.975, 2.38839) * math.sqrt(4.75)
    assert (interval.low, interval.high) == pytest.approx((-2.5 - half, -2.5 + half), abs=1e-4)


def test_welch_interval_needs_two_values_on_each_side() -> None:
    assert welch_interval([0.3], [0.2, 0.25]) is None
    assert welch_interval([0.3, 0.31], [0.2]) is None


def test_a_mean_interval_is_the_one_sample_t_interval() -> None:
    # [1, 2, 3, 4, 5]: mean 3, s = 1.5811, se = 0.70711, t(0.975, 4) = 2.776.
    interval = mean_interval([1, 2, 3, 4, 5])
    assert interval is not None
    assert interval.difference == pytest.approx(3.0)
    assert interval.df == 4
    half = 2.7764 * 1.58114 / math.sqrt(5)
    assert (interval.low, interval.high) == pytest.approx((3 - half, 3 + half), abs=1e-4)
    assert mean_interval([1.0]) is None
