"""Sending tasks: the one place a request hands work to Celery.

A row that waits for a task (a queued job, a pending answer) is written in the request's
transaction and its task is sent once that commits. When the broker cannot be reached at
that moment, the row would wait forever for a message that was never sent: `send_on_commit`
runs the caller's `on_failure` (which marks the row failed with the reason) and raises
`QueueUnavailable`, which the site answers with 503 and Retry-After (core/middleware.py).
Publishing retries briefly (CELERY_TASK_PUBLISH_RETRY_POLICY), so a user waits a second,
not the broker client's default backoff.
"""

import logging
from collections.abc import Callable
from functools import cache
from importlib import import_module

from celery import current_app
from django.conf import settings
from django.db import transaction
from kombu.exceptions import OperationalError as BrokerError
from kombu.transport.redis import PRIORITY_STEPS

logger = logging.getLogger(__name__)
QUEUE_DOWN = "Twinsite's task queue cannot be reached right now, so this was not started; please try again shortly."


class QueueUnavailable(Exception):
    """The broker was unreachable when a task was sent; nothing was left waiting for it."""

    def __init__(self, message: str = QUEUE_DOWN):
        super().__init__(message)

    @property
    def retry_after(self) -> int:
        return settings.TWIN_UNAVAILABLE_RETRY_AFTER_SECONDS


def send_task(task_name: str, *args, on_failure: Callable[[str], object] | None = None):
    """Send a task by its name now (routed by its name; eager in unit tests). On a broker
    failure, `on_failure(reason)` records it and QueueUnavailable is raised."""
    task = _registered(task_name)
    try:
        task.delay(*args)
    except BrokerError as exc:  # kombu's wrapper of any transport's connection error
        logger.error("could not send %s%r: %s", task_name, args, exc)
        if on_failure is not None:
            on_failure(QUEUE_DOWN)
        raise QueueUnavailable() from exc


def _registered(task_name: str):
    """The task by its name, its module imported if need be: a web process registers tasks as it
    imports them, and an unregistered name would bypass the task's routing and eager mode."""
    if task_name not in current_app.tasks:
        import_module(task_name.rsplit(".", 1)[0])
    return current_app.tasks[task_name]


def send_on_commit(task_name: str, *args, on_failure: Callable[[str], object] | None = None):
    """send_task once the current transaction commits (at once outside one). The failure
    propagates from the commit, i.e. out of the action that asked, into the request."""
    transaction.on_commit(lambda: send_task(task_name, *args, on_failure=on_failure))


def queue_lengths() -> dict[str, int]:
    """Messages waiting in each Celery queue of the Redis broker, read now ({} on another broker).

    Kombu keeps a queue as Redis lists: the queue's name for priority 0 and `name\\x06\\x16N` for
    the other priority steps, every key under the transport's global_keyprefix."""
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return {}
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    queues = {settings.CELERY_TASK_DEFAULT_QUEUE} | {r["queue"] for r in settings.CELERY_TASK_ROUTES.values()}
    client = _broker_client(url)
    pipe = client.pipeline()
    for queue in sorted(queues):
        for key in [queue, *(f"{queue}\x06\x16{step}" for step in PRIORITY_STEPS[1:])]:
            pipe.llen(prefix + key)
    counts = iter(pipe.execute())
    return {queue: sum(next(counts) for _ in PRIORITY_STEPS) for queue in sorted(queues)}


@cache
def _broker_client(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
