"""Surveys about offers: questions, displays (who was asked) and responses."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from experiments.models import Experiment, Variant
from recommendations.models import Offer


def default_cooldown_days() -> int:
    return settings.OFFERLAB_SURVEY_DEFAULT_COOLDOWN_DAYS


class SurveyTrigger(models.TextChoices):
    OFFER_SHOWN = "offer_shown", "After an offer is shown"
    OFFER_ACCEPTED = "offer_accepted", "After an offer is accepted"


class Survey(models.Model):
    key = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    trigger = models.CharField(
        max_length=16, choices=SurveyTrigger.choices, default=SurveyTrigger.OFFER_SHOWN
    )
    sampling_rate = models.FloatField(
        default=1.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of eligible offers that carry the survey (0–1).",
    )
    cooldown_days = models.PositiveIntegerField(
        default=default_cooldown_days,
        help_text="Ask one customer at most once per this many days, across surveys.",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class QuestionType(models.TextChoices):
    RATING = "rating", "Rating 1–5"
    YES_NO = "yes_no", "Yes / no"
    SINGLE_CHOICE = "single_choice", "Single choice"
    TEXT = "text", "Open text"


MAX_CHOICES = 10
MAX_CHOICE_LENGTH = 100


# The analysis metrics a rating question can feed.
QUESTION_METRICS = [
    ("csat", "CSAT (rating: higher is better)"),
    ("intrusiveness", "Intrusiveness (higher feels pushier)"),
]


class Question(models.Model):
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="questions")
    key = models.SlugField(max_length=64)
    type = models.CharField(max_length=16, choices=QuestionType.choices)
    text = models.CharField(max_length=300)
    choices = models.JSONField(default=list, blank=True)
    metric = models.CharField(
        max_length=16,
        choices=QUESTION_METRICS,
        blank=True,
        default="",
        help_text="Which analysis metric this question feeds, if any.",
    )
    low_label = models.CharField(
        max_length=60, blank=True, default="", help_text="Rating: what 1 means, e.g. “Not at all”."
    )
    high_label = models.CharField(
        max_length=60, blank=True, default="", help_text="Rating: what 5 means, e.g. “Very”."
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["survey", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["survey", "key"], name="question_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.survey.key}/{self.key}"

    def clean(self) -> None:
        errors = {}
        if self.type == QuestionType.SINGLE_CHOICE:
            choices = self.choices if isinstance(self.choices, list) else None
            if (
                choices is None
                or not 2 <= len(choices) <= MAX_CHOICES
                or not all(isinstance(c, str) and c.strip() for c in choices)
            ):
                errors["choices"] = (
                    f"A single-choice question needs 2–{MAX_CHOICES} non-empty text choices."
                )
            elif len({c.strip() for c in choices}) != len(choices):
                errors["choices"] = "Choices must be different from each other."
            elif any(len(c) > MAX_CHOICE_LENGTH for c in choices):
                errors["choices"] = f"Each choice is at most {MAX_CHOICE_LENGTH} characters."
        elif self.choices:
            errors["choices"] = "Only single-choice questions have choices."
        if self.metric and self.type != QuestionType.RATING:
            errors["metric"] = "Only a rating question (1–5) can feed CSAT or intrusiveness."
        if (self.low_label or self.high_label) and self.type != QuestionType.RATING:
            errors["low_label"] = "Only rating questions have end labels."
        if errors:
            raise ValidationError(errors)


class Display(models.Model):
    """A survey offered for an offer; experiment and variant stamped when the offer is served."""

    # No index of their own for survey and customer_id: display_unique_offer (survey, offer) and
    # display_cooldown_idx (customer_id, created_at) start with them. Every offer that gets a
    # survey writes a display, so each index saved is work saved on the offers path.
    survey = models.ForeignKey(
        Survey, on_delete=models.CASCADE, related_name="displays", db_index=False
    )
    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="survey_displays")
    customer_id = models.CharField(max_length=255)
    experiment = models.ForeignKey(
        Experiment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    variant = models.ForeignKey(
        Variant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    shown_at = models.DateTimeField(
        null=True, blank=True, help_text="When the widget or hosted page first loaded the survey."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["survey", "offer"], name="display_unique_offer")
        ]
        # The cooldown check: "any display for this customer since T?".
        indexes = [models.Index(fields=["customer_id", "created_at"], name="display_cooldown_idx")]

    def __str__(self) -> str:
        return f"{self.survey.key} for {self.offer_id}"


class Response(models.Model):
    """A customer's answers for one display; partial answers kept, `finished` at the end."""

    display = models.OneToOneField(Display, on_delete=models.CASCADE, related_name="response")
    # response_unique_offer (survey, offer) serves lookups by survey.
    survey = models.ForeignKey(
        Survey, on_delete=models.CASCADE, related_name="responses", db_index=False
    )
    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="survey_responses")
    answers = models.JSONField(default=dict, blank=True)
    finished = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["survey", "offer"], name="response_unique_offer")
        ]

    def __str__(self) -> str:
        return f"response to {self.display}"


class Answer(models.Model):
    """One answer as a typed row, so SQL can aggregate ratings without parsing JSON."""

    # answer_unique (response, question) and the (question, numeric_value) index serve lookups
    # by either, so neither key has an index of its own.
    response = models.ForeignKey(
        Response, on_delete=models.CASCADE, related_name="answer_rows", db_index=False
    )
    question = models.ForeignKey(
        Question, on_delete=models.CASCADE, related_name="answers", db_index=False
    )
    numeric_value = models.FloatField(null=True, blank=True)
    text_value = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["response", "question"], name="answer_unique")
        ]
        indexes = [models.Index(fields=["question", "numeric_value"])]

    def __str__(self) -> str:
        value = self.numeric_value if self.numeric_value is not None else self.text_value
        return f"{self.question.key}: {value}"
