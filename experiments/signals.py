"""Invalidate hot-path caches when configuration changes."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from rest_framework_api_key.models import APIKey

from experiments.apikeys import forget_cached_keys
from experiments.models import Experiment, Variant
from experiments.selectors import invalidate_experiment_configs


@receiver([post_save, post_delete], sender=Experiment)
@receiver([post_save, post_delete], sender=Variant)
def _experiment_changed(**kwargs) -> None:
    invalidate_experiment_configs()


@receiver([post_save, post_delete], sender=APIKey)
def _api_key_changed(**kwargs) -> None:
    forget_cached_keys()
