"""Relative lift (treatment − control) / control with a delta-method interval.

The ratio D / M of the difference D and the control mean M has, to first order,

    Var(D / M) = [Var(D) − 2·r·Cov(D, M) + r²·Var(M)] / M²,   r = D / M.

For two independent arms (Cov(D, M) = −Var(M)) this is GrowthBook gbstats'
``vb / (ma²·nb) + va·mb² / (ma⁴·na)``; CUPED passes its own covariance terms.
The interval uses Student's t with the Welch–Satterthwaite df (normal when ``df`` is
``None``), as gbstats does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import special


@dataclass(frozen=True)
class RelativeLift:
    lift: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float


def critical_value(alpha: float, df: float | None) -> float:
    """Two-sided critical value: t quantile with ``df`` degrees of freedom, or normal."""
    if df is None or not math.isfinite(df):
        return float(special.ndtri(1 - alpha / 2))
    return float(special.stdtrit(df, 1 - alpha / 2))


def two_sided_p(statistic: float, df: float | None) -> float:
    # scipy.special directly: the scipy.stats wrappers cost ~50x more per call
    if df is None or not math.isfinite(df):
        return float(2 * special.ndtr(-abs(statistic)))
    return float(2 * special.stdtr(df, -abs(statistic)))


def welch_df(var_a: float, n_a: int, var_b: float, n_b: int) -> float | None:
    """Welch–Satterthwaite degrees of freedom; ``None`` when undefined (then use normal)."""
    if n_a < 2 or n_b < 2:
        return None
    ua, ub = var_a / n_a, var_b / n_b
    denominator = ua * ua / (n_a - 1) + ub * ub / (n_b - 1)
    if denominator <= 0:
        return None
    return (ua + ub) ** 2 / denominator


def relative_lift(
    *,
    diff: float,
    var_diff: float,
    control_mean: float,
    var_control_mean: float,
    cov_diff_control: float,
    df: float | None,
    alpha: float = 0.05,
) -> RelativeLift | None:
    """Delta-method relative lift ``diff / control_mean``; ``None`` when the control mean is 0."""
    if control_mean == 0 or not math.isfinite(control_mean):
        return None
    r = diff / control_mean
    var = (var_diff - 2 * r * cov_diff_control + r * r * var_control_mean) / control_mean**2
    if not math.isfinite(var) or var <= 0:
        return None
    se = math.sqrt(var)
    width = critical_value(alpha, df) * se
    return RelativeLift(
        lift=r, se=se, ci_low=r - width, ci_high=r + width, p_value=two_sided_p(r / se, df)
    )


def relative_lift_independent(
    mean_a: float,
    var_a: float,
    n_a: int,
    mean_b: float,
    var_b: float,
    n_b: int,
    *,
    alpha: float = 0.05,
) -> RelativeLift | None:
    """Relative lift of arm B over control A from per-customer means and variances."""
    if n_a < 1 or n_b < 1:
        return None
    return relative_lift(
        diff=mean_b - mean_a,
        var_diff=var_a / n_a + var_b / n_b,
        control_mean=mean_a,
        var_control_mean=var_a / n_a,
        cov_diff_control=-var_a / n_a,
        df=welch_df(var_a, n_a, var_b, n_b),
        alpha=alpha,
    )
