"""Offerlab settings: 12-factor, from the environment, with a zero-config default.

With no environment variables the service runs on SQLite with Celery in eager mode.
Set DATABASE_URL and CELERY_BROKER_URL for PostgreSQL and a real broker (Redis).
"""

import re
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off (set DEBUG=1 for local development)."
        )
    SECRET_KEY = get_random_secret_key()

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "rest_framework_api_key",
    "drf_spectacular",
    "corsheaders",
    "django_celery_beat",
    "auditlog",
    "experiments",
    "recommendations",
    "feedback",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.AuditlogMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let the embedded default take concurrent writers without errors.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend with a health check that needs no `SELECT 1` on a quiet connection.
    DATABASES["default"]["ENGINE"] = "config.postgresql"
    # Parameters sent apart from the statement (psycopg's server-side binding) instead of
    # quoted into its text in Python: 5.6 % fewer instructions per served offer (callgrind).
    # And prepared statements: psycopg prepares a statement on its connection once it has run
    # DATABASE_PREPARE_THRESHOLD times (default 5; `off` disables them, as PgBouncer older than
    # 1.21 in transaction mode needs), so PostgreSQL no longer parses and plans the offers and
    # assignments statements on every request: a third less PostgreSQL CPU per served offer
    # (bench/offers.py). A ROLLBACK makes psycopg forget them all, so the offers path takes a
    # refusal back with statements and commits (recommendations.offers._take_back).
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True
    _prepare = env.str("DATABASE_PREPARE_THRESHOLD", default="5").strip().lower()
    if _prepare not in ("off", "none", ""):
        if not re.fullmatch(r"[0-9]+", _prepare):
            raise ImproperlyConfigured(
                f"DATABASE_PREPARE_THRESHOLD must be a whole number or 'off', not {_prepare!r}."
            )
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = int(_prepare)
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (throttling, hot-path config) ----------------------------------------------------
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://offerlab")}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    # The cache only speeds things up: with Redis down, serve without it (config/cache.py).
    CACHES["default"]["BACKEND"] = "config.cache.ResilientRedisCache"

# --- I18N / static ---------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not DEBUG and env.bool("OFFERLAB_MANIFEST_STATIC", default=True)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_MANIFEST_STRICT = False

# --- Security ----------------------------------------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/api/v1/feedback/(surveys/[^/]+|responses)$"
CORS_ALLOW_CREDENTIALS = False

# --- REST framework --------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "config.authentication.StaffTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.parsers.SafeJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "config.schema.OfferlabAutoSchema",
    "EXCEPTION_HANDLER": "config.exceptions.exception_handler",
    "UNAUTHENTICATED_USER": None,
    # Reverse proxies in front of the app; the client IP for throttles is then read from
    # X-Forwarded-For (unset: DRF's default, 0: always the socket's address).
    "NUM_PROXIES": env.int("OFFERLAB_TRUSTED_PROXIES", default=None),
    "DEFAULT_THROTTLE_RATES": {
        "storefront": env.str("OFFERLAB_STOREFRONT_RATE", default="20000/min"),
        "storefront_ip": env.str("OFFERLAB_STOREFRONT_IP_RATE", default="20000/min"),
        "survey_token": env.str("OFFERLAB_SURVEY_TOKEN_RATE", default="30/min"),
        "survey_ip": env.str("OFFERLAB_SURVEY_IP_RATE", default="300/min"),
        # Failed API-key / staff-token authentications per client IP before it is locked out.
        "auth_failure": env.str("OFFERLAB_AUTH_FAILURE_RATE", default="30/min"),
    },
}
API_KEY_CUSTOM_HEADER = "HTTP_AUTHORIZATION"

SPECTACULAR_SETTINGS = {
    "TITLE": "Offerlab API",
    "DESCRIPTION": (
        "A/B experiments, offers and feedback for cross-sell moments. Storefront endpoints take "
        "`Authorization: Api-Key <key>`; staff endpoints a staff session or "
        "`Authorization: Token <token>`."
    ),
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "MetricEnum": "experiments.models.Metric",
        "ExperimentStatusEnum": "experiments.models.Status",
        "RelationStatusEnum": "recommendations.models.RelationStatus",
        "TriggerEnum": "experiments.moments.Trigger",
        "SurveyTriggerEnum": "feedback.models.SurveyTrigger",
        "QuestionMetricEnum": "feedback.models.QUESTION_METRICS",
    },
}

# --- Celery --------------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
# Reliability: a task is acknowledged only once it finished, and re-queued if its worker dies.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("OFFERLAB_TASK_TIME_LIMIT", default=30 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("OFFERLAB_TASK_SOFT_TIME_LIMIT", default=25 * 60)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Must exceed the longest task, or Redis redelivers a task that is still running.
    "visibility_timeout": CELERY_TASK_TIME_LIMIT + 10 * 60,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_WORKER_MAX_TASKS_PER_CHILD = 200
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "analyze-running-experiments": {
        "task": "experiments.tasks.analyze_running_experiments",
        "schedule": timedelta(hours=env.int("OFFERLAB_ANALYSIS_EVERY_HOURS", default=6)),
    },
    "requeue-analyses": {
        # Re-sends analysis runs no worker holds (broker was down, a worker was killed).
        "task": "experiments.dispatch.requeue_analyses",
        "schedule": timedelta(minutes=1),
    },
    "mine-product-relations": {
        "task": "recommendations.tasks.mine_relations_task",
        "schedule": crontab(hour=3, minute=15),
    },
}

# --- Offerlab product settings (tunable by the growth team / operators) -----------------------
OFFERLAB_FREQUENCY_CAP_PER_WEEK = env.int("OFFERLAB_FREQUENCY_CAP_PER_WEEK", default=3)
OFFERLAB_FREQUENCY_CAP_WINDOW_DAYS = env.int("OFFERLAB_FREQUENCY_CAP_WINDOW_DAYS", default=7)
OFFERLAB_FREQUENCY_CAP_PER_CHANNEL_PER_DAY = env.int(
    "OFFERLAB_FREQUENCY_CAP_PER_CHANNEL_PER_DAY", default=1
)
OFFERLAB_MINING_WINDOW_DAYS = env.int("OFFERLAB_MINING_WINDOW_DAYS", default=90)
OFFERLAB_MINING_MAX_BASKET = env.int("OFFERLAB_MINING_MAX_BASKET", default=30)
OFFERLAB_MINING_MIN_SUPPORT_COUNT = env.int("OFFERLAB_MINING_MIN_SUPPORT_COUNT", default=5)
# Offers: moment windows (e.g. "post_purchase=48;cart_abandonment=6"), proof of a browse / usage
# moment, how many products an offer carries, and whether customers outside every experiment
# still get the default offer (else `not_eligible`).
OFFERLAB_MOMENT_WINDOW_HOURS = env.dict(
    "OFFERLAB_MOMENT_WINDOW_HOURS", cast={"value": float}, default={}
)
OFFERLAB_BROWSE_MIN_VIEWS = env.int("OFFERLAB_BROWSE_MIN_VIEWS", default=3)
OFFERLAB_USAGE_MILESTONE_PERCENT = env.float("OFFERLAB_USAGE_MILESTONE_PERCENT", default=75.0)
OFFERLAB_OFFER_MAX_PRODUCTS = env.int("OFFERLAB_OFFER_MAX_PRODUCTS", default=3)
OFFERLAB_DEFAULT_OFFERS = env.bool("OFFERLAB_DEFAULT_OFFERS", default=True)
OFFERLAB_EVENT_MAX_BATCH = env.int("OFFERLAB_EVENT_MAX_BATCH", default=1000)
OFFERLAB_EVENT_HORIZON_DAYS = env.int("OFFERLAB_EVENT_HORIZON_DAYS", default=400)
OFFERLAB_EVENT_MAX_FUTURE_SECONDS = env.int("OFFERLAB_EVENT_MAX_FUTURE_SECONDS", default=300)
OFFERLAB_SURVEY_TOKEN_MAX_AGE_DAYS = env.int("OFFERLAB_SURVEY_TOKEN_MAX_AGE_DAYS", default=14)
OFFERLAB_SURVEY_DEFAULT_COOLDOWN_DAYS = env.int("OFFERLAB_SURVEY_DEFAULT_COOLDOWN_DAYS", default=30)
OFFERLAB_PUBLIC_BASE_URL = env.str("OFFERLAB_PUBLIC_BASE_URL", default="http://127.0.0.1:8000")
OFFERLAB_CSAT_FLOOR = env.float("OFFERLAB_CSAT_FLOOR", default=4.0)
OFFERLAB_MIN_SURVEY_ANSWERS = env.int("OFFERLAB_MIN_SURVEY_ANSWERS", default=20)
OFFERLAB_SRM_THRESHOLD = env.float("OFFERLAB_SRM_THRESHOLD", default=0.001)
OFFERLAB_CUPED_PRE_PERIOD_DAYS = env.int("OFFERLAB_CUPED_PRE_PERIOD_DAYS", default=14)
# PostgreSQL work_mem for the analysis statement (per-customer aggregates stay in memory).
OFFERLAB_ANALYSIS_WORK_MEM = env.str("OFFERLAB_ANALYSIS_WORK_MEM", default="128MB")
# PostgreSQL: the per-customer statement runs in this many parts at once (one connection and
# backend each, one shared snapshot); 1 runs it as one statement.
OFFERLAB_ANALYSIS_PARALLEL = env.int("OFFERLAB_ANALYSIS_PARALLEL", default=2)
OFFERLAB_SEGMENT_ATTRIBUTE = env.str("OFFERLAB_SEGMENT_ATTRIBUTE", default="segment")
OFFERLAB_CONFIG_CACHE_SECONDS = env.int("OFFERLAB_CONFIG_CACHE_SECONDS", default=30)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
