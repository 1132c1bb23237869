"""Survey tokens: signed, expiring, checked field by field, and bound to one offer."""

from datetime import timedelta

import pytest
import time_machine
from django.core import signing
from django.utils import timezone

from feedback.services import survey_for_offer
from feedback.tokens import SALT, InvalidToken, survey_token_make, survey_token_read
from tests.feedback.conftest import make_offer

pytestmark = pytest.mark.django_db

TOKEN_ERROR = {"detail": "This survey link is not valid or has expired."}


def test_token_round_trips_and_carries_no_customer_id(survey):
    offer = make_offer(customer_id="alice@example.com")
    token = survey_for_offer(offer=offer)["token"]
    payload = signing.loads(token, salt=SALT)
    assert payload == {"d": offer.survey_displays.get().pk, "o": offer.offer_id.hex}
    assert "alice" not in token


@pytest.mark.parametrize(
    "payload",
    [
        {"d": 1},
        {"d": 1, "o": "0" * 32, "extra": 1},
        {"d": "1", "o": "0" * 32},
        {"d": True, "o": "0" * 32},
        {"d": -4, "o": "0" * 32},
        {"d": 1, "o": "not-hex"},
        {"d": 1, "o": "A" * 32},
        [1, "0" * 32],
        "just a string",
    ],
)
def test_well_signed_tokens_with_bad_fields_are_refused(payload):
    token = signing.dumps(payload, salt=SALT)
    with pytest.raises(InvalidToken):
        survey_token_read(token)


def test_token_signed_for_another_purpose_is_refused():
    token = signing.dumps({"d": 1, "o": "0" * 32}, salt="django.contrib.sessions")
    with pytest.raises(InvalidToken):
        survey_token_read(token)


def test_expired_token_is_refused_with_the_same_message(anon, survey, offer, settings):
    settings.OFFERLAB_SURVEY_TOKEN_MAX_AGE_DAYS = 14
    token = survey_for_offer(offer=offer)["token"]
    with time_machine.travel(timezone.now() + timedelta(days=13, hours=23)):
        assert anon.get(f"/api/v1/feedback/surveys/{token}").status_code == 200
    with time_machine.travel(timezone.now() + timedelta(days=14, minutes=1)):
        res = anon.get(f"/api/v1/feedback/surveys/{token}")
    assert res.status_code == 403
    assert res.json() == TOKEN_ERROR


def _tampered(token: str) -> str:
    payload, ts, sig = token.split(":")
    return f"{payload[:-2]}{'A' if payload[-2] != 'A' else 'B'}{payload[-1]}:{ts}:{sig}"


@pytest.mark.parametrize(
    "mangle",
    [
        _tampered,
        lambda t: t[:-3],
        lambda t: t + "x",
        lambda t: "garbage",
        lambda t: "a:b:c",
        lambda t: "%00%ff",
        lambda t: "x" * 5000,
    ],
    ids=["payload-edited", "truncated", "appended", "garbage", "colons", "bytes", "huge"],
)
def test_tampered_or_malformed_tokens_get_403_without_detail(anon, survey, offer, mangle):
    token = survey_for_offer(offer=offer)["token"]
    bad = mangle(token)
    got = anon.get(f"/api/v1/feedback/surveys/{bad}")
    posted = anon.post(
        "/api/v1/feedback/responses", {"token": bad, "answers": {"helpful": 5}}, format="json"
    )
    assert (got.status_code, got.json()) == (403, TOKEN_ERROR)
    assert (posted.status_code, posted.json()) == (403, TOKEN_ERROR)
    assert not offer.survey_responses.exists()


def test_token_for_offer_a_cannot_answer_offer_b(anon, survey):
    offer_a, offer_b = make_offer(), make_offer()
    survey_for_offer(offer=offer_a)
    survey_for_offer(offer=offer_b)
    display_b = offer_b.survey_displays.get()
    # Even a correctly signed token fails if its display and offer don't belong together.
    forged = survey_token_make(display_id=display_b.pk, offer_uuid_hex=offer_a.offer_id.hex)

    res = anon.post(
        "/api/v1/feedback/responses",
        {"token": forged, "answers": {"helpful": 1}, "complete": True},
        format="json",
    )

    assert (res.status_code, res.json()) == (403, TOKEN_ERROR)
    assert not offer_a.survey_responses.exists() and not offer_b.survey_responses.exists()


def test_token_for_a_deleted_display_is_refused(anon, survey, offer):
    token = survey_for_offer(offer=offer)["token"]
    offer.survey_displays.all().delete()
    assert anon.get(f"/api/v1/feedback/surveys/{token}").status_code == 403
