"""Reads for customer feedback."""

from feedback.models import Survey


def surveys_for_serving() -> list[Survey]:
    """Active surveys that have at least one question, newest first."""
    return list(
        Survey.objects.filter(active=True, questions__isnull=False)
        .distinct()
        .order_by("-created_at", "-id")
    )
