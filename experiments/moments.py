"""Cross-sell moments (triggers) and their default windows, from the playbook."""

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
