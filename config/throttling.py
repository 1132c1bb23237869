"""Throttles: storefront calls per API key and per client IP, and failed authentications per
client IP, all counted in the cache (Redis in production, so every worker shares the count).

Both use DRF's sliding-window SimpleRateThrottle. The per-key limit (`storefront`,
OFFERLAB_STOREFRONT_RATE) caps one storefront whatever addresses it calls from; the per-IP limit
(`storefront_ip`, OFFERLAB_STOREFRONT_IP_RATE) caps one address whatever keys it holds. A
throttled request is a 429 `{"detail": ...}` with `Retry-After`. With the cache down the
resilient cache answers "no history", so the throttles fail open instead of refusing traffic.

Failed authentications (`auth_failure`, OFFERLAB_AUTH_FAILURE_RATE) lock a client IP out: once
it has failed that many times in the window, every request from it that presents an API key or a
staff token is a 429 until the window ends, a valid credential included, so guessing learns
nothing more. The count is a fixed window with an atomic increment, so concurrent workers cannot
lose failures.
"""

import contextlib
import math

from rest_framework.exceptions import Throttled
from rest_framework.throttling import SimpleRateThrottle

LOCKED_OUT = "Too many failed authentications from this address; try again later."


class AuthFailureThrottle(SimpleRateThrottle):
    """Failed authentications per client IP: counted by `record`, enforced by `check`."""

    scope = "auth_failure"

    def _window(self, request) -> tuple[str, float]:
        """The counter of this IP's current window, and the seconds left in it."""
        now = self.timer()
        window = int(now // self.duration)
        ident = f"{self.get_ident(request)}:{window}"
        left = self.duration * (window + 1) - now
        return self.cache_format % {"scope": self.scope, "ident": ident}, left

    def counter_key(self, request) -> str:
        return self._window(request)[0]

    def enforce(self, request, failures: int | None) -> None:
        """Raise a 429 if `failures` (this window's count) reached the limit."""
        if failures is not None and failures >= self.num_requests:
            wait = math.ceil(self._window(request)[1])
            raise Throttled(wait=wait, detail=LOCKED_OUT)

    def check(self, request) -> None:
        self.enforce(request, self.cache.get(self.counter_key(request)))

    def record(self, request) -> None:
        key = self.counter_key(request)
        self.cache.add(key, 0, self.duration)
        # ValueError: expired between add and incr, or the cache is down (fail open).
        with contextlib.suppress(ValueError):
            self.cache.incr(key)


class StorefrontKeyThrottle(SimpleRateThrottle):
    """Per API key (the id of the key the request authenticated with)."""

    scope = "storefront"

    def get_cache_key(self, request, view):
        api_key_id = getattr(request.user, "api_key_id", None)
        if not api_key_id:
            return None
        return self.cache_format % {"scope": self.scope, "ident": api_key_id}


class StorefrontIpThrottle(SimpleRateThrottle):
    """Per client IP (honours REST_FRAMEWORK["NUM_PROXIES"] behind a proxy).

    Also enforces the auth-failure lockout for a key the process had cached (ApiKeyAuthentication
    checks it itself otherwise), reading both counters in the one cache round trip it makes anyway.
    """

    scope = "storefront_ip"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def allow_request(self, request, view) -> bool:
        failures = AuthFailureThrottle()
        failures_key = failures.counter_key(request)
        self.key = self.get_cache_key(request, view)
        found = self.cache.get_many([self.key, failures_key])
        failures.enforce(request, found.get(failures_key))
        # The rest as SimpleRateThrottle.allow_request, from the history read above.
        self.history = found.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        if len(self.history) >= self.num_requests:
            return self.throttle_failure()
        return self.throttle_success()
