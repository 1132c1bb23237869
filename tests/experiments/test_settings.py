"""Settings come from the environment: a zero-config default, and no secret-key default in
production. Each case imports config.settings in a fresh interpreter with a controlled env."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRINT_SETTINGS = (
    "import json, config.settings as s; print(json.dumps({"
    "'engine': s.DATABASES['default']['ENGINE'], 'eager': s.CELERY_TASK_ALWAYS_EAGER, "
    "'debug': s.DEBUG, 'secret': s.SECRET_KEY, 'ssl': s.SECURE_SSL_REDIRECT, "
    "'hosts': s.ALLOWED_HOSTS}))"
)
CONFIG_VARS = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "SECURE_SSL_REDIRECT",
    "CACHE_URL",
    "DJANGO_SETTINGS_MODULE",
    "DATABASE_PREPARE_THRESHOLD",
)


@pytest.fixture(autouse=True)
def _no_dotenv():
    dotenv = ROOT / ".env"
    if dotenv.exists():
        pytest.skip("a local .env file would feed the settings; these cases need a clean env")


def _run(code: str, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in CONFIG_VARS}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _settings(**env) -> dict:
    result = _run(PRINT_SETTINGS, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_secret_key_is_required_when_debug_is_off():
    result = _run(PRINT_SETTINGS, DEBUG="0")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY" in result.stderr


def test_debug_is_off_by_default_so_a_bare_environment_refuses_to_start():
    result = _run(PRINT_SETTINGS)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr


def test_zero_config_development_default_is_sqlite_and_eager_celery():
    first = _settings(DEBUG="1")
    assert first["engine"] == "django.db.backends.sqlite3"
    assert first["eager"] is True
    assert first["debug"] is True
    assert first["ssl"] is False
    # The generated key is random per process, never a constant in the code.
    assert first["secret"] and first["secret"] != _settings(DEBUG="1")["secret"]


def test_production_settings_use_the_given_key_and_redirect_to_https():
    production = _settings(SECRET_KEY="a-long-production-secret", ALLOWED_HOSTS="shop.example")
    assert production["debug"] is False
    assert production["secret"] == "a-long-production-secret"
    assert production["ssl"] is True
    assert production["hosts"] == ["shop.example"]


def test_database_and_broker_urls_switch_to_postgresql_and_a_real_broker():
    configured = _settings(
        DEBUG="1",
        DATABASE_URL="postgres://u:p@db.example:5432/offerlab",
        CELERY_BROKER_URL="redis://redis.example:6379/0",
    )
    assert configured["engine"] == "config.postgresql"  # Django's, with a cheaper health check
    assert configured["eager"] is False


def test_ssl_redirect_can_be_turned_off_for_plain_http_behind_a_proxy():
    assert _settings(SECRET_KEY="k" * 50, SECURE_SSL_REDIRECT="0")["ssl"] is False


PRINT_DATABASE_OPTIONS = (
    "import json, config.settings as s; "
    "print(json.dumps(s.DATABASES['default'].get('OPTIONS', {})))"
)
POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/offerlab"


@pytest.mark.parametrize(
    "value, expected",
    [(None, 5), ("0", 0), ("12", 12), ("off", None), ("OFF", None), ("", None)],
)
def test_prepared_statements_follow_database_prepare_threshold(value, expected):
    env = {"DEBUG": "1", "DATABASE_URL": POSTGRES_URL}
    if value is not None:
        env["DATABASE_PREPARE_THRESHOLD"] = value
    result = _run(PRINT_DATABASE_OPTIONS, **env)
    assert result.returncode == 0, result.stderr
    options = json.loads(result.stdout)
    assert options.get("prepare_threshold") == expected
    assert options["server_side_binding"] is True


@pytest.mark.parametrize("value", ["five", "-1", "2.5", "²"])
def test_a_bad_database_prepare_threshold_names_the_variable(value):
    env = {"DEBUG": "1", "DATABASE_URL": POSTGRES_URL, "DATABASE_PREPARE_THRESHOLD": value}
    result = _run(PRINT_DATABASE_OPTIONS, **env)
    assert result.returncode != 0
    assert "DATABASE_PREPARE_THRESHOLD must be a whole number or 'off'" in result.stderr


def test_sqlite_has_no_prepared_statement_option():
    result = _run(PRINT_DATABASE_OPTIONS, DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert "prepare_threshold" not in json.loads(result.stdout)
