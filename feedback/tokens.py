"""Signed survey tokens: which display (and so which offer) a customer may answer about.

A token is `django.core.signing.dumps({"d": display_id, "o": offer_uuid_hex})` with its own salt,
so a token signed for any other purpose (sessions, password resets) never validates here. It
expires after `OFFERLAB_SURVEY_TOKEN_MAX_AGE_DAYS` and holds no personal data: the customer id
stays on the server. Every field is checked after unsigning, and the caller still checks that the
display it names belongs to the offer it names (`survey_display_for_token`).
"""

import re
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing

SALT = "offerlab.feedback.survey-token.v1"
# A real token is ~90 characters; anything much longer is not worth unsigning.
MAX_TOKEN_LENGTH = 300
_OFFER_HEX = re.compile(r"^[0-9a-f]{32}$")


class InvalidToken(Exception):
    """The token is malformed, tampered with or expired (deliberately not saying which)."""


@dataclass(frozen=True)
class SurveyToken:
    display_id: int
    offer_uuid_hex: str


def max_age() -> timedelta:
    return timedelta(days=settings.OFFERLAB_SURVEY_TOKEN_MAX_AGE_DAYS)


def survey_token_make(*, display_id: int, offer_uuid_hex: str) -> str:
    """Sign a token for one display of one offer."""
    return signing.dumps({"d": int(display_id), "o": offer_uuid_hex}, salt=SALT, compress=False)


def survey_token_read(token: object) -> SurveyToken:
    """Return the token's fields, or raise InvalidToken whatever the reason."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken
    try:
        payload = signing.loads(token, salt=SALT, max_age=max_age())
    except (signing.BadSignature, ValueError, TypeError, UnicodeError) as exc:
        # SignatureExpired is a BadSignature; a decoding error of a well-signed token can't
        # happen, but any parse failure is the same "invalid" to the caller.
        raise InvalidToken from exc
    if not isinstance(payload, dict) or set(payload) != {"d", "o"}:
        raise InvalidToken
    display_id, offer_hex = payload["d"], payload["o"]
    if isinstance(display_id, bool) or not isinstance(display_id, int) or display_id <= 0:
        raise InvalidToken
    if not isinstance(offer_hex, str) or not _OFFER_HEX.match(offer_hex):
        raise InvalidToken
    return SurveyToken(display_id=display_id, offer_uuid_hex=offer_hex)
