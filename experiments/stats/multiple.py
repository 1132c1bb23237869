"""Several variants against one control: Holm's step-down adjustment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .types import Comparison, finite_or_none


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p-values, in the input order: the numbers of
    ``statsmodels.stats.multitest.multipletests(method="holm")`` (checked in the tests).

    ``None`` (and non-finite) entries are passed through as ``None`` and do not count
    towards the number of tests. Computed directly: statsmodels' Holm branch runs
    ``gc.collect()`` on every call, which costs tenths of a second in a large process, and an
    analysis makes one call per metric, segment and week.
    """
    present = sorted(
        (i for i, p in enumerate(p_values) if finite_or_none(p) is not None),
        key=lambda i: p_values[i],
    )
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, i in enumerate(present):
        running = max(running, min(1.0, (len(present) - rank) * float(p_values[i])))
        adjusted[i] = running
    return adjusted


def apply_holm(comparisons: Sequence[Comparison], alpha: float = 0.05) -> list[Comparison]:
    """Fill ``p_value_adjusted`` across one metric's comparisons; ``significant`` uses it."""
    adjusted = holm([c.p_value for c in comparisons])
    return [
        replace(c, p_value_adjusted=p, significant=p is not None and p < alpha)
        for c, p in zip(comparisons, adjusted, strict=True)
    ]
