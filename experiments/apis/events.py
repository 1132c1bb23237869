"""Storefront API: POST /api/v1/events — outcome events in idempotent batches."""

import codecs
import json

from django.conf import settings
from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from config.exceptions import ApplicationError
from experiments.apikeys import StorefrontApiMixin
from experiments.events import MAX_ITEMS_PER_EVENT, REQUIRED, events_ingest
from experiments.models import EventType

# Bytes allowed per event in a request body: generous for an order with hundreds of lines.
BODY_BYTES_PER_EVENT = 16 * 1024


class PayloadTooLarge(APIException):
    status_code = 413
    default_detail = "Request body too large."
    default_code = "payload_too_large"


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class EventBatchParser(JSONParser):
    """JSON with a size cap and no 500 on pathological input (deep nesting, bad encodings)."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.OFFERLAB_EVENT_MAX_BATCH * BODY_BYTES_PER_EVENT
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLarge(
                f"Request body over {limit:,} bytes; send at most "
                f"{settings.OFFERLAB_EVENT_MAX_BATCH:,} events per batch."
            )
        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        try:
            text = codecs.decode(body, encoding)
            return json.loads(text, parse_constant=_reject_constant)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
        except (ValueError, LookupError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


@extend_schema_serializer(component_name="OutcomeEventItem")
class EventItemSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=100, trim_whitespace=False)
    category = serializers.CharField(max_length=100, required=False, trim_whitespace=False)
    quantity = serializers.IntegerField(min_value=1, required=False, default=1)
    price = serializers.DecimalField(
        max_digits=18, decimal_places=4, min_value=0, required=False, help_text="Needs currency."
    )


@extend_schema_serializer(component_name="OutcomeEvent")
class EventSerializer(serializers.Serializer):
    event_id = serializers.UUIDField(help_text="Chosen by the client; the idempotency key.")
    type = serializers.ChoiceField(choices=EventType.choices)
    customer_id = serializers.CharField(max_length=255, trim_whitespace=False)
    occurred_at = serializers.DateTimeField(
        help_text="ISO 8601 with a timezone; at most 5 minutes ahead, at most "
        "OFFERLAB_EVENT_HORIZON_DAYS (400) days old."
    )
    offer_id = serializers.UUIDField(
        required=False, allow_null=True, help_text="Must name an offer served by Offerlab."
    )
    order_id = serializers.CharField(
        max_length=255,
        required=False,
        trim_whitespace=False,
        help_text="Required on order_placed.",
    )
    amount = serializers.DecimalField(
        max_digits=18,
        decimal_places=4,
        min_value=0,
        required=False,
        allow_null=True,
        help_text="Required on order_placed; needs currency.",
    )
    currency = serializers.CharField(
        min_length=3,
        max_length=3,
        required=False,
        trim_whitespace=False,
        help_text="ISO 4217, e.g. EUR.",
    )
    items = EventItemSerializer(
        many=True,
        required=False,
        max_length=MAX_ITEMS_PER_EVENT,
        help_text="Only on order_placed, order_returned, cart_abandoned, product_viewed and "
        "offer_accepted.",
    )


# The serializers document the shapes for OpenAPI; validation happens per event in
# experiments.events (a serializer per event would cost more than the insert itself), which
# takes text as sent (no trimming), hence trim_whitespace=False.
class EventBatchCreateApi(StorefrontApiMixin, APIView):
    """Store a batch of outcome events (at most 1,000); each event gets its own status.

    `event_id` is the idempotency key: an event already stored, or repeated in the batch, is
    `duplicate` and changes nothing. A bad event is `rejected` with its field errors while the
    others are stored. `results` lines up with the input order.
    """

    parser_classes = [EventBatchParser]

    @extend_schema_serializer(component_name="EventBatch")
    class InputSerializer(serializers.Serializer):
        events = EventSerializer(
            many=True, min_length=1, max_length=settings.OFFERLAB_EVENT_MAX_BATCH
        )

    @extend_schema_serializer(component_name="EventBatchResult")
    class OutputSerializer(serializers.Serializer):
        accepted = serializers.IntegerField()
        duplicates = serializers.IntegerField()
        rejected = serializers.ListField(
            child=serializers.DictField(),
            help_text='[{"index": 3, "errors": {"currency": ["…"]}}], by input index.',
        )
        results = serializers.ListField(
            child=serializers.DictField(),
            help_text='[{"event_id": "…", "status": "accepted|duplicate|rejected"}], '
            "in input order.",
        )

    @extend_schema(
        operation_id="events_create",
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            400: OpenApiResponse(description="Not an object, no events list, or an empty list"),
            413: OpenApiResponse(description="More events than OFFERLAB_EVENT_MAX_BATCH"),
        },
    )
    def post(self, request):
        body = request.data
        if not isinstance(body, dict):
            raise ApplicationError(
                'Expected a JSON object: {"events": [...]}.', field="non_field_errors"
            )
        if "events" not in body:
            raise ValidationError({"events": [REQUIRED]})
        result = events_ingest(events=body["events"], api_key_id=request.user.api_key_id)
        return Response(result.as_dict())
