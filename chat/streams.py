"""The channel between the serving worker that generates an answer and the web requests
that show it: one Redis stream per answer, plus a heartbeat key while it is generated.

The worker appends each event (sources, token, notice, grounding, done, error) to the
stream; a follower (the chat page's SSE, the REST API, the OpenAI endpoint) reads it from
the start, so one that connects late or reconnects misses nothing. Streams expire a
while after their last event; the finished answer is in the database by then.

The heartbeat is refreshed by a thread of the generating task every few seconds and
expires soon after: a missing heartbeat on an answer marked "streaming" means that the
process generating it died (SIGKILL, out of memory, a lost machine).
"""

import json
import time
import uuid
from contextlib import contextmanager
from functools import cache

import redis
from django.conf import settings

from core import heartbeat

STREAM_TTL_SECONDS = 15 * 60
HEARTBEAT_EVERY_SECONDS = 2
HEARTBEAT_TTL_SECONDS = 10


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def client() -> redis.Redis:
    return _client(settings.REDIS_URL)


def _key(pk: int, what: str) -> str:
    """An answer's key (events, alive), or a user's (open-streams)."""
    # The cache's prefix keeps separate sites (and test runs) sharing one Redis apart.
    kind = "user" if what == "open-streams" else "answer"
    return f"{settings.CACHES['default']['KEY_PREFIX']}:{kind}:{pk}:{what}"


def publish(message_id: int, kind: str, data=None):
    key = _key(message_id, "events")
    pipe = client().pipeline()
    pipe.xadd(key, {"kind": kind, "data": json.dumps(data)})
    pipe.expire(key, STREAM_TTL_SECONDS)
    pipe.execute()


def read(message_id: int, after: str, block_ms: int) -> list[tuple[str, str, object]]:
    """(entry id, kind, data) of the events after `after` ("0": from the start), waiting up to block_ms."""
    found = client().xread({_key(message_id, "events"): after}, block=block_ms)
    entries = found[0][1] if found else []
    return [(entry_id.decode(), fields[b"kind"].decode(), json.loads(fields[b"data"])) for entry_id, fields in entries]


def exists(message_id: int) -> bool:
    return bool(client().exists(_key(message_id, "events")))


def alive(message_ids: list[int]) -> set[int]:
    """The answers among these whose generating process is still beating."""
    if not message_ids:
        return set()
    values = client().mget([_key(pk, "alive") for pk in message_ids])
    return {pk for pk, value in zip(message_ids, values, strict=True) if value is not None}


@contextmanager
def beating(message_id: int):
    """Keep the answer's heartbeat alive for the duration of the block (model loading included)."""
    key = _key(message_id, "alive")
    client().set(key, 1, ex=HEARTBEAT_TTL_SECONDS)
    try:
        with heartbeat.beating(
            HEARTBEAT_EVERY_SECONDS, lambda: client().set(key, 1, ex=HEARTBEAT_TTL_SECONDS), f"heartbeat-{message_id}"
        ):
            yield
    finally:
        client().delete(key)


def open_slot(user_id: int, limit: int, lifetime_seconds: int) -> str | None:
    """Count one more answer stream open for this user; None (nothing counted) when they have
    `limit` open already. Each slot is a member of the user's sorted set scored by its opening
    time, and one older than `lifetime_seconds` (longer than any stream lives) no longer counts:
    a process killed mid-stream cannot hold a slot for good."""
    key, now, slot = _key(user_id, "open-streams"), time.time(), uuid.uuid4().hex
    pipe = client().pipeline()
    pipe.zremrangebyscore(key, "-inf", now - lifetime_seconds)
    pipe.zadd(key, {slot: now})
    pipe.zcard(key)
    pipe.expire(key, lifetime_seconds)
    count = pipe.execute()[2]
    if count > limit:
        client().zrem(key, slot)
        return None
    return slot


def close_slot(user_id: int, slot: str):
    client().zrem(_key(user_id, "open-streams"), slot)
