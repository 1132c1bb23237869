"""With Redis (the cache) unreachable, the storefront is served without it, not a 500."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.test import override_settings

from config.cache import ResilientRedisCache
from config.throttling import count_hits
from experiments.models import Assignment
from tests.factories import running_experiment

from .conftest import free_port

DEAD_REDIS = {
    "default": {
        "BACKEND": "config.cache.ResilientRedisCache",
        "LOCATION": f"redis://127.0.0.1:{free_port()}/1",  # nothing listens there
    }
}


def test_reads_answer_the_default_and_writes_are_dropped_when_redis_is_unreachable():
    cache = ResilientRedisCache(DEAD_REDIS["default"]["LOCATION"], {})

    assert cache.get("generation", 0) == 0
    assert cache.get_many(["a", "b"]) == {}
    assert cache.add("k", 1) is False
    cache.set("k", 1)
    cache.delete("k")
    with pytest.raises(ValueError):  # as for a missing key: callers then set(), dropped too
        cache.incr("generation")


@pytest.mark.django_db
@override_settings(CACHES=DEAD_REDIS)
def test_assignments_are_served_and_stored_with_the_cache_down(storefront):
    running_experiment("cache-down")

    response = storefront.post(
        "/api/v1/assignments", {"customer_id": "c-9", "experiment": "cache-down"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["in_experiment"] is True
    assert Assignment.objects.filter(customer_id="c-9").count() == 1


@pytest.mark.services
def test_the_cache_works_normally_when_redis_is_up(private_redis):
    cache = ResilientRedisCache(private_redis.url.replace("/0", "/1"), {})
    cache.set("k", {"v": 1})
    cache.set("n", 1)

    assert cache.get("k") == {"v": 1}
    assert cache.incr("n") == 2


def test_window_counters_fail_open_when_redis_is_unreachable():
    cache = ResilientRedisCache(DEAD_REDIS["default"]["LOCATION"], {})

    assert cache.count_hits(["a", "b"], 60, ["c"]) == ([None, None], {})


@pytest.mark.services
def test_window_counters_on_redis_count_every_hit_and_expire(private_redis):
    cache = ResilientRedisCache(private_redis.url.replace("/0", "/1"), {})
    cache.add("failures", 0, 60)
    cache.incr("failures")  # as AuthFailureThrottle.record counts, read back in the same trip

    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(lambda _: count_hits(cache, ["a", "b"], 60, ["failures"]), range(200))
        )

    assert sorted(counts[0] for counts, _ in results) == list(range(1, 201))
    assert all(found == {"failures": 1} for _, found in results)
    assert cache.get("b") == 200  # a plain integer Django's cache reads back
    client = cache._cache.get_client(write=True)
    assert 0 < client.ttl(cache.make_and_validate_key("a")) <= 60


def test_one_redis_client_serves_every_cache_call_of_the_process():
    # Django builds a redis.Redis (and its ~200 response callbacks) per call; ours reuses one.
    cache = ResilientRedisCache(DEAD_REDIS["default"]["LOCATION"], {})

    assert cache._cache.get_client() is cache._cache.get_client(write=True)
