"""The data warehouse: sources a user links, crawl runs, and the raw documents they yield."""

import hashlib
from datetime import timedelta
from pathlib import Path

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import connection, models
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.jobs import ACTIVE_STATUSES, Job, JobStatus
from core.ownership import OwnedQuerySet


class Category(models.TextChoices):
    ARTICLE = "article", "Article"
    POST = "post", "Post"
    CODE = "code", "Code"


class SourceQuerySet(OwnedQuerySet):
    def with_last_run(self):
        """Each source's latest crawl run in one query for the whole list (`last_run` reads it),
        instead of one query per source, or every run ever of every source."""
        latest = CrawlRun.objects.order_by("-created_at")[:1]  # a sliced prefetch: one window query
        return self.prefetch_related(models.Prefetch("crawl_runs", queryset=latest, to_attr="latest_runs"))

    def due_for_recrawl(self, kinds, now=None):
        """Sources of the given (recrawlable) kinds whose interval has passed and that are
        not backing off after failures. Each source's interval is its own `recrawl_hours`,
        or TWIN_RECRAWL_HOURS when unset; 0 means "only when I ask"."""
        now = now or timezone.now()
        default_hours = settings.TWIN_RECRAWL_HOURS
        interval = models.ExpressionWrapper(
            Coalesce("recrawl_hours", default_hours) * timedelta(hours=1),
            output_field=models.DurationField(),
        )
        return (
            self.filter(kind__in=kinds)
            .exclude(recrawl_hours=0)
            .filter(models.Q(retry_after__isnull=True) | models.Q(retry_after__lte=now))
            .annotate(due_at=models.F("last_synced_at") + interval)
            .filter(models.Q(last_synced_at__isnull=True) | models.Q(due_at__lte=now))
        )


def upload_path(source, filename):
    return f"{source.owner_id}/{timezone.now():%Y%m%d%H%M%S}-{Path(filename).name}"


class Source(models.Model):
    class Kind:
        """Names of the two oldest kinds, for callers that create sources directly. The
        registry (`ingestion.connectors.CONNECTORS`) is the list of kinds: the column has
        no choices, so a new connector needs no migration."""

        UPLOAD = "upload"
        ARTICLE = "article"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sources")
    kind = models.CharField(max_length=16, help_text="A connector kind from the registry.")
    name = models.CharField(max_length=300)
    url = models.URLField(max_length=2000, blank=True)
    upload = models.FileField(upload_to=upload_path, blank=True, max_length=500)
    category = models.CharField(max_length=16, choices=Category.choices, default=Category.ARTICLE)
    created_at = models.DateTimeField(auto_now_add=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    options = models.JSONField(default=dict, blank=True, help_text="The connector's own settings for this source.")
    state = models.JSONField(default=dict, blank=True, help_text="What the connector remembers between syncs.")
    recrawl_hours = models.PositiveIntegerField(
        null=True, blank=True, help_text="Hours between scheduled syncs; empty: the site default; 0: never."
    )
    failure_streak = models.PositiveIntegerField(default=0, help_text="Failed syncs in a row.")
    retry_after = models.DateTimeField(null=True, blank=True, help_text="No scheduled sync before this (backoff).")
    audience = models.BooleanField(
        default=False,
        help_text="The twin's audience (invited users, visitors) may draw on this source. Private by default.",
    )

    objects = SourceQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "url"], condition=~models.Q(url=""), name="unique_source_url_per_owner"
            )
        ]

    def __str__(self):
        return self.name

    def set_audience(self, shared: bool) -> "Source":
        """Let the twin's audience draw on this source, or make it private again (the next answer obeys)."""
        if self.audience != shared:
            self.audience = shared
            self.save(update_fields=["audience"])
        return self

    @property
    def last_run(self):
        if hasattr(self, "latest_runs"):  # Source.objects.with_last_run()
            return self.latest_runs[0] if self.latest_runs else None
        return self.crawl_runs.order_by("-created_at").first()


class CrawlRun(Job):
    """One sync of a source. A queued run is held back (dispatched_at empty) while its owner already has
    TWIN_MAX_ACTIVE_SYNCS_PER_USER syncs sent and not finished, and sent when one of them ends
    (ingestion.actions.do_dispatch_syncs): one owner's hundreds of syncs cannot fill the queue ahead of others."""

    task_name = "ingestion.tasks.crawl_source"
    queued_since = "dispatched_at"  # a held run has no message that could be lost

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="crawl_runs")
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="crawl_runs")
    documents_created = models.PositiveIntegerField(default=0)
    documents_updated = models.PositiveIntegerField(default=0)
    documents_unchanged = models.PositiveIntegerField(default=0)
    documents_failed = models.PositiveIntegerField(default=0)
    documents_skipped = models.PositiveIntegerField(default=0)
    documents_gone = models.PositiveIntegerField(default=0)
    requests_made = models.PositiveIntegerField(default=0, help_text="HTTP requests, robots.txt included.")
    failures = models.JSONField(default=list, blank=True, help_text="[{url, reason}] of the items that failed.")
    dispatched_at = models.DateTimeField(
        null=True, blank=True, help_text="When its task was sent; empty while it waits for its owner's other syncs."
    )

    class Meta(Job.Meta):
        pass

    def __str__(self):
        return f"Crawl of {self.source} ({self.status})"

    @property
    def is_cancelled(self) -> bool:
        return self.status == JobStatus.CANCELLED

    def request_cancel(self) -> bool:
        """Cancel a queued or running crawl; the task notices before its next request and stops.

        The row's status is the record. The running task learns of it from a message on
        the run's channel, which reaches its subscription without the task asking (no round
        trip per 304); the flag in the cache tells a task that subscribes later."""
        done = CrawlRun.objects.filter(pk=self.pk, status__in=ACTIVE_STATUSES).update(
            status=JobStatus.CANCELLED, finished_at=timezone.now(), message="Cancelled"
        )
        if done:
            cache.set(self.cancel_flag_key, True, timeout=settings.TWIN_CRAWL_RUN_SECONDS + 3600)
            with redis.Redis.from_url(settings.CACHES["default"]["LOCATION"]) as client:
                client.publish(self.cancel_channel, "cancelled")
        self.refresh_from_db()
        return bool(done)

    @property
    def cancel_flag_key(self) -> str:
        return f"crawl-cancelled:{self.pk}"

    @property
    def cancel_channel(self) -> str:
        """Channels are not scoped by Redis database number: the key prefix and the database
        name keep another deployment's (or test run's) run of the same id out."""
        return f"{cache.make_key(self.cancel_flag_key)}:{connection.settings_dict['NAME']}"

    def cancelled_meanwhile(self) -> bool:
        return CrawlRun.objects.filter(pk=self.pk, status=JobStatus.CANCELLED).exists()

    def finish(self, status, **fields) -> bool:
        """Finish a running crawl, unless the user cancelled it in the meantime."""
        fields.update(status=status, finished_at=timezone.now())
        if status == JobStatus.SUCCEEDED:
            fields["progress"] = 100
        done = CrawlRun.objects.filter(pk=self.pk, status=JobStatus.RUNNING).update(**fields)
        self.refresh_from_db()
        return bool(done)


class DocumentQuerySet(OwnedQuerySet):
    def present(self):
        return self.filter(gone_at__isnull=True)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Document(models.Model):
    """A raw document as fetched: the FTI 'data warehouse' row features are built from."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="documents")
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="documents")
    category = models.CharField(max_length=16, choices=Category.choices, default=Category.ARTICLE)
    title = models.CharField(max_length=500)
    url = models.CharField(max_length=2000, help_text="Where it came from (upload:// for files).")
    raw_text = models.TextField()
    content_hash = models.CharField(max_length=64)
    fetched_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)
    metadata = models.JSONField(default=dict, blank=True, help_text="Connector facts: path, language, feed…")
    etag = models.CharField(max_length=300, blank=True, help_text="The server's ETag, for a conditional re-fetch.")
    last_modified = models.CharField(max_length=100, blank=True, help_text="The server's Last-Modified.")
    body_hash = models.CharField(max_length=64, blank=True, help_text="sha256 of the bytes fetched.")
    gone_at = models.DateTimeField(null=True, blank=True, help_text="When the source stopped having it.")
    published_at = models.DateTimeField(null=True, blank=True, help_text="When the source says it was published.")

    objects = DocumentQuerySet.as_manager()

    class Meta:
        ordering = ["-fetched_at"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "content_hash"], name="unique_document_content_per_owner"),
            models.UniqueConstraint(fields=["source", "url"], name="unique_document_url_per_source"),
        ]

    def __str__(self):
        return self.title

    @property
    def word_count(self) -> int:
        return len(self.raw_text.split())
