"""Crawl runs: live progress on the page and in the API, cancelling, deadlines, retries,
backoff of failing sources, stale queued runs and the per-source schedule."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from features.models import Chunk, CleanDocument
from ingestion.actions import do_add_source, do_sync_source
from ingestion.crawling import Crawl
from ingestion.models import CrawlRun, Document, Source
from ingestion.tasks import crawl_source, recrawl_stale_sources
from tests.ingestion.connectors.test_blog import build_blog

pytestmark = pytest.mark.django_db


def during_the_crawl(monkeypatch, after_stores: int, action):
    """Run `action(run)` once, in the middle of the crawl, after the given number of stored items."""
    real_store, seen = Crawl.store, []

    def store(crawl, item):
        outcome = real_store(crawl, item)
        seen.append(item.url)
        if len(seen) == after_stores:
            action(crawl.run)
        return outcome

    monkeypatch.setattr(Crawl, "store", store)


def test_progress_is_live_on_the_source_page_and_in_the_api(owner, owner_client, owner_api, site, monkeypatch):
    snapshots = {}

    def look(run):
        crawl_progress = owner_client.get(reverse("source-progress", args=[run.source_id]))
        snapshots["page"] = crawl_progress.content.decode()
        snapshots["api"] = owner_api.get(f"/api/v1/sources/{run.source_id}/").json()["last_run"]

    during_the_crawl(monkeypatch, 2, look)
    source = do_add_source(owner, "blog", {"url": build_blog(site, feed="teaser"), "category": "post"})

    assert 'hx-trigger="every 2s"' in snapshots["page"] and "<strong>2</strong> new" in snapshots["page"]
    assert "Cancel sync" in snapshots["page"]
    assert snapshots["api"]["status"] == "running" and snapshots["api"]["documents_created"] == 2
    done = owner_client.get(reverse("source-progress", args=[source.pk])).content.decode()
    assert "hx-trigger" not in done and "<strong>3</strong> new" in done


def test_a_running_sync_can_be_cancelled_and_keeps_what_it_stored(owner, owner_client, site, monkeypatch):
    def cancel(run):
        response = owner_client.post(reverse("cancel-sync", args=[run.source_id]))
        assert response.status_code == 302

    during_the_crawl(monkeypatch, 1, cancel)
    source = do_add_source(owner, "blog", {"url": build_blog(site, feed="teaser"), "category": "post"})

    run = source.last_run
    assert run.status == "cancelled" and run.documents_created == 1
    assert Document.objects.filter(source=source).count() == 1
    assert len([path for path in site.paths() if path.startswith("/2024/")]) == 1  # it stopped fetching


def test_the_api_cancels_a_running_sync_and_says_409_when_none_runs(owner, owner_api, site, monkeypatch):
    answers = []
    during_the_crawl(
        monkeypatch, 1, lambda run: answers.append(owner_api.post(f"/api/v1/sources/{run.source_id}/cancel/"))
    )
    source = do_add_source(owner, "blog", {"url": build_blog(site, feed="teaser"), "category": "post"})

    assert answers[0].status_code == 200 and answers[0].json()["status"] == "cancelled"
    assert owner_api.post(f"/api/v1/sources/{source.pk}/cancel/").status_code == 409


def test_a_sync_whose_row_was_closed_elsewhere_stops_after_its_next_item(owner, site, monkeypatch):
    """Without the cancel flag (the stalled-job sweep, an admin): the row the crawl writes its
    progress to is no longer "running", and the crawl stops instead of going on unseen."""
    during_the_crawl(monkeypatch, 1, lambda run: CrawlRun.objects.filter(pk=run.pk).update(status="failed"))

    source = do_add_source(owner, "blog", {"url": build_blog(site, feed="teaser"), "category": "post"})

    assert source.last_run.status == "failed"
    assert len([path for path in site.paths() if path.startswith("/2024/")]) == 2  # not the third post


def test_a_sync_stops_at_its_deadline_and_keeps_what_it_stored(owner, site, settings):
    settings.TWIN_CRAWL_RUN_SECONDS = 1
    url = build_blog(site, feed="teaser")
    site.delay = 0.3

    source = do_add_source(owner, "blog", {"url": url, "category": "post"})

    run = source.last_run
    assert run.status == "failed" and "stopped at its limit of 1 seconds" in run.error
    assert Document.objects.filter(source=source).count() == run.documents_created < 3
    source.refresh_from_db()
    assert source.failure_streak == 1 and source.retry_after > timezone.now()


def test_the_crawl_task_has_celery_time_limits_beyond_its_own_deadline(settings):
    assert crawl_source.soft_time_limit > settings.TWIN_CRAWL_RUN_SECONDS
    assert crawl_source.time_limit > crawl_source.soft_time_limit


def test_a_failing_source_backs_off_and_a_good_sync_clears_it(owner, site, settings):
    settings.TWIN_RECRAWL_HOURS = 1
    url = build_blog(site, feed="teaser")
    home = site.routes.pop("/")
    source = do_add_source(owner, "blog", {"url": url, "category": "post"})
    Source.objects.filter(pk=source.pk).update(retry_after=None)
    for streak in (2, 3):
        Source.objects.filter(pk=source.pk).update(retry_after=None)
        do_sync_source(source)
        source.refresh_from_db()
        assert source.failure_streak == streak
    assert source.retry_after > timezone.now() + timedelta(hours=3.9)  # 1h, 2h, 4h
    assert not Source.objects.due_for_recrawl(["blog"]).exists()

    site.routes["/"] = home
    do_sync_source(source)

    source.refresh_from_db()
    assert (source.failure_streak, source.retry_after) == (0, None) and source.last_run.status == "succeeded"


def test_each_source_keeps_its_own_recrawl_interval(owner, site, settings, monkeypatch):
    settings.TWIN_RECRAWL_HOURS = 24
    sources = {
        hours: do_add_source(owner, "feed", {"url": site.base + f"/feed{hours}.xml", "recrawl_hours": hours})
        for hours in (None, 0, 2)
    }
    three_hours_ago = timezone.now() - timedelta(hours=3)
    Source.objects.update(last_synced_at=three_hours_ago, retry_after=None)  # their feeds are 404s
    runs = {hours: source.crawl_runs.count() for hours, source in sources.items()}

    recrawl_stale_sources()

    after = {hours: source.crawl_runs.count() for hours, source in sources.items()}
    assert after == {None: runs[None], 0: runs[0], 2: runs[2] + 1}


def test_a_queued_run_whose_message_was_lost_is_sent_again(owner, site):
    source = Source.objects.create(owner=owner, kind="blog", url=build_blog(site, feed="full"), name="blog")
    # Their tasks were sent (dispatched), and the messages lost (a broker restart without persistence).
    lost = CrawlRun.objects.create(owner=owner, source=source, dispatched_at=timezone.now())
    ancient = CrawlRun.objects.create(owner=owner, source=source, dispatched_at=timezone.now())
    sent = timezone.now() - timedelta(minutes=30)
    CrawlRun.objects.filter(pk=lost.pk).update(created_at=sent, dispatched_at=sent)
    sent = timezone.now() - timedelta(days=2)
    CrawlRun.objects.filter(pk=ancient.pk).update(created_at=sent, dispatched_at=sent)

    CrawlRun.objects.resume_stalled()  # beat: twinsite.resume_stalled_jobs

    lost.refresh_from_db()
    ancient.refresh_from_db()
    assert lost.status == "succeeded" and lost.documents_created == 3
    assert ancient.status == "failed" and "No worker picked this job up" in ancient.error


def test_reprocess_rebuilds_features_that_a_failed_run_left_missing(owner, owner_client, site):
    source = do_add_source(owner, "blog", {"url": build_blog(site, feed="full"), "category": "post"})
    CleanDocument.objects.filter(document__source=source).delete()  # as after a failed feature run
    assert not Chunk.objects.filter(owner=owner).exists()
    do_sync_source(source)
    assert not Chunk.objects.filter(owner=owner).exists()  # a re-sync skips unchanged documents

    response = owner_client.post(reverse("reprocess-source", args=[source.pk]))

    assert response.status_code == 302
    assert CleanDocument.objects.filter(document__source=source).count() == 3
    assert Chunk.objects.filter(owner=owner).exists()
