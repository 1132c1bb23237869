"""Cross-sell moments (triggers), their windows and qualifying rules, from the playbook.

A moment happens at `occurred_at`; an offer for it is relevant only within the moment's window
after that. Some moments also need proof that they really happened:
- browse: at least OFFERLAB_BROWSE_MIN_VIEWS (3) views of the product or its category — the
  storefront says so with `context.views`, or Offerlab counts the customer's `product_viewed`
  events in the window before the moment;
- usage_milestone: when the storefront sends `context.usage_percent`, it must be at least
  OFFERLAB_USAGE_MILESTONE_PERCENT (75).
"""

from django.conf import settings
from django.db import models


class Trigger(models.TextChoices):
    POST_PURCHASE = "post_purchase", "Post-purchase"
    BROWSE = "browse", "Browsing (3+ views)"
    CART_ABANDONMENT = "cart_abandonment", "Cart abandonment"
    SUPPORT_RESOLUTION = "support_resolution", "Support resolution"
    USAGE_MILESTONE = "usage_milestone", "Usage milestone (75 %)"
    LOYALTY_MILESTONE = "loyalty_milestone", "Loyalty milestone"
    SEASONAL = "seasonal", "Seasonal"
    GIFT = "gift", "Gift occasion"
    PRODUCT_LAUNCH = "product_launch", "Product launch"


# Hours after the moment during which an offer is still relevant (None: no time window).
DEFAULT_WINDOW_HOURS: dict[str, int | None] = {
    Trigger.POST_PURCHASE: 48,
    Trigger.BROWSE: 24,
    Trigger.CART_ABANDONMENT: 4,
    Trigger.SUPPORT_RESOLUTION: 24,
    Trigger.USAGE_MILESTONE: 72,
    Trigger.LOYALTY_MILESTONE: 72,
    Trigger.SEASONAL: None,
    Trigger.GIFT: None,
    Trigger.PRODUCT_LAUNCH: None,
}

# The playbook's "strategy alignment": what an offer recommends when no experiment says otherwise.
DEFAULT_STRATEGY: dict[str, str] = {
    Trigger.POST_PURCHASE: "completion",
    Trigger.BROWSE: "completion",
    Trigger.CART_ABANDONMENT: "completion",
    Trigger.SUPPORT_RESOLUTION: "ecosystem",
    Trigger.USAGE_MILESTONE: "evolution",
    Trigger.LOYALTY_MILESTONE: "evolution",
    Trigger.SEASONAL: "completion",
    Trigger.GIFT: "completion",
    Trigger.PRODUCT_LAUNCH: "ecosystem",
}


def window_hours(trigger: str) -> float | None:
    """The moment's window in hours: OFFERLAB_MOMENT_WINDOW_HOURS overrides the playbook's."""
    overrides = getattr(settings, "OFFERLAB_MOMENT_WINDOW_HOURS", {}) or {}
    if trigger in overrides:
        value = overrides[trigger]
        return None if value in (None, "", 0) else float(value)
    return DEFAULT_WINDOW_HOURS.get(trigger)


def browse_min_views() -> int:
    return int(getattr(settings, "OFFERLAB_BROWSE_MIN_VIEWS", 3))


def usage_milestone_percent() -> float:
    return float(getattr(settings, "OFFERLAB_USAGE_MILESTONE_PERCENT", 75))
