"""Staff token authentication with failed attempts counted per client IP.

DRF's `Authorization: Token <token>`; an IP over OFFERLAB_AUTH_FAILURE_RATE gets 429 for every
token it sends until the window ends (config/throttling.py). Sessions are not affected: a bad
session cookie is no attempt at a credential, just an anonymous request.
"""

from rest_framework import authentication, exceptions

from config.throttling import AuthFailureThrottle


class StaffTokenAuthentication(authentication.TokenAuthentication):
    counts_failures = True  # documents the lockout's 429 (config/schema.py)

    def authenticate(self, request):
        auth = authentication.get_authorization_header(request).split()
        if not auth or auth[0].lower() != self.keyword.lower().encode():
            return None
        failures = AuthFailureThrottle()
        failures.check(request)
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            failures.record(request)
            raise
