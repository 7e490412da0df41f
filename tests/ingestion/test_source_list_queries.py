"""The sources page and API list read each source's latest crawl in one query for all of them:
their cost does not grow with the number of sources or of crawls (a page of the load test)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.jobs import JobStatus
from ingestion.models import CrawlRun, Source

pytestmark = pytest.mark.django_db


def add_sources(owner, count: int, runs_each: int = 3) -> list[Source]:
    sources = []
    start = Source.objects.for_user(owner).count()
    for n in range(start, start + count):
        url = f"https://example.com/note-{n}"
        source = Source.objects.create(owner=owner, kind=Source.Kind.ARTICLE, name=f"Note {n}", url=url)
        for _ in range(runs_each):
            CrawlRun.objects.create(owner=owner, source=source, status=JobStatus.SUCCEEDED)
        sources.append(source)
    return sources


def queries_for(client, path: str) -> int:
    client.get(path)  # once-a-while writes (a token's last use) happen on the first request
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured)


@pytest.mark.parametrize("path", [reverse("sources"), "/api/v1/sources/"])
def test_listing_costs_the_same_queries_for_2_or_12_sources(owner, owner_client, owner_api, path):
    client = owner_api if path.startswith("/api/") else owner_client
    add_sources(owner, 2)
    few = queries_for(client, path)
    add_sources(owner, 10)
    assert queries_for(client, path) == few


def test_the_latest_run_is_the_one_shown(owner, owner_client):
    (source,) = add_sources(owner, 1)
    latest = CrawlRun.objects.create(owner=owner, source=source, status=JobStatus.FAILED, error="Gone")
    listed = Source.objects.for_user(owner).with_last_run().get()
    assert listed.last_run == latest == source.last_run
    assert Source.objects.for_user(owner).with_last_run().get().last_run.status == JobStatus.FAILED
