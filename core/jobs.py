"""The status row every long job has: crawl runs, feature runs, training runs.

A job row is created "queued" in the same transaction as the request that wants it,
and its task is sent on commit. The task claims the row with a conditional UPDATE,
so a redelivered task (late acks, killed worker) never runs the same job twice at
once, and a job whose worker died (no heartbeat for a while) can be claimed again.
"""

from datetime import timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone

from .ownership import OwnedQuerySet

STALE_AFTER = timedelta(minutes=5)


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

    def stalled(self, stale_after=STALE_AFTER):
        return self.filter(status=JobStatus.RUNNING, heartbeat_at__lt=timezone.now() - stale_after)

    def fail_stalled(self, stale_after) -> int:
        """Running jobs silent for too long lost their worker (and maybe their message)."""
        return self.stalled(stale_after).update(
            status=JobStatus.FAILED,
            finished_at=timezone.now(),
            error="The worker running this job stopped responding. Retry it.",
        )


class Job(models.Model):
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done, 0-100.")
    message = models.CharField(max_length=300, blank=True, help_text="What the job is doing now.")
    error = models.TextField(blank=True, help_text="Why the job failed, in words the user can act on.")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def duration(self) -> timedelta | None:
        if not self.started_at:
            return None
        return (self.finished_at or timezone.now()) - self.started_at

    def claim(self, stale_after=STALE_AFTER) -> bool:
        """Move queued (or abandoned running) to running; False if someone else has it."""
        now = timezone.now()
        claimable = Q(status=JobStatus.QUEUED) | Q(status=JobStatus.RUNNING, heartbeat_at__lt=now - stale_after)
        won = (
            type(self)
            .objects.filter(claimable, pk=self.pk)
            .update(status=JobStatus.RUNNING, started_at=now, heartbeat_at=now, error="")
        )
        if won:
            self.refresh_from_db()
        return bool(won)

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
