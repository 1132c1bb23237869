"""Pure statistics for Offerlab experiments (numpy, scipy and statsmodels only).

Inputs are sufficient statistics per variant; outputs are frozen dataclasses whose
``to_dict()`` is JSON-safe. See DESIGN.md, "Statistics (experiments/stats)".
"""

from .bayes import chance_to_beat_control
from .lift import RelativeLift, relative_lift_independent
from .means import (
    WelchResult,
    compare_means,
    confidence_sequence_means,
    cuped_theta,
    sample_variance,
    welch_test,
)
from .multiple import apply_holm, holm
from .power import days_remaining, required_sample_size
from .proportions import compare_proportions, confidence_sequence_proportions
from .ratings import MannWhitneyResult, compare_ratings, mann_whitney_from_histograms, rating_mean
from .sequential import SequentialInterval, confidence_sequence, optimal_rho2
from .srm import srm_check
from .summary import variant_summary
from .survival import LogRankResult, compare_time_to_event, log_rank_test, median_time
from .types import (
    Comparison,
    CovariateStats,
    MeanStats,
    ProportionStats,
    RatingHistogram,
    SrmResult,
    TimeToEventStats,
    VariantSummary,
)

__all__ = [
    "Comparison",
    "CovariateStats",
    "LogRankResult",
    "MannWhitneyResult",
    "MeanStats",
    "ProportionStats",
    "RatingHistogram",
    "RelativeLift",
    "SequentialInterval",
    "SrmResult",
    "TimeToEventStats",
    "VariantSummary",
    "WelchResult",
    "apply_holm",
    "chance_to_beat_control",
    "compare_means",
    "compare_proportions",
    "compare_ratings",
    "compare_time_to_event",
    "confidence_sequence",
    "confidence_sequence_means",
    "confidence_sequence_proportions",
    "cuped_theta",
    "days_remaining",
    "holm",
    "log_rank_test",
    "mann_whitney_from_histograms",
    "median_time",
    "optimal_rho2",
    "rating_mean",
    "relative_lift_independent",
    "required_sample_size",
    "sample_variance",
    "srm_check",
    "variant_summary",
    "welch_test",
]
