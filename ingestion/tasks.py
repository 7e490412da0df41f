import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from .actions import do_store_documents, do_sync_source
from .connectors import ConnectorError, connector_for
from .models import CrawlRun, Source

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def crawl_source(run_id: int):
    run = CrawlRun.objects.select_related("source").filter(pk=run_id).first()
    if run is None or not run.claim():
        return  # deleted, finished, or being run by another worker
    try:
        fetched = connector_for(run.source).fetch(run.source, run.report)
        run.report(80, "Storing documents")
        do_store_documents(run, fetched)
    except ConnectorError as exc:
        run.fail(str(exc))
        return
    except Exception:
        logger.exception("crawl run %s failed", run_id)
        run.fail("An unexpected error stopped this crawl. It has been logged; try again later.")
        raise
    done = run.documents_created + run.documents_updated
    run.succeed(
        f"{done} new or changed, {run.documents_unchanged} unchanged",
        documents_created=run.documents_created,
        documents_updated=run.documents_updated,
        documents_unchanged=run.documents_unchanged,
    )


@shared_task
def recrawl_stale_sources():
    """Beat: re-sync article sources not synced for TWIN_RECRAWL_HOURS."""
    older_than = timezone.now() - timedelta(hours=settings.TWIN_RECRAWL_HOURS)
    for source in Source.objects.due_for_recrawl(older_than).iterator():
        do_sync_source(source)
