"""Event counters in Redis: a running total and per-minute buckets, for things no row records.

A refused question leaves nothing in the database (its transaction rolls back), yet operators
want to see refusals: the total for Prometheus and the last days minute by minute for the staff
Operations page. Redis is shared by every web process and machine, so one count covers them all,
and an increment happens outside the request's transaction.
"""

import logging
import time
from functools import cache

import redis
from django.conf import settings

logger = logging.getLogger(__name__)
BUCKET_DAYS = 8  # per-minute buckets are kept this long (the Operations page shows at most a week)


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def _keys(name: str, minute: int) -> tuple[str, str]:
    """The totals hash and the day's buckets hash of counter `name`."""
    prefix = f"{settings.CACHES['default']['KEY_PREFIX']}:counter:{name}"
    return f"{prefix}:total", f"{prefix}:day:{minute // 1440}"


def count(name: str, label: str, now: float | None = None):
    """One more `label` event of counter `name` (e.g. refusals, "busy"). Best effort: a count lost
    while Redis is down must not turn what is being counted (a refusal) into a server error."""
    minute = int((time.time() if now is None else now) // 60)
    total_key, day_key = _keys(name, minute)
    pipe = _client(settings.REDIS_URL).pipeline()
    pipe.hincrby(total_key, label, 1)
    pipe.hincrby(day_key, f"{label}:{minute}", 1)
    pipe.expire(day_key, BUCKET_DAYS * 86400)
    try:
        pipe.execute()
    except redis.RedisError as exc:
        logger.warning("counter %s/%s not counted: %s", name, label, exc)


def totals(name: str) -> dict[str, int]:
    """{label: events ever counted}."""
    total_key, _ = _keys(name, 0)
    return {k.decode(): int(v) for k, v in _client(settings.REDIS_URL).hgetall(total_key).items()}


def per_minute(name: str, since: float, until: float | None = None) -> dict[str, dict[int, int]]:
    """{label: {minute (Unix time // 60): events}} between two Unix times."""
    first, last = int(since // 60), int((time.time() if until is None else until) // 60)
    client = _client(settings.REDIS_URL)
    found: dict[str, dict[int, int]] = {}
    for day in range(first // 1440, last // 1440 + 1):
        for field, value in client.hgetall(_keys(name, day * 1440)[1]).items():
            label, minute = field.decode().rsplit(":", 1)
            if first <= int(minute) <= last:
                found.setdefault(label, {})[int(minute)] = int(value)
    return found
