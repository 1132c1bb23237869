"""Reads. The experiment configuration used on the hot path is cached in-process.

The cache holds immutable snapshots. A change to an experiment or variant bumps a generation
number in Django's cache (shared across processes when CACHE_URL points at Redis), which every
process compares on each read; snapshots also expire after OFFERLAB_CONFIG_CACHE_SECONDS, which
bounds staleness where the cache is per-process.
"""

import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, QuerySet

from experiments.models import AnalysisRun, Assignment, Experiment, Status

_GENERATION_KEY = "offerlab:experiment-config-generation"


@dataclass(frozen=True)
class VariantConfig:
    id: int
    key: str
    name: str
    is_control: bool
    weight: float
    timing: dict
    channel: str
    message: dict

    def offer_config(self) -> dict:
        return {"timing": self.timing, "channel": self.channel, "message": self.message}


@dataclass(frozen=True)
class ExperimentConfig:
    id: int
    key: str
    seed: str
    status: str
    factor: str
    trigger: str
    strategy: str
    traffic_percent: float
    layer: str
    layer_start: float
    layer_end: float
    targeting: tuple
    segment_attribute: str
    variants: tuple[VariantConfig, ...]

    @property
    def is_running(self) -> bool:
        return self.status == Status.RUNNING

    def variant(self, variant_id: int) -> VariantConfig | None:
        return next((v for v in self.variants if v.id == variant_id), None)


def _snapshot(experiment: Experiment) -> ExperimentConfig:
    variants = tuple(
        VariantConfig(
            id=v.id,
            key=v.key,
            name=v.name,
            is_control=v.is_control,
            weight=v.weight,
            timing=dict(v.timing or {}),
            channel=v.channel,
            message=dict(v.message or {}),
        )
        for v in experiment.variants.all()
    )
    return ExperimentConfig(
        id=experiment.id,
        key=experiment.key,
        seed=experiment.seed,
        status=experiment.status,
        factor=experiment.factor,
        trigger=experiment.trigger,
        strategy=experiment.strategy,
        traffic_percent=experiment.traffic_percent,
        layer=experiment.layer,
        layer_start=experiment.layer_start,
        layer_end=experiment.layer_end,
        targeting=tuple(experiment.targeting or ()),
        segment_attribute=experiment.segment_attribute or settings.OFFERLAB_SEGMENT_ATTRIBUTE,
        variants=variants,
    )


class _ConfigCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded_at = 0.0
        self._generation: int | None = None
        self._by_key: dict[str, ExperimentConfig] = {}

    def _fresh(self) -> bool:
        ttl = settings.OFFERLAB_CONFIG_CACHE_SECONDS
        if time.monotonic() - self._loaded_at > ttl:
            return False
        return cache.get(_GENERATION_KEY, 0) == self._generation

    def all(self) -> dict[str, ExperimentConfig]:
        if self._fresh():
            return self._by_key
        with self._lock:
            generation = cache.get(_GENERATION_KEY, 0)
            experiments = Experiment.objects.exclude(status=Status.DRAFT).prefetch_related(
                "variants"
            )
            self._by_key = {e.key: _snapshot(e) for e in experiments}
            self._generation = generation
            self._loaded_at = time.monotonic()
            return self._by_key

    def clear(self) -> None:
        with self._lock:
            self._loaded_at = 0.0


_configs = _ConfigCache()


def _bump_generation() -> None:
    try:
        cache.incr(_GENERATION_KEY)
    except ValueError:
        cache.set(_GENERATION_KEY, 1, timeout=None)
    _configs.clear()


def invalidate_experiment_configs() -> None:
    """Called on every experiment/variant change, in this and (via the cache) other processes.

    Inside a transaction the generation moves again on commit: a process that reloaded in
    between read the old rows, and would otherwise keep them until the snapshot expires.
    """
    _bump_generation()
    if connection.in_atomic_block:
        transaction.on_commit(_bump_generation)


def experiment_config(key: str) -> ExperimentConfig | None:
    """A started experiment's configuration (None for drafts and unknown keys)."""
    return _configs.all().get(key)


def running_experiments_for_trigger(trigger: str) -> list[ExperimentConfig]:
    """Running experiments on a cross-sell moment, oldest key first (stable order)."""
    return sorted(
        (c for c in _configs.all().values() if c.is_running and c.trigger == trigger),
        key=lambda c: c.id,
    )


def experiment_list() -> QuerySet[Experiment]:
    return Experiment.objects.prefetch_related("variants").order_by("-created_at")


def experiment_get(key: str) -> Experiment | None:
    return experiment_list().filter(key=key).first()


def assignment_counts(experiment: Experiment) -> dict[str, int]:
    """{variant key: number of customers assigned}, zero for variants nobody has yet."""
    counts = dict(
        Assignment.objects.filter(experiment=experiment)
        .values_list("variant__key")
        .annotate(n=Count("id"))
        .values_list("variant__key", "n")
    )
    return {v.key: counts.get(v.key, 0) for v in experiment.variants.all()}


def latest_analysis(experiment: Experiment) -> AnalysisRun | None:
    return (
        AnalysisRun.objects.filter(experiment=experiment, status=AnalysisRun.RunStatus.SUCCEEDED)
        .order_by("-finished_at", "-id")
        .first()
    )
