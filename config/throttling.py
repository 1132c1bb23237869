"""Throttles: storefront calls per API key and per client IP, and failed authentications per
client IP, all counted in the cache (Redis in production, so every worker shares the count).

Both count in fixed windows (`WindowRateThrottle`): one integer per client and window, bumped
atomically, so a request costs the same whatever the rate. (DRF's SimpleRateThrottle keeps a
timestamp per request in the window and reads and rewrites the whole list on every call: for a
key sending at the default 20,000/min, a 180 KB pickle per request per throttle.) The per-key
limit (`storefront`, OFFERLAB_STOREFRONT_RATE) caps one storefront whatever addresses it calls
from; the per-IP limit (`storefront_ip`, OFFERLAB_STOREFRONT_IP_RATE) caps one address whatever
keys it holds. A throttled request is a 429 `{"detail": ...}` with `Retry-After`. With the cache
down the counters cannot count, so the throttles fail open instead of refusing traffic.

Failed authentications (`auth_failure`, OFFERLAB_AUTH_FAILURE_RATE) lock a client IP out: once
it has failed that many times in the window, every request from it that presents an API key or a
staff token is a 429 until the window ends, a valid credential included, so guessing learns
nothing more. The count is a fixed window with an atomic increment, so concurrent workers cannot
lose failures.
"""

import math

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache import cache as default_cache
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
        count_hits(self.cache, [self.counter_key(request)], self.duration + 1, [])


def count_hits(cache, keys: list[str], ttl: int, read: list[str]) -> tuple[list, dict]:
    """Add one to each counter in ``keys`` (created to live ``ttl`` seconds) and read ``read``.

    Returns the new counts (None where the cache could not count: the caller fails open) and the
    values read. One round trip on Redis (config.cache.ResilientRedisCache.count_hits); other
    caches add and increment, which is atomic on each of them too.
    """
    if cache is default_cache:
        # The cache itself rather than Django's proxy (SimpleRateThrottle.cache), which on every
        # attribute read first fails (an AttributeError raised and formatted inside Python) and
        # then looks the cache up in asgiref's thread-local: three reads here per throttle.
        cache = caches[DEFAULT_CACHE_ALIAS]
    native = getattr(cache, "count_hits", None)
    if native is not None:
        return native(keys, ttl, read)
    counts = []
    for key in keys:
        if cache.add(key, 1, ttl):
            counts.append(1)
            continue
        try:
            counts.append(cache.incr(key))
        except ValueError:  # expired between add and incr, or the cache is down
            counts.append(None)
    return counts, (cache.get_many(read) if read else {})


class WindowRateThrottle(SimpleRateThrottle):
    """SimpleRateThrottle's rates and keys, counted in fixed windows of the rate's duration.

    Up to the rate per window (so at most twice the rate across a window boundary); a refused
    request waits for the next window (Retry-After). Subclasses name counters to read in the
    same round trip (`extra_reads`) and check them in `check_extra`.
    """

    def extra_reads(self, request) -> list[str]:
        return []

    def check_extra(self, request, found: dict) -> None:
        """Raise (e.g. Throttled) on what `extra_reads` found."""

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        now = self.timer()
        window = int(now // self.duration)
        self._wait = self.duration * (window + 1) - now
        extra = self.extra_reads(request)
        (count,), found = count_hits(self.cache, [f"{key}:{window}"], self.duration + 1, extra)
        self.check_extra(request, found)
        return count is None or count <= self.num_requests

    def wait(self) -> float:
        return self._wait


class StorefrontKeyThrottle(WindowRateThrottle):
    """Per API key (the id of the key the request authenticated with)."""

    scope = "storefront"

    def get_cache_key(self, request, view):
        api_key_id = getattr(request.user, "api_key_id", None)
        if not api_key_id:
            return None
        return self.cache_format % {"scope": self.scope, "ident": api_key_id}


class StorefrontIpThrottle(WindowRateThrottle):
    """Per client IP (honours REST_FRAMEWORK["NUM_PROXIES"] behind a proxy).

    Also enforces the auth-failure lockout for a key the process had cached (ApiKeyAuthentication
    checks it itself otherwise), reading that counter in the one cache round trip it makes anyway.
    """

    scope = "storefront_ip"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def extra_reads(self, request) -> list[str]:
        self._failures = AuthFailureThrottle()
        return [self._failures.counter_key(request)]

    def check_extra(self, request, found: dict) -> None:
        self._failures.enforce(request, found.get(self._failures.counter_key(request)))
