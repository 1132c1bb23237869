"""Calibration of the analysis layer: A/A experiments through metric_result (no database).

Grouped rows are drawn as SQL would return them (one cell per variant and day); the share of
A/A experiments called significant must stay within alpha ± 0.015.
"""

from datetime import UTC, date, datetime

import numpy as np
import pytest

from experiments.analysis import metric_result
from experiments.metrics import CELL_COLUMNS, MetricsData, Selection, VariantInfo, metric_stats
from experiments.models import Experiment

ALPHA = 0.05
COL = {name: i for i, name in enumerate(CELL_COLUMNS)}
VARIANTS = (VariantInfo(1, "control", "control", True, 1.0), VariantInfo(2, "b", "b", False, 1.0))


def _aa_data(rng: np.random.Generator, n: int) -> MetricsData:
    """Two identical arms: 10 % acceptance; revenue with a correlated pre-period covariate."""
    data = MetricsData(
        window_start=datetime(2026, 1, 5, tzinfo=UTC),
        window_end=datetime(2026, 1, 19, tzinfo=UTC),
        variants=VARIANTS,
    )
    for variant in VARIANTS:
        x = rng.gamma(2.0, 10.0, size=n)
        y = 0.7 * x + rng.gamma(2.0, 8.0, size=n) * (rng.random(n) < 0.4)
        cell = [0.0] * len(CELL_COLUMNS)
        cell[COL["n"]] = n
        cell[COL["accepted"]] = rng.binomial(n, 0.10)
        cell[COL["revenue"]], cell[COL["revenue_sq"]] = y.sum(), (y * y).sum()
        cell[COL["pre_revenue"]], cell[COL["pre_revenue_sq"]] = x.sum(), (x * x).sum()
        cell[COL["revenue_pre"]] = (x * y).sum()
        data.cells[(variant.id, "(none)", date(2026, 1, 5))] = cell
    return data


@pytest.mark.parametrize("metric", ["acceptance_rate", "revenue_per_customer"])
def test_aa_false_positive_rate_is_alpha(metric):
    rng = np.random.default_rng(20261122)
    experiment = Experiment(key="aa", alpha=ALPHA)
    kind = "proportion" if metric == "acceptance_rate" else "mean"
    reps, hits = 2000, 0
    for _ in range(reps):
        data = _aa_data(rng, 1000)
        entry = metric_result(
            name=metric,
            kind=kind,
            by_variant=metric_stats(data, Selection())[metric],
            data=data,
            experiment=experiment,
            guardrails=frozenset(),
        )
        hits += entry["comparisons"][0]["significant"]
    assert abs(hits / reps - ALPHA) <= 0.015, hits / reps
