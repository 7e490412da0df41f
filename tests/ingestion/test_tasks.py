"""Crawl tasks: the idempotent claim of a run, failures, and the beat's recrawl of stale articles."""

from datetime import timedelta

import pytest
from django.utils import timezone

from ingestion import tasks
from ingestion.actions import do_add_article_source
from ingestion.models import CrawlRun, Document, Source
from ingestion.tasks import crawl_source, recrawl_stale_sources

pytestmark = pytest.mark.django_db

POST = "<html><head><title>{0}</title></head><body><article><h1>{0}</h1><p>{1}</p></article></body></html>"


def add_article(owner, local_site, slug):
    body = (
        f"This post about {slug} is long enough to be an article. I wrote it on a train and kept every "
        f"sentence short so that it reads quickly on a phone, which is where people read {slug} posts."
    )
    return do_add_article_source(owner, local_site.page(f"/{slug}", POST.format(slug.title(), body)), category="post")


@pytest.fixture
def no_connector_calls(monkeypatch):
    """Fail the test if any connector fetches anything."""

    def refuse(run_source):
        raise AssertionError(f"{run_source} was crawled")

    monkeypatch.setattr(tasks, "connector_for", refuse)


def test_a_crawl_task_for_a_finished_run_does_nothing(owner_source, no_connector_calls):
    run = owner_source.last_run
    before = CrawlRun.objects.filter(pk=run.pk).values().get()

    crawl_source(run.pk)

    assert CrawlRun.objects.filter(pk=run.pk).values().get() == before
    assert Document.objects.count() == 1


def test_a_crawl_task_for_a_run_another_worker_is_running_does_nothing(owner_source, no_connector_calls):
    run = CrawlRun.objects.create(owner=owner_source.owner, source=owner_source)
    assert run.claim()

    crawl_source(run.pk)

    run.refresh_from_db()
    assert run.status == "running" and run.finished_at is None


def test_a_crawl_task_for_a_deleted_run_does_nothing(owner_source, no_connector_calls):
    missing = CrawlRun.objects.order_by("-pk").first().pk + 1000

    assert crawl_source(missing) is None


def test_a_run_abandoned_by_a_dead_worker_is_claimed_again(owner_source):
    run = CrawlRun.objects.create(owner=owner_source.owner, source=owner_source)
    CrawlRun.objects.filter(pk=run.pk).update(status="running", heartbeat_at=timezone.now() - timedelta(hours=1))

    crawl_source(run.pk)

    run.refresh_from_db()
    assert run.status == "succeeded" and run.documents_unchanged == 1
    assert Document.objects.count() == 1


def test_an_unexpected_error_fails_the_run_with_a_generic_message(owner_source, monkeypatch):
    def explode(source):
        raise KeyError("internal detail")

    monkeypatch.setattr(tasks, "connector_for", explode)
    run = CrawlRun.objects.create(owner=owner_source.owner, source=owner_source)

    with pytest.raises(KeyError):
        crawl_source(run.pk)

    run.refresh_from_db()
    assert run.status == "failed" and "unexpected error" in run.error and "internal detail" not in run.error


def test_recrawl_resyncs_only_stale_article_sources(owner, owner_source, local_site, settings):
    settings.TWIN_RECRAWL_HOURS = 24
    stale = add_article(owner, local_site, "stale")
    fresh = add_article(owner, local_site, "fresh")
    never = add_article(owner, local_site, "never")
    long_ago = timezone.now() - timedelta(hours=25)
    Source.objects.filter(pk__in=[stale.pk, owner_source.pk]).update(last_synced_at=long_ago)
    Source.objects.filter(pk=never.pk).update(last_synced_at=None)

    recrawl_stale_sources()

    runs = {source.pk: source.crawl_runs.count() for source in Source.objects.all()}
    assert runs == {stale.pk: 2, never.pk: 2, fresh.pk: 1, owner_source.pk: 1}  # uploads never change
    stale.refresh_from_db()
    assert stale.last_synced_at > long_ago and stale.last_run.status == "succeeded"


def test_recrawl_does_not_queue_a_second_run_while_one_is_active(owner, local_site):
    source = add_article(owner, local_site, "busy")
    queued = CrawlRun.objects.create(owner=owner, source=source)  # waiting for a worker
    Source.objects.filter(pk=source.pk).update(last_synced_at=None)

    recrawl_stale_sources()

    assert list(source.crawl_runs.active()) == [queued] and source.crawl_runs.count() == 2
