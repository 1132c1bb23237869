"""Experiments, variants, sticky assignments, outcome events and analysis snapshots."""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from experiments.moments import Trigger


class Factor(models.TextChoices):
    TIMING = "timing", "Timing"
    CHANNEL = "channel", "Channel"
    MESSAGE = "message", "Message"


class Status(models.TextChoices):
    DRAFT = "draft", "Draft"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    STOPPED = "stopped", "Stopped"
    SHIPPED = "shipped", "Shipped"


class Strategy(models.TextChoices):
    COMPLETION = "completion", "Completion (complements)"
    EVOLUTION = "evolution", "Evolution (upgrades)"
    ECOSYSTEM = "ecosystem", "Ecosystem"


class Channel(models.TextChoices):
    WEB = "web", "Web"
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    PUSH = "push", "Push"
    DIRECT = "direct", "Direct (sales / support)"


class Metric(models.TextChoices):
    ACCEPTANCE_RATE = "acceptance_rate", "Acceptance rate"
    TIME_TO_SECONDARY_PURCHASE = "time_to_secondary_purchase", "Time to secondary purchase"
    CATEGORY_EXPANSION_RATE = "category_expansion_rate", "Category expansion rate"
    CROSS_SELL_AOV = "cross_sell_aov", "Cross-sell AOV"
    REVENUE_PER_CUSTOMER = "revenue_per_customer", "Revenue per customer"
    RETURN_RATE = "return_rate", "Return rate"
    CART_ABANDONMENT_RATE = "cart_abandonment_rate", "Cart abandonment rate"
    CSAT = "csat", "CSAT"
    INTRUSIVENESS = "intrusiveness", "Intrusiveness"
    SURVEY_RESPONSE_RATE = "survey_response_rate", "Survey response rate"


# Placeholders a variant's message may use; filled by plain substitution (see offers).
MESSAGE_PLACEHOLDERS = frozenset({"products", "product", "count"})
_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
MESSAGE_FIELDS = ("subject", "body", "cta")


def message_placeholders(text: str) -> set[str]:
    """Names between single braces in `text` ("{products}" -> "products")."""
    return set(_PLACEHOLDER_RE.findall(text or ""))


class Experiment(models.Model):
    key = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    hypothesis = models.TextField(blank=True)
    factor = models.CharField(max_length=16, choices=Factor.choices)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    trigger = models.CharField(max_length=32, choices=Trigger.choices)
    strategy = models.CharField(
        max_length=16, choices=Strategy.choices, default=Strategy.COMPLETION
    )
    traffic_percent = models.FloatField(
        default=100.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(100.0)],
        help_text="Pilot share of eligible customers (0–100). Can move while running.",
    )
    layer = models.SlugField(
        max_length=100,
        blank=True,
        help_text="Experiments in one layer take disjoint slices, so a customer is in one.",
    )
    layer_start = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    layer_end = models.FloatField(
        default=1.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    targeting = models.JSONField(
        default=list,
        blank=True,
        help_text="Rules on customer attributes, all must match: "
        '[{"attribute": "loyalty_tier", "op": "in", "value": ["gold"]}]. '
        "Ops: eq, ne, in, not_in, gte, lte.",
    )
    segment_attribute = models.CharField(
        max_length=64,
        blank=True,
        help_text="Customer attribute that names the segment for per-segment results "
        "(default: the OFFERLAB_SEGMENT_ATTRIBUTE setting).",
    )
    primary_metric = models.CharField(
        max_length=40, choices=Metric.choices, default=Metric.ACCEPTANCE_RATE
    )
    guardrail_metrics = models.JSONField(default=list, blank=True)
    baseline_rate = models.FloatField(
        default=0.10, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    mde = models.FloatField(
        default=0.02,
        validators=[MinValueValidator(0.0)],
        help_text="Minimum detectable effect, absolute, in the primary metric's units.",
    )
    alpha = models.FloatField(
        default=0.05, validators=[MinValueValidator(0.0001), MaxValueValidator(0.5)]
    )
    power = models.FloatField(
        default=0.8, validators=[MinValueValidator(0.5), MaxValueValidator(0.9999)]
    )
    min_days = models.PositiveIntegerField(default=14)
    safe_peeking = models.BooleanField(default=False)
    hash_seed = models.CharField(max_length=100, blank=True, help_text="Defaults to the key.")
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(traffic_percent__gte=0) & Q(traffic_percent__lte=100),
                name="experiment_traffic_percent_0_100",
            ),
            models.CheckConstraint(
                condition=Q(layer_start__gte=0)
                & Q(layer_end__lte=1)
                & Q(layer_start__lt=models.F("layer_end")),
                name="experiment_layer_slice_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.key})"

    @property
    def seed(self) -> str:
        return self.hash_seed or self.key

    @property
    def is_locked(self) -> bool:
        """Variants and weights are frozen once an experiment has started."""
        return self.status != Status.DRAFT

    def clean(self) -> None:
        errors = {}
        if self.layer_start >= self.layer_end:
            errors["layer_end"] = "The layer slice must end after it starts."
        unknown = [m for m in self.guardrail_metrics or [] if m not in Metric.values]
        if unknown:
            errors["guardrail_metrics"] = f"Unknown metric(s): {', '.join(map(str, unknown))}."
        if self.baseline_rate is not None and self.mde is not None:
            if self.mde <= 0:
                errors["mde"] = "The minimum detectable effect must be above 0."
            elif self.primary_metric in RATE_METRICS and self.baseline_rate + self.mde >= 1:
                errors["mde"] = "baseline_rate + mde must stay below 1 for a rate metric."
        if errors:
            raise ValidationError(errors)


RATE_METRICS = {
    Metric.ACCEPTANCE_RATE,
    Metric.CATEGORY_EXPANSION_RATE,
    Metric.RETURN_RATE,
    Metric.CART_ABANDONMENT_RATE,
    Metric.SURVEY_RESPONSE_RATE,
}


class Variant(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variants")
    key = models.SlugField(max_length=100)
    name = models.CharField(max_length=200)
    is_control = models.BooleanField(default=False)
    weight = models.FloatField(default=1.0, validators=[MinValueValidator(0.000001)])
    timing = models.JSONField(
        default=dict, blank=True, help_text='{"delay_hours": 0, "window_hours": 48}'
    )
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.WEB)
    message = models.JSONField(
        default=dict,
        blank=True,
        help_text='{"subject": "…", "body": "…", "cta": "…"}; placeholders: '
        "{products}, {product}, {count}.",
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["experiment", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "key"], name="variant_key_unique"),
            models.UniqueConstraint(
                fields=["experiment"],
                condition=Q(is_control=True),
                name="variant_one_control_per_experiment",
            ),
            models.CheckConstraint(condition=Q(weight__gt=0), name="variant_weight_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.experiment.key}/{self.key}"

    def offer_config(self) -> dict:
        return {"timing": self.timing, "channel": self.channel, "message": self.message}


class Assignment(models.Model):
    """(experiment, customer) -> variant. Written once, never changed (sticky)."""

    # No index of its own: assignment_unique_customer (experiment, customer_id) serves it.
    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="assignments", db_index=False
    )
    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="assignments")
    customer_id = models.CharField(max_length=255)
    segment = models.CharField(max_length=100, blank=True, default="")
    attributes = models.JSONField(default=dict, blank=True)
    # Indexed with the experiment: the analysis starts from an experiment's first assignment.
    assigned_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "customer_id"], name="assignment_unique_customer"
            )
        ]
        indexes = [
            models.Index(fields=["customer_id"], name="assignment_customer_idx"),
            models.Index(
                fields=["experiment", "assigned_at"], name="assignment_experiment_time_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} → {self.variant}"


class EventType(models.TextChoices):
    OFFER_SHOWN = "offer_shown"
    OFFER_CLICKED = "offer_clicked"
    OFFER_ACCEPTED = "offer_accepted"
    ORDER_PLACED = "order_placed"
    ORDER_RETURNED = "order_returned"
    CART_ABANDONED = "cart_abandoned"
    PRODUCT_VIEWED = "product_viewed"
    SUPPORT_RESOLVED = "support_resolved"
    USAGE_MILESTONE = "usage_milestone"


# Event types that carry line items.
EVENT_TYPES_WITH_ITEMS = frozenset(
    {
        EventType.ORDER_PLACED,
        EventType.ORDER_RETURNED,
        EventType.CART_ABANDONED,
        EventType.PRODUCT_VIEWED,
        EventType.OFFER_ACCEPTED,
    }
)


class OutcomeEvent(models.Model):
    """What happened at a storefront. `event_id` is the client's idempotency key."""

    event_id = models.UUIDField(unique=True)
    type = models.CharField(max_length=32, choices=EventType.choices)
    customer_id = models.CharField(max_length=255)
    occurred_at = models.DateTimeField()
    offer_id = models.UUIDField(null=True, blank=True, db_index=True)
    order_id = models.CharField(max_length=255, blank=True, default="")
    # Four decimals: ISO 4217 minor units go up to 4 (BHD/KWD/OMR 3, CLF/UYW 4).
    amount = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, default="")
    # Which storefront key sent the event. Not indexed: it is read for audits, while every
    # index costs each insert on this write-heavy table.
    api_key = models.ForeignKey(
        "rest_framework_api_key.APIKey",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # Metrics read events customer first; a (type, time) index would be paid on every
        # insert and read by nothing (time-wide scans go through EventItem's index).
        indexes = [
            models.Index(fields=["customer_id", "occurred_at"], name="event_customer_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.customer_id} {self.occurred_at:%Y-%m-%d %H:%M}"


class EventItem(models.Model):
    """A line of an order / return / cart, denormalised for SQL aggregation."""

    event = models.ForeignKey(OutcomeEvent, on_delete=models.CASCADE, related_name="items")
    type = models.CharField(max_length=32, choices=EventType.choices)
    customer_id = models.CharField(max_length=255)
    occurred_at = models.DateTimeField()
    sku = models.CharField(max_length=100)
    category = models.CharField(max_length=100, blank=True, default="")
    quantity = models.PositiveIntegerField(default=1)
    price = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["customer_id", "occurred_at"], name="item_customer_time_idx"),
            models.Index(fields=["type", "occurred_at"], name="item_type_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.sku}"


class AnalysisRun(models.Model):
    """One analysis of an experiment: status, progress and the JSON snapshot it produced."""

    class RunStatus(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="analysis_runs"
    )
    status = models.CharField(
        max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True
    )
    progress = models.PositiveSmallIntegerField(default=0, help_text="0–100")
    progress_message = models.CharField(max_length=200, blank=True, default="")
    task_id = models.CharField(max_length=255, blank=True, default="")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    readiness = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["experiment", "status", "-created_at"])]
        constraints = [
            # One analysis per experiment at a time.
            models.UniqueConstraint(
                fields=["experiment"],
                condition=Q(status__in=["queued", "running"]),
                name="analysis_one_active_per_experiment",
            )
        ]

    def __str__(self) -> str:
        return f"{self.experiment.key} analysis #{self.pk} ({self.status})"
