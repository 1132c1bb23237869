"""Thin Celery tasks for recommendations."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from recommendations.mining import relations_mine


@shared_task(
    name="recommendations.tasks.mine_relations_task",
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=30,
    max_retries=3,
)
def mine_relations_task() -> dict:
    """Mine co-purchases into pending relations (nightly via beat, or from the admin button)."""
    result = relations_mine()
    return {
        "baskets": result.baskets,
        "pairs": result.pairs,
        "created": result.created,
        "updated": result.updated,
        "removed": result.removed,
    }
