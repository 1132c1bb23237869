"""Time to event (e.g. hours to the next order): log-rank test and Kaplan–Meier median."""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise
from typing import NamedTuple

from scipy import stats

from .types import Comparison, TimeToEventStats, empty_comparison

TEST_NAME = "log_rank"

# Survival within this distance of 0.5 counts as exactly 0.5 (float products).
_HALF_TOLERANCE = 1e-9


class LogRankResult(NamedTuple):
    chi2: float
    p_value: float


def _merged(stats_: TimeToEventStats) -> dict[float, list[int]]:
    """time → [events, censored], adding up repeated times."""
    times = stats_.times
    if all(a < b for a, b in pairwise(times)):  # already one entry per time
        return {
            float(t): [int(e), int(c)]
            for t, e, c in zip(times, stats_.events, stats_.censored, strict=True)
        }
    table: dict[float, list[int]] = defaultdict(lambda: [0, 0])
    for time, events, censored in zip(stats_.times, stats_.events, stats_.censored, strict=True):
        table[float(time)][0] += int(events)
        table[float(time)][1] += int(censored)
    return table


def median_time(stats_: TimeToEventStats) -> float | None:
    """Kaplan–Meier median: the first event time at which survival is at or below 0.5.

    The textbook definition (Klein & Moeschberger; lifelines). It equals
    ``statsmodels SurvfuncRight.quantile(0.5)`` except where survival is exactly 0.5 on a
    plateau: statsmodels (strict inequality, like SAS) then takes the next event time and
    R the midpoint. Customers censored at a time are still at risk at that time. ``None``
    when survival never reaches 0.5 (median not reached) or there is no data.
    """
    at_risk = stats_.n
    survival = 1.0
    for time, (events, censored) in sorted(_merged(stats_).items()):
        if events and at_risk:
            survival *= 1 - events / at_risk
            if survival <= 0.5 + _HALF_TOLERANCE:
                return time
        at_risk -= events + censored
    return None


def log_rank_test(a: TimeToEventStats, b: TimeToEventStats) -> LogRankResult | None:
    """Two-sample log-rank test (as ``statsmodels.duration.survfunc.survdiff``).

    χ² = (O_a − E_a)² / V with, at each distinct time with d events among n at risk,
    E_a += d·n_a/n and V += d·(n_a/n)(n_b/n)(n − d)/(n − 1); p from χ² with 1 df.
    ``None`` when there are no events or the variance is 0.
    """
    table_a, table_b = _merged(a), _merged(b)
    at_risk_a, at_risk_b = a.n, b.n
    observed_a = expected_a = variance = 0.0
    for time in sorted(set(table_a) | set(table_b)):
        d_a, c_a = table_a.get(time, (0, 0))
        d_b, c_b = table_b.get(time, (0, 0))
        deaths, at_risk = d_a + d_b, at_risk_a + at_risk_b
        if deaths:
            share_a = at_risk_a / at_risk
            observed_a += d_a
            expected_a += deaths * share_a
            if at_risk > 1:  # one customer at risk: the term is 0 (share is 0 or 1)
                variance += deaths * share_a * (1 - share_a) * (at_risk - deaths) / (at_risk - 1)
        at_risk_a -= d_a + c_a
        at_risk_b -= d_b + c_b
    if variance <= 0:
        return None
    chi2 = (observed_a - expected_a) ** 2 / variance
    return LogRankResult(chi2=float(chi2), p_value=float(stats.chi2.sf(chi2, 1)))


def compare_time_to_event(
    control: TimeToEventStats,
    treatment: TimeToEventStats,
    *,
    variant: str,
    baseline: str,
    alpha: float = 0.05,
) -> Comparison:
    """Log-rank test of the two arms; ``difference`` = treatment − control median time.

    There is no interval for the median difference (``ci_low``/``ci_high`` are ``None``),
    nor a chance to beat control. When a median is not reached yet, the difference is
    ``None`` and ``note`` says so, but the log-rank p-value is still reported.
    """

    def empty(why: str) -> Comparison:
        return empty_comparison(variant=variant, baseline=baseline, test=TEST_NAME, why=why)

    for name, arm in ((baseline, control), (variant, treatment)):
        if arm.n == 0:
            return empty(f"no customers in {name}")
    if sum(control.events) + sum(treatment.events) == 0:
        return empty("no events yet")
    test = log_rank_test(control, treatment)
    if test is None:
        return empty("no variance in the log-rank statistic")
    median_c, median_t = median_time(control), median_time(treatment)
    unreached = [name for name, m in ((baseline, median_c), (variant, median_t)) if m is None]
    difference = None if unreached else median_t - median_c
    relative = difference / median_c if difference is not None and median_c else None
    return Comparison(
        variant=variant,
        baseline=baseline,
        difference=difference,
        ci_low=None,
        ci_high=None,
        relative_lift=relative,
        relative_ci=None,
        p_value=test.p_value,
        p_value_adjusted=test.p_value,
        significant=test.p_value < alpha,
        chance_to_beat_control=None,
        test=TEST_NAME,
        note=f"median not reached in {', '.join(unreached)}" if unreached else None,
    )
