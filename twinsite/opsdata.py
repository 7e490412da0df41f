"""The figures of the staff Operations page, over a window in buckets, from the rows that answers
leave: prompt traces (answers, time to first token, grounding), messages (failures, answers in
flight) and the refusal counter (core.counters). Site-wide aggregates, never a tenant's content.
"""

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Aggregate, Avg, Count, FloatField, Func, IntegerField, Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from chat.admission import REFUSALS
from chat.models import Message, PromptTrace
from core import counters

# window name -> (seconds, bucket seconds): about 60 to 170 points a chart
WINDOWS = {"1h": (3600, 60), "6h": (6 * 3600, 300), "24h": (86400, 900), "7d": (7 * 86400, 3600)}


class Percentile(Aggregate):
    """PostgreSQL's percentile_cont: the p-quantile of a column, interpolated."""

    template = "percentile_cont(%(p)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, p: float, **extra):
        super().__init__(expression, p=float(p), **extra)


class Bucket(Func):
    """The index of a timestamp's bucket of `seconds` since the Unix epoch."""

    template = "floor(extract(epoch from %(expressions)s) / %(seconds)d)::bigint"
    output_field = IntegerField()


@dataclass
class Window:
    name: str
    seconds: int
    step: int
    first: int  # bucket indexes, inclusive
    last: int

    @classmethod
    def named(cls, name: str, now: float | None = None) -> "Window":
        name = name if name in WINDOWS else "1h"
        seconds, step = WINDOWS[name]
        now = time.time() if now is None else now
        return cls(name, seconds, step, int((now - seconds) // step) + 1, int(now // step))

    @property
    def since(self):
        return datetime.fromtimestamp(self.first * self.step, tz=UTC)

    def series(self, values: dict[int, float]) -> list[float | None]:
        """One value per bucket of the window (None where nothing happened)."""
        return [values.get(b) for b in range(self.first, self.last + 1)]


def answer_series(window: Window) -> dict[str, list]:
    """Answers finished per minute, time to first token p50/p95 (seconds) and mean grounding score."""
    rows = (
        PromptTrace.objects.filter(created_at__gte=window.since)
        .annotate(bucket=Bucket("created_at", seconds=window.step))
        .values("bucket")
        .annotate(
            answers=Count("pk"),
            ttft50=Percentile("first_token_ms", 0.5, filter=Q(first_token_ms__gt=0)),
            ttft95=Percentile("first_token_ms", 0.95, filter=Q(first_token_ms__gt=0)),
            grounding=Avg(Cast(KeyTextTransform("score", "grounding"), FloatField())),
        )
    )
    by = {r["bucket"]: r for r in rows}
    per_minute = 60 / window.step

    def pick(field, scale=1.0):
        return window.series({b: r[field] * scale for b, r in by.items() if r[field] is not None})

    return {
        "answers": pick("answers", per_minute),
        "ttft50": pick("ttft50", 0.001),
        "ttft95": pick("ttft95", 0.001),
        "grounding": pick("grounding"),
    }


def failure_series(window: Window) -> list:
    """Failed answers per bucket (by when they were asked)."""
    rows = (
        Message.objects.filter(role=Message.Role.ASSISTANT, status=Message.Status.FAILED, created_at__gte=window.since)
        .annotate(bucket=Bucket("created_at", seconds=window.step))
        .values("bucket")
        .annotate(n=Count("pk"))
    )
    return window.series({r["bucket"]: r["n"] for r in rows})


def refusal_series(window: Window) -> dict[str, list]:
    """Questions refused as busy per bucket, by reason."""
    found = counters.per_minute(REFUSALS, window.first * window.step)
    out = {}
    for reason, minutes in sorted(found.items()):
        buckets: dict[int, int] = {}
        for minute, n in minutes.items():
            buckets[minute * 60 // window.step] = buckets.get(minute * 60 // window.step, 0) + n
        out[reason] = window.series(buckets)
    return out


def in_flight_series(window: Window) -> list:
    """Answers waiting for or being made by the serving worker at the end of each bucket, rebuilt
    from the rows as those asked by then less those finished by then: an answer is in flight from
    its question until its trace is written (a failed one until it failed, which no row records: it
    counts as finished where it was asked). Answers asked an hour before the window still count
    (none waits or streams that long: the sweeper fails them)."""
    since = window.since - timedelta(hours=1)
    rows = (
        Message.objects.filter(role=Message.Role.ASSISTANT, created_at__gte=since)
        .annotate(
            start=Bucket("created_at", seconds=window.step),
            finish=Bucket(Coalesce("trace__created_at", "created_at"), seconds=window.step),
        )
        .values_list("start", "finish", "status")
        .annotate(n=Count("pk"))
    )
    started: dict[int, int] = {}
    finished: dict[int, int] = {}
    for start, finish, status, n in rows:
        started[start] = started.get(start, 0) + n
        if status not in Message.IN_FLIGHT:
            finished[finish] = finished.get(finish, 0) + n
    first = min([window.first, *started])
    running, series = 0, {}
    for bucket in range(first, window.last + 1):
        running += started.get(bucket, 0) - finished.get(bucket, 0)
        if bucket >= window.first:
            series[bucket] = running
    return window.series(series)


def current_load() -> dict:
    """Now: answers pending and streaming, the oldest pending one's age, and the Celery queues."""
    from core.queue import queue_lengths

    in_flight = Message.objects.in_flight().values("status").annotate(n=Count("pk"))
    counts = {r["status"]: r["n"] for r in in_flight}
    oldest = Message.objects.filter(status=Message.Status.PENDING).order_by("created_at").first()
    try:
        queues = queue_lengths()
    except Exception:  # the broker down is itself what the page must show, not a 500
        queues = None
    return {
        "pending": counts.get(Message.Status.PENDING, 0),
        "streaming": counts.get(Message.Status.STREAMING, 0),
        "oldest_pending_seconds": (timezone.now() - oldest.created_at).total_seconds() if oldest else None,
        "queues": queues,
        "refusals": counters.totals(REFUSALS),
    }
