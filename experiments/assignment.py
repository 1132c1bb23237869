"""Deterministic assignment of customers to variants, compatible with GrowthBook.

Pure functions, standard library only: any storefront running a GrowthBook SDK
(hash version 2) computes the same bucket, range and variant for a customer.
"""

from collections.abc import Sequence
from functools import lru_cache
from sys import byteorder

# Code units are read in native order, so encode UTF-16 in the host's byte order.
_UTF16 = "utf-16-le" if byteorder == "little" else "utf-16-be"


def _fnv1a32_from(h: int, text: str) -> int:
    """Continue an FNV-1a 32 state `h` over the UTF-16 code units of `text`."""
    if text.isascii():
        for b in text.encode():
            h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    else:
        for u in memoryview(text.encode(_UTF16, "surrogatepass")).cast("H"):
            h = ((h ^ u) * 0x01000193) & 0xFFFFFFFF
    return h


def fnv1a32(text: str) -> int:
    """Return the 32-bit FNV-1a hash of `text`, as GrowthBook's SDKs compute it.

    The hash runs over UTF-16 code units, like JavaScript's `charCodeAt`; for ASCII
    text (every customer id in practice) these are exactly the UTF-8 bytes.
    """
    return _fnv1a32_from(0x811C9DC5, text)


# Ids are mostly new, but seeds are few (one per experiment or layer): hashing
# `seed + customer_id` resumes from the seed's cached state instead of rehashing it.
_seed_state = lru_cache(maxsize=4096)(fnv1a32)


def bucket(seed: str, customer_id: str) -> float:
    """Return the customer's position in [0, 1) for `seed` (GrowthBook hash version 2).

    Equal to `fnv1a32(str(fnv1a32(seed + customer_id))) % 10000 / 10000`.
    """
    inner = _fnv1a32_from(_seed_state(seed), customer_id)
    # The outer hash reads at most 10 ASCII digits: inlined, and masked once at the end.
    g = 0x811C9DC5
    for b in str(inner).encode():
        g = (g ^ b) * 0x01000193
    return (g & 0xFFFFFFFF) % 10000 / 10000


def bucket_ranges(weights: Sequence[float], coverage: float) -> list[tuple[float, float]]:
    """Return one [start, end) range of buckets per variant (GrowthBook's getBucketRanges).

    Weights are normalised by their sum (equal weights if the sum is not positive).
    Coverage is clamped to [0, 1] and shrinks each range from its fixed start, so
    changing coverage never moves a customer from one variant to another.
    """
    n = len(weights)
    if n == 0:
        return []
    coverage = min(max(float(coverage), 0.0), 1.0)
    total = float(sum(weights))
    shares = [float(w) / total for w in weights] if total > 0 else [1.0 / n] * n
    ranges = []
    cumulative = 0.0
    for share in shares:
        start = cumulative
        cumulative += share
        ranges.append((start, start + coverage * share))
    return ranges


def choose_variant(bucket: float, ranges: Sequence[tuple[float, float]]) -> int | None:
    """Return the index of the first range with start <= bucket < end, or None."""
    for i, (start, end) in enumerate(ranges):
        if start <= bucket < end:
            return i
    return None


def in_layer(layer: str, customer_id: str, start: float, end: float) -> bool:
    """Tell whether the customer falls in the [start, end) slice of `layer`.

    Experiments of one layer take disjoint slices, so a customer is in at most one.
    """
    return start <= bucket("__" + layer, customer_id) < end
