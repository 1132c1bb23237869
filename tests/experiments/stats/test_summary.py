"""Per-variant headline values."""

import pytest

from experiments.stats import (
    MeanStats,
    ProportionStats,
    RatingHistogram,
    TimeToEventStats,
    variant_summary,
)


def test_values_per_kind():
    assert variant_summary("A", ProportionStats(200, 30)).value == pytest.approx(0.15)
    assert variant_summary("A", MeanStats(4, 10.0, 30.0)).value == pytest.approx(2.5)
    rating = variant_summary("A", RatingHistogram((1, 0, 0, 0, 3)))
    assert (rating.n, rating.value) == (4, pytest.approx(4.0))
    survival = variant_summary("A", TimeToEventStats((1.0, 2.0, 3.0), (1, 1, 1), (0, 0, 1)))
    assert (survival.n, survival.value) == (4, 2.0)  # S(2) = 1/2


def test_empty_variants_have_no_value():
    for stats_ in (ProportionStats(0, 0), MeanStats(0, 0.0, 0.0), RatingHistogram((0, 0))):
        summary = variant_summary("A", stats_)
        assert summary.value is None and summary.to_dict() == {
            "variant": "A",
            "n": 0,
            "value": None,
        }
