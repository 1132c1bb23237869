"""Invalidate the served catalogue when a product or relation changes (admin, shell, API)."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from recommendations.models import Product, ProductRelation
from recommendations.selectors import invalidate_catalog


@receiver([post_save, post_delete], sender=Product)
@receiver([post_save, post_delete], sender=ProductRelation)
def _catalog_changed(**kwargs) -> None:
    invalidate_catalog()
