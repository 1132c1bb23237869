"""Security: deploy settings, headers, storefront throttles, the failed-authentication lockout,
who can see what, admin actions, and no secrets in the repository."""

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle
from rest_framework_api_key.models import APIKey

from config.throttling import count_hits
from experiments.models import Status
from recommendations.models import Product, ProductRelation, RelationStatus
from tests.factories import ExperimentFactory, VariantFactory

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "test-only-" + "k3y" * 20,
    "ALLOWED_HOSTS": "offerlab.example.com",
    "DATABASE_URL": "sqlite:////tmp/offerlab-deploy-check.sqlite3",
    "CACHE_URL": "locmemcache://deploy-check",
    "OFFERLAB_MANIFEST_STATIC": "0",
}


def _production(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env.update(PRODUCTION_ENV)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_the_deploy_check():
    proc = _production("check", "--deploy", "--fail-level", "WARNING")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "no issues" in proc.stdout


def test_production_responses_carry_the_security_headers():
    script = (
        "from django.test import Client;"
        "r = Client().get('/healthz', secure=True, HTTP_HOST='offerlab.example.com');"
        "print(repr(dict(r.headers)));"
        "p = Client().get('/api/v1/experiments', HTTP_HOST='offerlab.example.com');"
        "print(p.status_code, p.headers.get('Location'))"
    )
    proc = _production("shell", "-c", script)
    assert proc.returncode == 0, proc.stderr
    headers_line, redirect_line = proc.stdout.strip().splitlines()[-2:]
    headers = eval(headers_line)  # our own repr of a dict of strings
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    # Plain HTTP is redirected to HTTPS before any API code runs.
    assert redirect_line == "301 https://offerlab.example.com/api/v1/experiments"


# --- Throttling ------------------------------------------------------------------------------

MID_WINDOW = time.time() // 3600 * 3600 + 30


@pytest.fixture
def tiny_rates(monkeypatch):
    """DRF reads the rates once at import: patch them where the throttles look.

    The throttles count in fixed windows: the clock is held 30 s into a minute (and an hour), so
    a test never straddles a window boundary.
    """
    monkeypatch.setattr(SimpleRateThrottle, "timer", lambda self: MID_WINDOW)

    def apply(**scopes):
        monkeypatch.setattr(
            SimpleRateThrottle,
            "THROTTLE_RATES",
            {**SimpleRateThrottle.THROTTLE_RATES, **scopes},
        )

    return apply


def _key_client(name: str) -> APIClient:
    _, key = APIKey.objects.create_key(name=name)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


def _recommendations(client, ip: str):
    return client.get("/api/v1/products/NOPE/recommendations", REMOTE_ADDR=ip)


@pytest.mark.django_db
def test_a_storefront_key_is_throttled_across_addresses(tiny_rates):
    tiny_rates(storefront="3/min", storefront_ip="1000/min")
    shop = _key_client("shop-a")
    statuses = [_recommendations(shop, f"10.0.0.{i}").status_code for i in range(4)]
    assert statuses == [404, 404, 404, 429]
    throttled = _recommendations(shop, "10.0.0.9")
    assert throttled.status_code == 429
    assert "detail" in throttled.json()
    assert int(throttled["Retry-After"]) > 0
    # Another storefront is not affected by shop-a's burst.
    assert _recommendations(_key_client("shop-b"), "10.0.0.1").status_code == 404


@pytest.mark.django_db
def test_a_throttle_keeps_one_counter_per_client_and_window_not_a_list_of_requests(tiny_rates):
    # DRF's SimpleRateThrottle stores every request's timestamp and re-pickles the list on each
    # call; a busy key's throttle then costs more with every request. Ours is one integer.
    tiny_rates(storefront="1000/min", storefront_ip="1000/min")
    shop = _key_client("shop-counter")
    for _ in range(25):
        _recommendations(shop, "10.0.0.20")

    window = int(MID_WINDOW // 60)
    ip_count = cache.get(f"throttle_storefront_ip_10.0.0.20:{window}")
    assert ip_count == 25 and type(ip_count) is int
    key_counters = [k for k in cache._cache if ":throttle_storefront_" in k and "_ip_" not in k]
    assert len(key_counters) == 1


@pytest.mark.django_db
def test_a_throttled_client_is_told_to_retry_when_its_window_ends(tiny_rates):
    tiny_rates(storefront="2/min", storefront_ip="1000/min")
    shop = _key_client("shop-retry")
    statuses = [_recommendations(shop, "10.0.0.21").status_code for _ in range(3)]

    assert statuses == [404, 404, 429]
    # 30 s into the minute: the window closes in 30 s.
    assert int(_recommendations(shop, "10.0.0.21")["Retry-After"]) == 30


def test_window_counters_count_every_hit_under_concurrency():
    cache = LocMemCache("counters", {})

    def hit(_):
        return count_hits(cache, ["a", "b"], 60, ["c"])[0]

    cache.set("c", 7)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(hit, range(200)))

    assert sorted(r[0] for r in results) == list(range(1, 201))  # no count lost or repeated
    assert cache.get("b") == 200
    assert count_hits(cache, [], 60, ["c"]) == ([], {"c": 7})


@pytest.mark.django_db
def test_an_address_is_throttled_across_keys(tiny_rates):
    tiny_rates(storefront="1000/min", storefront_ip="2/min")
    keys = [_key_client(f"shop-{i}") for i in range(3)]
    statuses = [_recommendations(client, "10.0.0.7").status_code for client in keys]
    assert statuses == [404, 404, 429]
    assert _recommendations(keys[2], "10.0.0.8").status_code == 404


@pytest.mark.django_db
def test_every_storefront_write_endpoint_is_throttled(tiny_rates):
    tiny_rates(storefront="1/min", storefront_ip="1000/min")
    for path in ("/api/v1/assignments", "/api/v1/events", "/api/v1/offers", "/api/v1/products"):
        client = _key_client(f"shop-{path}")
        first = client.post(path, {}, format="json")
        assert first.status_code != 429, path
        assert client.post(path, {}, format="json").status_code == 429, path


# --- Failed authentications ------------------------------------------------------------------


def _with_key(key: str, ip: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return _recommendations(client, ip)


WRONG_KEY = "abcdefgh.wrongsecretwrongsecretwrongsec"


@pytest.mark.django_db
def test_repeated_failed_api_keys_lock_the_address_out(tiny_rates):
    tiny_rates(auth_failure="3/min")
    statuses = [_with_key(WRONG_KEY, "10.1.0.1").status_code for _ in range(3)]
    assert statuses == [401, 401, 401]
    locked = _with_key(WRONG_KEY, "10.1.0.1")
    assert locked.status_code == 429
    assert "failed authentications" in locked.json()["detail"]
    assert 0 < int(locked["Retry-After"]) <= 60


@pytest.mark.django_db
def test_a_locked_out_address_is_refused_even_with_a_valid_key(tiny_rates, api_key):
    tiny_rates(auth_failure="2/min")
    # The valid key is verified (and cached in-process) first, so the lockout below is the one
    # the IP throttle enforces for cached keys; a fresh process would check it in the auth.
    assert _with_key(api_key, "10.1.0.2").status_code == 404
    for _ in range(2):
        assert _with_key(WRONG_KEY, "10.1.0.2").status_code == 401
    assert _with_key(api_key, "10.1.0.2").status_code == 429
    from experiments.apikeys import forget_cached_keys

    forget_cached_keys()
    assert _with_key(api_key, "10.1.0.2").status_code == 429


@pytest.mark.django_db
def test_the_lockout_is_per_address(tiny_rates, api_key):
    tiny_rates(auth_failure="2/min")
    for _ in range(3):
        _with_key(WRONG_KEY, "10.1.0.3")
    assert _with_key(WRONG_KEY, "10.1.0.3").status_code == 429
    # Another address, with a valid key or a wrong one, is unaffected.
    assert _with_key(api_key, "10.1.0.4").status_code == 404
    assert _with_key(WRONG_KEY, "10.1.0.4").status_code == 401


@pytest.mark.django_db
def test_successes_do_not_count_towards_the_lockout(tiny_rates, api_key):
    tiny_rates(auth_failure="2/min")
    assert _with_key(WRONG_KEY, "10.1.0.5").status_code == 401
    for _ in range(5):
        assert _with_key(api_key, "10.1.0.5").status_code == 404
    assert _with_key(WRONG_KEY, "10.1.0.5").status_code == 401
    assert _with_key(api_key, "10.1.0.5").status_code == 429


@pytest.mark.django_db
def test_the_lockout_is_counted_in_the_shared_cache(tiny_rates):
    """Every worker sees the count: it lives in the Django cache, not in the process."""
    from django.core.cache import cache

    tiny_rates(auth_failure="2/min")
    for _ in range(2):
        _with_key(WRONG_KEY, "10.1.0.6")
    assert _with_key(WRONG_KEY, "10.1.0.6").status_code == 429
    cache.clear()  # as if the window ended (or Redis restarted): the address may try again
    assert _with_key(WRONG_KEY, "10.1.0.6").status_code == 401


@pytest.mark.django_db
def test_repeated_failed_staff_tokens_lock_the_address_out(tiny_rates, staff_user):
    from rest_framework.authtoken.models import Token

    tiny_rates(auth_failure="2/min")
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert wrong.get("/api/v1/experiments", REMOTE_ADDR="10.1.0.7").status_code == 403
    assert wrong.get("/api/v1/experiments", REMOTE_ADDR="10.1.0.7").status_code == 403
    locked = wrong.get("/api/v1/experiments", REMOTE_ADDR="10.1.0.7")
    assert locked.status_code == 429 and int(locked["Retry-After"]) > 0
    right = APIClient()
    right.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff_user).key}")
    assert right.get("/api/v1/experiments", REMOTE_ADDR="10.1.0.7").status_code == 429
    assert right.get("/api/v1/experiments", REMOTE_ADDR="10.1.0.8").status_code == 200


def test_the_lockout_rate_comes_from_the_environment():
    script = "from django.conf import settings; print(settings.REST_FRAMEWORK["
    script += "'DEFAULT_THROTTLE_RATES']['auth_failure'])"
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env.update(DEBUG="1", OFFERLAB_AUTH_FAILURE_RATE="7/hour")
    proc = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.stdout.strip().splitlines()[-1] == "7/hour", proc.stderr


# --- Who can see what ------------------------------------------------------------------------

STAFF_READS = [
    "/api/v1/experiments",
    "/api/v1/experiments/exp-a",
    "/api/v1/experiments/exp-a/results",
    "/api/v1/experiments/exp-a/readiness",
    "/api/v1/relations",
    "/api/v1/feedback/surveys",
]


@pytest.mark.django_db
def test_a_storefront_key_reads_no_experiment_results_relations_or_surveys(storefront, staff):
    """A key writes (assignments, events, offers, products) and reads only recommendations for a
    sku, which come from the shared catalogue; everything about experiments, other storefronts'
    events and offers, reviews and surveys is staff-only."""
    ExperimentFactory(key="exp-a", status=Status.RUNNING)
    for path in STAFF_READS:
        assert storefront.get(path).status_code in (401, 403), path
        assert staff.get(path).status_code in (200, 404), path
    # No endpoint lists or reads events, assignments or offers back: they are write-only.
    for path in ("/api/v1/events", "/api/v1/assignments", "/api/v1/offers"):
        assert storefront.get(path).status_code == 405, path


@pytest.mark.django_db
def test_a_staff_token_or_no_credentials_cannot_use_storefront_endpoints(staff, anon):
    for client in (staff, anon):
        res = client.post(
            "/api/v1/assignments", {"experiment": "x", "customer_id": "c"}, format="json"
        )
        assert res.status_code == 401
        assert res["WWW-Authenticate"] == "Api-Key"


@pytest.mark.django_db
def test_a_revoked_key_is_refused(api_key, storefront):
    APIKey.objects.filter(prefix=api_key.partition(".")[0]).update(revoked=True)
    from experiments.apikeys import forget_cached_keys

    forget_cached_keys()
    assert storefront.get("/api/v1/products/X/recommendations").status_code == 401


# --- Admin actions -----------------------------------------------------------------------------


@pytest.fixture
def viewer(client, django_user_model):
    """A staff user who may view experiments and relations but not change them."""
    user = django_user_model.objects.create_user(
        username="viewer", password="viewer-pass-123", is_staff=True
    )
    user.user_permissions.set(
        Permission.objects.filter(
            codename__in=["view_experiment", "view_productrelation", "view_variant"]
        )
    )
    client.force_login(user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(
    "action", ["start_experiments", "pause_experiments", "stop_experiments", "analyze_experiments"]
)
def test_a_staff_user_without_change_permission_cannot_run_experiment_actions(viewer, action):
    experiment = ExperimentFactory(key="exp-admin", status=Status.DRAFT)
    VariantFactory(experiment=experiment, key="control", is_control=True)
    VariantFactory(experiment=experiment, key="treatment")
    res = viewer.post(
        "/admin/experiments/experiment/",
        {"action": action, "_selected_action": [experiment.pk]},
    )
    assert res.status_code in (200, 302)
    experiment.refresh_from_db()
    assert experiment.status == Status.DRAFT
    assert not experiment.analysis_runs.exists()
    # The actions are not even offered to this user.
    page = viewer.get("/admin/experiments/experiment/")
    assert action not in page.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["approve", "reject", "pin", "unpin"])
def test_a_staff_user_without_change_permission_cannot_review_relations(viewer, action):
    source = Product.objects.create(sku="A", name="A", category="x", price="1.00")
    target = Product.objects.create(sku="B", name="B", category="y", price="1.00")
    relation = ProductRelation.objects.create(
        source=source, target=target, kind="complement", pinned=action == "unpin"
    )
    before = (relation.status, relation.pinned)
    viewer.post(
        "/admin/recommendations/productrelation/",
        {"action": action, "_selected_action": [relation.pk]},
    )
    relation.refresh_from_db()
    assert (relation.status, relation.pinned) == before
    assert relation.status != RelationStatus.APPROVED or action == "unpin"


@pytest.mark.django_db
def test_a_staff_user_without_change_permission_cannot_start_mining(viewer, monkeypatch):
    calls = []
    monkeypatch.setattr("recommendations.services.mining_request", lambda **kw: calls.append(kw))
    res = viewer.post("/admin/recommendations/productrelation/mine/")
    assert res.status_code == 302
    assert calls == []


# --- Secrets -------------------------------------------------------------------------------------

SECRET_PATTERNS = {
    "AWS access key": re.compile(r"AKIA[0-9A-Z]{16}"),
    "private key": re.compile(r"-----BEGIN (RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----"),
    "Stripe live key": re.compile(r"sk_live_[0-9a-zA-Z]{16,}"),
    "GitHub token": re.compile(r"gh[pousr]_[0-9A-Za-z]{36}"),
    "Slack token": re.compile(r"xox[abpr]-[0-9A-Za-z-]{10,}"),
    "hard-coded Django secret": re.compile(r"""^\s*SECRET_KEY\s*=\s*["'][^"'$]{20,}["']""", re.M),
}


def test_no_secrets_are_committed():
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    found = []
    for name in filter(None, files):
        path = ROOT / name
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        text = path.read_text(errors="ignore")
        found += [f"{name}: {what}" for what, rx in SECRET_PATTERNS.items() if rx.search(text)]
    assert found == []
    assert ".env" not in files
