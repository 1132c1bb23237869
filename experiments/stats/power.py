"""Planning: customers needed per variant, and days still needed at the current rate."""

from __future__ import annotations

import math

from scipy import stats


def required_sample_size(
    baseline: float, mde: float, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Customers per variant to detect an absolute lift ``mde`` on a ``baseline`` rate.

    Evan Miller's calculator formula, two-sided:
    n = (z₁₋α/₂·√(2·p₁q₁) + z₁₋β·√(p₁q₁ + p₂q₂))² / δ², rounded to the nearest whole
    number, with p₁ = baseline, p₂ = p₁ + δ, q = 1 − p. Raises ``ValueError`` for
    inputs outside their ranges.
    """
    for name, value in (("baseline", baseline), ("mde", mde), ("alpha", alpha), ("power", power)):
        if value is None or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    if not 0 < baseline < 1:
        raise ValueError(f"baseline rate must be between 0 and 1 (exclusive), got {baseline}")
    if mde <= 0:
        raise ValueError(f"mde (absolute lift) must be > 0, got {mde}")
    if not 0 < baseline + mde < 1:
        raise ValueError(
            f"baseline + mde must stay below 1, got {baseline} + {mde} = {baseline + mde}"
        )
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (exclusive), got {alpha}")
    if not 0 < power < 1:
        raise ValueError(f"power must be between 0 and 1 (exclusive), got {power}")
    p1, p2 = baseline, baseline + mde
    z_alpha = stats.norm.ppf(1 - alpha / 2)
    z_beta = stats.norm.ppf(power)
    root = z_alpha * math.sqrt(2 * p1 * (1 - p1)) + z_beta * math.sqrt(
        p1 * (1 - p1) + p2 * (1 - p2)
    )
    return round(root**2 / mde**2)


def days_remaining(
    required_per_variant: int, current_min_per_variant: int, daily_rate_per_variant: float
) -> float | None:
    """Days until the smallest variant reaches ``required_per_variant`` at today's rate.

    0.0 once reached; ``None`` when the daily rate is not positive (it would never end).
    """
    if required_per_variant < 0 or current_min_per_variant < 0:
        raise ValueError("sample sizes must be >= 0")
    missing = required_per_variant - current_min_per_variant
    if missing <= 0:
        return 0.0
    if daily_rate_per_variant is None or not math.isfinite(daily_rate_per_variant):
        return None
    if daily_rate_per_variant <= 0:
        return None
    return missing / daily_rate_per_variant
