"""Storefront API: POST /api/v1/assignments — the customer's sticky variant."""

import math

from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config import fields
from config.exceptions import NotFound
from config.serializers import ReusableSerializer
from experiments.apikeys import StorefrontApiMixin
from experiments.models import Experiment
from experiments.selectors import experiment_config
from experiments.services import assignment_get_or_create


def _storable_text(text: str) -> bool:
    """Text PostgreSQL can store in jsonb: no NUL character, no lone UTF-16 surrogate."""
    return "\x00" not in text and not any("\ud800" <= ch <= "\udfff" for ch in text)


# Text PostgreSQL can store in jsonb, as a JSON Schema pattern: no NUL. Lone surrogates are
# refused too, but a class naming them (\ud800-\udfff) is not a regex to jsonschema-rs, the
# validator Schemathesis uses, which then generated NUL as valid: the description says it.
STORABLE_TEXT_PATTERN = "^[^\\u0000]*$"


@extend_schema_field(
    {
        "type": "object",
        "description": "A flat object of at most 50 attributes (names 1–100 characters): values "
        "are strings (at most 255 characters), numbers, booleans or null. No name or string may "
        "hold NUL or a lone UTF-16 surrogate.",
        "maxProperties": 50,
        "propertyNames": {"minLength": 1, "maxLength": 100, "pattern": STORABLE_TEXT_PATTERN},
        "additionalProperties": {
            "oneOf": [
                {"type": "string", "maxLength": 255, "pattern": STORABLE_TEXT_PATTERN},
                {"type": "number"},
                {"type": "boolean"},
                {"type": "null"},
            ],
        },
    }
)
class FlatAttributesField(serializers.DictField):
    """Customer attributes: a flat JSON object of strings, numbers, booleans or null."""

    default_error_messages = {
        "not_flat": "Attributes must be a flat object: values are strings (at most 255 "
        "characters), finite numbers, booleans or null, not objects or lists ('{name}').",
        "bad_name": "Attribute names must be 1–100 characters without NUL or surrogates.",
        "too_many": "At most 50 attributes.",
    }

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if len(value) > 50:
            self.fail("too_many")
        for name, item in value.items():
            if not (0 < len(name) <= 100 and _storable_text(name)):
                self.fail("bad_name")
            if isinstance(item, str):
                ok = len(item) <= 255 and _storable_text(item)
            elif isinstance(item, float):
                ok = math.isfinite(item)
            else:
                ok = item is None or isinstance(item, int | bool)
            if not ok:
                self.fail("not_flat", name=name[:100])
        return value


class CustomerIdField(fields.CharField):
    def __init__(self, **kwargs):
        super().__init__(
            max_length=255, min_length=1, allow_blank=False, trim_whitespace=False, **kwargs
        )


class AssignmentCreateApi(StorefrontApiMixin, APIView):
    class InputSerializer(ReusableSerializer):
        customer_id = CustomerIdField()
        experiment = fields.SlugField(max_length=100)
        attributes = FlatAttributesField(required=False, default=dict)

    class OutputSerializer(serializers.Serializer):
        experiment = fields.CharField()
        variant = fields.CharField(allow_null=True)
        in_experiment = fields.BooleanField()
        reason = fields.CharField(required=False)
        offer_config = inline_serializer(
            "OfferConfig",
            fields={
                "timing": serializers.DictField(),
                "channel": fields.CharField(),
                "message": serializers.DictField(),
            },
            allow_null=True,
        )

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer, 404: OpenApiResponse(description="Unknown experiment")},
    )
    def post(self, request):
        serializer = self.InputSerializer.for_data(request.data)
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
