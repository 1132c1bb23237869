"""Storefront authentication: `Authorization: Api-Key <key>`, keys hashed at rest (SHA-512).

A verified key is remembered in-process for a few seconds so the hot path does not hit the
database on every request; revoking a key takes effect within OFFERLAB_API_KEY_CACHE_SECONDS.
"""

import hashlib
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions
from rest_framework_api_key.models import APIKey

from config.throttling import AuthFailureThrottle, StorefrontIpThrottle, StorefrontKeyThrottle

_KEYWORD = "Api-Key"
# sha256(key) -> (when cached, the client, when the key expires or None)
_cache: dict[str, tuple[float, "StorefrontClient", datetime | None]] = {}
# Keys are "<8-char prefix>.<32-char secret>"; anything far longer or with control characters
# is not a key (and NUL could not even be sent to PostgreSQL).
_MAX_KEY_LENGTH = 200
_lock = threading.Lock()


@dataclass(frozen=True)
class StorefrontClient:
    """The `request.user` of a storefront call: a named API key, never staff."""

    api_key_id: str
    name: str
    is_authenticated: bool = True
    is_staff: bool = False
    is_active: bool = True

    @property
    def pk(self) -> str:
        return self.api_key_id


def _ttl() -> float:
    return float(getattr(settings, "OFFERLAB_API_KEY_CACHE_SECONDS", 5))


def _clear_cache() -> None:
    with _lock:
        _cache.clear()


def forget_cached_keys() -> None:
    """Drop cached keys now and, inside a transaction, again once it commits.

    The second clear drops an entry a concurrent request cached from the old row in between.
    """
    _clear_cache()
    if connection.in_atomic_block:
        transaction.on_commit(_clear_cache)


def _cached_client(raw_key: str) -> StorefrontClient | None:
    """The storefront of a key this process verified within the last few seconds, else None."""
    hit = _cache.get(hashlib.sha256(raw_key.encode()).hexdigest())
    if hit and time.monotonic() - hit[0] < _ttl() and (hit[2] is None or timezone.now() < hit[2]):
        return hit[1]
    return None


def client_for_key(raw_key: str) -> StorefrontClient | None:
    """The storefront a key belongs to; None for unknown, revoked or expired keys."""
    if len(raw_key) > _MAX_KEY_LENGTH or not raw_key.isprintable():
        return None
    client = _cached_client(raw_key)
    if client is not None:
        return client
    digest = hashlib.sha256(raw_key.encode()).hexdigest()
    now = time.monotonic()
    try:
        api_key = APIKey.objects.get_from_key(raw_key)
    except APIKey.DoesNotExist:
        return None
    # get_from_key checks the hash and revocation, not the expiry date the admin sets.
    if api_key.has_expired:
        return None
    client = StorefrontClient(api_key_id=api_key.id, name=api_key.name)
    with _lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[digest] = (now, client, api_key.expiry_date)
    return client


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticates storefronts; `request.user` is a StorefrontClient, `request.auth` its id.

    Failed attempts are counted per client IP; an IP over OFFERLAB_AUTH_FAILURE_RATE gets 429
    whatever key it sends (config/throttling.py). A key this process has cached costs no cache
    round trip here: StorefrontIpThrottle enforces the lockout for it in the read it makes anyway.
    """

    counts_failures = True  # documents the lockout's 429 (config/schema.py)

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        keyword, _, raw_key = header.partition(" ")
        if keyword != _KEYWORD:
            return None
        raw_key = raw_key.strip()
        client = _cached_client(raw_key) if raw_key.isprintable() else None
        if client is not None:
            return client, client.api_key_id
        failures = AuthFailureThrottle()
        failures.check(request)
        client = client_for_key(raw_key) if raw_key else None
        if client is None:
            failures.record(request)
            raise exceptions.AuthenticationFailed(
                "Invalid or revoked API key." if raw_key else "Empty API key."
            )
        return client, client.api_key_id

    def authenticate_header(self, request) -> str:
        return _KEYWORD


class IsStorefront(permissions.BasePermission):
    message = "A storefront API key is required: `Authorization: Api-Key <key>`."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, StorefrontClient)


class StorefrontApiMixin:
    """Put on storefront APIViews: API-key auth only (no session, so no CSRF), throttled per key
    and per client IP (config/throttling.py)."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsStorefront]
    throttle_classes = [StorefrontKeyThrottle, StorefrontIpThrottle]
