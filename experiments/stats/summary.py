"""Per-variant headline value for the ``variants`` list of a metric."""

from __future__ import annotations

from .ratings import rating_mean
from .survival import median_time
from .types import MeanStats, ProportionStats, RatingHistogram, TimeToEventStats, VariantSummary

AnyStats = ProportionStats | MeanStats | RatingHistogram | TimeToEventStats


def variant_summary(variant: str, stats_: AnyStats) -> VariantSummary:
    """n and value: rate, mean, mean rating or Kaplan–Meier median time (``None`` if unknown)."""
    if isinstance(stats_, ProportionStats):
        value = stats_.successes / stats_.n if stats_.n else None
    elif isinstance(stats_, MeanStats):
        value = stats_.sum / stats_.n if stats_.n else None
    elif isinstance(stats_, RatingHistogram):
        value = rating_mean(stats_)
    elif isinstance(stats_, TimeToEventStats):
        value = median_time(stats_)
    else:
        raise TypeError(f"unsupported statistics type: {type(stats_).__name__}")
    return VariantSummary(variant=variant, n=stats_.n, value=value)
