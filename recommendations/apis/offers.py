"""Storefront API: POST /api/v1/offers — one offer at a cross-sell moment."""

from datetime import UTC

from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config import fields
from config.serializers import ReusableSerializer
from experiments.apikeys import StorefrontApiMixin
from experiments.apis.assignments import CustomerIdField, FlatAttributesField
from experiments.moments import Trigger
from recommendations.apis.products import RecommendedProductSerializer
from recommendations.offers import MAX_FUTURE_SKEW, offer_create


def _sku() -> fields.CharField:
    return fields.CharField(max_length=100)


@extend_schema_field({"type": "null"})
class _AlwaysNullField(serializers.JSONField):
    """`offer: null` in the no-offer body (drf-spectacular writes a nullable JSON field as a
    `oneOf` that null matches twice)."""


def _utc_iso(value) -> str:
    """What DRF's DateTimeField writes for an aware datetime when the current time zone is UTC
    (the API never activates another): ISO 8601 ending in Z — without its per-call lookup of
    the current time zone (3 % of an offer's CPU in the web process)."""
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


REASONS = ["frequency_capped", "no_recommendations", "outside_window", "not_eligible"]


class OfferCreateApi(StorefrontApiMixin, APIView):
    @extend_schema_serializer(component_name="OfferCreateInput")
    class InputSerializer(ReusableSerializer):
        @extend_schema_serializer(component_name="OfferCreateContext")
        class ContextSerializer(serializers.Serializer):
            skus = serializers.ListField(child=_sku(), max_length=100, required=False, default=list)
            order_id = fields.CharField(max_length=255, required=False)
            occurred_at = serializers.DateTimeField(
                required=False, help_text="When the moment happened (default now)."
            )
            cart = serializers.ListField(
                child=_sku(), max_length=200, required=False, help_text="Skus to leave out."
            )
            views = fields.IntegerField(
                min_value=0, required=False, help_text="browse: views of the product/category."
            )
            usage_percent = fields.FloatField(
                min_value=0, max_value=100, required=False, help_text="usage_milestone: 0–100."
            )

            def validate_occurred_at(self, value):
                if value - timezone.now() > MAX_FUTURE_SKEW:
                    raise serializers.ValidationError("The moment cannot be in the future.")
                return value

        customer_id = CustomerIdField()
        trigger = serializers.ChoiceField(choices=Trigger.choices)
        context = ContextSerializer(required=False, default=dict)
        attributes = FlatAttributesField(required=False, default=dict)

        def validate_attributes(self, value):
            # PostgreSQL's jsonb cannot store U+0000, so refuse it here rather than fail later.
            if any("\x00" in str(k) or "\x00" in str(v) for k, v in value.items()):
                raise serializers.ValidationError("Null characters are not allowed.")
            return value

    @extend_schema_serializer(component_name="OfferCreateOutput")
    class OutputSerializer(serializers.Serializer):
        offer_id = serializers.UUIDField()
        experiment = fields.CharField(allow_null=True)
        variant = fields.CharField(allow_null=True)
        channel = fields.CharField()
        send_at = serializers.DateTimeField()
        message = serializers.DictField(child=fields.CharField())
        products = RecommendedProductSerializer(many=True)
        survey = inline_serializer(
            "OfferSurvey",
            fields={"token": fields.CharField(), "url": serializers.URLField()},
            allow_null=True,
        )
        warnings = serializers.ListField(child=fields.CharField(), required=False)

    @extend_schema_serializer(component_name="OfferCreateNoOffer")
    class NoOfferSerializer(serializers.Serializer):
        offer = _AlwaysNullField(default=None)
        reason = serializers.ChoiceField(choices=REASONS)
        warnings = serializers.ListField(child=fields.CharField(), required=False)

    @extend_schema(
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            200: OpenApiResponse(NoOfferSerializer, description="No offer, and why"),
        },
    )
    def post(self, request):
        serializer = self.InputSerializer.for_data(request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = offer_create(
            customer_id=data["customer_id"],
            trigger=data["trigger"],
            context=data["context"],
            attributes=data["attributes"],
            api_key_id=request.user.api_key_id,
        )
        extra = {"warnings": result.warnings} if result.warnings else {}
        if result.offer is None:
            return Response({"offer": None, "reason": result.reason, **extra})
        offer = result.offer
        # Built directly in OutputSerializer's shape: on the hot path a serializer pass would
        # deep-copy its fields on every request for values that are already JSON.
        body = {
            "offer_id": str(offer.offer_id),
            "experiment": result.experiment,
            "variant": result.variant,
            "channel": offer.channel,
            "send_at": _utc_iso(offer.send_at),
            "message": offer.message,
            "products": offer.products,
            "survey": result.survey,
            **extra,
        }
        return Response(body, status=status.HTTP_201_CREATED)
