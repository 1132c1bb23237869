"""Storefront throttles: per API key and per client IP, counted in the cache (Redis in production).

Both use DRF's sliding-window SimpleRateThrottle. The per-key limit (`storefront`,
OFFERLAB_STOREFRONT_RATE) caps one storefront whatever addresses it calls from; the per-IP limit
(`storefront_ip`, OFFERLAB_STOREFRONT_IP_RATE) caps one address whatever keys it holds. A
throttled request is a 429 `{"detail": ...}` with `Retry-After`. With the cache down the
resilient cache answers "no history", so the throttles fail open instead of refusing traffic.
"""

from rest_framework.throttling import SimpleRateThrottle


class StorefrontKeyThrottle(SimpleRateThrottle):
    """Per API key (the id of the key the request authenticated with)."""

    scope = "storefront"

    def get_cache_key(self, request, view):
        api_key_id = getattr(request.user, "api_key_id", None)
        if not api_key_id:
            return None
        return self.cache_format % {"scope": self.scope, "ident": api_key_id}


class StorefrontIpThrottle(SimpleRateThrottle):
    """Per client IP (honours REST_FRAMEWORK["NUM_PROXIES"] behind a proxy)."""

    scope = "storefront_ip"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
