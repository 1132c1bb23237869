"""A Redis cache that degrades instead of failing when Redis is down.

The cache only speeds things up (the experiment/catalogue config generation, throttling), so an
outage of Redis must not take the storefront with it: reads answer the default, writes are
dropped, and each failure is logged (at most once a minute per process). Throttles fail open for
the outage; config snapshots fall back to their time bound (OFFERLAB_CONFIG_CACHE_SECONDS).
Selected in settings when CACHE_URL is redis://…; short socket timeouts keep an unreachable
Redis from stalling requests.
"""

from __future__ import annotations

import logging
import time

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)
DEFAULT_OPTIONS = {"socket_connect_timeout": 0.25, "socket_timeout": 0.5}
_last_warning = [0.0]


def _warn(operation: str, exc: Exception) -> None:
    now = time.monotonic()
    if now - _last_warning[0] >= 60:
        _last_warning[0] = now
        logger.warning("cache unavailable (%s: %s): serving without it", operation, exc)


class ReusedClientRedisCacheClient(RedisCacheClient):
    """Django's Redis client, with one `redis.Redis` per connection pool instead of one per call.

    Django builds a new `redis.Redis` for every cache operation, and its constructor fills a
    table of ~200 response callbacks each time: under load that was most of a throttle's cost.
    A `redis.Redis` is thread-safe (each command borrows a connection from the pool), so one per
    pool serves every thread of the process.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class ResilientRedisCache(RedisCache):
    def __init__(self, server, params):
        params = {**params, "OPTIONS": {**DEFAULT_OPTIONS, **params.get("OPTIONS", {})}}
        super().__init__(server, params)
        self._class = ReusedClientRedisCacheClient

    def _soft(self, operation: str, default, call, *args, **kwargs):
        try:
            return call(*args, **kwargs)
        except UNAVAILABLE as exc:
            _warn(operation, exc)
            return default

    def get(self, key, default=None, version=None):
        return self._soft("get", default, super().get, key, default, version)

    def get_many(self, keys, version=None):
        return self._soft("get_many", {}, super().get_many, keys, version)

    def has_key(self, key, version=None):
        return self._soft("has_key", False, super().has_key, key, version)

    def add(self, key, value, timeout=None, version=None):
        return self._soft("add", False, super().add, key, value, timeout, version)

    def set(self, key, value, timeout=None, version=None):
        return self._soft("set", None, super().set, key, value, timeout, version)

    def set_many(self, data, timeout=None, version=None):
        return self._soft("set_many", [], super().set_many, data, timeout, version)

    def touch(self, key, timeout=None, version=None):
        return self._soft("touch", False, super().touch, key, timeout, version)

    def delete(self, key, version=None):
        return self._soft("delete", False, super().delete, key, version)

    def delete_many(self, keys, version=None):
        return self._soft("delete_many", None, super().delete_many, keys, version)

    def incr(self, key, delta=1, version=None):
        # like a missing key: callers that bump a counter then fall back to set(), dropped too
        try:
            return super().incr(key, delta, version)
        except UNAVAILABLE as exc:
            _warn("incr", exc)
            raise ValueError("cache unavailable") from exc

    def clear(self):
        return self._soft("clear", False, super().clear)

    def count_hits(self, keys, ttl, read):
        """config.throttling.count_hits in one round trip: per counter SET NX EX + INCR, then
        GET each of ``read``; ([None…], {}) while Redis is down (the throttles fail open)."""
        client = self._cache.get_client(write=True)
        pipe = client.pipeline(transaction=False)
        for key in keys:
            key = self.make_and_validate_key(key)
            pipe.set(key, 0, ex=ttl, nx=True)
            pipe.incr(key)
        for key in read:
            pipe.get(self.make_and_validate_key(key))
        try:
            replies = pipe.execute()
        except UNAVAILABLE as exc:
            _warn("count_hits", exc)
            return [None] * len(keys), {}
        counts = replies[1 : 2 * len(keys) : 2]
        values = replies[2 * len(keys) :]
        loads = self._cache._serializer.loads
        return counts, {k: loads(v) for k, v in zip(read, values, strict=True) if v is not None}
