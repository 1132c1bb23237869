"""Bayesian chance to beat control (normal approximation, flat prior)."""

from __future__ import annotations

import math

from scipy import special


def chance_to_beat_control(diff: float, se: float) -> float | None:
    """P(true effect > 0) when the posterior is Normal(diff, se²), as with a flat prior.

    Returns ``None`` when ``se`` is not a positive finite number or ``diff`` is not finite.
    """
    if diff is None or se is None:
        return None
    if not (math.isfinite(diff) and math.isfinite(se)) or se <= 0:
        return None
    return float(special.ndtr(diff / se))
