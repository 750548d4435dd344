"""Rediska settings: one module, typed environment reading, embedded defaults.

With no environment set the app runs on SQLite, a local search index, local
folders and a Celery broker that needs no server, all under DATA_DIR.
MYSQL_URL, REDIS_URL and ELASTIC_URL switch each part to a real server.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file() and not os.environ.get("REDISKA_IGNORE_DOTENV"):
    environ.Env.read_env(BASE_DIR / ".env")


def _path(name: str, default: Path) -> Path:
    value = env.str(name, default="")
    path = Path(value) if value else default
    return path if path.is_absolute() else (BASE_DIR / path)


def _positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    if value < 0 or (value == 0 and not allow_zero):
        raise ImproperlyConfigured(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return value


def _int(name: str, default: int, *, allow_zero: bool = False) -> int:
    try:
        value = env.int(name, default=default)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer") from None
    return int(_positive(name, value, allow_zero=allow_zero))


def _float(name: str, default: float, *, allow_zero: bool = False) -> float:
    try:
        value = env.float(name, default=default)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number") from None
    return _positive(name, value, allow_zero=allow_zero)


def _secret_file(path: Path, make) -> str:
    """Read a generated secret, creating it once with 0600 permissions."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    value = make()
    # O_EXCL: if two processes start at once, one wins and the other re-reads.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


# --- Folders -----------------------------------------------------------------
DATA_DIR = _path("DATA_DIR", BASE_DIR / "var")
ATTACHMENTS_PATH = _path("ATTACHMENTS_PATH", DATA_DIR / "attachments")
BACKUPS_PATH = _path("BACKUPS_PATH", DATA_DIR / "backups")
for _dir in (DATA_DIR, ATTACHMENTS_PATH, DATA_DIR / "static"):
    _dir.mkdir(parents=True, exist_ok=True)

# --- Secrets -----------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or _secret_file(
    DATA_DIR / "secret_key", lambda: secrets.token_urlsafe(50)
)
# The credentials key encrypts provider refresh tokens (AES-256-GCM): 32 bytes,
# urlsafe-base64 in the environment or in DATA_DIR/credentials.key.
_credentials_key_b64 = env.str("ENCRYPTION_KEY", default="") or _secret_file(
    DATA_DIR / "credentials.key", lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
)
try:
    CREDENTIALS_KEY = base64.urlsafe_b64decode(_credentials_key_b64.encode())
except (ValueError, TypeError):
    CREDENTIALS_KEY = b""
if len(CREDENTIALS_KEY) != 32:
    raise ImproperlyConfigured("ENCRYPTION_KEY must be 32 bytes, urlsafe-base64 encoded (44 characters).")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "rediska.local"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- Applications ------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "rediska",
    "identities",
    "inbox",
    "leads",
    "agents",
    "search",
    "today",
]

MIDDLEWARE = [
    "rediska.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "rediska.middleware.SecurityHeadersMiddleware",
]

ROOT_URLCONF = "rediska.urls"
WSGI_APPLICATION = "rediska.wsgi.application"

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
                "rediska.context_processors.rediska",
                "today.context_processors.nav",
            ],
        },
    },
]

# --- Database ----------------------------------------------------------------
MYSQL_URL = env.str("MYSQL_URL", default="")
if MYSQL_URL:
    if urlsplit(MYSQL_URL).scheme not in {"mysql", "mysql2", "mysqlgis", "mariadb"}:
        raise ImproperlyConfigured("MYSQL_URL must look like mysql://user:password@host:3306/dbname")
    _db = env.db_url_config(MYSQL_URL.replace("mariadb://", "mysql://", 1))
    _db["OPTIONS"] = {
        "charset": "utf8mb4",
        # Strict mode: bad values are errors, never silently truncated.
        "init_command": "SET sql_mode='STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,"
        "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION', time_zone='+00:00'",
        # time_zone: Django stores UTC; the database's NOW() (job heartbeats) must be UTC too.
        # READ COMMITTED: no gap locks on bulk upserts, fresh reads inside long jobs.
        "isolation_level": "read committed",
    }
    _db["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
    _db["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    _db["CONN_HEALTH_CHECKS"] = True
    DATABASES = {"default": _db}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "rediska.sqlite3",
            "OPTIONS": {
                # WAL lets the web process read while the worker writes.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            "TEST": {"NAME": None},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, cache, Celery ----------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL and urlsplit(REDIS_URL).scheme not in {"redis", "rediss", "unix"}:
    raise ImproperlyConfigured("REDIS_URL must look like redis://host:6379/0")

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "KEY_PREFIX": "rediska"}}
    _broker_default = REDIS_URL
    _results_default = REDIS_URL
else:
    # The file cache is shared by the web process and the worker (login
    # throttling, rate limits), unlike the per-process memory cache.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                          "LOCATION": str(DATA_DIR / "cache")}}
    _broker_default = "filesystem://"
    _results_default = f"file://{DATA_DIR / 'celery-results'}"

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=_broker_default)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=_results_default)
if CELERY_BROKER_URL == "filesystem://":
    _queue_dir = DATA_DIR / "celery-broker"
    for _sub in ("processed", "control"):
        (_queue_dir / _sub).mkdir(parents=True, exist_ok=True)
    (DATA_DIR / "celery-results").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_queue_dir / "processed"),
        # Broadcast/pidbox exchanges; kombu's default is ./control in the cwd.
        "control_folder": str(_queue_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_ACKS_LATE = True  # a killed worker's task is redelivered; the ledger makes reruns safe
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")

# Surviving crashes (issue 16).  A running job beats every quarter of this many
# seconds; one silent for longer is taken for lost and resumed by the reaper
# (rediska.jobs.reap_stale_jobs, on beat every quarter too).
JOBS_HEARTBEAT_TIMEOUT = _float("JOBS_HEARTBEAT_TIMEOUT", 120.0)
# A pool process killed mid-task (OOM) puts its message back instead of acking it.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Liveness is the heartbeat's job, not the broker's.  Redis' visibility timeout is
# only the backstop for a message lost with a worker, and must outlast the longest
# retry countdown (rediska.jobs.BACKOFF_CAP_SECONDS, 1 h) or a waiting retry is
# delivered twice.  The filesystem broker has no redelivery at all: the reaper
# resends what a killed worker took with it, so both brokers end the same way.
if CELERY_BROKER_URL.startswith(("redis://", "rediss://", "unix://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600 + 600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

SYNC_INTERVAL_SECONDS = _int("SYNC_INTERVAL_SECONDS", 120)
WATCH_TICK_SECONDS = _int("WATCH_TICK_SECONDS", 60)
BACKUP_HOUR_UTC = _int("BACKUP_HOUR_UTC", 3, allow_zero=True)
BACKUP_KEEP = _int("BACKUP_KEEP", 7)
# Where backups go (rediska/backups/targets.py); only "local" (BACKUPS_PATH) ships.
BACKUP_TARGET = env.str("BACKUP_TARGET", default="local")
# A cap on the bytes one backup may write (a quota; 0 = only the disk's own limit).
BACKUP_MAX_BYTES = _int("BACKUP_MAX_BYTES", 0, allow_zero=True)

# Data export import (issue 12): uploads wait under DATA_DIR until their import
# finishes; the caps refuse ZIP bombs and files no export is.
EXPORT_UPLOADS_PATH = _path("EXPORT_UPLOADS_PATH", DATA_DIR / "exports")
EXPORT_MAX_UPLOAD_BYTES = _int("EXPORT_MAX_UPLOAD_BYTES", 4 * 2**30)
EXPORT_MAX_UNCOMPRESSED_BYTES = _int("EXPORT_MAX_UNCOMPRESSED_BYTES", 20 * 2**30)
EXPORT_MAX_MEMBERS = _int("EXPORT_MAX_MEMBERS", 1000)
EXPORT_MAX_RATIO = _int("EXPORT_MAX_RATIO", 100)

# --- Search, LLM -------------------------------------------------------------
ELASTIC_URL = env.str("ELASTIC_URL", default="")
ELASTIC_INDEX = env.str("ELASTIC_INDEX", default="rediska-content")
SEARCH_INDEX_PATH = _path("SEARCH_INDEX_PATH", DATA_DIR / "search-index.sqlite3")
# Meaning matches less similar than this cosine are not shown (0 = the nearest are always shown);
# what counts as "related" depends on the embeddings model, so it is a setting.
SEARCH_MIN_SIMILARITY = _float("SEARCH_MIN_SIMILARITY", 0.0, allow_zero=True)
if SEARCH_MIN_SIMILARITY >= 1:
    raise ImproperlyConfigured("SEARCH_MIN_SIMILARITY must be a cosine below 1 (e.g. 0.5)")

INFERENCE_URL = env.str("INFERENCE_URL", default="")
INFERENCE_MODEL = env.str("INFERENCE_MODEL", default="local")
INFERENCE_API_KEY = env.str("INFERENCE_API_KEY", default="")
EMBEDDINGS_URL = env.str("EMBEDDINGS_URL", default="")
EMBEDDINGS_MODEL = env.str("EMBEDDINGS_MODEL", default="local-embeddings")
EMBEDDINGS_API_KEY = env.str("EMBEDDINGS_API_KEY", default="")
EMBEDDINGS_DIMS = _int("EMBEDDINGS_DIMS", 1024)
LLM_TIMEOUT_SECONDS = _float("LLM_TIMEOUT_SECONDS", 120.0)
LLM_MAX_RETRIES = _int("LLM_MAX_RETRIES", 3, allow_zero=True)
LLM_CONTEXT_TOKENS = _int("LLM_CONTEXT_TOKENS", 6000)
# Issue 14 (real local models, "Ask your archive"): a reply cut at its token limit is
# reported, not stored; this raises every operation's own limit (0 = their defaults).
LLM_MAX_REPLY_TOKENS = _int("LLM_MAX_REPLY_TOKENS", 0, allow_zero=True)

# --- Today: notifications and background scoring (issue 15) ------------------
# Apprise URLs (ntfy://, mailto://, tgram://, json://…), separated by spaces or
# new lines; a malformed one is reported by `manage.py check` and the test
# button, never by a failed sync.  Empty: no notifications.
NOTIFY_URLS = env.str("NOTIFY_URLS", default="").split()
NOTIFY_EVENTS = frozenset(e.strip() for e in env.list("NOTIFY_EVENTS", default=["reply", "lead", "backup"]) if e.strip())
if not NOTIFY_EVENTS <= {"reply", "lead", "backup"}:
    raise ImproperlyConfigured("NOTIFY_EVENTS must list some of: reply, lead, backup")
NOTIFY_LEAD_MIN_SCORE = _int("NOTIFY_LEAD_MIN_SCORE", 80, allow_zero=True)
if NOTIFY_LEAD_MIN_SCORE > 100:
    raise ImproperlyConfigured("NOTIFY_LEAD_MIN_SCORE must be a score from 0 to 100")
# 0: one message per event; N: at most one message per N minutes with everything since the last.
NOTIFY_DIGEST_MINUTES = _int("NOTIFY_DIGEST_MINUTES", 0, allow_zero=True)
if NOTIFY_DIGEST_MINUTES > 1440:
    raise ImproperlyConfigured("NOTIFY_DIGEST_MINUTES must be at most 1440 (a day)")
NOTIFY_TIMEOUT_SECONDS = _float("NOTIFY_TIMEOUT_SECONDS", 10.0)
# A watch's new leads are scored this long after they are found, so clicks go first.
AUTO_SCORE_DELAY_SECONDS = _int("AUTO_SCORE_DELAY_SECONDS", 30, allow_zero=True)

# --- Providers ---------------------------------------------------------------
# Generic limits shared by every identity of one provider app.  0 QPM = no limit.
PROVIDER_RATE_QPM_DEFAULT = _int("PROVIDER_RATE_QPM_DEFAULT", 100, allow_zero=True)
PROVIDER_RATE_CONCURRENCY_DEFAULT = _int("PROVIDER_RATE_CONCURRENCY_DEFAULT", 4)
PROVIDER_RATE_BURST_FACTOR = _float("PROVIDER_RATE_BURST_FACTOR", 1.0)
# Pacing that protects the personas (workflow): first messages to new people per
# identity and calendar day (TIME_ZONE), stricter while the account is young.  An
# identity's own cap (identity page) replaces both.  Replies are never capped.
PACING_FIRST_MESSAGES_PER_DAY = _int("PACING_FIRST_MESSAGES_PER_DAY", 10, allow_zero=True)
PACING_NEW_ACCOUNT_FIRST_MESSAGES_PER_DAY = _int("PACING_NEW_ACCOUNT_FIRST_MESSAGES_PER_DAY", 3, allow_zero=True)
PACING_NEW_ACCOUNT_DAYS = _int("PACING_NEW_ACCOUNT_DAYS", 30, allow_zero=True)
# Provider-specific settings (PROVIDER_<NAME>_*) are copied as strings; each
# provider package parses and validates its own, so this module names none.
for _key, _value in os.environ.items():
    if _key.startswith("PROVIDER_") and not _key.startswith("PROVIDER_RATE_"):
        globals()[_key] = _value

# --- Auth & security ---------------------------------------------------------
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
LOGIN_THROTTLE_ATTEMPTS = _int("LOGIN_THROTTLE_ATTEMPTS", 5)
LOGIN_THROTTLE_WINDOW_SECONDS = _int("LOGIN_THROTTLE_WINDOW_SECONDS", 15 * 60)

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 14 * 24 * 3600
CSRF_COOKIE_SAMESITE = "Lax"
# Behind nginx (TLS terminated there) the cookies are Secure; plain local http works.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
# Not "no-referrer": with it Chromium sends `Origin: null` on form posts and Django's CSRF check
# refuses every one; "same-origin" still gives other sites no referrer.
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_HSTS_SECONDS = 31536000 if SESSION_COOKIE_SECURE else 0
# `check --deploy` (issue 16): what nginx owns in the compose stack, silenced here with the reason.
SILENCED_SYSTEM_CHECKS = [
    # SECURE_SSL_REDIRECT: nginx's port 80 answers every plain-HTTP request with a 301 to
    # HTTPS.  Django redirecting too would send the web container's own health check
    # (http://localhost:8000/healthz, no proxy header) to an https:// port that is not there.
    "security.W008",
    # HSTS includeSubDomains / preload: nginx sends the spec §4 header (max-age=31536000,
    # no more).  A LAN name like rediska.local has no public subdomains to cover and
    # cannot be on the browsers' preload list.
    "security.W005",
    "security.W021",
]
# Spec §4: nginx caps bodies at 12 MB; Django refuses more than that too.
DATA_UPLOAD_MAX_MEMORY_SIZE = 12 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 2000

# --- I18n, static ------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"
# WhiteNoise serves static files from the app folders (no collectstatic step).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Logging -----------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
if LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured("LOG_FORMAT must be 'json' or 'text'")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "rediska.logging.ContextFilter"}},
    "formatters": {
        "json": {"()": "rediska.logging.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s %(job_id)s] %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "prawcore": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "elastic_transport": {"level": "WARNING"},
        "apprise": {"level": "WARNING"},
    },
}
