"""Test settings: the real PostgreSQL + pgvector and Redis, a private data directory,
Celery eager (a dedicated test starts a real worker), and the tiny model of the
same architecture as the packaged SmolLM2 so training and generation stay fast.
"""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("TWIN_BASE_MODEL", "tiny")
os.environ.setdefault("DEBUG", "1")  # development mode, as `make run`; production settings have their own tests

from twinsite.settings import *  # noqa: F403
from twinsite.settings import CELERY_BROKER_TRANSPORT_OPTIONS, DATABASES

# A subprocess (the real worker) inherits the parent's directory through the environment.
TWIN_DATA_DIR = Path(os.environ.get("TWIN_TEST_DATA_DIR") or tempfile.mkdtemp(prefix="twinsite-test-"))
os.environ["TWIN_TEST_DATA_DIR"] = str(TWIN_DATA_DIR)
MEDIA_ROOT = TWIN_DATA_DIR / "uploads"

DATABASES["default"]["TEST"] = {"NAME": os.environ.get("TWIN_TEST_DB", "test_twinsite")}
# Fresh connections per request by default; the database restart test runs the web with production's reuse.
DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("TWIN_TEST_CONN_MAX_AGE", "0"))
REDIS_URL = os.environ.get("TWIN_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# One namespace per test run, inherited by its worker and web subprocesses: cache keys, answer
# streams and the broker's queues. A worker left running by an interrupted run (each sits in its
# own session, out of reach of the run's end) listens on its own run's queues, never on this one's.
os.environ.setdefault("TWIN_TEST_CACHE_PREFIX", f"twinsite-test-{os.getpid()}")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": os.environ["TWIN_TEST_CACHE_PREFIX"],
    }
}
CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_TRANSPORT_OPTIONS = {
    **CELERY_BROKER_TRANSPORT_OPTIONS,
    "global_keyprefix": f"{os.environ['TWIN_TEST_CACHE_PREFIX']}:broker:",  # every kombu key: queues, unacked
}
# The real-worker test runs its worker with TWIN_TEST_EAGER=0.
CELERY_TASK_ALWAYS_EAGER = os.environ.get("TWIN_TEST_EAGER", "1") == "1"
CELERY_TASK_EAGER_PROPAGATES = True

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed; production uses PBKDF2
TWIN_TRAIN_MAX_STEPS = 4
TWIN_TRAIN_EPOCHS = 10.0  # the one-page test corpus makes a sequence or two: the 4-step cap binds
TWIN_TRAIN_BATCH_SIZE = 2
TWIN_TRAIN_MAX_SEQ_LEN = 192
TWIN_GATE_GENERATIONS = 2  # the gate's sampled answers per model (production: 8)
# The tiny random model writes gibberish, so its style and topicality are noise: the suite gates on
# held-out perplexity and copying; tests/training/test_gate.py covers the other metrics on real text.
TWIN_GATE_METRICS = ["perplexity", "copy_rate"]
# Its held-out loss moves by hundredths in a 4-step run, so a first version need only beat the base;
# test_gate.py shows the production margin (0.95) failing such a run.
TWIN_GATE_FIRST_PERPLEXITY_RATIO = 1.0
TWIN_GATE_MAX_NEW_TOKENS = 12
TWIN_MAX_NEW_TOKENS = int(os.environ.get("TWIN_TEST_MAX_NEW_TOKENS", "12"))  # a fault test needs long answers
# The tiny random model's logits span several units (initializer_range 0.2, for "training helps");
# the suite's steering must dominate them for answers to be checkable. Production's 6 / 4 were
# calibrated on SmolLM2 (bench/grounding.py).
# A worker may be started with others (TWIN_TEST_*_BONUS), to see what the weights alone say.
TWIN_COPY_BONUS = float(os.environ.get("TWIN_TEST_COPY_BONUS", "30"))
TWIN_START_BONUS = float(os.environ.get("TWIN_TEST_START_BONUS", "30"))
TWIN_AUTO_TRAIN_SETTLE_SECONDS = 0
WHITENOISE_AUTOREFRESH = True
# Crawls in tests: no politeness pauses worth waiting for, short backoff.
TWIN_CRAWL_DELAY_SECONDS = 0.001
TWIN_CRAWL_BACKOFF_SECONDS = 0.01
