"""Writes for customer feedback: attaching a survey to a served offer, saving answers."""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from config.exceptions import ApplicationError
from experiments.assignment import bucket, fnv1a32
from feedback.models import Answer, Display, Question, QuestionType, Response, Survey, SurveyTrigger
from feedback.selectors import ServingSurvey, surveys_for_serving
from feedback.tokens import survey_token_make
from recommendations.models import Offer


def survey_sampled(*, survey: ServingSurvey | Survey, offer: Offer) -> bool:
    """Whether `offer` falls in `survey`'s sample.

    Deterministic: a hash of the survey key and the offer's public id, the same GrowthBook-style
    bucket the assignment uses, compared with the sampling rate. The offer id is random, so the
    sample is random across offers, yet re-evaluating one offer always gives the same answer, and
    the rule never looks at the experiment or variant, so both arms are sampled alike.
    """
    if survey.sampling_rate >= 1.0:
        return True
    if survey.sampling_rate <= 0.0:
        return False
    return bucket(f"survey:{survey.key}:", offer.offer_id.hex) < survey.sampling_rate


def survey_lock_key(customer_id: str) -> int:
    """The PostgreSQL advisory lock that serialises survey decisions for one customer.

    One bigint: a feedback namespace in the high bits, the customer's hash below. The offers
    service takes it in its cap-ledger statement and then calls `survey_for_offer` with
    `customer_locked=True`.
    """
    return (0x0FEED << 32) | fnv1a32(customer_id)


def _lock_customer(customer_id: str) -> None:
    """Serialise survey decisions for one customer until the surrounding transaction ends.

    Two offers served at once to the same customer could otherwise both pass the cooldown
    check. On SQLite the write transaction (BEGIN IMMEDIATE) already serialises writers.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s::bigint)", [survey_lock_key(customer_id)]
            )


def survey_url(token: str) -> str:
    return f"{settings.OFFERLAB_PUBLIC_BASE_URL.rstrip('/')}/feedback/s/{token}"


def _survey_payload(display_id: int, offer: Offer) -> dict:
    token = survey_token_make(display_id=display_id, offer_uuid_hex=offer.offer_id.hex)
    return {"token": token, "url": survey_url(token)}


# The offer is named by its public id: on the offers path its row id is read only at the COMMIT
# (recommendations.offers._offer_transaction), after this statement has been sent.
_DISPLAY_INSERT_SQL = (
    "INSERT INTO feedback_display "
    "(survey_id, offer_id, customer_id, experiment_id, variant_id, created_at, shown_at) "
    "SELECT %s, (SELECT id FROM recommendations_offer WHERE offer_id = %s), %s, %s, %s, %s, NULL"
)
# The cooldown check and the insert in one statement ("nothing offered to them since T?").
_COOLDOWN_SQL = (
    " WHERE NOT EXISTS (SELECT 1 FROM feedback_display WHERE customer_id = %s AND created_at >= %s)"
)


def _display_create_unless_cooling(survey: ServingSurvey, offer: Offer) -> int | None:
    """Insert the display for a brand-new offer unless the customer is in the cooldown; its id."""
    now = timezone.now()
    params = [
        survey.id,
        Offer._meta.get_field("offer_id").get_db_prep_value(offer.offer_id, connection),
        offer.customer_id,
        offer.experiment_id,
        offer.variant_id,
        connection.ops.adapt_datetimefield_value(now),
    ]
    sql = _DISPLAY_INSERT_SQL
    if survey.cooldown_days > 0:
        since = now - timedelta(days=survey.cooldown_days)
        sql += _COOLDOWN_SQL
        params += [offer.customer_id, connection.ops.adapt_datetimefield_value(since)]
    with connection.cursor() as cursor:
        cursor.execute(sql + " RETURNING id", params)
        row = cursor.fetchone()
    return row[0] if row else None


def survey_for_offer(
    *, offer: Offer, new_offer: bool = False, customer_locked: bool = False
) -> dict | None:
    """Attach at most one survey to a just-served offer; return `{"token", "url"}` or None.

    Called by the offers service inside the offer's transaction, right after the Offer row is
    created (so the Display commits or rolls back with it). Active surveys with questions are
    considered newest first; the first whose sampling draw includes the offer is used, unless the
    customer was offered any survey (any channel, device or survey) within that survey's
    cooldown, counted from Display rows. The Display is stamped with the offer's experiment and
    variant now and never re-derived; creating it is not an exposure.

    The token is issued at serve time whatever the survey's trigger; `trigger` tells the
    storefront when to show it (with the offer, or once the customer accepted it). Calling this
    again for an offer that has a display returns that display's token.

    `new_offer`: the offer was created in this transaction, so it has no display yet.
    `customer_locked`: the caller already holds `survey_lock_key(offer.customer_id)` (PostgreSQL)
    in this transaction.

    Cost: no query when no survey samples the offer (the active surveys are cached for
    OFFERLAB_CONFIG_CACHE_SECONDS); otherwise a per-customer lock, one read and one insert — or,
    for a new offer whose caller holds the lock, one statement (the insert, unless cooling down).
    """
    survey = next((s for s in surveys_for_serving() if survey_sampled(survey=s, offer=offer)), None)
    if survey is None:
        return None
    if not customer_locked:
        _lock_customer(offer.customer_id)
    if new_offer:
        display_id = _display_create_unless_cooling(survey, offer)
        return _survey_payload(display_id, offer) if display_id is not None else None
    seen = Q(offer=offer)
    if survey.cooldown_days > 0:
        since = timezone.now() - timedelta(days=survey.cooldown_days)
        seen |= Q(customer_id=offer.customer_id, created_at__gte=since)
    earlier = list(Display.objects.filter(seen).values_list("pk", "offer_id"))
    for display_id, offer_id in earlier:
        if offer_id == offer.pk:
            return _survey_payload(display_id, offer)
    if earlier:
        return None  # asked recently: cooldown
    # No savepoint needed: under the lock, with no display for this offer, the insert cannot
    # conflict (a concurrent call for the same offer waits on the lock, then sees this row).
    display = Display.objects.create(
        survey_id=survey.id,
        offer=offer,
        customer_id=offer.customer_id,
        experiment_id=offer.experiment_id,
        variant_id=offer.variant_id,
    )
    return _survey_payload(display.pk, offer)


MAX_QUESTIONS = 5
MAX_TEXT_ANSWER = 2000


@transaction.atomic
def survey_create(
    *,
    key: str,
    name: str,
    questions: list[dict],
    trigger: str = SurveyTrigger.OFFER_SHOWN,
    sampling_rate: float = 1.0,
    cooldown_days: int | None = None,
    active: bool = True,
) -> Survey:
    """Create a survey with 1–5 questions; every rule of the models is checked first."""
    if not 1 <= len(questions) <= MAX_QUESTIONS:
        raise ValidationError({"questions": f"A survey has 1–{MAX_QUESTIONS} questions."})
    keys = [q.get("key") for q in questions]
    if len(set(keys)) != len(keys):
        raise ValidationError({"questions": "Question keys must be unique within the survey."})
    survey = Survey(
        key=key,
        name=name,
        trigger=trigger,
        sampling_rate=sampling_rate,
        active=active,
    )
    if cooldown_days is not None:
        survey.cooldown_days = cooldown_days
    taken = ApplicationError("A survey with this key exists.", field="key", status_code=409)
    # A taken key is a conflict with what is stored (409), not bad input.
    survey.full_clean(validate_unique=False)
    if Survey.objects.filter(key=key).exists():
        raise taken
    try:
        with transaction.atomic():
            survey.save()
    except IntegrityError:
        # Lost a race with another request creating the same key.
        raise taken from None
    errors = {}
    rows = []
    for position, data in enumerate(questions):
        question = Question(survey=survey, position=position, **data)
        try:
            question.full_clean(exclude=["survey"], validate_unique=False)
        except ValidationError as exc:
            errors[f"questions[{position}]"] = exc.message_dict
        rows.append(question)
    if errors:
        raise ValidationError(
            {k: [f"{f}: {'; '.join(m)}" for f, m in v.items()] for k, v in errors.items()}
        )
    Question.objects.bulk_create(rows)
    return survey


def display_mark_shown(*, display: Display) -> None:
    """Record the first time the survey was loaded by the widget or the hosted page."""
    if display.shown_at is None:
        now = timezone.now()
        Display.objects.filter(pk=display.pk, shown_at__isnull=True).update(shown_at=now)
        display.shown_at = now


def _typed_answer(question: Question, value) -> tuple[float | None, str, object]:
    """Return (numeric_value, text_value, value as stored) or raise ValueError saying why."""
    kind = question.type
    if kind == QuestionType.RATING:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 1 <= value <= 5
            or value != int(value)
        ):
            raise ValueError("Answer with a whole number from 1 to 5.")
        return float(value), "", int(value)
    if kind == QuestionType.YES_NO:
        if not isinstance(value, bool):
            raise ValueError("Answer with true (yes) or false (no).")
        return (1.0 if value else 0.0), ("yes" if value else "no"), value
    if kind == QuestionType.SINGLE_CHOICE:
        if not isinstance(value, str) or value not in question.choices:
            raise ValueError("Pick one of the offered choices.")
        return None, value, value
    if not isinstance(value, str):
        raise ValueError("Answer with text.")
    # NUL cannot be stored in PostgreSQL text or jsonb; it carries no meaning in a comment.
    text = value.replace("\x00", "").strip()
    if len(text) > MAX_TEXT_ANSWER:
        raise ValueError(f"Keep the answer to {MAX_TEXT_ANSWER:,} characters or fewer.")
    return None, text, text


def _answers_validated(survey: Survey, answers: object) -> dict[Question, tuple | None]:
    """Check every answer against its question; all-or-nothing, errors keyed by question."""
    if not isinstance(answers, dict):
        raise ApplicationError(
            "Send answers as an object of question key → value.", field="answers"
        )
    questions = {q.key: q for q in survey.questions.all()}
    errors: dict[str, list[str]] = {}
    checked: dict[Question, tuple | None] = {}
    for key, value in answers.items():
        question = questions.get(key)
        if question is None:
            errors[str(key)[:64]] = ["Unknown question."]
            continue
        if value is None:
            checked[question] = None  # skipped / cleared
            continue
        try:
            typed = _typed_answer(question, value)
            checked[question] = typed if typed[2] != "" else None
        except ValueError as exc:
            errors[key] = [str(exc)]
    if errors:
        raise ApplicationError(
            "Some answers are not valid.", extra={"answers": dict(sorted(errors.items()))}
        )
    return checked


@transaction.atomic
def response_save(*, display: Display, answers: dict, complete: bool) -> Response:
    """Save (upsert) the given answers for a display; mark the response finished if `complete`.

    Answers arrive one or a few at a time as the customer goes, so a partial response is kept
    even if they never finish. Once finished, any further submission is a 409 conflict. An
    answer of null (or empty text) clears that question.
    """
    checked = _answers_validated(display.survey, answers)
    response = _response_locked(display)
    if response.finished:
        raise ApplicationError("This survey has already been answered. Thank you!", status_code=409)
    stored = dict(response.answers)
    cleared, rows = [], []
    for question, typed in checked.items():
        if typed is None:
            cleared.append(question)
            stored.pop(question.key, None)
            continue
        numeric_value, text_value, value = typed
        rows.append(
            Answer(
                response=response,
                question=question,
                numeric_value=numeric_value,
                text_value=text_value,
            )
        )
        stored[question.key] = value
    # One statement each, however many questions (the response row is locked, so no other
    # request writes these answers meanwhile).
    if cleared:
        Answer.objects.filter(response=response, question__in=cleared).delete()
    if rows:
        Answer.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["response", "question"],
            update_fields=["numeric_value", "text_value"],
        )
    response.answers = stored
    response.finished = bool(complete)
    response.save(update_fields=["answers", "finished", "updated_at"])
    return response


def _response_locked(display: Display) -> Response:
    """The display's response row, created if needed, locked for this transaction."""
    response = Response.objects.select_for_update().filter(display=display).first()
    if response is not None:
        return response
    try:
        with transaction.atomic():
            return Response.objects.create(
                display=display, survey_id=display.survey_id, offer_id=display.offer_id
            )
    except IntegrityError:
        # A concurrent first answer created it; wait for its transaction and use that row.
        return Response.objects.select_for_update().get(display=display)
