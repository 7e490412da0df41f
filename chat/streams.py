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
import threading
from contextlib import contextmanager
from functools import cache

import redis
from django.conf import settings

STREAM_TTL_SECONDS = 15 * 60
HEARTBEAT_EVERY_SECONDS = 2
HEARTBEAT_TTL_SECONDS = 10


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def client() -> redis.Redis:
    return _client(settings.REDIS_URL)


def _key(message_id: int, what: str) -> str:
    # The cache's prefix keeps separate sites (and test runs) sharing one Redis apart.
    return f"{settings.CACHES['default']['KEY_PREFIX']}:answer:{message_id}:{what}"


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
    key, stop = _key(message_id, "alive"), threading.Event()
    client().set(key, 1, ex=HEARTBEAT_TTL_SECONDS)

    def beat():
        while not stop.wait(HEARTBEAT_EVERY_SECONDS):
            client().set(key, 1, ex=HEARTBEAT_TTL_SECONDS)

    thread = threading.Thread(target=beat, name=f"heartbeat-{message_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        client().delete(key)
