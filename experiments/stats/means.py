"""Per-customer means: Welch's t-test from sums, with CUPED when a covariate exists."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

from .bayes import chance_to_beat_control
from .lift import RelativeLift, critical_value, relative_lift, welch_df
from .sequential import SequentialInterval, confidence_sequence, make_sequential
from .types import Comparison, MeanStats, empty_comparison, finite_or_none

TEST_NAME = "welch_t"

# Below this fraction of the larger term, SS − S²/n is rounding noise, not variance:
# the sums themselves carry relative errors of order n·eps from the SQL aggregation.
_CANCELLATION_TOLERANCE = 1e-12


def sample_covariance(n: int, sum_x: float, sum_y: float, sum_xy: float) -> float | None:
    """Sample covariance (n − 1 denominator) from sums; ``None`` when n < 2.

    Computed in float64 as (Σxy − Σx·Σy/n) / (n − 1). That subtraction cancels
    catastrophically when the mean is large against the spread, so a result within
    ``1e-12`` of the larger term (or negative, for a variance) is reported as 0: at that
    scale the sums cannot tell the spread from rounding error.
    """
    if n < 2:
        return None
    correction = float(sum_x) * float(sum_y) / n
    numerator = float(sum_xy) - correction
    scale = max(abs(float(sum_xy)), abs(correction))
    if abs(numerator) <= _CANCELLATION_TOLERANCE * scale:
        return 0.0
    return numerator / (n - 1)


def sample_variance(n: int, total: float, total_sq: float) -> float | None:
    """Sample variance from n, Σy and Σy² (see ``sample_covariance``), never negative."""
    variance = sample_covariance(n, total, total, total_sq)
    if variance is None:
        return None
    return max(variance, 0.0)


@dataclass(frozen=True)
class WelchResult:
    difference: float
    se: float
    df: float | None
    ci_low: float
    ci_high: float
    p_value: float


def welch_test(
    mean_a: float,
    var_a: float,
    n_a: int,
    mean_b: float,
    var_b: float,
    n_b: int,
    *,
    alpha: float = 0.05,
) -> WelchResult | None:
    """Welch's t-test of mean B − mean A (``scipy.stats.ttest_ind_from_stats``) and its CI.

    The CI is difference ± t(1 − α/2, Welch–Satterthwaite df) · se. ``None`` when an arm
    has fewer than 2 customers or neither arm has variance.
    """
    if n_a < 2 or n_b < 2 or var_a + var_b <= 0:
        return None
    _, p_value = stats.ttest_ind_from_stats(
        mean_b, math.sqrt(var_b), n_b, mean_a, math.sqrt(var_a), n_a, equal_var=False
    )
    se = math.sqrt(var_a / n_a + var_b / n_b)
    df = welch_df(var_a, n_a, var_b, n_b)
    difference = mean_b - mean_a
    width = critical_value(alpha, df) * se
    p = finite_or_none(p_value)
    if p is None or not math.isfinite(width):
        return None
    return WelchResult(difference, se, df, difference - width, difference + width, p)


def cuped_theta(arms: Sequence[MeanStats]) -> float | None:
    """CUPED θ = cov(Y, X) / var(X) over all customers of all arms pooled together.

    As GrowthBook gbstats does, the sums of every arm are added and the covariance and
    variance taken over the pooled sample. ``None`` (no adjustment) when an arm has no
    covariate or the pooled X or Y has no variance.
    """
    if not arms or any(arm.covariate is None for arm in arms):
        return None
    n = sum(arm.n for arm in arms)
    sum_y = math.fsum(arm.sum for arm in arms)
    sum_y2 = math.fsum(arm.sum_sq for arm in arms)
    sum_x = math.fsum(arm.covariate.sum_x for arm in arms)
    sum_x2 = math.fsum(arm.covariate.sum_x2 for arm in arms)
    sum_xy = math.fsum(arm.covariate.sum_xy for arm in arms)
    var_x = sample_variance(n, sum_x, sum_x2)
    var_y = sample_variance(n, sum_y, sum_y2)
    if not var_x or not var_y:
        return None
    theta = sample_covariance(n, sum_x, sum_y, sum_xy) / var_x
    return theta if math.isfinite(theta) else None


@dataclass(frozen=True)
class _Arm:
    n: int
    mean: float
    var: float


@dataclass(frozen=True)
class _Effect:
    raw: WelchResult
    raw_lift: RelativeLift | None
    theta: float | None = None
    adjusted: WelchResult | None = None
    adjusted_lift: RelativeLift | None = None

    @property
    def headline(self) -> WelchResult:
        return self.adjusted or self.raw

    @property
    def lift(self) -> RelativeLift | None:
        return self.adjusted_lift if self.adjusted else self.raw_lift


def _arm(stats_: MeanStats) -> _Arm:
    return _Arm(
        stats_.n, stats_.sum / stats_.n, sample_variance(stats_.n, stats_.sum, stats_.sum_sq)
    )


def _adjusted(
    control: MeanStats, treatment: MeanStats, theta: float, alpha: float
) -> tuple[WelchResult, RelativeLift | None] | None:
    adjusted_arms = []
    cov_xy = []
    for arm in (control, treatment):
        cov = arm.covariate
        var_y = sample_variance(arm.n, arm.sum, arm.sum_sq)
        var_x = sample_variance(arm.n, cov.sum_x, cov.sum_x2)
        cxy = sample_covariance(arm.n, cov.sum_x, arm.sum, cov.sum_xy)
        mean = arm.sum / arm.n - theta * cov.sum_x / arm.n
        var = max(var_y + theta * theta * var_x - 2 * theta * cxy, 0.0)
        adjusted_arms.append(_Arm(arm.n, mean, var))
        cov_xy.append(cxy)
    a, b = adjusted_arms
    result = welch_test(a.mean, a.var, a.n, b.mean, b.var, b.n, alpha=alpha)
    if result is None:
        return None
    raw_a = _arm(control)
    lift = relative_lift(
        diff=result.difference,
        var_diff=result.se**2,
        control_mean=raw_a.mean,
        var_control_mean=raw_a.var / raw_a.n,
        cov_diff_control=-(raw_a.var - theta * cov_xy[0]) / raw_a.n,
        df=result.df,
        alpha=alpha,
    )
    return result, lift


def _effect(
    control: MeanStats, treatment: MeanStats, *, alpha: float, theta: float | None
) -> _Effect | str:
    """The raw (and, where possible, CUPED-adjusted) effect, or why there is none."""
    if control.n < 2 or treatment.n < 2:
        return "fewer than 2 customers in an arm"
    a, b = _arm(control), _arm(treatment)
    raw = welch_test(a.mean, a.var, a.n, b.mean, b.var, b.n, alpha=alpha)
    if raw is None:
        return "no variance: every customer has the same value"
    raw_lift = relative_lift(
        diff=raw.difference,
        var_diff=raw.se**2,
        control_mean=a.mean,
        var_control_mean=a.var / a.n,
        cov_diff_control=-a.var / a.n,
        df=raw.df,
        alpha=alpha,
    )
    effect = _Effect(raw=raw, raw_lift=raw_lift)
    if control.covariate is None or treatment.covariate is None:
        return effect
    if theta is None:
        theta = cuped_theta([control, treatment])
    pooled_x_var = sample_variance(
        control.n + treatment.n,
        control.covariate.sum_x + treatment.covariate.sum_x,
        control.covariate.sum_x2 + treatment.covariate.sum_x2,
    )
    if theta is None or not math.isfinite(theta) or not pooled_x_var:
        return effect
    adjusted = _adjusted(control, treatment, theta, alpha)
    if adjusted is None:
        return effect
    return _Effect(raw, raw_lift, theta, adjusted[0], adjusted[1])


def _lift_fields(lift: RelativeLift | None) -> dict:
    return {
        "relative_lift": lift.lift if lift else None,
        "relative_ci": (lift.ci_low, lift.ci_high) if lift else None,
    }


def compare_means(
    control: MeanStats,
    treatment: MeanStats,
    *,
    variant: str,
    baseline: str,
    alpha: float = 0.05,
    theta: float | None = None,
    sequential_n_star: int | None = None,
) -> Comparison:
    """Treatment mean minus control mean by Welch's t-test, CUPED-adjusted where possible.

    CUPED applies when both arms carry a covariate whose pooled variance is positive:
    each arm's mean becomes Ȳ − θ·X̄ with variance var(Y) + θ²var(X) − 2θ·cov(Y, X),
    then Welch's test runs on those (GrowthBook gbstats). ``theta`` defaults to
    ``cuped_theta`` over these two arms; pass ``cuped_theta(all_arms)`` to pool over
    every arm. The adjusted numbers are the headline; the unadjusted ones are kept
    under ``cuped["raw"]``. Without a usable covariate ``cuped`` is ``None``.

    ``relative_lift`` is difference / control mean (unadjusted) with a delta-method CI;
    ``chance_to_beat_control`` is Φ(lift / se(lift)), or Φ(diff / se) when the control
    mean is 0. ``sequential_n_star`` switches to an always-valid interval and p-value.
    """

    def empty(why: str) -> Comparison:
        return empty_comparison(variant=variant, baseline=baseline, test=TEST_NAME, why=why)

    for name, arm in ((baseline, control), (variant, treatment)):
        if arm.n < 2:
            return empty(
                f"fewer than 2 customers in {name}" if arm.n else f"no customers in {name}"
            )
    for name, arm in ((baseline, control), (variant, treatment)):
        if not (math.isfinite(arm.sum) and math.isfinite(arm.sum_sq)):
            return empty(f"sums of {name} are not finite numbers")
    effect = _effect(control, treatment, alpha=alpha, theta=theta)
    if isinstance(effect, str):
        return empty(effect)

    result, lift = effect.headline, effect.lift
    cuped = None
    if effect.adjusted is not None:
        raw = effect.raw
        cuped = {
            "theta": effect.theta,
            "se": result.se,
            "variance_reduction": 1 - (result.se / raw.se) ** 2,
            "raw": {
                "difference": raw.difference,
                "ci_low": raw.ci_low,
                "ci_high": raw.ci_high,
                "se": raw.se,
                "p_value": raw.p_value,
                **_lift_fields(effect.raw_lift),
            },
        }
    chance = (
        chance_to_beat_control(lift.lift, lift.se)
        if lift is not None
        else chance_to_beat_control(result.difference, result.se)
    )
    comparison = Comparison(
        variant=variant,
        baseline=baseline,
        difference=result.difference,
        ci_low=result.ci_low,
        ci_high=result.ci_high,
        **_lift_fields(lift),
        p_value=result.p_value,
        p_value_adjusted=result.p_value,
        significant=result.p_value < alpha,
        chance_to_beat_control=chance,
        test=TEST_NAME,
        cuped=cuped,
        note=None if lift else "relative lift undefined: control mean is 0",
    )
    if sequential_n_star is None:
        return comparison
    return make_sequential(
        comparison,
        se=result.se,
        n=control.n + treatment.n,
        n_star=sequential_n_star,
        alpha=alpha,
        lift=lift,
    )


def confidence_sequence_means(
    control: MeanStats,
    treatment: MeanStats,
    *,
    n_star: int,
    alpha: float = 0.05,
    theta: float | None = None,
) -> SequentialInterval | None:
    """Always-valid interval for the (CUPED-adjusted where possible) mean difference.

    Uses the Welch standard error and t = both arms' customers; ``None`` when there is
    not enough data (see ``compare_means``).
    """
    effect = _effect(control, treatment, alpha=alpha, theta=theta)
    if isinstance(effect, str):
        return None
    result = effect.headline
    return confidence_sequence(
        result.difference, result.se, control.n + treatment.n, n_star=n_star, alpha=alpha
    )
