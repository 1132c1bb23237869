"""Staff API: experiments (create, list, detail, update, start/pause/stop)."""

import re

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config import fields
from config.exceptions import ApplicationError, NotFound
from config.schema import NO_NUL_PATTERN
from experiments import services
from experiments.models import (
    MESSAGE_PLACEHOLDERS,
    RATE_METRICS,
    Channel,
    Experiment,
    Factor,
    Metric,
    Strategy,
)
from experiments.moments import Trigger
from experiments.selectors import assignment_counts, experiment_get, experiment_list
from experiments.stats import required_sample_size


class TimingSerializer(serializers.Serializer):
    delay_hours = fields.FloatField(min_value=0, max_value=8760, default=0)
    window_hours = fields.FloatField(
        min_value=0.01, max_value=8760, required=False, allow_null=True
    )


_PLACEHOLDER_NAMES = "|".join(re.escape(name) for name in sorted(MESSAGE_PLACEHOLDERS))
# No NUL, and every "{name}" (braces around text without braces) names a known placeholder: a
# "{" either opens one of them or is followed by no "}" before the next "{" or the end.
MESSAGE_TEXT_PATTERN = (
    f"^[^{{\\u0000]*(?:\\{{(?:(?:{_PLACEHOLDER_NAMES})\\}}[^{{\\u0000]*|[^{{}}\\u0000]*))*$"
)


@extend_schema_field(
    {
        "type": "string",
        "maxLength": 2000,
        "pattern": MESSAGE_TEXT_PATTERN,
        "description": "Placeholders: {products}, {product} and {count} only; any other "
        '"{…}" is refused.',
    }
)
class MessageTextField(fields.CharField):
    """A message text; the placeholders are checked by services.variants_validate."""

    def __init__(self, **kwargs):
        super().__init__(max_length=2000, required=False, allow_blank=True, **kwargs)


class MessageSerializer(serializers.Serializer):
    subject = MessageTextField()
    body = MessageTextField()
    cta = MessageTextField()


class VariantSerializer(serializers.Serializer):
    key = fields.SlugField(max_length=100)
    name = fields.CharField(max_length=200, required=False)
    is_control = fields.BooleanField(default=False)
    weight = fields.FloatField(min_value=0.000001, default=1.0)
    timing = TimingSerializer(required=False)
    channel = serializers.ChoiceField(choices=Channel.choices, default=Channel.WEB)
    message = MessageSerializer(required=False)


_TARGETING_VALUE = "#/components/schemas/TargetingValue"


# Any JSON value PostgreSQL's jsonb can hold (experiments/targeting.py refuses the others).
@extend_schema_field(
    {
        "anyOf": [
            {"type": "string", "pattern": NO_NUL_PATTERN},
            {"type": "number"},
            {"type": "boolean"},
            {"type": "null"},
            {"type": "array", "items": {"$ref": _TARGETING_VALUE}},
            {
                "type": "object",
                "propertyNames": {"pattern": NO_NUL_PATTERN},
                "additionalProperties": {"$ref": _TARGETING_VALUE},
            },
        ],
        "description": "No string or key in it may hold NUL or a lone UTF-16 surrogate.",
    },
    component_name="TargetingValue",
)
class TargetingValueField(serializers.JSONField):
    """Any JSON value, null included (`eq` null matches an attribute sent as null)."""

    def validate_empty_values(self, data):
        # Null is a value here, not a missing one; `allow_null` would also make the schema a
        # `oneOf` of this component and null, which null (already in it) would match twice.
        if data is None:
            return True, None
        return super().validate_empty_values(data)


class TargetingRuleSerializer(serializers.Serializer):
    attribute = fields.CharField(max_length=100)
    op = serializers.ChoiceField(choices=["eq", "ne", "in", "not_in", "gte", "lte"])
    value = TargetingValueField(
        help_text="A list for `in` and `not_in`, a number for `gte` and `lte`, any JSON value "
        "(null included) for `eq` and `ne`.",
    )

    # The value's type follows the op (checked by experiments/targeting.py).
    schema_rules = {
        "allOf": [
            {
                "if": {"properties": {"op": {"enum": ["in", "not_in"]}}, "required": ["op"]},
                "then": {"properties": {"value": {"type": "array"}}},
            },
            {
                "if": {"properties": {"op": {"enum": ["gte", "lte"]}}, "required": ["op"]},
                "then": {"properties": {"value": {"type": "number"}}},
            },
        ]
    }


class ExperimentInputSerializer(serializers.Serializer):
    key = fields.SlugField(max_length=100)
    name = fields.CharField(max_length=200)
    hypothesis = fields.CharField(required=False, allow_blank=True, default="")
    factor = serializers.ChoiceField(choices=Factor.choices)
    trigger = serializers.ChoiceField(choices=Trigger.choices)
    strategy = serializers.ChoiceField(choices=Strategy.choices, default=Strategy.COMPLETION)
    traffic_percent = fields.FloatField(min_value=0, max_value=100, default=100)
    layer = fields.SlugField(max_length=100, required=False, allow_blank=True, default="")
    layer_slice = serializers.ListField(
        child=fields.FloatField(min_value=0, max_value=1),
        min_length=2,
        max_length=2,
        required=False,
        help_text="[start, end) of the layer this experiment takes (default [0, 1]); the end "
        "must be greater than the start.",
    )
    targeting = TargetingRuleSerializer(many=True, required=False, default=list)
    segment_attribute = fields.CharField(
        max_length=64, required=False, allow_blank=True, default=""
    )
    primary_metric = serializers.ChoiceField(choices=Metric.choices, default="acceptance_rate")
    guardrail_metrics = serializers.ListField(
        child=serializers.ChoiceField(choices=Metric.choices), required=False, default=list
    )
    baseline_rate = fields.FloatField(min_value=0, max_value=1, default=0.10)
    mde = fields.FloatField(
        min_value=0.000001,
        default=0.02,
        help_text="Minimum detectable effect, absolute, in the primary metric's units. For a "
        f"rate metric ({', '.join(sorted(RATE_METRICS))}), baseline_rate + mde must be below 1.",
    )
    alpha = fields.FloatField(min_value=0.0001, max_value=0.5, default=0.05)
    power = fields.FloatField(min_value=0.5, max_value=0.9999, default=0.8)
    min_days = fields.IntegerField(min_value=0, max_value=365, default=14)
    safe_peeking = fields.BooleanField(default=False)
    hash_seed = fields.CharField(max_length=100, required=False, allow_blank=True, default="")
    variants = VariantSerializer(
        many=True,
        min_length=2,
        max_length=20,
        help_text="2–20 variants: exactly one with `is_control: true`, keys unique within the "
        "experiment, and they may differ only in the experiment's factor (the other two of "
        "timing, channel and message must be the same in every variant).",
    )

    # Exactly one control (services.variants_validate): the one rule across variants that
    # JSON Schema can state. Unique keys and "differ only in the factor" compare two values.
    schema_rules = {
        "properties": {
            "variants": {
                "contains": {
                    "type": "object",
                    "properties": {"is_control": {"const": True}},
                    "required": ["is_control"],
                },
                "minContains": 1,
                "maxContains": 1,
            }
        }
    }


class ExperimentOutputSerializer(serializers.ModelSerializer):
    variants = serializers.SerializerMethodField()
    layer_slice = serializers.SerializerMethodField()
    assignment_counts = serializers.SerializerMethodField()
    planned_sample_size_per_variant = serializers.SerializerMethodField()

    class Meta:
        model = Experiment
        fields = [
            "key",
            "name",
            "hypothesis",
            "factor",
            "trigger",
            "strategy",
            "status",
            "traffic_percent",
            "layer",
            "layer_slice",
            "targeting",
            "segment_attribute",
            "primary_metric",
            "guardrail_metrics",
            "baseline_rate",
            "mde",
            "alpha",
            "power",
            "min_days",
            "safe_peeking",
            "hash_seed",
            "started_at",
            "ended_at",
            "created_at",
            "variants",
            "assignment_counts",
            "planned_sample_size_per_variant",
        ]

    def get_variants(self, obj) -> list[dict]:
        return [
            {
                "key": v.key,
                "name": v.name,
                "is_control": v.is_control,
                "weight": v.weight,
                "timing": v.timing,
                "channel": v.channel,
                "message": v.message,
            }
            for v in obj.variants.all()
        ]

    def get_layer_slice(self, obj) -> list[float]:
        return [obj.layer_start, obj.layer_end]

    def get_assignment_counts(self, obj) -> dict[str, int]:
        return assignment_counts(obj)

    def get_planned_sample_size_per_variant(self, obj) -> int | None:
        try:
            return required_sample_size(obj.baseline_rate, obj.mde, obj.alpha, obj.power)
        except ValueError:
            return None


def _fields_from(validated: dict) -> dict:
    fields = dict(validated)
    layer_slice = fields.pop("layer_slice", None)
    if layer_slice is not None:
        fields["layer_start"], fields["layer_end"] = layer_slice
    return fields


def _slice_errors_renamed(exc: ValidationError) -> ValidationError:
    """The API takes `layer_slice`; report the model's layer_start/layer_end errors under it."""
    if not hasattr(exc, "error_dict"):
        return exc
    errors = exc.message_dict
    moved = [m for name in ("layer_start", "layer_end") for m in errors.pop(name, [])]
    if not moved:
        return exc
    errors["layer_slice"] = list(dict.fromkeys(moved))
    return ValidationError(errors)


def _get_or_404(key: str) -> Experiment:
    experiment = experiment_get(key)
    if experiment is None:
        raise NotFound(f"No experiment with key '{key}'.", field="experiment")
    return experiment


class ExperimentListCreateApi(APIView):
    @extend_schema(responses=ExperimentOutputSerializer(many=True))
    def get(self, request):
        return Response(ExperimentOutputSerializer(experiment_list(), many=True).data)

    @extend_schema(
        request=ExperimentInputSerializer,
        responses={
            201: ExperimentOutputSerializer,
            409: OpenApiResponse(description="An experiment with this key exists."),
        },
    )
    def post(self, request):
        serializer = ExperimentInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = _fields_from(serializer.validated_data)
        # A taken key is a conflict with what is stored (409), not bad input.
        taken = ApplicationError(
            "An experiment with this key exists.", field="key", status_code=409
        )
        if Experiment.objects.filter(key=fields["key"]).exists():
            raise taken
        try:
            experiment = services.experiment_create(actor=request.user, **fields)
        except ValidationError as exc:
            raise _slice_errors_renamed(exc) from exc
        except IntegrityError:
            # Another request created the same key between the check and the insert.
            if Experiment.objects.filter(key=fields["key"]).exists():
                raise taken from None
            raise
        return Response(
            ExperimentOutputSerializer(experiment_get(experiment.key)).data,
            status=status.HTTP_201_CREATED,
        )


class ExperimentDetailApi(APIView):
    @extend_schema(responses=ExperimentOutputSerializer)
    def get(self, request, key: str):
        return Response(ExperimentOutputSerializer(_get_or_404(key)).data)

    @extend_schema(request=ExperimentInputSerializer, responses=ExperimentOutputSerializer)
    def patch(self, request, key: str):
        experiment = _get_or_404(key)
        serializer = ExperimentInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        fields = _fields_from(serializer.validated_data)
        if "key" in fields and fields.pop("key") != experiment.key:
            raise ValidationError({"key": ["The key of an experiment cannot change."]})
        try:
            services.experiment_update(experiment=experiment, actor=request.user, **fields)
        except ValidationError as exc:
            raise _slice_errors_renamed(exc) from exc
        return Response(ExperimentOutputSerializer(experiment_get(key)).data)


class ExperimentTransitionApi(APIView):
    action: str = ""

    @extend_schema(request=None, responses=ExperimentOutputSerializer)
    def post(self, request, key: str):
        with transaction.atomic():
            services.experiment_transition(
                experiment=_get_or_404(key), action=self.action, actor=request.user
            )
        return Response(ExperimentOutputSerializer(experiment_get(key)).data)
