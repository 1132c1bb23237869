"""Safe peeking: asymptotic confidence sequences (Waudby-Smith et al.).

Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas, "Time-uniform central limit theory
and asymptotic confidence sequences" (Annals of Statistics, 2024; arXiv 2103.06476),
Theorem 2.2 (normal-mixture boundary). For an estimate built from ``t`` observations
with per-observation standard deviation σ̂_t,

    C_t = estimate ± σ̂_t · sqrt( 2(tρ² + 1) / (t²ρ²) · log( sqrt(tρ² + 1) / α ) )

covers the truth at every t simultaneously with probability ≥ 1 − α (asymptotically),
so the interval may be looked at daily without inflating false positives. Writing
``se = σ̂_t / sqrt(t)`` (the usual fixed-horizon standard error) and ``u = tρ² + 1``:

    half-width = se · sqrt( u / (u − 1) · (log u − 2 log α) ).

For a difference between two arms we use, as Eppo and Statsig do, t = total customers
in both arms and se = the Welch/unpooled standard error of the difference.

Tuning: ρ is chosen to make the sequence tightest at t = N* (the planned total sample
size). Minimising the width at t = N* gives ``u − log u = 1 − 2 log α``, i.e.

    ρ² = (−W₋₁(−α² / e) − 1) / N*,

with W₋₁ the lower branch of the Lambert W function (the paper's approximation is
ρ² ≈ (−2 log α + log(1 − 2 log α)) / N*).

Always-valid p-value: the smallest α' (with ρ held at its design value) for which the
sequence excludes 0. Solving half-width = |estimate| for α' gives

    p = min(1, sqrt(u) · exp( −z² (u − 1) / (2u) )),   z = estimate / se,

so ``p < α`` exactly when the level-α sequence excludes 0.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

from scipy import special

from .lift import RelativeLift
from .types import Comparison


@dataclass(frozen=True)
class SequentialInterval:
    """An always-valid interval for an estimate, with its always-valid p-value."""

    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    multiplier: float  # half-width / fixed-horizon standard error

    @property
    def excludes_zero(self) -> bool:
        return self.ci_low > 0 or self.ci_high < 0


@functools.lru_cache(maxsize=256)
def optimal_rho2(n_star: int, alpha: float = 0.05) -> float:
    """ρ² that makes the normal-mixture sequence tightest at ``n_star`` observations."""
    if n_star < 1:
        raise ValueError(f"n_star (planned total sample size) must be >= 1, got {n_star}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    u = -special.lambertw(-(alpha**2) / math.e, k=-1).real
    return float((u - 1) / n_star)


def sequential_multiplier(n: int, *, n_star: int, alpha: float = 0.05) -> float:
    """Half-width of the level-α sequence after ``n`` observations, in standard errors."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    u = n * optimal_rho2(n_star, alpha) + 1
    return math.sqrt(u / (u - 1) * (math.log(u) - 2 * math.log(alpha)))


def always_valid_p_value(estimate: float, se: float, n: int, *, n_star: int, alpha: float) -> float:
    """Smallest level at which the sequence (ρ tuned for ``alpha``) excludes 0."""
    u = n * optimal_rho2(n_star, alpha) + 1
    z = estimate / se
    log_p = 0.5 * math.log(u) - z * z * (u - 1) / (2 * u)
    return 1.0 if log_p >= 0 else math.exp(log_p)


def confidence_sequence(
    estimate: float, se: float, n: int, *, n_star: int, alpha: float = 0.05
) -> SequentialInterval | None:
    """Asymptotic confidence sequence around ``estimate`` after ``n`` total observations.

    Returns ``None`` when the standard error is not positive and finite or ``n < 1``.
    """
    if n < 1 or se is None or not math.isfinite(se) or se <= 0 or not math.isfinite(estimate):
        return None
    multiplier = sequential_multiplier(n, n_star=n_star, alpha=alpha)
    half = multiplier * se
    return SequentialInterval(
        estimate=estimate,
        ci_low=estimate - half,
        ci_high=estimate + half,
        p_value=always_valid_p_value(estimate, se, n, n_star=n_star, alpha=alpha),
        multiplier=multiplier,
    )


def make_sequential(
    comparison: Comparison,
    *,
    se: float,
    n: int,
    n_star: int,
    alpha: float,
    lift: RelativeLift | None,
) -> Comparison:
    """Replace a comparison's interval and p-value by their always-valid versions.

    The fixed-horizon numbers are kept under ``sequential["fixed"]``; ``significant``
    becomes "the sequence excludes 0". The relative interval is widened by the same
    multiplier of its standard error.
    """
    if comparison.difference is None:
        return comparison
    interval = confidence_sequence(comparison.difference, se, n, n_star=n_star, alpha=alpha)
    if interval is None:
        return replace(
            comparison,
            ci_low=None,
            ci_high=None,
            relative_ci=None,
            p_value=None,
            p_value_adjusted=None,
            significant=False,
            note="not enough data: no variance within the arms for a confidence sequence",
        )
    relative_ci = comparison.relative_ci
    if lift is not None:
        half = interval.multiplier * lift.se
        relative_ci = (lift.lift - half, lift.lift + half)
    return replace(
        comparison,
        ci_low=interval.ci_low,
        ci_high=interval.ci_high,
        relative_ci=relative_ci,
        p_value=interval.p_value,
        p_value_adjusted=interval.p_value,
        significant=interval.excludes_zero,
        sequential={
            "method": "asymptotic_confidence_sequence",
            "n_star": int(n_star),
            "n": int(n),
            "fixed": {
                "ci_low": comparison.ci_low,
                "ci_high": comparison.ci_high,
                "relative_ci": comparison.relative_ci,
                "p_value": comparison.p_value,
            },
        },
    )
