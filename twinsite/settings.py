"""Twinsite settings, all from environment variables with safe development defaults.

Production sets DEBUG=0, SECRET_KEY, ALLOWED_HOSTS and DATABASE_URL; everything else
has a default that works on a developer machine with the services from `make setup`.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: str) -> bool:
    return os.environ.get(name, default).strip().lower() in ("1", "true", "yes", "on")


def envint(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# Off unless asked for: `make run` and the test settings turn development mode on explicitly.
DEBUG = envbool("DEBUG", "0")
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise RuntimeError("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105 (DEBUG only)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "axes",
    "accounts",
    "ingestion",
    "features",
    "training",
    "chat",
    "django_prometheus",  # request and database metrics for /metrics (twinsite/metrics.py)
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",  # first and (nearly) last: times the whole request
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "core.middleware.ServiceUnavailableMiddleware",  # the database or the queue down: 503, not a traceback
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lockout flagged during login into a 429
]

ROOT_URLCONF = "twinsite.urls"
WSGI_APPLICATION = "twinsite.wsgi.application"
ASGI_APPLICATION = "twinsite.asgi.application"

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
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/twinsite"),
        conn_max_age=envint("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,  # a kept connection that died (a database restart) is replaced, not used
    )
}
# django-prometheus's PostgreSQL backend is Django's, counting queries and errors for /metrics.
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "twinsite"),
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Axes first: it refuses a locked-out caller before any password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "twinsite" / "static"]
WHITENOISE_USE_FINDERS = DEBUG

# Everything the pipelines write (uploads, datasets, adapters, model cache) lives here.
TWIN_DATA_DIR = Path(os.environ.get("TWIN_DATA_DIR", BASE_DIR / "var")).resolve()
MEDIA_ROOT = TWIN_DATA_DIR / "uploads"  # never served: uploads are private
MEDIA_URL = "/private-media-not-served/"
TWIN_MODEL_CACHE = Path(os.environ.get("TWIN_MODEL_CACHE", TWIN_DATA_DIR / "models")).resolve()

# Models. "smollm2" is the packaged SmolLM2-135M-Instruct; "tiny" is a random model
# of the same architecture with the real tokenizer (tests); anything else is a local
# directory or a hub id (for machines that can reach a hub).
TWIN_BASE_MODEL = os.environ.get("TWIN_BASE_MODEL", "smollm2")
TWIN_EMBEDDING_MODEL = os.environ.get("TWIN_EMBEDDING_MODEL", "packaged")
TWIN_EMBEDDING_DIM = 384  # fixed by the Chunk.embedding column; a new model needs a migration
# Packaged models never need the hub: stay offline so nothing waits on an unreachable host, unless
# adapters are pushed to a Hub repository (TWIN_HF_TOKEN, below), which needs it reachable.
_all_local = TWIN_BASE_MODEL in ("smollm2", "tiny") and TWIN_EMBEDDING_MODEL == "packaged"
_hub_push = bool(os.environ.get("TWIN_HF_TOKEN") and os.environ.get("TWIN_HF_REPO_PREFIX"))
os.environ.setdefault("HF_HUB_OFFLINE", "1" if _all_local and not _hub_push else "0")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # tokenizers must not fork-deadlock in Celery

# Limits on user input (bytes, seconds, counts).
TWIN_MAX_UPLOAD_BYTES = envint("TWIN_MAX_UPLOAD_BYTES", 2 * 1024 * 1024)
TWIN_MAX_DOWNLOAD_BYTES = envint("TWIN_MAX_DOWNLOAD_BYTES", 5 * 1024 * 1024)
TWIN_FETCH_TIMEOUT = envint("TWIN_FETCH_TIMEOUT", 15)
TWIN_FETCH_MAX_REDIRECTS = envint("TWIN_FETCH_MAX_REDIRECTS", 5)
TWIN_MAX_DOCUMENT_CHARS = envint("TWIN_MAX_DOCUMENT_CHARS", 500_000)
TWIN_MAX_SOURCES_PER_USER = envint("TWIN_MAX_SOURCES_PER_USER", 200)
TWIN_MAX_STORED_BYTES = envint("TWIN_MAX_STORED_BYTES", 2 * 1024**3)  # files and document text, per user
TWIN_MAX_RUNS_PER_DAY = envint("TWIN_MAX_RUNS_PER_DAY", 10)  # training runs a user may start in 24 hours
# Retention (training.retention, daily from beat): what the pipelines may delete when it is old.
TWIN_KEEP_DATASET_VERSIONS = envint("TWIN_KEEP_DATASET_VERSIONS", 3)  # per user, besides any a run trained on
TWIN_KEEP_FAILED_CHECKPOINTS_DAYS = envint("TWIN_KEEP_FAILED_CHECKPOINTS_DAYS", 7)  # a failed run resumes from them
TWIN_KEEP_REJECTED_ADAPTERS_DAYS = envint("TWIN_KEEP_REJECTED_ADAPTERS_DAYS", 7)
TWIN_MAX_QUESTION_CHARS = envint("TWIN_MAX_QUESTION_CHARS", 2000)
# The history an OpenAI client sends with a question is stored with the conversation (and counted in
# TWIN_MAX_STORED_BYTES): at most this many earlier messages, of at most this many characters together.
TWIN_MAX_HISTORY_MESSAGES = envint("TWIN_MAX_HISTORY_MESSAGES", 50)
TWIN_MAX_HISTORY_CHARS = envint("TWIN_MAX_HISTORY_CHARS", 20_000)
# Hosts that the crawler may fetch even though they resolve to private addresses
# (tests serve pages on loopback; an intranet blog could be added here). Their ports are
# checked all the same (80, 443, TWIN_CRAWL_ALLOWED_PORTS): never the app's own.
TWIN_CRAWL_ALLOWED_HOSTS = envlist("TWIN_CRAWL_ALLOWED_HOSTS", "")

# Retrieval and generation.
TWIN_RETRIEVAL_TOP_K = envint("TWIN_RETRIEVAL_TOP_K", 5)
TWIN_MAX_NEW_TOKENS = envint("TWIN_MAX_NEW_TOKENS", 120)
# Grounded answers (chat/actions.py): the question's best sentences go into the prompt, decoding
# favours continuing them, and a question whose best note is below the similarity floor gets
# "no notes on that" instead of an invented answer. Calibrated with `make bench` (bench/grounding.py).
# Three notes, not two: the fact is often the third-best sentence ("I was paying £17 a kilo for
# them.", under two other prices per kilo that MiniLM finds closer), and steering states all three in order
# (dev3 32 -> 36 of 48; with the fact's sentence given, generation stated it in 271 of 272 tries).
TWIN_EVIDENCE_SENTENCES = envint("TWIN_EVIDENCE_SENTENCES", 3)
TWIN_COPY_BONUS = float(os.environ.get("TWIN_COPY_BONUS", "6"))  # logits added to continue the evidence
TWIN_START_BONUS = float(os.environ.get("TWIN_START_BONUS", "7"))  # to open like the best note
TWIN_NOTES_MIN_SIMILARITY = float(os.environ.get("TWIN_NOTES_MIN_SIMILARITY", "0.36"))
# One sentence per note: a small model invents filler after them.
TWIN_MAX_SENTENCES = envint("TWIN_MAX_SENTENCES", TWIN_EVIDENCE_SENTENCES)
# Write mode (chat/writing.py): the brief's closest notes as background, sampled decoding, and the copy
# guard: no run of TWIN_COPY_GUARD_NGRAM tokens of the owner's corpus may be completed (numbers and
# names excepted). Measured by bench/writing.py; every caller takes them through GroundingConfig.
TWIN_WRITE_NOTES = envint("TWIN_WRITE_NOTES", 3)
TWIN_COPY_GUARD_NGRAM = envint("TWIN_COPY_GUARD_NGRAM", 8)
TWIN_WRITE_TEMPERATURE = float(os.environ.get("TWIN_WRITE_TEMPERATURE", "0.7"))
TWIN_MAX_ALTERNATIVES = envint("TWIN_MAX_ALTERNATIVES", 3)
TWIN_HISTORY_TOKENS = envint("TWIN_HISTORY_TOKENS", 256)  # earlier turns kept in the prompt
TWIN_TORCH_THREADS = envint("TWIN_TORCH_THREADS", 0)  # 0: torch's default
# The owner's view of the audience (chat/audience.py): an answer counts as grounded when at least this
# share of what it says is supported by the notes (the chat page's "good" band); unanswered questions
# ("no notes") are grouped by topic by average-linkage clustering of their embeddings, a group's
# questions at least this cosine similarity to each other on average (MiniLM: rephrasings of one
# question score 0.4-0.9, questions on different subjects mostly under 0.3; tests/chat/test_unanswered.py).
TWIN_AUDIENCE_GROUNDED_SCORE = float(os.environ.get("TWIN_AUDIENCE_GROUNDED_SCORE", "0.8"))
TWIN_UNANSWERED_SIMILARITY = float(os.environ.get("TWIN_UNANSWERED_SIMILARITY", "0.4"))
TWIN_UNANSWERED_MAX_QUESTIONS = envint("TWIN_UNANSWERED_MAX_QUESTIONS", 300)  # the most recent, grouped
TWIN_AUDIENCE_CHART_DAYS = envint("TWIN_AUDIENCE_CHART_DAYS", 30)
# Serving: answers are generated by the workers of queue "serve" (chat/tasks.py), never in a web
# request thread; the web follows them through Redis. Each serve worker decodes up to TWIN_SERVE_BATCH
# answers as one batch (chat/llm.py): its Celery pool has as many threads (Procfile), each following
# one answer, and a new answer joins the batch at the next token. Beyond the batches, questions wait
# in line (the serve queue; the chat page shows each its place) and are refused as "busy" (503) only
# past TWIN_MAX_ANSWERS_IN_FLIGHT, derived from measured throughput:
#   in flight = workers x (batch rows + answers a minute x TWIN_ANSWER_WAIT_SECONDS / 60)
# that is, the rows being decoded plus a line that the workers clear within TWIN_ANSWER_WAIT_SECONDS
# (an answer not started by then is dropped as busy, so a longer line would only fail later).
# TWIN_SERVE_ANSWERS_PER_MINUTE is one worker's answers a minute with a full batch, as bench/serving
# measures it on the serving machine (SmolLM2-135M, 2 cores, 8 askers: 35.4, 36.1 and 36.8 in three
# runs of 2026-12-08, see bench/README.md "serving").
# Each answer in flight holds a web thread while its page follows it: the web has TWIN_WEB_THREADS.
TWIN_SERVE_BATCH = envint("TWIN_SERVE_BATCH", 8)
TWIN_SERVE_WORKERS = envint("TWIN_SERVE_WORKERS", 1)  # serve workers on the queue, all machines together
TWIN_SERVE_ANSWERS_PER_MINUTE = envint("TWIN_SERVE_ANSWERS_PER_MINUTE", 36)
TWIN_ANSWER_WAIT_SECONDS = envint("TWIN_ANSWER_WAIT_SECONDS", 60)  # not started by then: dropped as busy
TWIN_WEB_THREADS = envint("TWIN_WEB_THREADS", 64)
TWIN_MAX_ANSWERS_IN_FLIGHT = envint(  # site-wide; beyond it: "busy" (503)
    "TWIN_MAX_ANSWERS_IN_FLIGHT",
    min(
        TWIN_SERVE_WORKERS * (TWIN_SERVE_BATCH + TWIN_SERVE_ANSWERS_PER_MINUTE * TWIN_ANSWER_WAIT_SECONDS // 60),
        TWIN_WEB_THREADS * 3 // 4,  # a quarter of the web threads stays free for pages and the API
    ),
)
TWIN_MAX_PENDING_ANSWERS_PER_USER = envint("TWIN_MAX_PENDING_ANSWERS_PER_USER", 2)  # beyond it: 429
TWIN_CHAT_RETRY_AFTER_SECONDS = envint("TWIN_CHAT_RETRY_AFTER_SECONDS", 10)  # the Retry-After of a busy answer
# The Retry-After of a 503 when the database or the task queue cannot be reached (core/middleware.py).
TWIN_UNAVAILABLE_RETRY_AFTER_SECONDS = envint("TWIN_UNAVAILABLE_RETRY_AFTER_SECONDS", 15)
TWIN_ANSWER_SOFT_TIME_LIMIT = envint("TWIN_ANSWER_SOFT_TIME_LIMIT", 120)  # one answer's generation
TWIN_ANSWER_TIME_LIMIT = envint("TWIN_ANSWER_TIME_LIMIT", 150)
# Answer streams (SSE) a user may hold open at once, each a web thread; beyond it: 429. A stream
# counts for at most TWIN_STREAM_SLOT_SECONDS (longer than any answer takes), so a killed web
# process cannot leak the count.
TWIN_MAX_STREAMS_PER_USER = envint("TWIN_MAX_STREAMS_PER_USER", 3)
TWIN_STREAM_SLOT_SECONDS = envint("TWIN_STREAM_SLOT_SECONDS", TWIN_ANSWER_WAIT_SECONDS + TWIN_ANSWER_TIME_LIMIT + 30)
# Visitors of a published twin (the public page and the widget, chat/visitors.py): their answers
# in flight, per visitor, per twin and for all visitors together (a share of the site's: the owners'
# own questions always find room), and their streams (per visitor id). One per twin: with answers
# made one at a time (one serve worker), a flooded twin's owner waits behind at most one visitor answer.
TWIN_MAX_PENDING_ANSWERS_PER_VISITOR = envint("TWIN_MAX_PENDING_ANSWERS_PER_VISITOR", 1)  # beyond it: 429
TWIN_MAX_VISITOR_ANSWERS_PER_TWIN = envint("TWIN_MAX_VISITOR_ANSWERS_PER_TWIN", 1)  # beyond it: 503
TWIN_MAX_VISITOR_ANSWERS_IN_FLIGHT = envint("TWIN_MAX_VISITOR_ANSWERS_IN_FLIGHT", TWIN_MAX_ANSWERS_IN_FLIGHT // 2)
TWIN_MAX_STREAMS_PER_VISITOR = envint("TWIN_MAX_STREAMS_PER_VISITOR", 2)

# Training defaults: short, so a CPU run of the demo twin takes minutes.
# Training budget: epochs over the twin's data, capped in steps. Unset, each base model's
# measured defaults apply (training/hyperparameters.py); staff can change them per run.
TWIN_TRAIN_EPOCHS = float(os.environ["TWIN_TRAIN_EPOCHS"]) if os.environ.get("TWIN_TRAIN_EPOCHS") else None
TWIN_TRAIN_MAX_STEPS = envint("TWIN_TRAIN_MAX_STEPS", 0) or None
TWIN_TRAIN_BATCH_SIZE = envint("TWIN_TRAIN_BATCH_SIZE", 0) or None
TWIN_TRAIN_MAX_SEQ_LEN = envint("TWIN_TRAIN_MAX_SEQ_LEN", 0) or None
# Evaluation gate: the metrics a candidate must win on against production (or the base model).
TWIN_GATE_METRICS = [
    m for m in os.environ.get("TWIN_GATE_METRICS", "perplexity,style,similarity,copy_rate,grounding").split(",") if m
]
TWIN_GATE_STYLE_TOLERANCE = float(os.environ.get("TWIN_GATE_STYLE_TOLERANCE", "0.02"))
# A first version's perplexity must be under this share of the base model's (later ones: under production's).
TWIN_GATE_FIRST_PERPLEXITY_RATIO = float(os.environ.get("TWIN_GATE_FIRST_PERPLEXITY_RATIO", "0.95"))
TWIN_GATE_SIMILARITY_FLOOR = float(os.environ.get("TWIN_GATE_SIMILARITY_FLOOR", "0.8"))
TWIN_GATE_MAX_COPY_RATE = float(os.environ.get("TWIN_GATE_MAX_COPY_RATE", "0.25"))
TWIN_GATE_GENERATIONS = envint("TWIN_GATE_GENERATIONS", 8)
TWIN_GATE_MAX_NEW_TOKENS = envint("TWIN_GATE_MAX_NEW_TOKENS", 96)
TWIN_GATE_GROUNDING_QUESTIONS = envint("TWIN_GATE_GROUNDING_QUESTIONS", 6)  # held-out questions per model
# Optional push of approved adapters to a private Hugging Face Hub repository.
TWIN_HF_TOKEN = os.environ.get("TWIN_HF_TOKEN", "")
TWIN_HF_REPO_PREFIX = os.environ.get("TWIN_HF_REPO_PREFIX", "")  # "org/twinsite-"; the twin's id is appended
TWIN_HF_ENDPOINT = os.environ.get("TWIN_HF_ENDPOINT", "https://huggingface.co")  # pushes, and deletion with the account
TWIN_AUTO_TRAIN_MIN_SAMPLES = envint("TWIN_AUTO_TRAIN_MIN_SAMPLES", 8)  # new samples since the last run
TWIN_AUTO_TRAIN_SETTLE_SECONDS = envint("TWIN_AUTO_TRAIN_SETTLE_SECONDS", 60)

# Datasets. A preference (DPO) dataset pairs the author's passages with a model's answers to the
# same prompts (features/preference.py): built on request (dataset page, API), or after every new
# instruct version with TWIN_PREFERENCE_AUTO=1 (off by default: on a CPU-only machine its generation
# shares the one "gpu" worker with training).
TWIN_PREFERENCE_AUTO = envbool("TWIN_PREFERENCE_AUTO", "0")
TWIN_PREFERENCE_MAX_PAIRS = envint("TWIN_PREFERENCE_MAX_PAIRS", 48)  # the base model takes seconds per answer
TWIN_PREFERENCE_MAX_NEW_TOKENS = envint("TWIN_PREFERENCE_MAX_NEW_TOKENS", 64)
# Optional OpenAI-compatible endpoint that writes instructions and rejected answers (features/generators.py);
# off unless a base URL is set, e.g. http://127.0.0.1:8001/v1.
TWIN_GENERATOR_BASE_URL = os.environ.get("TWIN_GENERATOR_BASE_URL", "")
TWIN_GENERATOR_MODEL = os.environ.get("TWIN_GENERATOR_MODEL", "")
TWIN_GENERATOR_API_KEY = os.environ.get("TWIN_GENERATOR_API_KEY", "")
TWIN_GENERATOR_TIMEOUT = envint("TWIN_GENERATOR_TIMEOUT", 60)

# Celery: tasks take ids and are idempotent, so late acks make a killed worker safe.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "training.tasks.train_model": {"queue": "gpu"},
    "training.tasks.build_preference_dataset": {"queue": "gpu"},
    "chat.tasks.generate_answer": {"queue": "serve"},
    "training.tasks.run_evaluation": {"queue": "default"},
}
# Every task has a time limit: a pathological input fails its job (the soft limit raises
# inside the task, whose handler marks the job failed) instead of holding a worker forever.
# Training takes hours, so it gets its own, below the visibility timeout: a run is over
# before Redis would hand its message to another worker.
CELERY_TASK_SOFT_TIME_LIMIT = envint("CELERY_TASK_SOFT_TIME_LIMIT", 30 * 60)
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", 35 * 60)
TWIN_TRAIN_SOFT_TIME_LIMIT = envint("TWIN_TRAIN_SOFT_TIME_LIMIT", 5 * 3600)
TWIN_TRAIN_TIME_LIMIT = envint("TWIN_TRAIN_TIME_LIMIT", 5 * 3600 + 15 * 60)
CELERY_TASK_ANNOTATIONS = {
    "training.tasks.train_model": {"soft_time_limit": TWIN_TRAIN_SOFT_TIME_LIMIT, "time_limit": TWIN_TRAIN_TIME_LIMIT},
    "chat.tasks.generate_answer": {
        "soft_time_limit": TWIN_ANSWER_SOFT_TIME_LIMIT,
        "time_limit": TWIN_ANSWER_TIME_LIMIT,
    },
}
# Jobs (core/jobs.py): a thread beats each running job's heartbeat; a job silent for the stale
# window lost its worker and is resumed by beat (a redelivered or resent task claims it once).
TWIN_JOB_HEARTBEAT_SECONDS = envint("TWIN_JOB_HEARTBEAT_SECONDS", 30)
TWIN_JOB_STALE_SECONDS = envint("TWIN_JOB_STALE_SECONDS", 300)
TWIN_JOB_MAX_ATTEMPTS = envint("TWIN_JOB_MAX_ATTEMPTS", 3)  # workers lost on one job before it is failed
# Redis redelivers an unacked task after this; it must outlast the longest training run.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 6 * 3600)}
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", "0")
# A request that sends a task while the broker is down fails within about a second (core/queue.py),
# not after the client's default backoff.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": envint("CELERY_PUBLISH_MAX_RETRIES", 2),
    "interval_start": 0,
    "interval_step": 0.3,
    "interval_max": 0.3,
}
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BEAT_SCHEDULE_FILENAME = str(TWIN_DATA_DIR / "celerybeat-schedule")
TWIN_RECRAWL_HOURS = envint("TWIN_RECRAWL_HOURS", 24)
CELERY_BEAT_SCHEDULE = {
    "recrawl-article-sources": {
        "task": "ingestion.tasks.recrawl_stale_sources",
        "schedule": timedelta(hours=1),
    },
    "train-when-due": {
        "task": "training.tasks.train_when_due",
        "schedule": timedelta(seconds=30),
    },
    "prune-artifacts": {
        "task": "training.tasks.prune_artifacts",
        "schedule": timedelta(days=1),
    },
    "dispatch-syncs": {
        "task": "ingestion.tasks.dispatch_syncs",
        "schedule": timedelta(minutes=1),
    },
    "resume-stalled-jobs": {
        "task": "twinsite.resume_stalled_jobs",
        "schedule": timedelta(minutes=1),
    },
    "fail-abandoned-answers": {
        "task": "chat.tasks.fail_abandoned_answers",
        "schedule": timedelta(minutes=1),
    },
}

# Reverse proxies in front of the web process that append to X-Forwarded-For (0: none,
# the header is ignored). Every per-address limit (API throttles, login lockout, signup)
# reads the client address through accounts.throttling.client_ip with this count, so a
# forged header cannot pick a fresh address.
TWIN_NUM_PROXIES = envint("TWIN_NUM_PROXIES", 0)

# Login lockout (web login, admin login, the API token endpoint and the password asked again to
# delete an account), per client address: a failure limit, then a fixed cool-off that further
# guesses do not extend. Not per username alone: anyone could then lock a known user out from
# anywhere. The address counts every username it guesses, so it also covers (username, address)
# pairs and password spraying; the owner signs in from their own address meanwhile.
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler"
AXES_FAILURE_LIMIT = envint("TWIN_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=envint("TWIN_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "accounts.throttling.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.throttling.lockout_response"
AXES_VERBOSE = False
AXES_ENABLE_ADMIN = False  # its admin pages list database records, which the cache handler never writes

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "accounts.permissions.TokenScope",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "NUM_PROXIES": TWIN_NUM_PROXIES,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # No OPTIONS metadata: DRF answered OPTIONS with 200 (and a view's description) to any caller on
    # every endpoint, and crashed on /api/docs/; without a metadata class it answers 405, as every
    # method a route does not list (README, Architecture). No browser client needs CORS preflights.
    "DEFAULT_METADATA_CLASS": None,
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
        "rest_framework.throttling.ScopedRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("API_THROTTLE_ANON", "30/min"),
        "user": os.environ.get("API_THROTTLE_USER", "600/min"),
        "chat": os.environ.get("API_THROTTLE_CHAT", "30/min"),
        "token": os.environ.get("API_THROTTLE_TOKEN", "10/min"),
        "signup": os.environ.get("SIGNUP_THROTTLE", "10/hour"),  # the web signup form, per address
        # The widget's visitors (chat/visitors.py): questions per visitor id and per address (a
        # flooder may make up visitor ids, not addresses), and reads of conversations per address.
        "widget_visitor": os.environ.get("WIDGET_THROTTLE_VISITOR", "6/min"),
        "widget_ip": os.environ.get("WIDGET_THROTTLE_IP", "20/min"),
        "widget_read": os.environ.get("WIDGET_THROTTLE_READ", "120/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Twinsite API",
    "DESCRIPTION": "Your private LLM twin: sources, documents, search, datasets, training, models and chat.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "core.jobs.JobStatus",
        "ModelVersionStatusEnum": "training.models.ModelVersion.Status",
        "MessageStatusEnum": "chat.models.Message.Status",
    },
    # Swagger UI assets from the sidecar package: the docs page works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        name: {"level": "WARNING"}
        for name in ("httpx", "urllib3", "sentence_transformers", "transformers", "trafilatura")
    },
}

# Production hardening: on whenever DEBUG is off (`manage.py check --deploy` is clean).
if not DEBUG:
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", "1")
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

# Sentry (twinsite/sentry.py): errors, the release, performance traces of the web and of Celery tasks.
SENTRY_DSN = os.environ.get("SENTRY_DSN", "")
if SENTRY_DSN:
    from twinsite.sentry import init_sentry

    init_sentry(DEBUG)

# Operations (twinsite/metrics.py): who may read /metrics besides staff: scrapers from these
# addresses or networks (client_ip, so TWIN_NUM_PROXIES applies), or with this bearer token.
TWIN_METRICS_ALLOWED_IPS = envlist("TWIN_METRICS_ALLOWED_IPS", "")
TWIN_METRICS_TOKEN = os.environ.get("TWIN_METRICS_TOKEN", "")

# Data collection (ingestion connectors): crawl limits, politeness, archives, the browser path.
TWIN_CRAWL_ALLOWED_PORTS = [int(port) for port in envlist("TWIN_CRAWL_ALLOWED_PORTS", "")]  # besides 80 and 443
TWIN_DNS_TIMEOUT = envint("TWIN_DNS_TIMEOUT", 5)
TWIN_FETCH_DEADLINE = envint("TWIN_FETCH_DEADLINE", 2 * TWIN_FETCH_TIMEOUT)  # wall clock for one download
TWIN_CRAWL_RUN_SECONDS = envint("TWIN_CRAWL_RUN_SECONDS", 30 * 60)  # wall clock for one sync
# Fair share: syncs of one owner sent to the workers and not finished; more wait, queued, and are sent
# (one owner at a time, in turn) as those end, so one owner's many syncs cannot hold up everyone else's.
TWIN_MAX_ACTIVE_SYNCS_PER_USER = envint("TWIN_MAX_ACTIVE_SYNCS_PER_USER", 3)
TWIN_CRAWL_DELAY_SECONDS = float(os.environ.get("TWIN_CRAWL_DELAY_SECONDS", "1.0"))  # between requests to a host
TWIN_CRAWL_RETRIES = envint("TWIN_CRAWL_RETRIES", 2)  # on 429 and 5xx
TWIN_CRAWL_BACKOFF_SECONDS = float(os.environ.get("TWIN_CRAWL_BACKOFF_SECONDS", "5"))
TWIN_CRAWL_MAX_BACKOFF_SECONDS = envint("TWIN_CRAWL_MAX_BACKOFF_SECONDS", 60)
TWIN_CRAWL_MAX_PAGES = envint("TWIN_CRAWL_MAX_PAGES", 200)  # pages one blog sync fetches
TWIN_CRAWL_MAX_DEPTH = envint("TWIN_CRAWL_MAX_DEPTH", 2)  # link hops from a blog's home page
TWIN_CRAWL_RESEND_AFTER_MINUTES = envint("TWIN_CRAWL_RESEND_AFTER_MINUTES", 10)
TWIN_MAX_BACKOFF_HOURS = envint("TWIN_MAX_BACKOFF_HOURS", 7 * 24)  # a failing source waits at most this
TWIN_MAX_ARCHIVE_BYTES = envint("TWIN_MAX_ARCHIVE_BYTES", 20 * 1024 * 1024)  # a .zip upload
TWIN_ZIP_MAX_ENTRIES = envint("TWIN_ZIP_MAX_ENTRIES", 2000)
TWIN_ZIP_MAX_TOTAL_BYTES = envint("TWIN_ZIP_MAX_TOTAL_BYTES", 100 * 1024 * 1024)
TWIN_ZIP_MAX_RATIO = envint("TWIN_ZIP_MAX_RATIO", 100)
TWIN_PDF_MAX_PAGES = envint("TWIN_PDF_MAX_PAGES", 500)
# A PDF or DOCX is read by the sync in a child process with these limits (ingestion/connectors/upload/sandbox.py).
TWIN_PARSE_CPU_SECONDS = envint("TWIN_PARSE_CPU_SECONDS", 60)  # CPU time to read one file
TWIN_PARSE_MEMORY_BYTES = envint("TWIN_PARSE_MEMORY_BYTES", 1024 * 1024 * 1024)  # address space of that child
# Content streams a PDF's pages draw, decoded, a shared stream counted once per page that draws it.
TWIN_PDF_MAX_CONTENT_BYTES = envint("TWIN_PDF_MAX_CONTENT_BYTES", 16 * 1024 * 1024)
TWIN_DOCX_MAX_XML_BYTES = envint("TWIN_DOCX_MAX_XML_BYTES", 32 * 1024 * 1024)  # word/document.xml unpacked
TWIN_BROWSER_PATH = os.environ.get("TWIN_BROWSER_PATH", "/usr/bin/chromium")
TWIN_BROWSER_MIN_WORDS = envint("TWIN_BROWSER_MIN_WORDS", 60)  # fewer words found statically: render
TWIN_BROWSER_TIMEOUT = envint("TWIN_BROWSER_TIMEOUT", 20)
TWIN_BROWSER_MAX_REQUESTS = envint("TWIN_BROWSER_MAX_REQUESTS", 30)
TWIN_BROWSER_USER = os.environ.get("TWIN_BROWSER_USER", "nobody")  # Chromium runs as this user when the worker is root
TWIN_GITHUB_API_URL = os.environ.get("TWIN_GITHUB_API_URL", "https://api.github.com")
TWIN_GITHUB_TOKEN = os.environ.get("TWIN_GITHUB_TOKEN", "")  # optional: a higher API rate limit
TWIN_GIT_MAX_REPOS = envint("TWIN_GIT_MAX_REPOS", 20)
TWIN_GIT_MAX_FILE_BYTES = envint("TWIN_GIT_MAX_FILE_BYTES", 200 * 1024)
TWIN_GIT_MAX_FILES = envint("TWIN_GIT_MAX_FILES", 5000)  # source and docs files one sync takes, all repositories
TWIN_GIT_MAX_CLONE_BYTES = envint("TWIN_GIT_MAX_CLONE_BYTES", 500 * 1024 * 1024)  # one clone on disk, .git included
TWIN_GIT_ALLOW_LOCAL = envbool("TWIN_GIT_ALLOW_LOCAL", "0")  # file:// and paths: tests only
