"""Settings, read from the environment (12-factor, via django-environ).

With no variables set at all the project runs on its *embedded default*: a
SQLite file, the in-memory channel layer, the local-memory cache and a Celery
worker thread inside the server process. Setting ``REDIS_URL`` (and usually
``DATABASE_URL``) switches to the production topology: Redis carries the
Celery broker, the channel layer, the cache and the live event log, and
workers run as separate ``celery -A config worker`` processes.

Every variable is listed in the README ("Settings").
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from config.private_files import precreate_private, secure_data_dir, write_private

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

REDIS_URL: str = env.str("REDIS_URL", default="")
PRODUCTION = bool(REDIS_URL)
# Prefix of every Redis key, channel and queue of this deployment, so several
# deployments (or concurrent test runs on one machine) can share one Redis.
_TEST_RUN = bool(os.environ.get("PYTEST_VERSION"))
REDIS_NAMESPACE: str = env.str("REDIS_NAMESPACE", default=f"mcptest{os.getpid()}" if _TEST_RUN else "mcp")
DEBUG = env.bool("DJANGO_DEBUG", default=False)

# Where the embedded default keeps its SQLite file, generated secret key and demo
# password: private to this user (folder 0700, files 0600; config/private_files.py).
DATA_DIR = Path(env.str("DATA_DIR", default=str(BASE_DIR / "var")))
secure_data_dir(DATA_DIR)


def _embedded_secret_key() -> str:
    """A key generated once per checkout, so sessions survive restarts."""
    path = DATA_DIR / "secret_key"
    if not path.exists():
        write_private(path, secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. The production topology (REDIS_URL set) needs "
            "SECRET_KEY in the environment; generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
        )
    SECRET_KEY = _embedded_secret_key()

ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
# Origins (scheme://host[:port]) besides the service's own whose pages may use its session cookie: Django's
# CSRF check, the WebSocket handshake and the event stream all read this list (mcp_tools/security/origin.py).
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- Security: TLS (all off by default, so loopback and tests speak plain HTTP).
# HTTPS=true when the service is reached over TLS: secure cookies, HSTS and the
# redirect to https follow from it, each overridable on its own. Behind a proxy
# that terminates TLS, name the header it sets (SECURE_PROXY_SSL_HEADER=
# X-Forwarded-Proto), or Django and the Origin check see plain http and the
# redirect never ends. `manage.py check --deploy` is clean with both set (.ci/run).
HTTPS = env.bool("HTTPS", default=False)
if _proxy_header := env.str("SECURE_PROXY_SSL_HEADER", default=""):
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_header.upper().replace("-", "_"), "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=HTTPS)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=HTTPS)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=HTTPS)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 60 * 60 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=HTTPS)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=HTTPS)

# --- Security: request bodies. Django's limit, which the REST parsers and the MCP
# endpoint apply too (413); JSON deeper than MCP_JSON_MAX_DEPTH is refused everywhere.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)

# --- Security: brute force (django-axes). Failed logins on /api/auth/token/,
# /accounts/login/ and /admin/login/ are counted per address and per username;
# at LOGIN_FAILURE_LIMIT either one is locked for LOGIN_COOLOFF_S (429 with
# Retry-After; mcp_tools/security/lockout.py). Attempts live in the database
# (the admin lists them; `manage.py axes_reset` unlocks). Behind a proxy, run
# daphne with --proxy-headers, or every client is the proxy's address.
AXES_ENABLED = env.bool("LOGIN_THROTTLE", default=True)
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(seconds=env.int("LOGIN_COOLOFF_S", default=15 * 60))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_LOCKOUT_CALLABLE = "mcp_tools.security.lockout.lockout_response"
AXES_DISABLE_ACCESS_LOG = True  # failures are what matters; successful logins would grow a table forever
AUTHENTICATION_BACKENDS = [
    # First: a locked-out login is refused before the password is checked.
    "mcp_tools.security.lockout.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "axes",
    "oauth2_provider",  # OAuth 2.1 for MCP clients (below, "MCP endpoint")
    "mcp_tools",
    "consumers",
]
# Apps of your own, added without editing this file (comma-separated dotted paths). Their
# ``tools.py`` modules are found at start-up like ``admin.py`` (README, "Add your own tool").
INSTALLED_APPS += env.list("MCP_EXTRA_APPS", default=[])

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks: turns a lockout into its answer
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}"),
}
if _TEST_RUN and DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    # One test database per run: concurrent runs must not drop each other's.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{Path(str(DATABASES['default']['NAME'])).stem}_{REDIS_NAMESPACE}"}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    if Path(str(DATABASES["default"]["NAME"])).parent == DATA_DIR:
        # It holds API tokens and sessions: created 0600, so SQLite's -wal and -shm files are too.
        precreate_private(DATA_DIR / Path(str(DATABASES["default"]["NAME"])).name)
    # The embedded worker thread writes while the server reads: wait for the
    # lock instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
    if _TEST_RUN:
        # Tests use a file too, like the embedded default: Django's in-memory
        # test database shares a cache whose table locks fail at once ("database
        # table is locked") instead of waiting, when a worker thread writes while
        # the test reads.
        DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test-{REDIS_NAMESPACE}.sqlite3")}
elif (
    DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    and DATABASES["default"]["CONN_MAX_AGE"] == 0
    and env.int("DB_POOL_MAX_SIZE", default=20)
):
    # Under ASGI every concurrent sync request runs in a thread of its own, with a
    # connection of its own: 100 parallel API calls exceeded PostgreSQL's default
    # max_connections (100) and failed. A pool per process bounds that; requests
    # wait (up to DB_POOL_TIMEOUT_S) for a free connection instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env.int("DB_POOL_MAX_SIZE", default=20),
        "timeout": env.float("DB_POOL_TIMEOUT_S", default=30.0),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# --- Cache: tool results (MCP_CONFIG['CACHE_TTL']) and rate-limit counters.
if PRODUCTION:
    CACHES = {
        "default": {
            # Django's RedisCache, with one client and pool per process instead of per thread and call.
            "BACKEND": "config.redis_cache.SharedRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": REDIS_NAMESPACE,
            # Threads wait for a free connection instead of failing: a worker's
            # hundreds of streams (heartbeats) exceeded redis-py 8's default 100.
            "OPTIONS": {"pool_class": "redis.BlockingConnectionPool", "max_connections": 100, "timeout": 10},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Channel layer. Redis pub/sub in production: no per-channel capacity (the core
# layer drops silently past it), and the event log's script publishes each numbered
# event to its group in the same step (mcp_tools/events/dispatch.py). In the embedded
# default, an in-memory layer that any thread may send to (mcp_tools/events/memory_layer.py).
CHANNEL_LAYERS: dict[str, dict[str, Any]]
if PRODUCTION:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": 10}],
                "prefix": f"{REDIS_NAMESPACE}:asgi",
                "serializer_format": "json",
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "mcp_tools.events.memory_layer.MemoryChannelLayer"}}

# --- Live event log (seq numbers, replay). Redis in production, memory otherwise.
EVENT_LOG_URL: str = REDIS_URL
EVENT_LOG_TTL_S = env.int("EVENT_LOG_TTL_S", default=24 * 60 * 60)

# --- Celery
EMBEDDED_WORKER = env.bool("EMBEDDED_WORKER", default=not PRODUCTION)
# "memory://localhost/", not "memory://": kombu warns "No hostname was supplied" for the latter on every connect.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://localhost/")
CELERY_TASK_DEFAULT_QUEUE = REDIS_NAMESPACE
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
# A task whose worker dies is redelivered, not lost: ack after the run, and
# reject (requeue) when the worker process vanishes.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Above the longest tool time limit, or a long task would be delivered twice.
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT_S", default=2 * 60 * 60)
}
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # kombu's Redis transport, except that a worker survives Redis going away while it holds an
    # unacknowledged token (mcp_tools/engine/broker.py).
    CELERY_BROKER_TRANSPORT = "mcp_tools.engine.broker:Transport"
if CELERY_BROKER_URL.startswith("memory://"):
    # The in-memory broker has no blocking read: the worker sleeps this long whenever its queue
    # is empty (kombu's default, 1 s, was most of an embedded execute's wait before "running").
    CELERY_BROKER_TRANSPORT_OPTIONS["polling_interval"] = 0.02
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The bare `celery -A config worker` is the production command: the pool is the
# engine's (one event loop holds every running execution, mcp_tools/engine/) and
# the concurrency is how many executions one worker process runs at once.
CELERY_WORKER_POOL = "mcp_tools.engine.pool:ExecutionPool"
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=1000)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- LLM providers (mcp_tools/providers)
ANTHROPIC_API_KEY: str = env.str("ANTHROPIC_API_KEY", default="")
ANTHROPIC_BASE_URL: str = env.str("ANTHROPIC_BASE_URL", default="")
ANTHROPIC_MODEL: str = env.str("ANTHROPIC_MODEL", default="claude-sonnet-5-5")
ANTHROPIC_TIMEOUT_S: float = env.float("ANTHROPIC_TIMEOUT_S", default=30.0)
LLM_PROVIDER: str = env.str("LLM_PROVIDER", default="auto")
OFFLINE_DELAY_S: float = env.float("OFFLINE_DELAY_S", default=0.02)

# The user that `manage.py run_tool` (Gantz) records its executions as.
RUN_TOOL_USER: str = env.str("RUN_TOOL_USER", default="gantz")

GANTZ_CONFIG = Path(env.str("GANTZ_CONFIG", default=str(BASE_DIR / "gantz.yaml")))

# The article's MCP_CONFIG, plus the limits the streaming service needs.
MCP_CONFIG = {
    "DEFAULT_TIMEOUT": env.int("MCP_DEFAULT_TIMEOUT", default=60),
    "MAX_RETRIES": env.int("MCP_MAX_RETRIES", default=3),
    "CACHE_TTL": env.int("MCP_CACHE_TTL", default=3600),
    "RETRY_BACKOFF_S": env.float("MCP_RETRY_BACKOFF_S", default=1.0),
    "RETRY_BACKOFF_MAX_S": env.float("MCP_RETRY_BACKOFF_MAX_S", default=30.0),
    "COALESCE_MS": env.int("MCP_COALESCE_MS", default=15),
    # A run's output (streamed text) beyond this ends it with output_too_large, after the part that fits.
    # Counted as the JSON it travels in (mcp_tools/tools/context.py, json_size) and half of daphne's 1 MiB
    # WebSocket message limit, so the terminal event that repeats the output always reaches the client.
    "MAX_OUTPUT_BYTES": env.int("MCP_MAX_OUTPUT_BYTES", default=512 * 1024),
    # Synchronous (plain def) Python tools run in this many threads per worker process at most.
    "SYNC_TOOL_THREADS": env.int("MCP_SYNC_TOOL_THREADS", default=32),
    # Gantz tools (mcp_tools/gantz/conf.py): seconds between SIGTERM and SIGKILL when a script is
    # stopped; stderr kept per run (appended to the output at the end); response body read per http call.
    "SCRIPT_KILL_GRACE_S": env.float("MCP_SCRIPT_KILL_GRACE_S", default=5.0),
    "SCRIPT_STDERR_MAX_BYTES": env.int("MCP_SCRIPT_STDERR_MAX_BYTES", default=1024 * 1024),
    "HTTP_TOOL_MAX_BYTES": env.int("MCP_HTTP_TOOL_MAX_BYTES", default=2 * 1024 * 1024),
    "COALESCE_BYTES": env.int("MCP_COALESCE_BYTES", default=512),
    # Deltas per second one worker process aims to stay under: past it the
    # coalescing window widens with the number of streams (0 = fixed window).
    "COALESCE_DELTAS_PER_S": env.int("MCP_COALESCE_DELTAS_PER_S", default=500),
    "WS_MAX_MESSAGE_BYTES": env.int("MCP_WS_MAX_MESSAGE_BYTES", default=64 * 1024),
    # JSON nested deeper than this is refused on every entry point (mcp_tools/jsonguard.py).
    "JSON_MAX_DEPTH": env.int("MCP_JSON_MAX_DEPTH", default=64),
    "RATE_LIMIT_PER_MINUTE": env.int("MCP_RATE_LIMIT_PER_MINUTE", default=120),
    "MAX_CONCURRENT_EXECUTIONS": env.int("MCP_MAX_CONCURRENT_EXECUTIONS", default=20),
    "FETCH_MAX_BYTES": env.int("MCP_FETCH_MAX_BYTES", default=2 * 1024 * 1024),
    "FETCH_TIMEOUT_S": env.float("MCP_FETCH_TIMEOUT_S", default=10.0),
    "ALLOW_PRIVATE_URLS": env.bool("MCP_ALLOW_PRIVATE_URLS", default=False),
    "RETENTION_DAYS": env.int("MCP_RETENTION_DAYS", default=30),
    # A request repeated with the same idempotency key within this window attaches to the first one's execution.
    "IDEMPOTENCY_WINDOW_S": env.int("MCP_IDEMPOTENCY_WINDOW_S", default=24 * 60 * 60),
    # The engine (mcp_tools/engine/): each worker engine renews its heartbeat every
    # HEARTBEAT_INTERVAL_S (a key that expires after HEARTBEAT_STALE_S); a reaper pass
    # every REAPER_INTERVAL_S takes an engine whose key was missing for two intervals
    # for dead and runs its executions again elsewhere: found within 6 + 4 + 2 = 12 s.
    # Executions waiting longer than PENDING_RESCUE_S while an engine has room get a
    # new token (a broker lost theirs).
    "HEARTBEAT_INTERVAL_S": env.float("MCP_HEARTBEAT_INTERVAL_S", default=2.0),
    "HEARTBEAT_STALE_S": env.float("MCP_HEARTBEAT_STALE_S", default=6.0),
    "REAPER_INTERVAL_S": env.float("MCP_REAPER_INTERVAL_S", default=2.0),
    "PENDING_RESCUE_S": env.float("MCP_PENDING_RESCUE_S", default=60.0),
    # How often the engine reads the logs of its running executions (a cancel, an end elsewhere).
    "CONTROL_POLL_S": env.float("MCP_CONTROL_POLL_S", default=0.5),
    # Threads of a worker's engine for database writes; seconds a warm shutdown lets runs finish.
    "ENGINE_DB_THREADS": env.int("MCP_ENGINE_DB_THREADS", default=8),
    "ENGINE_SHUTDOWN_GRACE_S": env.float("MCP_ENGINE_SHUTDOWN_GRACE_S", default=30.0),
    # Delivery (mcp_tools/delivery.py): a follower that heard nothing for this long reads
    # the event log (catches events the channel layer lost). One setting for every transport.
    "DELIVERY_POLL_S": env.float("MCP_DELIVERY_POLL_S", default=2.0),
    # WebSocket connections: per user (per server process); idle connections without subscriptions close.
    "WS_MAX_CONNECTIONS_PER_USER": env.int("MCP_WS_MAX_CONNECTIONS_PER_USER", default=20),
    "WS_IDLE_TIMEOUT_S": env.float("MCP_WS_IDLE_TIMEOUT_S", default=15 * 60),
}

# Celery beat (`celery -A config beat`): delete executions older than the
# retention, daily. `manage.py cleanup_executions` runs the same task by hand.
CELERY_BEAT_SCHEDULE = {
    "cleanup-old-executions": {
        "task": "mcp_tools.cleanup_old_executions",
        "schedule": crontab(hour=3, minute=30),
        "kwargs": {"days": MCP_CONFIG["RETENTION_DAYS"]},
    },
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Bodies: at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes (413), JSON through mcp_tools/jsonguard.py (400 invalid_json).
    "DEFAULT_PARSER_CLASSES": [
        "mcp_tools.api.parsers.GuardedJSONParser",
        "mcp_tools.api.parsers.LimitedFormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # One error envelope for the whole API: {"error": {"code", "message", ...}} (mcp_tools/api/exceptions.py).
    "EXCEPTION_HANDLER": "mcp_tools.api.exceptions.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "MCP tools API",
    "DESCRIPTION": "Run AI tools, follow their executions. Live streams: see the WebSocket protocol.",
    "VERSION": "1.0.0",
    # Swagger UI served from the sidecar package, so /api/docs/ works without internet.
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "mcp_tools.api.schema.add_event_stream",  # the SSE view is not a DRF view
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    # Tokens, passwords and keys are cut out of every line (mcp_tools/security/redact.py).
    "filters": {"redact": {"()": "mcp_tools.security.redact.RedactingFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "daphne": {"level": "WARNING"},
        "axes": {"level": "WARNING"},  # lockouts and failures, not its start-up banner
        "celery": {"level": env.str("CELERY_LOG_LEVEL", default="WARNING")},
    },
}

# --- Metrics (/metrics, mcp_tools/metrics/). A scraper sends "Authorization: Bearer <this>"; empty: staff
# users' DRF tokens only. Every process of a host writes to PROMETHEUS_MULTIPROC_DIR (read by
# prometheus-client from the environment itself), so one scrape shows daphne and the workers.
METRICS_BEARER_TOKEN: str = env.str("METRICS_BEARER_TOKEN", default="")
if METRICS_BEARER_TOKEN and len(METRICS_BEARER_TOKEN) < 32:
    raise ImproperlyConfigured(
        "METRICS_BEARER_TOKEN is shorter than 32 characters; generate one with "
        "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`."
    )

# --- MCP endpoint (mcp_tools/mcp, docs/mcp.md).
# Tasks extension: how often a client is asked to poll tasks/get.
MCP_TASK_POLL_INTERVAL_MS = env.int("MCP_TASK_POLL_INTERVAL_MS", default=1000)
# OAuth 2.1 for MCP clients (docs/mcp.md): this service is the authorization server
# (django-oauth-toolkit at /o/, RFC 8414 and RFC 9728 metadata under /.well-known/)
# and /mcp the protected resource. Authorization code + PKCE (S256) only, public
# clients identified by Client ID Metadata Documents, tokens bound to /mcp (RFC 8707),
# stored hashed. DRF tokens keep working for scripts. (oauth2_provider is in INSTALLED_APPS.)
# oauth2_provider.W008 warns that http redirect URIs are allowed at all. They must be, for
# native MCP clients on a loopback port (RFC 8252, Claude Code, the Inspector), and our
# validator (mcp_tools.mcp.oauth.RedirectRules) refuses http to anything but loopback.
SILENCED_SYSTEM_CHECKS = ["oauth2_provider.W008"]
OAUTH2_PROVIDER = {
    "PKCE_REQUIRED": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "ACCESS_TOKEN_EXPIRE_SECONDS": env.int("MCP_OAUTH_ACCESS_TOKEN_S", default=60 * 60),
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OAUTH2_GRANT_TYPES_SUPPORTED": ["authorization_code", "refresh_token"],
    "OAUTH2_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": ["none", "client_secret_basic", "client_secret_post"],
    # Native clients (Claude Code, the Inspector) listen on a loopback port of their choosing (RFC 8252).
    "ALLOW_LOCALHOST_LOOPBACK": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["http", "https"],
    "CIMD_ENABLED": True,
    "SCOPES_BACKEND_CLASS": "mcp_tools.mcp.oauth.ToolScopes",
    # http redirects only to loopback (native clients); https anywhere.
    "OAUTH2_VALIDATOR_CLASS": "mcp_tools.mcp.oauth.RedirectRules",
    "OAUTH2_PROTECTED_RESOURCE_NAME": "MCP tools",
    "OAUTH2_PROTECTED_RESOURCE_DOCUMENTATION": env.str("MCP_OAUTH_DOCUMENTATION_URL", default=""),
}
