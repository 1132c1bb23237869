"""Conversion-rate comparisons: pooled two-proportion z-test and Newcombe interval."""

from __future__ import annotations

import math

from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from .bayes import chance_to_beat_control
from .lift import relative_lift_independent
from .sequential import SequentialInterval, confidence_sequence, make_sequential
from .types import Comparison, ProportionStats, empty_comparison, finite_or_none

TEST_NAME = "two_proportion_z"


def _unpooled_se(control: ProportionStats, treatment: ProportionStats) -> float:
    pa = control.successes / control.n
    pb = treatment.successes / treatment.n
    return math.sqrt(pa * (1 - pa) / control.n + pb * (1 - pb) / treatment.n)


def _undefined_lift_note(control_rate: float) -> str:
    if control_rate == 0:
        return "relative lift undefined: control rate is 0"
    return "relative lift undefined: no variance within the arms"


def compare_proportions(
    control: ProportionStats,
    treatment: ProportionStats,
    *,
    variant: str,
    baseline: str,
    alpha: float = 0.05,
    sequential_n_star: int | None = None,
) -> Comparison:
    """Treatment rate minus control rate.

    - ``p_value``: pooled two-sided z-test (``statsmodels proportions_ztest``).
    - ``ci_low``/``ci_high``: ``confint_proportions_2indep(compare="diff")`` with its
      default method (Newcombe's hybrid score interval), level 1 − alpha.
    - ``relative_lift``/``relative_ci``: delta method with p(1 − p) variances and a t
      quantile at the Welch df (GrowthBook gbstats); ``None`` when the control rate is 0.
    - ``chance_to_beat_control``: Φ(lift / se(lift)) (flat prior, normal approximation),
      or Φ(diff / unpooled se) when the relative lift is undefined.
    - ``sequential_n_star``: when given, the interval and p-value are always-valid ones
      (asymptotic confidence sequence tuned for that planned total sample size).

    Never raises on empty arms or zero variance: returns a ``not enough data`` comparison.
    """
    for name, arm in ((baseline, control), (variant, treatment)):
        if arm.n == 0:
            return empty_comparison(
                variant=variant, baseline=baseline, test=TEST_NAME, why=f"no customers in {name}"
            )
    total_successes = control.successes + treatment.successes
    if total_successes in (0, control.n + treatment.n):
        outcome = "converted" if total_successes else "did not convert"
        return empty_comparison(
            variant=variant,
            baseline=baseline,
            test=TEST_NAME,
            why=f"no variance: every customer {outcome}",
        )

    pa = control.successes / control.n
    pb = treatment.successes / treatment.n
    _, p_value = proportions_ztest(
        [treatment.successes, control.successes], [treatment.n, control.n]
    )
    ci_low, ci_high = confint_proportions_2indep(
        treatment.successes, treatment.n, control.successes, control.n, compare="diff", alpha=alpha
    )
    p_value = finite_or_none(p_value)
    lift = relative_lift_independent(
        pa, pa * (1 - pa), control.n, pb, pb * (1 - pb), treatment.n, alpha=alpha
    )
    se = _unpooled_se(control, treatment)
    chance = (
        chance_to_beat_control(lift.lift, lift.se)
        if lift is not None
        else chance_to_beat_control(pb - pa, se)
    )
    comparison = Comparison(
        variant=variant,
        baseline=baseline,
        difference=pb - pa,
        ci_low=finite_or_none(ci_low),
        ci_high=finite_or_none(ci_high),
        relative_lift=lift.lift if lift else None,
        relative_ci=(lift.ci_low, lift.ci_high) if lift else None,
        p_value=p_value,
        p_value_adjusted=p_value,
        significant=p_value is not None and p_value < alpha,
        chance_to_beat_control=chance,
        test=TEST_NAME,
        note=None if lift else _undefined_lift_note(pa),
    )
    if sequential_n_star is None:
        return comparison
    return make_sequential(
        comparison,
        se=se,
        n=control.n + treatment.n,
        n_star=sequential_n_star,
        alpha=alpha,
        lift=lift,
    )


def confidence_sequence_proportions(
    control: ProportionStats,
    treatment: ProportionStats,
    *,
    n_star: int,
    alpha: float = 0.05,
) -> SequentialInterval | None:
    """Always-valid interval for the rate difference (unpooled se, t = both arms' n).

    ``None`` when an arm is empty or the difference has no variance.
    """
    if control.n == 0 or treatment.n == 0:
        return None
    difference = treatment.successes / treatment.n - control.successes / control.n
    return confidence_sequence(
        difference,
        _unpooled_se(control, treatment),
        control.n + treatment.n,
        n_star=n_star,
        alpha=alpha,
    )
