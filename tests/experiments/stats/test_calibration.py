"""Calibration: simulated A/A experiments keep false positives at the promised rate.

Each experiment is simulated as the sufficient statistics SQL would return. Fixed seeds
keep the tests deterministic; tolerances are about three binomial standard errors.
"""

import numpy as np
import pytest

from experiments.stats import (
    MeanStats,
    ProportionStats,
    RatingHistogram,
    compare_means,
    compare_proportions,
    compare_ratings,
    confidence_sequence_proportions,
    srm_check,
)

RUNS = 2000
ALPHA = 0.05
TOLERANCE = 0.015  # ~3 standard errors of a 5 % rate over 2000 runs


def test_proportions_false_positive_rate_is_alpha():
    rng = np.random.default_rng(20240501)
    n = 2000
    conversions = rng.binomial(n, 0.1, size=(RUNS, 2))
    hits = sum(
        compare_proportions(
            ProportionStats(n, int(a)), ProportionStats(n, int(b)), variant="B", baseline="A"
        ).significant
        for a, b in conversions
    )
    assert abs(hits / RUNS - ALPHA) <= TOLERANCE


def test_welch_false_positive_rate_is_alpha():
    # exact sufficient statistics of normal samples: mean ~ N, (n−1)s²/σ² ~ χ²(n−1)
    rng = np.random.default_rng(7)
    n, mu, sigma = 200, 50.0, 20.0
    hits = 0
    for _ in range(RUNS):
        arms = []
        for _ in range(2):
            mean = rng.normal(mu, sigma / np.sqrt(n))
            ss = sigma**2 * rng.chisquare(n - 1)
            arms.append(MeanStats(n, mean * n, ss + n * mean**2))
        hits += compare_means(arms[0], arms[1], variant="B", baseline="A").significant
    assert abs(hits / RUNS - ALPHA) <= TOLERANCE


def test_mann_whitney_false_positive_rate_is_at_most_alpha():
    rng = np.random.default_rng(99)
    shares = [0.05, 0.1, 0.25, 0.35, 0.25]
    hits = 0
    for _ in range(RUNS):
        a, b = rng.multinomial(150, shares, size=2)
        hits += compare_ratings(
            RatingHistogram(tuple(int(c) for c in a)),
            RatingHistogram(tuple(int(c) for c in b)),
            variant="B",
            baseline="A",
        ).significant
    # continuity correction makes it slightly conservative
    assert ALPHA - 2 * TOLERANCE <= hits / RUNS <= ALPHA + TOLERANCE


def test_daily_peeking_with_safe_peeking_stays_below_alpha():
    rng = np.random.default_rng(31337)
    looks, per_day, rate = 20, 250, 0.1
    n_star = looks * per_day * 2  # planned total sample size
    daily = rng.binomial(per_day, rate, size=(RUNS, looks, 2))
    cumulative = daily.cumsum(axis=1)
    safe_hits = naive_hits = 0
    for run in range(RUNS):
        safe = naive = False
        for day in range(looks):
            n = per_day * (day + 1)
            a, b = (int(x) for x in cumulative[run, day])
            control, treatment = ProportionStats(n, a), ProportionStats(n, b)
            interval = confidence_sequence_proportions(control, treatment, n_star=n_star)
            safe = safe or interval.excludes_zero
            # the naive fixed-horizon z interval looked at every day, for contrast
            half = 1.959964 * (interval.ci_high - interval.estimate) / interval.multiplier
            naive = naive or abs(interval.estimate) > half
        safe_hits += safe
        naive_hits += naive
    assert safe_hits / RUNS <= ALPHA + 0.01
    # peeking at fixed-horizon intervals inflates false positives well past alpha
    assert naive_hits / RUNS > 2 * ALPHA


def test_srm_rarely_flags_a_fair_split():
    rng = np.random.default_rng(4)
    runs = 1000  # scipy's chisquare is slow; the expected rate is 1 in 1000
    a = rng.binomial(100_000, 0.5, size=runs)
    flags = sum(
        srm_check({"A": int(x), "B": 100_000 - int(x)}, {"A": 1, "B": 1}).passed is False for x in a
    )
    assert flags / runs <= 0.005  # threshold 0.001


def test_srm_flags_a_two_percent_skew_at_100k_customers():
    # "2 % skew": 51 % / 49 % instead of 50 / 50, i.e. 51,000 vs 49,000 (χ² = 40, p ≈ 2.5e-10)
    result = srm_check({"A": 51_000, "B": 49_000}, {"A": 1, "B": 1})
    assert result.passed is False
    assert result.p_value == pytest.approx(2.54e-10, rel=0.01)
    rng = np.random.default_rng(12)
    skewed = rng.binomial(100_000, 0.51, size=200)
    flagged = sum(
        srm_check({"A": int(x), "B": 100_000 - int(x)}, {"A": 1, "B": 1}).passed is False
        for x in skewed
    )
    assert flagged / 200 >= 0.99
    # a 1 % skew (50,500 / 49,500, p = 0.0016) is below what p < 0.001 can see at this size
    assert srm_check({"A": 50_500, "B": 49_500}, {"A": 1, "B": 1}).passed is True
