"""Survey ratings: Mann–Whitney U from histograms, mean difference with a Welch CI."""

from __future__ import annotations

import math
from typing import NamedTuple

from scipy import special

from .bayes import chance_to_beat_control
from .lift import relative_lift_independent
from .means import welch_test
from .types import Comparison, RatingHistogram, empty_comparison

TEST_NAME = "mann_whitney_u"


class MannWhitneyResult(NamedTuple):
    u: float  # U statistic of the first histogram
    p_value: float


def _aligned(a: RatingHistogram, b: RatingHistogram) -> tuple[list[int], list[int]]:
    """Both histograms' counts over the same values (shorter one padded with zeros)."""
    if a.first_value != b.first_value:
        raise ValueError("rating histograms must start at the same value")
    size = max(len(a.counts), len(b.counts))

    def pad(counts: tuple[int, ...]) -> list[int]:
        return [int(c) for c in counts] + [0] * (size - len(counts))

    return pad(a.counts), pad(b.counts)


def mann_whitney_from_histograms(
    a: RatingHistogram, b: RatingHistogram
) -> MannWhitneyResult | None:
    """Two-sided Mann–Whitney U test of ``a`` against ``b`` from their histograms.

    Equals ``scipy.stats.mannwhitneyu(x, y, method="asymptotic", use_continuity=True)``
    on the expanded ratings: tied ratings share their midrank, the variance carries the
    tie correction n₁n₂/12 · ((N + 1) − Σ(t³ − t) / (N(N − 1))), and the normal
    approximation uses a continuity correction of 0.5. ``u`` is U of ``a``.
    ``None`` when an arm is empty or every rating is the same (no ranks to compare).
    """
    counts_a, counts_b = _aligned(a, b)
    n_a, n_b = sum(counts_a), sum(counts_b)
    total = n_a + n_b
    if n_a == 0 or n_b == 0:
        return None
    rank_sum_a = 0.0
    tie_term = 0
    below = 0
    for ca, cb in zip(counts_a, counts_b, strict=True):
        tied = ca + cb
        midrank = below + (tied + 1) / 2
        rank_sum_a += ca * midrank
        tie_term += tied**3 - tied
        below += tied
    u_a = rank_sum_a - n_a * (n_a + 1) / 2
    variance = n_a * n_b / 12 * ((total + 1) - tie_term / (total * (total - 1)))
    if variance <= 0:
        return None
    u_big = max(u_a, n_a * n_b - u_a)
    z = (u_big - n_a * n_b / 2 - 0.5) / math.sqrt(variance)
    p_value = min(1.0, float(2 * special.ndtr(-z)))
    return MannWhitneyResult(u=float(u_a), p_value=p_value)


def _moments(counts: list[int], first_value: int) -> tuple[int, float, float]:
    """n, mean and sample variance of the ratings, centred exactly on the mean."""
    n = sum(counts)
    mean = sum(c * (first_value + i) for i, c in enumerate(counts)) / n
    if n < 2:
        return n, mean, 0.0
    squares = sum(c * (first_value + i - mean) ** 2 for i, c in enumerate(counts))
    return n, mean, squares / (n - 1)


def rating_mean(histogram: RatingHistogram) -> float | None:
    """Mean rating, or ``None`` when there are no answers."""
    if histogram.n == 0:
        return None
    return _moments(list(histogram.counts), histogram.first_value)[1]


def compare_ratings(
    control: RatingHistogram,
    treatment: RatingHistogram,
    *,
    variant: str,
    baseline: str,
    alpha: float = 0.05,
) -> Comparison:
    """Ratings of ``treatment`` against ``control``.

    ``p_value`` (and ``significant``) come from the two-sided Mann–Whitney U test with tie
    correction; ``difference``/``ci_low``/``ci_high`` are the mean-rating difference with
    a Welch CI; ``relative_lift`` is that difference over the control's mean rating.
    """

    def empty(why: str) -> Comparison:
        return empty_comparison(variant=variant, baseline=baseline, test=TEST_NAME, why=why)

    for name, arm in ((baseline, control), (variant, treatment)):
        if arm.n < 2:
            return empty(f"fewer than 2 ratings in {name}" if arm.n else f"no ratings in {name}")
    test = mann_whitney_from_histograms(treatment, control)
    if test is None:
        return empty("every rating is the same")
    counts_c, counts_t = _aligned(control, treatment)
    n_c, mean_c, var_c = _moments(counts_c, control.first_value)
    n_t, mean_t, var_t = _moments(counts_t, treatment.first_value)
    difference = mean_t - mean_c
    welch = welch_test(mean_c, var_c, n_c, mean_t, var_t, n_t, alpha=alpha)
    lift = relative_lift_independent(mean_c, var_c, n_c, mean_t, var_t, n_t, alpha=alpha)
    if lift is not None:
        chance = chance_to_beat_control(lift.lift, lift.se)
    elif welch is not None:
        chance = chance_to_beat_control(difference, welch.se)
    else:
        chance = None
    note = None
    if welch is None:
        note = "not enough data: no variance within either arm for a confidence interval"
    elif lift is None:
        note = "relative lift undefined: control mean is 0"
    return Comparison(
        variant=variant,
        baseline=baseline,
        difference=difference,
        ci_low=welch.ci_low if welch else None,
        ci_high=welch.ci_high if welch else None,
        relative_lift=lift.lift if lift else (difference / mean_c if mean_c else None),
        relative_ci=(lift.ci_low, lift.ci_high) if lift else None,
        p_value=test.p_value,
        p_value_adjusted=test.p_value,
        significant=test.p_value < alpha,
        chance_to_beat_control=chance,
        test=TEST_NAME,
        note=note,
    )
