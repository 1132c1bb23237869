"""Reads for customer feedback: serving, the public survey, staff lists and the admin report."""

from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from feedback.models import Answer, Display, QuestionType, Response, Survey
from feedback.tokens import InvalidToken, survey_token_read


@dataclass(frozen=True)
class ServingSurvey:
    """What serving an offer needs to know about an active survey (cached, picklable)."""

    id: int
    key: str
    sampling_rate: float
    cooldown_days: int


SERVING_CACHE_KEY = "feedback:serving-surveys:v1"


def surveys_for_serving() -> tuple[ServingSurvey, ...]:
    """Active surveys that have at least one question, newest first.

    Cached for OFFERLAB_CONFIG_CACHE_SECONDS (the hot path: every served offer asks); saving or
    deleting a survey or question clears the cache, so a change is seen at once by this process
    (and by every process when CACHE_URL points at a shared cache), by all within the TTL.
    """
    surveys = cache.get(SERVING_CACHE_KEY)
    if surveys is None:
        surveys = tuple(
            ServingSurvey(
                id=s.id, key=s.key, sampling_rate=s.sampling_rate, cooldown_days=s.cooldown_days
            )
            for s in Survey.objects.filter(active=True, questions__isnull=False)
            .distinct()
            .order_by("-created_at", "-id")
        )
        cache.set(SERVING_CACHE_KEY, surveys, settings.OFFERLAB_CONFIG_CACHE_SECONDS)
    return surveys


def invalidate_serving_surveys(**_signal_kwargs) -> None:
    cache.delete(SERVING_CACHE_KEY)
    # Also after commit: a request between now and then may have re-cached the old state.
    transaction.on_commit(lambda: cache.delete(SERVING_CACHE_KEY))


def survey_display_for_token(token: object) -> Display:
    """The display a token names, or InvalidToken if the token or what it names doesn't check out.

    The token's offer must be the display's offer, so a token for offer A never answers B.
    """
    fields = survey_token_read(token)
    display = Display.objects.select_related("survey", "offer").filter(pk=fields.display_id).first()
    if display is None or display.offer.offer_id.hex != fields.offer_uuid_hex:
        raise InvalidToken
    return display


def survey_public(*, display: Display) -> dict:
    """What the widget and the hosted page need to ask the questions: no customer data."""
    response = Response.objects.filter(display=display).first()
    products = display.offer.products if isinstance(display.offer.products, list) else []
    names = [p.get("name") for p in products if isinstance(p, dict) and p.get("name")]
    return {
        "trigger": display.survey.trigger,
        "about": ", ".join(names[:3]),
        "questions": [
            {
                "key": q.key,
                "type": q.type,
                "text": q.text,
                "choices": q.choices if q.type == QuestionType.SINGLE_CHOICE else [],
                "low_label": q.low_label,
                "high_label": q.high_label,
            }
            for q in display.survey.questions.all()
        ],
        "answers": response.answers if response else {},
        "finished": bool(response and response.finished),
    }


def _count_per_survey(queryset: QuerySet) -> Coalesce:
    """A correlated COUNT per survey (joining displays and responses at once would multiply)."""
    counted = (
        queryset.filter(survey=OuterRef("pk"))
        .order_by()
        .values("survey")
        .annotate(n=Count("id"))
        .values("n")
    )
    return Coalesce(Subquery(counted), Value(0))


def surveys_with_counts() -> QuerySet[Survey]:
    """Surveys, newest first, with how often they were offered and answered."""
    return (
        Survey.objects.prefetch_related("questions")
        .annotate(
            display_count=_count_per_survey(Display.objects.all()),
            response_count=_count_per_survey(Response.objects.all()),
            finished_count=_count_per_survey(Response.objects.filter(finished=True)),
        )
        .order_by("-created_at", "-id")
    )


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class ArmReport:
    """Feedback for one arm (experiment variant, or offers outside any experiment)."""

    experiment: str
    variant: str
    displays: int = 0
    shown: int = 0
    responses: int = 0
    finished: int = 0
    # question key → {"histogram": [n1..n5] | None, "mean": float | None, "n": int,
    #                 "yes_share": float | None, "choices": {choice: n}}
    questions: dict = field(default_factory=dict)

    @property
    def response_rate(self) -> float | None:
        return rate(self.finished, self.displays)


def survey_report(*, survey: Survey, comments: int = 20) -> dict:
    """Response rates and answer distributions per experiment variant, and the latest comments.

    Everything is aggregated in SQL; the arms are the (experiment, variant) stamped on displays.
    """
    arm_fields = ("experiment__key", "variant__key")
    arms: dict[tuple, ArmReport] = {}

    def arm(exp_key, var_key) -> ArmReport:
        key = (exp_key or "", var_key or "")
        if key not in arms:
            arms[key] = ArmReport(experiment=exp_key or "(no experiment)", variant=var_key or "—")
        return arms[key]

    rows = (
        Display.objects.filter(survey=survey)
        .values(*arm_fields)
        .annotate(
            displays=Count("id"),
            shown=Count("id", filter=Q(shown_at__isnull=False)),
            responses=Count("response"),
            finished=Count("response", filter=Q(response__finished=True)),
        )
    )
    for row in rows:
        a = arm(row["experiment__key"], row["variant__key"])
        a.displays, a.shown = row["displays"], row["shown"]
        a.responses, a.finished = row["responses"], row["finished"]

    questions = list(survey.questions.all())
    answer_rows = (
        Answer.objects.filter(response__survey=survey)
        .values(
            "response__display__experiment__key",
            "response__display__variant__key",
            "question_id",
            "numeric_value",
            "text_value",
        )
        .exclude(question__type=QuestionType.TEXT)
        .annotate(n=Count("id"))
    )
    by_question = {q.id: q for q in questions}
    for row in answer_rows:
        a = arm(row["response__display__experiment__key"], row["response__display__variant__key"])
        q = by_question[row["question_id"]]
        stats = a.questions.setdefault(
            q.key,
            {"histogram": [0] * 5 if q.type == QuestionType.RATING else None, "choices": {}},
        )
        n = row["n"]
        if q.type == QuestionType.RATING:
            stats["histogram"][int(row["numeric_value"]) - 1] += n
        else:
            stats["choices"][row["text_value"]] = stats["choices"].get(row["text_value"], 0) + n
    for a in arms.values():
        for q in questions:
            stats = a.questions.setdefault(
                q.key,
                {"histogram": [0] * 5 if q.type == QuestionType.RATING else None, "choices": {}},
            )
            if stats["histogram"] is not None:
                n = sum(stats["histogram"])
                total = sum((i + 1) * c for i, c in enumerate(stats["histogram"]))
                stats["n"], stats["mean"] = n, (total / n if n else None)
            else:
                stats["n"] = sum(stats["choices"].values())
                stats["mean"] = None
            stats["yes_share"] = (
                rate(stats["choices"].get("yes", 0), stats["n"])
                if q.type == QuestionType.YES_NO
                else None
            )

    latest = (
        Answer.objects.filter(response__survey=survey, question__type=QuestionType.TEXT)
        .exclude(text_value="")
        .select_related("question", "response__display__experiment", "response__display__variant")
        .order_by("-response__updated_at", "-id")[:comments]
    )
    return {
        "questions": questions,
        "arms": sorted(arms.values(), key=lambda a: (a.experiment, a.variant)),
        "comments": [
            {
                "question": c.question.key,
                "text": c.text_value,
                "experiment": c.response.display.experiment.key
                if c.response.display.experiment
                else "",
                "variant": c.response.display.variant.key if c.response.display.variant else "",
                "at": c.response.updated_at,
            }
            for c in latest
        ],
    }
