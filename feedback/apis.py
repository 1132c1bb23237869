"""Feedback API: the staff survey list/create, and the public survey + response endpoints.

The public endpoints take no session or cookie (authentication_classes = []), so CSRF does not
apply and CORS is limited to CORS_ALLOWED_ORIGINS without credentials. The signed token is the
only credential; they are throttled per token and per client IP.
"""

import hashlib

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from config import fields
from config.exceptions import ApplicationError
from config.parsers import SafeJSONParser
from config.schema import TRIMMED_WHITESPACE
from config.serializers import ReusableSerializer
from config.throttling import WindowRateThrottle
from feedback import services
from feedback.models import (
    MAX_CHOICE_LENGTH,
    MAX_CHOICES,
    QUESTION_METRICS,
    QuestionType,
    SurveyTrigger,
)
from feedback.selectors import (
    rate,
    survey_display_for_token,
    survey_public,
    surveys_with_counts,
)
from feedback.tokens import InvalidToken

# One message for malformed, tampered, expired and unknown tokens: nothing to learn from it.
INVALID_TOKEN_MESSAGE = "This survey link is not valid or has expired."


def display_for_token_or_403(token):
    try:
        return survey_display_for_token(token)
    except InvalidToken:
        raise ApplicationError(INVALID_TOKEN_MESSAGE, status_code=403) from None


class SurveyIpThrottle(WindowRateThrottle):
    """Per client IP (honours REST_FRAMEWORK["NUM_PROXIES"] behind a proxy)."""

    scope = "survey_ip"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class SurveyTokenThrottle(WindowRateThrottle):
    """Per survey token, whichever IPs it comes from."""

    scope = "survey_token"

    def get_cache_key(self, request, view):
        token = view.kwargs.get("token")
        if token is None and isinstance(request.data, dict):
            token = request.data.get("token")
        if not isinstance(token, str) or not token:
            return None
        ident = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return self.cache_format % {"scope": self.scope, "ident": ident}


class PlainTextJSONParser(SafeJSONParser):
    """JSON sent as text/plain: what navigator.sendBeacon posts without a CORS preflight."""

    media_type = "text/plain"


class PublicSurveyApiMixin:
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [SurveyIpThrottle, SurveyTokenThrottle]


class QuestionSerializer(serializers.Serializer):
    key = fields.SlugField(max_length=64, help_text="Unique within the survey.")
    type = serializers.ChoiceField(choices=QuestionType.choices)
    text = fields.CharField(max_length=300)
    choices = serializers.ListField(
        child=fields.CharField(max_length=MAX_CHOICE_LENGTH),
        max_length=MAX_CHOICES,
        required=False,
        default=list,
        help_text=f"single_choice only, and required there: 2–{MAX_CHOICES} choices, all "
        "different once trimmed. Other types take none.",
    )
    metric = serializers.ChoiceField(
        choices=QUESTION_METRICS,
        required=False,
        allow_blank=True,
        default="",
        help_text="rating only: the analysis metric the answers feed.",
    )
    low_label = fields.CharField(
        max_length=60,
        required=False,
        allow_blank=True,
        default="",
        help_text="rating only: what 1 means.",
    )
    high_label = fields.CharField(
        max_length=60,
        required=False,
        allow_blank=True,
        default="",
        help_text="rating only: what 5 means.",
    )

    # Which fields a question type takes (Question.clean). Choices that differ only in
    # surrounding whitespace, and keys repeated across questions, need comparing two values.
    schema_rules = {
        "allOf": [
            {
                "if": {
                    "properties": {"type": {"const": QuestionType.SINGLE_CHOICE}},
                    "required": ["type"],
                },
                "then": {
                    "properties": {"choices": {"minItems": 2, "uniqueItems": True}},
                    "required": ["choices"],
                },
                "else": {"properties": {"choices": {"maxItems": 0}}},
            },
            {
                "if": {
                    "properties": {"type": {"const": QuestionType.RATING}},
                    "required": ["type"],
                },
                "else": {
                    "properties": {
                        "metric": {"const": ""},
                        "low_label": {"pattern": f"^[{TRIMMED_WHITESPACE}]*$"},
                        "high_label": {"pattern": f"^[{TRIMMED_WHITESPACE}]*$"},
                    }
                },
            },
        ]
    }


class SurveyListCreateApi(APIView):
    """Staff: create a survey, or list surveys with how often they were offered and answered."""

    class InputSerializer(serializers.Serializer):
        key = fields.SlugField(max_length=100)
        name = fields.CharField(max_length=200)
        trigger = serializers.ChoiceField(
            choices=SurveyTrigger.choices, default=SurveyTrigger.OFFER_SHOWN
        )
        sampling_rate = fields.FloatField(min_value=0, max_value=1, default=1.0)
        cooldown_days = fields.IntegerField(min_value=0, max_value=3650, required=False)
        active = fields.BooleanField(default=True)
        questions = QuestionSerializer(
            many=True,
            min_length=1,
            max_length=services.MAX_QUESTIONS,
            help_text=f"1–{services.MAX_QUESTIONS} questions with different keys.",
        )

    class OutputSerializer(serializers.Serializer):
        key = fields.CharField()
        name = fields.CharField()
        trigger = fields.CharField()
        sampling_rate = fields.FloatField()
        cooldown_days = fields.IntegerField()
        active = fields.BooleanField()
        created_at = serializers.DateTimeField()
        questions = QuestionSerializer(many=True, source="questions.all")
        displays = fields.IntegerField(source="display_count")
        responses = fields.IntegerField(source="response_count")
        finished_responses = fields.IntegerField(source="finished_count")
        response_rate = serializers.SerializerMethodField()

        def get_response_rate(self, obj) -> float | None:
            return rate(obj.finished_count, obj.display_count)

    @extend_schema(responses=OutputSerializer(many=True), operation_id="feedback_surveys_list")
    def get(self, request):
        surveys = surveys_with_counts()
        return Response(self.OutputSerializer(surveys, many=True).data)

    @extend_schema(
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            409: OpenApiResponse(description="A survey with this key exists."),
        },
        operation_id="feedback_surveys_create",
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        survey = services.survey_create(**serializer.validated_data)
        survey = surveys_with_counts().get(pk=survey.pk)
        return Response(self.OutputSerializer(survey).data, status=status.HTTP_201_CREATED)


class SurveyPublicApi(PublicSurveyApiMixin, APIView):
    """Public: the questions a token may answer (and answers already saved, to resume)."""

    class OutputSerializer(serializers.Serializer):
        class PublicQuestionSerializer(serializers.Serializer):
            key = fields.CharField()
            type = fields.CharField()
            text = fields.CharField()
            choices = serializers.ListField(child=fields.CharField())
            low_label = fields.CharField()
            high_label = fields.CharField()

        trigger = fields.CharField()
        about = fields.CharField(help_text="The offered products' names.")
        questions = PublicQuestionSerializer(many=True)
        answers = serializers.DictField()
        finished = fields.BooleanField()

    @extend_schema(
        responses={200: OutputSerializer, 403: OpenApiResponse(description=INVALID_TOKEN_MESSAGE)},
        auth=[],
        operation_id="feedback_survey_for_token",
    )
    def get(self, request, token: str):
        display = display_for_token_or_403(token)
        services.display_mark_shown(display=display)
        return Response(self.OutputSerializer(survey_public(display=display)).data)


class ResponseSaveApi(PublicSurveyApiMixin, APIView):
    """Public: save answers as the customer goes; `complete: true` marks the response finished."""

    parser_classes = [SafeJSONParser, PlainTextJSONParser]

    class InputSerializer(ReusableSerializer):
        token = fields.CharField(trim_whitespace=False)
        answers = serializers.DictField(
            default=dict, help_text="{question_key: value}; null clears an answer."
        )
        complete = fields.BooleanField(default=False)

    class OutputSerializer(serializers.Serializer):
        answers = serializers.DictField()
        finished = fields.BooleanField()

    @extend_schema(
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            403: OpenApiResponse(description=INVALID_TOKEN_MESSAGE),
            409: OpenApiResponse(description="This survey has already been answered."),
        },
        auth=[],
        operation_id="feedback_response_save",
    )
    def post(self, request):
        serializer = self.InputSerializer.for_data(request.data)
        serializer.is_valid(raise_exception=True)
        display = display_for_token_or_403(serializer.validated_data["token"])
        response = services.response_save(
            display=display,
            answers=serializer.validated_data["answers"],
            complete=serializer.validated_data["complete"],
        )
        return Response(self.OutputSerializer(response).data)
