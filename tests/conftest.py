"""Shared fixtures. The suite runs on PostgreSQL + Redis when DATABASE_URL/CELERY_BROKER_URL are
set (CI, REQUIRE_SERVICES=1) and on SQLite with eager Celery otherwise."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework_api_key.models import APIKey

from config.celery import app as celery_app

ROOT = Path(__file__).resolve().parent.parent
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def pytest_sessionstart(session):
    if REQUIRE_SERVICES:
        missing = [v for v in ("DATABASE_URL", "CELERY_BROKER_URL") if not os.environ.get(v)]
        if missing:
            raise pytest.UsageError(f"REQUIRE_SERVICES=1 but {', '.join(missing)} not set")


def require_services(reason: str) -> None:
    """Skip locally when a real service is missing; fail in CI (REQUIRE_SERVICES=1)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _eager_celery_by_default(request):
    """Unit tests run tasks in-process; tests marked `services` use the real broker."""
    if request.node.get_closest_marker("services"):
        yield
        return
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Test users need no slow PBKDF2 (about 1.5 s a user on a loaded machine)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_hot_path_caches():
    from django.core.cache import cache

    from experiments.apikeys import forget_cached_keys
    from experiments.selectors import invalidate_experiment_configs

    cache.clear()
    forget_cached_keys()
    invalidate_experiment_configs()
    yield


CHROMIUM = os.environ.get("OFFERLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def chromium(monkeypatch):
    """Debian's chromium driven by Playwright (tests marked `browser`, with `live_server`)."""
    # Playwright's sync API runs an event loop in this thread; the ORM calls a test makes between
    # browser steps are ordinary blocking calls, so Django's async guard does not apply.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from django.urls import get_resolver

    # Import the whole URLconf (scipy, statsmodels…) now, not during the first request.
    get_resolver().url_patterns  # noqa: B018
    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if not executable:
        require_services(f"chromium not found at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def api_key(db) -> str:
    _, key = APIKey.objects.create_key(name="test-storefront")
    return key


@pytest.fixture
def storefront(api_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key}")
    return client


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user(
        username="growth", password="growth-pass-123", is_staff=True, is_superuser=True
    )


@pytest.fixture
def staff(staff_user) -> APIClient:
    client = APIClient()
    token = Token.objects.create(user=staff_user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


def _database_url_for_subprocess() -> str:
    db = connection.settings_dict
    if connection.vendor != "postgresql":
        require_services("a real Celery worker needs PostgreSQL (set DATABASE_URL)")
    user = db.get("USER") or "postgres"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{db['NAME']}"


@pytest.fixture
def celery_worker_process(transactional_db):
    """A real `celery worker` process on the configured broker, using the test database.

    Use with `@pytest.mark.services` and `@pytest.mark.django_db(transaction=True)` so rows the
    test writes are committed and visible to the worker.
    """
    if not settings.CELERY_BROKER_URL:
        require_services("a real Celery worker needs a broker (set CELERY_BROKER_URL)")
    env = {
        **os.environ,
        "DATABASE_URL": _database_url_for_subprocess(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "SECRET_KEY": "test-worker",
        "DEBUG": "1",
    }
    celery_bin = shutil.which("celery", path=str(Path(sys.executable).parent)) or "celery"
    queue = f"test-{os.getpid()}-{time.monotonic_ns()}"
    proc = subprocess.Popen(
        [
            celery_bin,
            "-A",
            "config.celery:app",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "-Q",
            queue,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    previous_queue = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    celery_app.conf.task_always_eager = False
    deadline = time.monotonic() + 60
    ready = False
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "ready." in line:
            ready = True
            break
    if not ready:
        proc.kill()
        pytest.fail("celery worker did not start:\n" + "".join(lines[-30:]))
    proc.queue = queue
    yield proc
    celery_app.conf.task_default_queue = previous_queue
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
