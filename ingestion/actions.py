"""Multi-step writes on sources and documents, shared by views, the API and tasks."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from .connectors import FetchedDocument
from .models import CrawlRun, Document, Source, content_hash
from .signals import documents_changed


class SourceRefused(Exception):
    """The user cannot add this source; the message says why."""


def _check_source_limit(owner):
    """Call inside the transaction that adds the source: the owner's row lock serialises adds."""
    get_user_model().objects.select_for_update().get(pk=owner.pk)
    limit = settings.TWIN_MAX_SOURCES_PER_USER
    if Source.objects.filter(owner=owner).count() >= limit:
        raise SourceRefused(f"You have reached the limit of {limit} sources; delete one to add another.")


def do_add_upload_source(owner, upload, *, category: str, name: str = "") -> Source:
    """Store an already validated upload privately and queue its ingestion."""
    with transaction.atomic():
        _check_source_limit(owner)
        name = name or getattr(upload, "extracted_title", "") or upload.name
        source = Source(owner=owner, kind=Source.Kind.UPLOAD, category=category, name=name[:300])
        source.upload.save(upload.name, upload, save=False)
        try:
            source.save()
            do_sync_source(source)
        except BaseException:
            source.upload.delete(save=False)  # no orphan file when the row is rolled back
            raise
    return source


def do_add_article_source(owner, url: str, *, category: str) -> Source:
    with transaction.atomic():
        _check_source_limit(owner)
        if Source.objects.filter(owner=owner, url=url).exists():
            raise SourceRefused("You have already added that address.")
        source = Source.objects.create(owner=owner, kind=Source.Kind.ARTICLE, url=url, name=url, category=category)
        do_sync_source(source)
    return source


def do_sync_source(source: Source) -> CrawlRun:
    """Queue a crawl of the source, or return the one already queued or running."""
    from .tasks import crawl_source

    active = source.crawl_runs.active().first()
    if active:
        return active
    run = CrawlRun.objects.create(owner=source.owner, source=source, message="Waiting for a worker")
    transaction.on_commit(lambda: crawl_source.delay(run.pk))
    return run


def do_delete_source(source: Source):
    """Delete the source with its documents (features cascade from them) and its file."""
    upload, storage = source.upload.name, source.upload.storage
    with transaction.atomic():
        source.delete()
        if upload:  # only once the rows are gone for good
            transaction.on_commit(lambda: storage.delete(upload))


def do_store_documents(run: CrawlRun, fetched: list[FetchedDocument]) -> list[int]:
    """Upsert the crawl's documents by (source, url); return the ids whose text changed.

    All in one transaction: a failure stores nothing. A text the owner already has
    under another source is skipped, so nothing is embedded or trained on twice.
    """
    source, changed, counts = run.source, [], {"created": 0, "updated": 0, "unchanged": 0}
    limit = settings.TWIN_MAX_DOCUMENT_CHARS
    with transaction.atomic():
        for item in fetched:
            text = item.text[:limit]
            digest = content_hash(text)
            existing = Document.objects.select_for_update().filter(source=source, url=item.url).first()
            duplicate = Document.objects.filter(owner=source.owner, content_hash=digest)
            if existing:
                duplicate = duplicate.exclude(pk=existing.pk)
            if (existing and existing.content_hash == digest) or duplicate.exists():
                counts["unchanged"] += 1
                continue
            if existing:
                existing.title, existing.raw_text, existing.content_hash = item.title, text, digest
                existing.fetched_at = timezone.now()
                existing.save(update_fields=["title", "raw_text", "content_hash", "fetched_at"])
                doc, counts["updated"] = existing, counts["updated"] + 1
            else:
                doc = Document.objects.create(
                    owner=source.owner,
                    source=source,
                    category=source.category,
                    title=item.title,
                    url=item.url,
                    raw_text=text,
                    content_hash=digest,
                )
                counts["created"] += 1
            changed.append(doc.pk)
        source.last_synced_at = timezone.now()
        source.save(update_fields=["last_synced_at"])
        run.documents_created, run.documents_updated = counts["created"], counts["updated"]
        run.documents_unchanged = counts["unchanged"]
        if changed:
            owner_id = source.owner_id
            transaction.on_commit(
                lambda: documents_changed.send(sender=Document, owner_id=owner_id, document_ids=changed)
            )
    return changed
