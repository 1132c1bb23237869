"""Sample ratio mismatch: are assignment counts consistent with the variant weights?"""

from __future__ import annotations

import math
from collections.abc import Mapping

from scipy import stats

from .types import NOT_ENOUGH_DATA, SrmResult, finite_or_none


def srm_check(
    counts: Mapping[str, int],
    weights: Mapping[str, float],
    *,
    threshold: float = 0.001,
    min_per_variant: int = 8,
) -> SrmResult:
    """Chi-square goodness of fit of ``counts`` against ``weights`` (``scipy chisquare``).

    ``passed`` is ``False`` when p < ``threshold``, ``True`` otherwise, and ``None``
    (pending) while any variant has fewer than ``min_per_variant`` customers or there are
    fewer than two variants. Weights need not sum to 1. Raises ``ValueError`` when the
    variants of ``counts`` and ``weights`` differ or a weight is not positive.
    """
    if set(counts) != set(weights):
        raise ValueError(
            f"counts and weights name different variants: {sorted(counts)} vs {sorted(weights)}"
        )
    if any(not math.isfinite(w) or w <= 0 for w in weights.values()):
        raise ValueError(f"weights must be positive, got {dict(weights)}")
    if any(c < 0 for c in counts.values()):
        raise ValueError(f"counts must be >= 0, got {dict(counts)}")
    keys = list(counts)
    observed = {k: int(counts[k]) for k in keys}
    total = sum(observed.values())
    weight_sum = math.fsum(weights[k] for k in keys)
    expected = {k: total * weights[k] / weight_sum for k in keys}

    def pending(why: str) -> SrmResult:
        return SrmResult(None, None, observed, expected, f"{NOT_ENOUGH_DATA}: {why}")

    if len(keys) < 2:
        return pending("needs at least two variants")
    small = [k for k in keys if observed[k] < min_per_variant]
    if small:
        return pending(f"fewer than {min_per_variant} customers in {', '.join(small)}")

    chi2, p_value = stats.chisquare([observed[k] for k in keys], [expected[k] for k in keys])
    p_value = finite_or_none(p_value)
    if p_value is None:
        return pending("chi-square undefined")
    passed = p_value >= threshold
    note = None
    if not passed:
        deviations = {k: (observed[k] - expected[k]) / expected[k] for k in keys}
        # the largest relative deviation; on a tie, name the variant that is short
        worst = max(keys, key=lambda k: (round(abs(deviations[k]), 12), deviations[k] < 0))
        deviation = deviations[worst]
        direction = "fewer" if deviation < 0 else "more"
        note = (
            f"sample ratio mismatch (p = {p_value:.2g}): {abs(deviation):.0%} {direction} "
            f"customers than expected in {worst}"
        )
    return SrmResult(p_value, passed, observed, expected, note, float(chi2))
