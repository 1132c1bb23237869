"""Several variants against one control: Holm's step-down adjustment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from statsmodels.stats.multitest import multipletests

from .types import Comparison, finite_or_none


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p-values (``multipletests(method="holm")``), in the input order.

    ``None`` (and non-finite) entries are passed through as ``None`` and do not count
    towards the number of tests.
    """
    present = [i for i, p in enumerate(p_values) if finite_or_none(p) is not None]
    adjusted: list[float | None] = [None] * len(p_values)
    if not present:
        return adjusted
    if len(present) == 1:
        # One test: Holm is the identity. statsmodels' Holm branch runs gc.collect() on every
        # call, which costs tenths of a second in a large process, so skip the call.
        adjusted[present[0]] = float(p_values[present[0]])
        return adjusted
    _, corrected, _, _ = multipletests([float(p_values[i]) for i in present], method="holm")
    for i, p in zip(present, corrected, strict=True):
        adjusted[i] = float(p)
    return adjusted


def apply_holm(comparisons: Sequence[Comparison], alpha: float = 0.05) -> list[Comparison]:
    """Fill ``p_value_adjusted`` across one metric's comparisons; ``significant`` uses it."""
    adjusted = holm([c.p_value for c in comparisons])
    return [
        replace(c, p_value_adjusted=p, significant=p is not None and p < alpha)
        for c, p in zip(comparisons, adjusted, strict=True)
    ]
