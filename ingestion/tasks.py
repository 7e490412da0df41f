import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from .actions import SourceRefused, StorageFull, do_dispatch_syncs, do_finish_crawl, do_sync_source
from .connectors import CONNECTORS, ConnectorError, connector_for
from .crawling import Crawl, RunStopped
from .models import CrawlRun, Source

logger = logging.getLogger(__name__)


# The crawl stops itself at TWIN_CRAWL_RUN_SECONDS; Celery's limits are the backstop
# for a crawl stuck where it cannot look at its clock.
@shared_task(
    acks_late=True,
    soft_time_limit=settings.TWIN_CRAWL_RUN_SECONDS + 60,
    time_limit=settings.TWIN_CRAWL_RUN_SECONDS + 120,
)
def crawl_source(run_id: int):
    run = CrawlRun.objects.select_related("source").filter(pk=run_id).first()
    if run is None or not run.claim():
        return  # deleted, finished, cancelled, or being run by another worker
    crawl = Crawl(run)
    try:
        _sync(run, crawl)
    finally:
        crawl.close()
        try:
            do_dispatch_syncs([run.owner_id])  # its owner's next held sync takes its place
        except Exception:  # never hide how the sync ended; beat's dispatch_syncs sends it within a minute
            logger.exception("could not send the next held sync of user %s", run.owner_id)


@shared_task
def dispatch_syncs():
    """Beat: send held syncs whose owner has a free place (after a run failed outside its task, say)."""
    do_dispatch_syncs()


def _sync(run, crawl):
    try:
        with run.keep_alive():
            connector_for(run.source).sync(crawl)
    except RunStopped as exc:
        cancelled = run.cancelled_meanwhile()
        do_finish_crawl(run, crawl, error="" if cancelled else str(exc), cancelled=cancelled)
        return
    except (ConnectorError, StorageFull) as exc:
        do_finish_crawl(run, crawl, error=str(exc))
        return
    except SoftTimeLimitExceeded:
        do_finish_crawl(run, crawl, error="The sync ran past its time limit and was stopped; what it fetched is kept.")
        return
    except Exception:
        logger.exception("crawl run %s failed", run.pk)
        do_finish_crawl(
            run, crawl, error="An unexpected error stopped this crawl. It has been logged; try again later."
        )
        raise
    do_finish_crawl(run, crawl)


@shared_task
def recrawl_stale_sources():
    """Beat: re-sync sources whose recrawl interval passed (not those backing off after failures)."""
    kinds = [kind for kind, connector in CONNECTORS.items() if connector.recrawls]
    for source in Source.objects.due_for_recrawl(kinds).iterator():
        try:
            do_sync_source(source)
        except SourceRefused as exc:  # the owner's storage quota: their page says so when they sync
            logger.info("recrawl of source %s skipped: %s", source.pk, exc)
