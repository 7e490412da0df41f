"""The data warehouse: sources a user links, crawl runs, and the raw documents they yield."""

import hashlib
from pathlib import Path

from django.conf import settings
from django.db import models
from django.utils import timezone

from twinsite.jobs import Job
from twinsite.ownership import OwnedQuerySet


class Category(models.TextChoices):
    ARTICLE = "article", "Article"
    POST = "post", "Post"
    CODE = "code", "Code"


class SourceQuerySet(OwnedQuerySet):
    def due_for_recrawl(self, older_than):
        """Article sources not synced since `older_than` (uploads never change)."""
        return self.filter(kind=Source.Kind.ARTICLE).filter(
            models.Q(last_synced_at__lt=older_than) | models.Q(last_synced_at__isnull=True)
        )


def upload_path(source, filename):
    return f"{source.owner_id}/{timezone.now():%Y%m%d%H%M%S}-{Path(filename).name}"


class Source(models.Model):
    class Kind(models.TextChoices):
        UPLOAD = "upload", "Uploaded file"
        ARTICLE = "article", "Article URL"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sources")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=300)
    url = models.URLField(max_length=2000, blank=True)
    upload = models.FileField(upload_to=upload_path, blank=True, max_length=500)
    category = models.CharField(max_length=16, choices=Category.choices, default=Category.ARTICLE)
    created_at = models.DateTimeField(auto_now_add=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)

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

    @property
    def last_run(self):
        return self.crawl_runs.order_by("-created_at").first()


class CrawlRun(Job):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="crawl_runs")
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="crawl_runs")
    documents_created = models.PositiveIntegerField(default=0)
    documents_updated = models.PositiveIntegerField(default=0)
    documents_unchanged = models.PositiveIntegerField(default=0)

    class Meta(Job.Meta):
        pass

    def __str__(self):
        return f"Crawl of {self.source} ({self.status})"


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

    objects = OwnedQuerySet.as_manager()

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
