"""Every registered connector works from the sources page and from the API, with what a
user pastes or uploads; and neither looks a name up in DNS (only the crawl does, in a worker)."""

import socket
from types import SimpleNamespace

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from ingestion.connectors import CONNECTORS
from ingestion.models import Source
from tests.conftest import markdown_upload
from tests.ingestion.connectors.test_blog import build_blog
from tests.ingestion.connectors.test_github import github  # noqa: F401 (a fixture the github case asks for)
from tests.ingestion.connectors.test_linkedin import export
from tests.ingestion.sites import post_html

pytestmark = pytest.mark.django_db


def what_a_user_gives(kind: str, site, request) -> dict:
    """The form data of one source of `kind`, as a user fills it in (a fresh file each time)."""
    if kind == "upload":
        return {"file": markdown_upload(), "category": "article"}
    if kind == "linkedin":
        return {"file": SimpleUploadedFile("Basic_LinkedInDataExport_03-05-2024.zip", export())}
    if kind == "github":
        request.getfixturevalue("github")
        return {"url": "https://github.com/ada"}
    if kind == "article":
        site.add("/robots.txt", "", content_type="text/plain")
        return {"url": site.add("/2024/rye", post_html("Baking rye", "rye bread")), "category": "article"}
    home = build_blog(site, feed="full")
    return {"url": home if kind == "blog" else site.base + "/feed.xml", "category": "post"}


def test_the_table_covers_every_registered_connector():
    assert set(CONNECTORS) == {"upload", "article", "blog", "feed", "github", "linkedin"}


@pytest.fixture
def handled(monkeypatch):
    """What handling the request did: the crawls it queued (not run yet) and the host names
    it looked up in DNS (the crawl, run afterwards as a worker would, may look up)."""
    crawls, lookups = [], []
    monkeypatch.setattr("ingestion.tasks.crawl_source.delay", crawls.append)
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        lookups.append(host)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return SimpleNamespace(crawls=crawls, lookups=lookups)


@pytest.mark.parametrize("kind", sorted(CONNECTORS))
def test_from_the_sources_page(kind, owner, owner_client, site, request, handled):
    response = owner_client.post(reverse("add-source", args=[kind]), what_a_user_gives(kind, site, request))

    assert response.status_code == 302, response.content.decode()[:2000]
    assert handled.lookups == []  # the web request only validated and queued
    assert_syncs(Source.objects.get(owner=owner, kind=kind), handled.crawls)


@pytest.mark.parametrize("kind", sorted(CONNECTORS))
def test_from_the_api(kind, owner, owner_api, site, request, handled):
    data = {**what_a_user_gives(kind, site, request), "kind": kind}

    response = owner_api.post("/api/v1/sources/", data, format="multipart")

    assert response.status_code == 201, response.json()
    assert handled.lookups == [] and response.json()["kind"] == kind
    assert_syncs(Source.objects.get(owner=owner, pk=response.json()["id"]), handled.crawls)


def assert_syncs(source, crawls):
    """The queued crawl, run as a worker would: it succeeds and stores documents."""
    from ingestion.tasks import crawl_source

    assert len(crawls) == 1
    crawl_source(crawls[0])
    run = source.last_run
    assert run.status == "succeeded" and run.documents_created > 0, (run.error, run.failures)
    assert source.documents.count() == run.documents_created
