"""The status row every long job has: crawl runs, feature runs, training runs.

A job row is created "queued" in the same transaction as the request that wants it,
and its task is sent on commit. The task claims the row with a conditional UPDATE,
so a redelivered task (late acks, a killed worker) never runs the same job twice at
once: only one claim wins, and a job that is running with a live heartbeat cannot be
claimed.

While a task works on its job, a thread beats its heartbeat every
TWIN_JOB_HEARTBEAT_SECONDS, whatever phase the work is in (a model load reports no
progress for minutes). A job whose heartbeat has been silent for TWIN_JOB_STALE_SECONDS
lost its worker (SIGKILL, out of memory, a machine gone): beat's `resume_stalled`
queues it again and sends its task, which resumes it (crawls upsert, features skip
what is built, training restarts from its last checkpoint). A job that loses its
worker TWIN_JOB_MAX_ATTEMPTS times is failed with a reason, so that one poisonous
input cannot keep killing workers. A queued job whose message was lost (a broker
restart without persistence) is sent again too, and failed after a day.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connections, models
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from .heartbeat import beating
from .ownership import OwnedQuerySet
from .queue import send_on_commit, send_task

logger = logging.getLogger(__name__)


def default_stale_after() -> timedelta:
    return timedelta(seconds=settings.TWIN_JOB_STALE_SECONDS)


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


class JobQuerySet(OwnedQuerySet):
    def active(self):
        return self.filter(status__in=ACTIVE_STATUSES)

    def stalled(self, stale_after=None):
        stale_after = stale_after or default_stale_after()
        return self.filter(status=JobStatus.RUNNING, heartbeat_at__lt=timezone.now() - stale_after)

    def resume_stalled(self, stale_after=None) -> dict[str, int]:
        """Beat: send again the task of each job that lost its worker or its message; fail those that
        lost their worker too often, or waited a day in the queue. Returns what it did, counted."""
        now = timezone.now()
        stale_after = stale_after or default_stale_after()
        done = {"resumed": 0, "failed": 0, "resent": 0}
        stalled = self.stalled(stale_after)
        done["failed"] = stalled.filter(attempts__gte=settings.TWIN_JOB_MAX_ATTEMPTS).update(
            status=JobStatus.FAILED,
            finished_at=now,
            error="The worker running this job stopped every time it tried; it has been logged. Retry it later.",
        )
        # Back to the queue, so that the task sent next can claim it; the heartbeat column dates the resend.
        for pk in stalled.values_list("pk", flat=True):
            if self.filter(pk=pk, status=JobStatus.RUNNING, heartbeat_at__lt=now - stale_after).update(
                status=JobStatus.QUEUED, heartbeat_at=now, message="Resuming: its worker stopped"
            ):
                self.model.send_task(pk)
                done["resumed"] += 1
        # A queued job waits for its message from `queued_since` on (a job kind that holds jobs back before
        # sending them leaves it empty meanwhile: such a job has no message to lose yet).
        queued_since = self.model.queued_since
        waiting = self.filter(status=JobStatus.QUEUED).annotate(since=Coalesce("heartbeat_at", queued_since))
        waiting.filter(**{f"{queued_since}__lt": now - timedelta(days=1)}).update(
            status=JobStatus.FAILED, finished_at=now, error="No worker picked this job up. Start it again."
        )
        for pk in waiting.filter(since__lt=now - stale_after).values_list("pk", flat=True):
            if self.filter(pk=pk, status=JobStatus.QUEUED).update(heartbeat_at=now):
                self.model.send_task(pk)
                done["resent"] += 1
        return done


class Job(models.Model):
    # The Celery task (by name) that runs a job of this kind, given its id; subclasses set it.
    task_name = ""
    # The field that dates when a queued job's task was sent (resume_stalled resends or fails it after).
    queued_since = "created_at"

    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done, 0-100.")
    message = models.CharField(max_length=300, blank=True, help_text="What the job is doing now.")
    error = models.TextField(blank=True, help_text="Why the job failed, in words the user can act on.")
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Times a worker claimed it.")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    @classmethod
    def send_task(cls, pk: int):
        send_task(cls.task_name, pk)

    def send_when_committed(self):
        """Send this job's task once the request's transaction commits; if the broker is down
        then, the job is failed with the reason (it can be started again) and QueueUnavailable raised."""
        send_on_commit(self.task_name, self.pk, on_failure=self._fail_unsent)

    def _fail_unsent(self, reason: str):
        type(self).objects.filter(pk=self.pk, status=JobStatus.QUEUED).update(
            status=JobStatus.FAILED, finished_at=timezone.now(), error=reason, message=""
        )

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def duration(self) -> timedelta | None:
        if not self.started_at:
            return None
        return (self.finished_at or timezone.now()) - self.started_at

    def claim(self, stale_after=None) -> bool:
        """Move queued (or abandoned running) to running; False if someone else has it."""
        now = timezone.now()
        stale_after = stale_after or default_stale_after()
        claimable = Q(status=JobStatus.QUEUED) | Q(status=JobStatus.RUNNING, heartbeat_at__lt=now - stale_after)
        won = (
            type(self)
            .objects.filter(claimable, pk=self.pk)
            .update(status=JobStatus.RUNNING, started_at=now, heartbeat_at=now, error="", attempts=F("attempts") + 1)
        )
        if won:
            self.refresh_from_db()
        return bool(won)

    def keep_alive(self):
        """Beat the heartbeat from a thread while the block runs, whatever it is doing."""
        model, pk = type(self), self.pk

        def beat():
            model.objects.filter(pk=pk, status=JobStatus.RUNNING).update(heartbeat_at=timezone.now())

        return beating(
            settings.TWIN_JOB_HEARTBEAT_SECONDS,
            beat,
            f"heartbeat-{model.__name__}-{pk}",
            on_exit=connections.close_all,  # this thread's own connections
        )

    def report(self, progress: float, message: str = "", **fields):
        """Record progress (0-100) from inside the task; also the heartbeat."""
        self.progress = max(0, min(100, int(progress)))
        self.message = message[:300]
        self.heartbeat_at = timezone.now()
        for name, value in fields.items():
            setattr(self, name, value)
        self.save(update_fields=["progress", "message", "heartbeat_at", *fields])

    def succeed(self, message: str = "", **fields):
        self._finish(JobStatus.SUCCEEDED, progress=100, message=message, **fields)

    def fail(self, error: str, **fields):
        self._finish(JobStatus.FAILED, error=error, **fields)

    def cancel(self):
        self._finish(JobStatus.CANCELLED, message="Cancelled")

    def _finish(self, status, **fields):
        self.status = status
        self.finished_at = timezone.now()
        for name, value in fields.items():
            setattr(self, name, value)
        self.save(update_fields=["status", "finished_at", *fields])
