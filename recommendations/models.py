"""Catalogue, product relations (curated and mined) and served offers."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from experiments.models import Channel, Experiment, Strategy, Variant
from experiments.moments import Trigger


class Product(models.Model):
    sku = models.CharField(max_length=100, unique=True)
    name = models.CharField(max_length=255)
    category = models.CharField(max_length=100, db_index=True)
    price = models.DecimalField(max_digits=12, decimal_places=2)
    active = models.BooleanField(default=True)
    in_stock = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sku"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="product_price_not_negative")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"

    @property
    def servable(self) -> bool:
        return self.active and self.in_stock and self.price > 0


class RelationKind(models.TextChoices):
    COMPLEMENT = "complement", "Complement (completion)"
    UPGRADE = "upgrade", "Upgrade (evolution)"
    ECOSYSTEM = "ecosystem", "Ecosystem"


# Which relation kind serves each recommendation strategy.
STRATEGY_KIND = {
    Strategy.COMPLETION: RelationKind.COMPLEMENT,
    Strategy.EVOLUTION: RelationKind.UPGRADE,
    Strategy.ECOSYSTEM: RelationKind.ECOSYSTEM,
}


class RelationOrigin(models.TextChoices):
    CURATED = "curated"
    MINED = "mined"


class RelationStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class ProductRelation(models.Model):
    source = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="relations_out")
    target = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="relations_in")
    kind = models.CharField(max_length=16, choices=RelationKind.choices)
    score = models.FloatField(default=0.0)
    origin = models.CharField(
        max_length=16, choices=RelationOrigin.choices, default=RelationOrigin.CURATED
    )
    status = models.CharField(
        max_length=16,
        choices=RelationStatus.choices,
        default=RelationStatus.PENDING,
        db_index=True,
    )
    pinned = models.BooleanField(default=False, help_text="Pinned relations are served first.")
    # Co-purchase statistics (mined relations).
    pair_count = models.PositiveIntegerField(default=0)
    support = models.FloatField(null=True, blank=True)
    confidence = models.FloatField(null=True, blank=True, help_text="P(target | source)")
    confidence_reverse = models.FloatField(null=True, blank=True, help_text="P(source | target)")
    lift = models.FloatField(null=True, blank=True)
    sample_orders = models.JSONField(
        default=list, blank=True, help_text="Some order ids that contain both products."
    )
    mined_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-pinned", "-score"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "target", "kind"], name="relation_unique_source_target_kind"
            ),
            models.CheckConstraint(
                condition=~Q(source=models.F("target")), name="relation_not_self"
            ),
        ]
        indexes = [models.Index(fields=["status", "kind", "source"], name="relation_serve_idx")]

    def __str__(self) -> str:
        return f"{self.source.sku} → {self.target.sku} ({self.kind})"


class Offer(models.Model):
    """One served recommendation: the exposure record that analysis counts."""

    offer_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    customer_id = models.CharField(max_length=255)
    trigger = models.CharField(max_length=32, choices=Trigger.choices)
    occurred_at = models.DateTimeField(help_text="When the cross-sell moment happened.")
    context = models.JSONField(default=dict, blank=True)
    # No index of its own: offer_experiment_idx (experiment, variant) serves it.
    experiment = models.ForeignKey(
        Experiment,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="offers",
        db_index=False,
    )
    variant = models.ForeignKey(
        Variant, null=True, blank=True, on_delete=models.SET_NULL, related_name="offers"
    )
    channel = models.CharField(max_length=16, choices=Channel.choices)
    send_at = models.DateTimeField()
    message = models.JSONField(default=dict, blank=True)
    products = models.JSONField(default=list, blank=True)
    api_key = models.ForeignKey(
        "rest_framework_api_key.APIKey",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
        db_index=False,  # a plain index below: the key is never matched with LIKE
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["customer_id", "created_at"], name="offer_customer_time_idx"),
            models.Index(fields=["experiment", "variant"], name="offer_experiment_idx"),
            models.Index(fields=["api_key"], name="offer_api_key_idx"),
        ]

    def __str__(self) -> str:
        return f"offer {self.offer_id} for {self.customer_id}"


class CustomerCap(models.Model):
    """Per-customer frequency-cap ledger: the row is locked while an offer is decided.

    `served` lists recent offers as "<unix seconds>:<channel>;" entries, appended in the same
    statement that locks the row (INSERT … ON CONFLICT DO UPDATE), so concurrent requests for one
    customer are serialised and each sees every offer committed before it.
    """

    customer_id = models.CharField(max_length=255)
    served = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField()

    class Meta:
        # A constraint, not unique=True, which on PostgreSQL adds a LIKE index nothing uses.
        constraints = [
            models.UniqueConstraint(fields=["customer_id"], name="customercap_unique_customer")
        ]

    def __str__(self) -> str:
        return f"caps of {self.customer_id}"
