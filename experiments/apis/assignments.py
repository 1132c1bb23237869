"""Storefront API: POST /api/v1/assignments — the customer's sticky variant."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config.exceptions import NotFound
from experiments.apikeys import StorefrontApiMixin
from experiments.models import Experiment
from experiments.selectors import experiment_config
from experiments.services import assignment_get_or_create


class FlatAttributesField(serializers.DictField):
    """Customer attributes: a flat JSON object of strings, numbers, booleans or null."""

    default_error_messages = {
        "not_flat": "Attributes must be a flat object: values are strings, numbers, booleans or "
        "null, not objects or lists ('{key}').",
        "too_many": "At most 50 attributes.",
    }

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if len(value) > 50:
            self.fail("too_many")
        for key, item in value.items():
            if not (item is None or isinstance(item, str | int | float | bool)) or (
                isinstance(item, str) and len(item) > 255
            ):
                self.fail("not_flat", key=key)
        return value


class CustomerIdField(serializers.CharField):
    def __init__(self, **kwargs):
        super().__init__(
            max_length=255, min_length=1, allow_blank=False, trim_whitespace=False, **kwargs
        )


class AssignmentCreateApi(StorefrontApiMixin, APIView):
    class InputSerializer(serializers.Serializer):
        customer_id = CustomerIdField()
        experiment = serializers.SlugField(max_length=100)
        attributes = FlatAttributesField(required=False, default=dict)

    class OutputSerializer(serializers.Serializer):
        experiment = serializers.CharField()
        variant = serializers.CharField(allow_null=True)
        in_experiment = serializers.BooleanField()
        reason = serializers.CharField(required=False)
        offer_config = inline_serializer(
            "OfferConfig",
            fields={
                "timing": serializers.DictField(),
                "channel": serializers.CharField(),
                "message": serializers.DictField(),
            },
            allow_null=True,
        )

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer, 404: OpenApiResponse(description="Unknown experiment")},
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        key = data["experiment"]
        config = experiment_config(key)
        if config is None:
            if Experiment.objects.filter(key=key).exists():
                return Response(
                    {
                        "experiment": key,
                        "variant": None,
                        "in_experiment": False,
                        "reason": "experiment_draft",
                        "offer_config": None,
                    }
                )
            raise NotFound(f"No experiment with key '{key}'.", field="experiment")
        result = assignment_get_or_create(
            config=config, customer_id=data["customer_id"], attributes=data["attributes"]
        )
        body = {
            "experiment": key,
            "variant": result.variant.key if result.variant else None,
            "in_experiment": result.in_experiment,
            "offer_config": result.variant.offer_config() if result.variant else None,
        }
        if result.reason:
            body["reason"] = result.reason
        return Response(body)
