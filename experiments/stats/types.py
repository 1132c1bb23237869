"""Inputs (sufficient statistics per variant) and outputs of the statistics package.

SQL produces the inputs; nothing here ever sees a raw row. Outputs are frozen
dataclasses whose ``to_dict()`` is JSON-safe: plain floats or ``None``, never
NaN or infinity.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

NOT_ENOUGH_DATA = "not enough data"


@dataclass(frozen=True)
class ProportionStats:
    """``successes`` customers out of ``n`` assigned."""

    n: int
    successes: int

    def __post_init__(self) -> None:
        if self.n < 0 or self.successes < 0 or self.successes > self.n:
            raise ValueError(f"need 0 <= successes <= n, got {self.successes}/{self.n}")


@dataclass(frozen=True)
class CovariateStats:
    """Pre-period covariate X for CUPED, over the same ``n`` customers as Y."""

    sum_x: float
    sum_x2: float
    sum_xy: float


@dataclass(frozen=True)
class MeanStats:
    """Count, sum and sum of squares of a per-customer value Y."""

    n: int
    sum: float
    sum_sq: float
    covariate: CovariateStats | None = None

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError(f"n must be >= 0, got {self.n}")


@dataclass(frozen=True)
class RatingHistogram:
    """Counts of answers per rating: ``counts[i]`` answers had the value ``first_value + i``.

    Ratings 1-5 use the default ``first_value=1``; yes/no answers stored as 0/1 use
    ``first_value=0`` so the mean is the share of "yes".
    """

    counts: tuple[int, ...]
    first_value: int = 1

    def __post_init__(self) -> None:
        if any(c < 0 for c in self.counts):
            raise ValueError(f"histogram counts must be >= 0, got {self.counts}")

    @property
    def n(self) -> int:
        return int(sum(self.counts))


@dataclass(frozen=True)
class TimeToEventStats:
    """Distinct durations (hours) with the number of events and of censorings at each."""

    times: tuple[float, ...]
    events: tuple[int, ...]
    censored: tuple[int, ...]

    def __post_init__(self) -> None:
        if not len(self.times) == len(self.events) == len(self.censored):
            raise ValueError("times, events and censored must have the same length")
        if any(c < 0 for c in self.events) or any(c < 0 for c in self.censored):
            raise ValueError("event and censoring counts must be >= 0")
        if any(not math.isfinite(t) or t < 0 for t in self.times):
            raise ValueError("times must be finite and >= 0")

    @property
    def n(self) -> int:
        return int(sum(self.events) + sum(self.censored))


def finite_or_none(value: Any) -> float | None:
    """``float(value)`` when it is a finite number, else ``None``."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def json_safe(value: Any) -> Any:
    """Recursively turn numbers into finite floats or ``None``, tuples into lists."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, int):
        return value
    return finite_or_none(value)


@dataclass(frozen=True)
class Comparison:
    """One variant against the baseline on one metric (the JSON ``comparisons`` entry).

    ``difference`` is treatment minus control in the metric's units; ``relative_lift``
    is that difference over the control value. ``note`` says why numbers are missing.
    ``p_value_adjusted`` equals ``p_value`` (one test) until ``apply_holm`` adjusts a
    metric's comparisons together; ``significant`` follows the adjusted p-value.
    ``sequential`` is set only when safe peeking produced the interval and p-value; it
    then keeps the fixed-horizon numbers under ``sequential["fixed"]``.
    """

    variant: str
    baseline: str
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    relative_lift: float | None
    relative_ci: tuple[float | None, float | None] | None
    p_value: float | None
    p_value_adjusted: float | None
    significant: bool
    chance_to_beat_control: float | None
    test: str
    cuped: dict | None = None
    note: str | None = None
    sequential: dict | None = field(default=None)

    def to_dict(self) -> dict:
        """JSON-safe dict; ``sequential`` appears only when safe peeking was used."""
        out = {f.name: json_safe(getattr(self, f.name)) for f in fields(self)}
        out["significant"] = bool(self.significant)
        if self.sequential is None:
            del out["sequential"]
        return out


def empty_comparison(*, variant: str, baseline: str, test: str, why: str) -> Comparison:
    """A comparison with no numbers, saying why (``note="not enough data: <why>"``)."""
    return Comparison(
        variant=variant,
        baseline=baseline,
        difference=None,
        ci_low=None,
        ci_high=None,
        relative_lift=None,
        relative_ci=None,
        p_value=None,
        p_value_adjusted=None,
        significant=False,
        chance_to_beat_control=None,
        test=test,
        cuped=None,
        note=f"{NOT_ENOUGH_DATA}: {why}",
    )


@dataclass(frozen=True)
class SrmResult:
    """Sample-ratio-mismatch check. ``passed`` is ``None`` while it cannot be judged yet."""

    p_value: float | None
    passed: bool | None
    counts: dict[str, int]
    expected: dict[str, float]
    note: str | None = None
    chi2: float | None = None

    def to_dict(self) -> dict:
        return {f.name: json_safe(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class VariantSummary:
    """One variant's size and headline value (rate, mean, mean rating or median time)."""

    variant: str
    n: int
    value: float | None

    def to_dict(self) -> dict:
        return {"variant": self.variant, "n": int(self.n), "value": finite_or_none(self.value)}
