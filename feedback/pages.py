"""The hosted survey page (/feedback/s/<token>) for links sent by email or SMS."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from feedback.selectors import survey_display_for_token
from feedback.tokens import InvalidToken

# The page loads only its own script and talks only to its own API. Styles in the widget's
# shadow root are a <style> element, hence 'unsafe-inline' for styles (never for scripts).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


@never_cache
@require_safe
def survey_page(request: HttpRequest, token: str) -> HttpResponse:
    """Render the survey for a valid token; the same widget script asks the questions."""
    try:
        survey_display_for_token(token)
    except InvalidToken:
        response = render(request, "feedback/survey_page.html", {"invalid": True}, status=403)
    else:
        response = render(request, "feedback/survey_page.html", {"token": token})
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    # The token is in the URL: never send it onwards, never index it.
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response
