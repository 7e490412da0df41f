"""Multi-step writes on sources and documents, shared by views, the API and tasks."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from accounts.quotas import QuotaReached, check_storage
from core.jobs import ACTIVE_STATUSES, JobStatus

from .connectors import connector_named
from .models import CrawlRun, Document, Source, content_hash
from .signals import documents_changed, documents_gone


class SourceRefused(Exception):
    """The user cannot add this source; the message says why."""


class StorageFull(SourceRefused):
    """A sync reached the owner's storage quota while storing: it stops there, keeping what it stored."""


def _check_source_limit(owner, adding: int = 0):
    """Call inside the transaction that adds the source: the owner's row lock serialises adds."""
    get_user_model().objects.select_for_update().get(pk=owner.pk)
    limit = settings.TWIN_MAX_SOURCES_PER_USER
    if Source.objects.for_user(owner).count() >= limit:
        raise SourceRefused(f"You have reached the limit of {limit} sources; delete one to add another.")
    _check_storage(owner, adding)


def _check_storage(owner, adding: int = 0):
    try:
        check_storage(owner, adding)
    except QuotaReached as exc:
        raise SourceRefused(str(exc)) from None


def do_add_source(owner, kind: str, cleaned_data: dict) -> Source:
    """Add a source of any registered kind from its connector form's cleaned data, and queue its sync.

    The connector turns the form's data into the source's fields (name, url, category,
    options, and an uploaded file, stored privately); the row and the file are written
    together or not at all.
    """
    fields = connector_named(kind).source_fields(cleaned_data)
    upload = fields.pop("upload", None)
    with transaction.atomic():
        _check_source_limit(owner, adding=upload.size if upload is not None else 0)
        if fields.get("url") and Source.objects.for_user(owner).filter(url=fields["url"]).exists():
            raise SourceRefused("You have already added that address.")
        source = Source(owner=owner, kind=kind, **fields)
        source.name = (source.name or source.url or (upload.name if upload else kind))[:300]
        if upload is not None:
            source.upload.save(upload.name, upload, save=False)
        try:
            source.save()
            do_sync_source(source, check_quota=False)
        except BaseException:
            if upload is not None:
                source.upload.delete(save=False)  # no orphan file when the row is rolled back
            raise
    return source


def do_add_upload_source(owner, upload, *, category: str, name: str = "") -> Source:
    """An uploaded file (kept for callers that predate the registry)."""
    return do_add_source(owner, Source.Kind.UPLOAD, {"file": upload, "category": category, "name": name})


def do_add_article_source(owner, url: str, *, category: str) -> Source:
    """One article URL (kept for callers that predate the registry)."""
    return do_add_source(owner, Source.Kind.ARTICLE, {"url": url, "category": category})


def do_sync_source(source: Source, *, check_quota: bool = True) -> CrawlRun:
    """Queue a crawl of the source, or return the one already queued or running.
    SourceRefused when the owner's storage quota is used up (adding a source checked it already).

    The crawl is sent to the workers at once while its owner has fewer than
    TWIN_MAX_ACTIVE_SYNCS_PER_USER syncs sent and not finished; otherwise it waits, queued,
    and is sent when one of them ends (do_dispatch_syncs)."""
    active = source.crawl_runs.active().first()
    if active:
        return active
    if check_quota:
        _check_storage(source.owner)
    run = CrawlRun.objects.create(owner=source.owner, source=source, message=_waiting_message())
    do_dispatch_syncs([source.owner_id])
    run.refresh_from_db()
    return run


def _waiting_message() -> str:
    limit = settings.TWIN_MAX_ACTIVE_SYNCS_PER_USER
    return f"Waiting for one of your other syncs to finish (at most {limit} run at once)"


def do_dispatch_syncs(owner_ids=None) -> int:
    """Send held syncs to the workers, fairly: each owner up to TWIN_MAX_ACTIVE_SYNCS_PER_USER syncs
    sent and not finished, in rounds of one sync per owner (oldest request first), so that the
    queue, first in first out, alternates between owners. Called when a sync is requested or
    ends, and by beat. Returns how many were sent."""
    held = CrawlRun.objects.filter(status=JobStatus.QUEUED, dispatched_at__isnull=True)
    if owner_ids is not None:
        held = held.filter(owner_id__in=owner_ids)
    limit = settings.TWIN_MAX_ACTIVE_SYNCS_PER_USER
    sent = 0
    with transaction.atomic():
        owner_ids = set(held.values_list("owner_id", flat=True))
        # The owners' rows serialise dispatchers (a sync ending while another is requested, beat).
        owners = list(get_user_model().objects.select_for_update().filter(pk__in=owner_ids).order_by("pk"))
        turns: dict[int, list[CrawlRun]] = {}
        for owner in owners:
            running = CrawlRun.objects.for_user(owner).filter(status__in=ACTIVE_STATUSES, dispatched_at__isnull=False)
            free = limit - running.count()
            if free > 0 and (waiting := list(held.for_user(owner).order_by("created_at", "pk")[:free])):
                turns[owner.pk] = waiting
        order = sorted(turns, key=lambda owner_id: (turns[owner_id][0].created_at, owner_id))
        while any(turns.values()):
            for owner_id in order:
                if turns[owner_id]:
                    sent += _dispatch(turns[owner_id].pop(0))
    return sent


def _dispatch(run: CrawlRun) -> int:
    won = CrawlRun.objects.filter(pk=run.pk, status=JobStatus.QUEUED, dispatched_at__isnull=True).update(
        dispatched_at=timezone.now(), message="Waiting for a worker"
    )
    if won:
        run.send_when_committed()
    return won


def do_cancel_sync(source: Source) -> CrawlRun | None:
    """Cancel the source's queued or running crawl; it stops at its next item, keeping what it stored.
    Its owner's next held sync, if any, takes its place."""
    run = source.crawl_runs.active().first()
    if run and run.request_cancel():
        do_dispatch_syncs([source.owner_id])
        return run
    return None


def do_reprocess_source(source: Source) -> int:
    """Send the source's present documents through the feature pipeline again.

    The retry for a failed feature run: a re-sync skips unchanged documents, so it
    would never rebuild what failed. Features skip documents already built, so only
    the missing work is done.
    """
    ids = list(source.documents.present().values_list("pk", flat=True))
    do_send_changed(source.owner_id, ids)
    return len(ids)


def do_delete_source(source: Source):
    """Delete the source with its documents (features cascade from them) and its file."""
    upload, storage = source.upload.name, source.upload.storage
    with transaction.atomic():
        source.delete()
        if upload:  # only once the rows are gone for good
            transaction.on_commit(lambda: storage.delete(upload))


def do_upsert_document(source: Source, item) -> tuple[str, int | None, str]:
    """Store one crawled item by (source, url): (outcome, document id, note for the user).

    In one transaction of its own: a later failure never undoes it, and a failure here
    leaves the stored document as it was. A text the owner already has under another
    document is skipped, so nothing is embedded or trained on twice. A document back
    from gone is "updated" even with the same text: its features were dropped, so it
    re-enters the feature pipeline.
    """
    text = item.text[: settings.TWIN_MAX_DOCUMENT_CHARS]
    digest = content_hash(text)
    # What the fetch says about the item: kept even when its text is unchanged.
    facts = {"etag": item.etag, "last_modified": item.last_modified, "body_hash": item.body_hash}
    if item.published_at:  # an item without a date (a re-checked page) keeps the one stored
        facts["published_at"] = item.published_at
    with transaction.atomic():
        existing = Document.objects.select_for_update().filter(source=source, url=item.url).first()
        if existing and existing.content_hash == digest and existing.gone_at is None:
            for name, value in {**facts, "gone_at": None}.items():
                setattr(existing, name, value)
            existing.save(update_fields=[*facts, "gone_at"])
            return "unchanged", existing.pk, ""
        duplicate = Document.objects.for_user(source.owner).filter(content_hash=digest)
        if existing:
            duplicate = duplicate.exclude(pk=existing.pk)
        if twin := duplicate.first():
            return "skipped", None, f"Same text as “{twin.title}”, which is already stored."
        # The quota is checked as documents are stored, not only when the sync starts: one sync can bring gigabytes.
        growth = len(text.encode()) - (len(existing.raw_text.encode()) if existing else 0)
        if growth > 0:
            try:
                check_storage(source.owner, growth)
            except QuotaReached as exc:
                raise StorageFull(f"The sync stopped: {exc} What it stored before is kept.") from None
        values = {
            "title": item.title[:500],
            "raw_text": text,
            "content_hash": digest,
            "category": item.category or source.category,
            "metadata": item.metadata,
            "fetched_at": timezone.now(),
            "gone_at": None,
            **facts,
        }
        if existing:
            for name, value in values.items():
                setattr(existing, name, value)
            existing.save(update_fields=list(values))
            return "updated", existing.pk, ""
        document = Document.objects.create(owner=source.owner, source=source, url=item.url, **values)
        return "created", document.pk, ""


def do_mark_gone(source: Source, urls: list[str]) -> int:
    """Documents whose item left the source are marked, never silently deleted; once that
    commits, downstream pipelines stop using them (documents_gone)."""
    if not urls:
        return 0
    with transaction.atomic():
        ids = list(
            source.documents.select_for_update().filter(url__in=urls, gone_at__isnull=True).values_list("pk", flat=True)
        )
        Document.objects.filter(pk__in=ids).update(gone_at=timezone.now())
    if ids:
        owner_id = source.owner_id
        transaction.on_commit(lambda: documents_gone.send(sender=Document, owner_id=owner_id, document_ids=ids))
    return len(ids)


def do_send_changed(owner_id: int, document_ids: list[int]):
    if document_ids:
        ids = sorted(set(document_ids))
        transaction.on_commit(lambda: documents_changed.send(sender=Document, owner_id=owner_id, document_ids=ids))


def do_finish_crawl(run: CrawlRun, crawl, *, error: str = "", cancelled: bool = False):
    """Close the run with its counts; a failed sync backs the source off, a good one clears that.

    A crawl resumed after its worker died lost the list of what it had changed before, and
    now finds those documents unchanged: it sends every present document of the source to
    the feature pipeline, which skips what it has already built."""
    if run.attempts > 1:
        crawl.changed += list(run.source.documents.present().values_list("pk", flat=True))
    crawl.send_changed()
    source, fields = run.source, crawl.counters()
    if cancelled:
        CrawlRun.objects.filter(pk=run.pk).update(**fields)
        run.refresh_from_db()
        return
    if error:
        run.finish(JobStatus.FAILED, error=error, **fields)
        source.failure_streak += 1
        hours = min(settings.TWIN_RECRAWL_HOURS * 2 ** (source.failure_streak - 1), settings.TWIN_MAX_BACKOFF_HOURS)
        source.retry_after = timezone.now() + timedelta(hours=hours)
        source.save(update_fields=["failure_streak", "retry_after"])
        return
    run.finish(JobStatus.SUCCEEDED, message=crawl.summary(), **fields)
    source.last_synced_at, source.failure_streak, source.retry_after = timezone.now(), 0, None
    source.save(update_fields=["last_synced_at", "failure_streak", "retry_after", "state"])
