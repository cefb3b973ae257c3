"""Delta CI settings: every value comes from the environment through django-environ.

Defaults are the embedded topology (SQLite and files under DELTACI_DATA_DIR, Celery
tasks run in-process when no broker is configured). `DELTACI_ENV=prod` refuses unsafe
values at start-up (see apps/audit/checks.py); `staging` refuses the same insecure values
except plain HTTP; any other DELTACI_ENV stops every process here, at settings load.
"""

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
INSECURE_SECRET_KEY = "insecure-dev-only-key-change-me"  # noqa: S105 - the refused default

env = environ.Env()
environ.Env.read_env(env.str("DELTACI_ENV_FILE", default=str(BASE_DIR / ".env")))

DELTACI_ENVS = ("dev", "staging", "prod")
DELTACI_ENV = env.str("DELTACI_ENV", default="dev")
if DELTACI_ENV not in DELTACI_ENVS:
    # Not a check: an unknown name (production, PROD) would start with dev's defaults.
    raise SystemExit(f"DELTACI_ENV must be one of dev, staging, prod (got {DELTACI_ENV!r})")
DATA_DIR = Path(env.str("DELTACI_DATA_DIR", default=str(BASE_DIR / "var")))
DATA_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = env.str("SECRET_KEY", default=INSECURE_SECRET_KEY)
DEBUG = env.bool("DEBUG", default=DELTACI_ENV == "dev")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# The public base URL, used in links sent to GitHub and in upload URLs for runners.
DELTACI_PUBLIC_URL = env.str("DELTACI_PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets served locally (no CDN)
    "apps.audit",
    "apps.policies",
    "apps.runs",
    "apps.runners",
    "apps.artifacts",
    "apps.vcs",
    "apps.ops",
    "apps.ai",
    "apps.apitokens",
]

MIDDLEWARE = [
    "apps.ops.middleware.OpsMiddleware",  # log scope + runner protocol metrics (outermost)
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files from STATIC_ROOT in prod
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "deltaci.urls"
WSGI_APPLICATION = "deltaci.wsgi.application"
ASGI_APPLICATION = "deltaci.asgi.application"

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
            ]
        },
    }
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'deltaci.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let web, worker, beat and the test's subprocesses share one file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )
    # A file (not :memory:) so end-to-end tests' subprocesses can open the test database;
    # one per test process so concurrent test runs never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test-{os.getpid()}.sqlite3")}
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Hot runner-protocol statements run as server-side prepared statements (lib/db.py). Set
# false behind a transaction-pooling PgBouncer older than 1.21, which cannot keep them.
DELTACI_PREPARED_STATEMENTS = env.bool("DELTACI_PREPARED_STATEMENTS", default=True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(DATA_DIR / "static")))
if DELTACI_ENV == "dev":
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing root
AUTHENTICATION_BACKENDS = ["apps.audit.backends.ThrottledModelBackend"]  # audited, throttled
LOGIN_URL = "/login"  # the team login page: admin's refuses users who are not staff
LOGIN_REDIRECT_URL = "/"

# --- Celery: with no broker configured, tasks run in-process (eager) ---------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=env.str("REDIS_URL", default=""))
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The embedded topology's broker: a directory, no service to install.
    _broker_dir = DATA_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        "control_folder": str(_broker_dir / "control"),
    }
# Redis broker (deploy/README.md, "Broker"): a task taken by a worker that dies unacked
# (acks_late) is delivered again after the visibility timeout. It must exceed the
# longest task (planning's 900 s hard limit) and the longest retry countdown (GitHub
# reports' 600 s back-off), or Redis would hand a running task to a second worker;
# the database reconcilers recover lost work sooner (planning lease, reconcile_*).
DELTACI_BROKER_VISIBILITY_TIMEOUT_SECONDS = env.int(
    "DELTACI_BROKER_VISIBILITY_TIMEOUT_SECONDS", default=1800
)
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": DELTACI_BROKER_VISIBILITY_TIMEOUT_SECONDS,
        "socket_connect_timeout": 2,  # an unreachable Redis fails a send fast, not in minutes
        "socket_timeout": 10,
    }
# A send retries briefly (about 0.5 s) and then fails; lib/dispatch.py logs it and
# the reconcilers send the work again, so a request never hangs on a dead broker.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}

# --- Artifact store ------------------------------------------------------------------
ARTIFACT_STORAGE = env.str("ARTIFACT_STORAGE", default="file")
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="deltaci-artifacts")
AWS_S3_ENDPOINT_URL = env.str("AWS_S3_ENDPOINT_URL", default="") or None
AWS_ACCESS_KEY_ID = env.str("AWS_ACCESS_KEY_ID", default="") or None
AWS_SECRET_ACCESS_KEY = env.str("AWS_SECRET_ACCESS_KEY", default="") or None
AWS_S3_REGION_NAME = env.str("AWS_S3_REGION_NAME", default="us-east-1")
ARTIFACT_DIR = Path(env.str("DELTACI_ARTIFACT_DIR", default=str(DATA_DIR / "artifacts")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "artifacts": (
        {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": AWS_STORAGE_BUCKET_NAME,
                "endpoint_url": AWS_S3_ENDPOINT_URL,
                "access_key": AWS_ACCESS_KEY_ID,
                "secret_key": AWS_SECRET_ACCESS_KEY,
                "region_name": AWS_S3_REGION_NAME,
                "querystring_expire": 900,
                "file_overwrite": True,
                # SigV4 signs the upload URL's If-None-Match (write-once artifacts).
                "signature_version": "s3v4",
            },
        }
        if ARTIFACT_STORAGE == "s3"
        else {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(ARTIFACT_DIR)},
        }
    ),
}

# --- Operational knobs (protocol.md defaults); per-repo values live in Policy ----------
DELTACI_LEASE_TTL_SECONDS = env.int("DELTACI_LEASE_TTL_SECONDS", default=120)
DELTACI_HEARTBEAT_INTERVAL_SECONDS = env.int("DELTACI_HEARTBEAT_INTERVAL_SECONDS", default=20)
DELTACI_ACK_TIMEOUT_SECONDS = env.int("DELTACI_ACK_TIMEOUT_SECONDS", default=30)
DELTACI_CANCEL_DEADLINE_SECONDS = env.int("DELTACI_CANCEL_DEADLINE_SECONDS", default=30)
DELTACI_JOB_TIMEOUT_SECONDS = env.int("DELTACI_JOB_TIMEOUT_SECONDS", default=3600)
DELTACI_RUN_TIMEOUT_SECONDS = env.int("DELTACI_RUN_TIMEOUT_SECONDS", default=7200)
DELTACI_MAX_CONCURRENT_LEASES = env.int("DELTACI_MAX_CONCURRENT_LEASES", default=1000)
DELTACI_MAX_CONCURRENT_JOBS = env.int("DELTACI_MAX_CONCURRENT_JOBS", default=50)
DELTACI_MAX_WAIT_SECONDS = env.int("DELTACI_MAX_WAIT_SECONDS", default=20)
DELTACI_JOB_RETRIES = env.int("DELTACI_JOB_RETRIES", default=0)
DELTACI_INFRA_RETRY_BUDGET = env.int("DELTACI_INFRA_RETRY_BUDGET", default=2)
DELTACI_LOG_RETENTION_DAYS = env.int("DELTACI_LOG_RETENTION_DAYS", default=30)
DELTACI_ARTIFACT_RETENTION_DAYS = env.int("DELTACI_ARTIFACT_RETENTION_DAYS", default=30)
DELTACI_MAX_LOG_BYTES = env.int("DELTACI_MAX_LOG_BYTES", default=64 * 1024 * 1024)
DELTACI_MAX_ARTIFACT_BYTES = env.int("DELTACI_MAX_ARTIFACT_BYTES", default=512 * 1024 * 1024)
DELTACI_MAX_BODY_BYTES = env.int("DELTACI_MAX_BODY_BYTES", default=256 * 1024)
DELTACI_MAX_LOG_CHUNK_BYTES = env.int("DELTACI_MAX_LOG_CHUNK_BYTES", default=1024 * 1024)
DELTACI_MAX_JOBS_PER_PLAN = env.int("DELTACI_MAX_JOBS_PER_PLAN", default=500)
DELTACI_MAX_CONFIG_BYTES = env.int("DELTACI_MAX_CONFIG_BYTES", default=256 * 1024)
DELTACI_ALLOWED_IMAGES = env.list("DELTACI_ALLOWED_IMAGES", default=["*"])
DELTACI_EGRESS_MODE = env.str("DELTACI_EGRESS_MODE", default="none")
DELTACI_EGRESS_ALLOW = env.list("DELTACI_EGRESS_ALLOW", default=[])
DELTACI_PLANNING_MODE = env.str("DELTACI_PLANNING_MODE", default="diff")
# Each git command on a mirror (a fetch above all) is killed after this long, with
# whatever it started; a waiter gives up on a mirror's lock after as long.
DELTACI_GIT_TIMEOUT_SECONDS = env.int("DELTACI_GIT_TIMEOUT_SECONDS", default=120)
DELTACI_MIRROR_DIR = Path(env.str("DELTACI_MIRROR_DIR", default=str(DATA_DIR / "mirrors")))
DELTACI_SUPERVISE_INTERVAL_SECONDS = env.int("DELTACI_SUPERVISE_INTERVAL_SECONDS", default=5)
# A planning task renews its lease every quarter of this; a run whose planner stopped
# renewing (worker killed) is planned again by the supervisor after it runs out.
DELTACI_PLANNING_LEASE_SECONDS = env.int("DELTACI_PLANNING_LEASE_SECONDS", default=60)
# Fernet key for secrets at rest; dev derives one from SECRET_KEY, prod must set it.
DELTACI_SECRETS_KEY = env.str("DELTACI_SECRETS_KEY", default="")

# --- GitHub ------------------------------------------------------------------------------
GITHUB_WEBHOOK_SECRET = env.str("GITHUB_WEBHOOK_SECRET", default="")
GITHUB_TOKEN = env.str("GITHUB_TOKEN", default="")
GITHUB_APP_ID = env.str("GITHUB_APP_ID", default="")
GITHUB_APP_PRIVATE_KEY = env.str("GITHUB_APP_PRIVATE_KEY", default="", multiline=True)
GITHUB_API_URL = env.str("GITHUB_API_URL", default="https://api.github.com").rstrip("/")
GITHUB_MAX_WEBHOOK_BYTES = env.int("GITHUB_MAX_WEBHOOK_BYTES", default=1024 * 1024)

# --- Metrics -------------------------------------------------------------------------------
DELTACI_METRICS_TOKEN = env.str("DELTACI_METRICS_TOKEN", default="")
# Empty by default: every scrape needs the token. Loopback is no proof of who asks when a
# reverse proxy on the same host forwards the world's requests.
DELTACI_METRICS_ALLOWED_NETWORKS = env.list("DELTACI_METRICS_ALLOWED_NETWORKS", default=[])

# --- Advisory AI failure analysis (off unless a provider URL is set) ----------------------
# An OpenAI-compatible chat-completions API: a hosted service or a self-hosted server.
DELTACI_AI_URL = env.str("DELTACI_AI_URL", default="")
DELTACI_AI_API_KEY = env.str("DELTACI_AI_API_KEY", default="")
DELTACI_AI_MODEL = env.str("DELTACI_AI_MODEL", default="")
DELTACI_AI_TIMEOUT_SECONDS = env.float("DELTACI_AI_TIMEOUT_SECONDS", default=30.0)
DELTACI_AI_MAX_INPUT_BYTES = env.int("DELTACI_AI_MAX_INPUT_BYTES", default=16 * 1024)
DELTACI_AI_DAILY_REQUEST_LIMIT = env.int("DELTACI_AI_DAILY_REQUEST_LIMIT", default=500)
DELTACI_AI_BREAKER_FAILURES = env.int("DELTACI_AI_BREAKER_FAILURES", default=5)
DELTACI_AI_BREAKER_SECONDS = env.int("DELTACI_AI_BREAKER_SECONDS", default=300)
# Host names under these suffixes are redacted too (besides .internal, .local, .corp, …).
DELTACI_AI_INTERNAL_DOMAINS = env.list("DELTACI_AI_INTERNAL_DOMAINS", default=[])

# --- Queue depth for autoscalers (GET /api/v1/runners/queue-depth; off while empty) --------
DELTACI_QUEUE_TOKEN = env.str("DELTACI_QUEUE_TOKEN", default="")
# Failed logins and API tokens (apps/audit/authfail.py): counted per account name and per
# client address over a window; past a limit, attempts are refused without checking.
DELTACI_AUTH_FAILURE_WINDOW_SECONDS = env.int("DELTACI_AUTH_FAILURE_WINDOW_SECONDS", default=900)
DELTACI_AUTH_MAX_FAILURES_PER_USER = env.int("DELTACI_AUTH_MAX_FAILURES_PER_USER", default=10)
DELTACI_AUTH_MAX_FAILURES_PER_IP = env.int("DELTACI_AUTH_MAX_FAILURES_PER_IP", default=50)
# Shared by every process when Redis is there (the failure counts above); else per process.
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "deltaci-cache",
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Lifetime of a user's API token unless its creator sets another (create_api_token --days).
DELTACI_API_TOKEN_DAYS = env.int("DELTACI_API_TOKEN_DAYS", default=90)

# --- REST framework ---------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "apps.apitokens.auth.ApiTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON only, depth-bounded (lib/jsonsafe.py): deep nesting is a 400, never a 500.
    "DEFAULT_PARSER_CLASSES": ["lib.api_errors.StrictJSONParser"],
    "EXCEPTION_HANDLER": "lib.api_errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# The OpenAPI schema of the run API and the runner protocol: /api/schema/, browsable at
# /api/docs/ (Swagger UI), its assets served from drf-spectacular-sidecar (no CDN; Redoc
# is left out: its page loads web fonts from the internet).
SPECTACULAR_SETTINGS = {
    "TITLE": "Delta CI API",
    "DESCRIPTION": "The run API (/api/v1/runs) and the runner protocol (/api/v1/internal, "
    '/api/v1/runners/register). Errors are {"error": {"code", "message", "details"}}.',
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"ArtifactTypeEnum": "apps.artifacts.models.ArtifactType.values"},
}

# --- Logging: one JSON object per line -------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "lib.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

if DELTACI_ENV != "dev":
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_CONTENT_TYPE_NOSNIFF = True
