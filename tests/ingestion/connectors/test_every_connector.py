"""Every registered connector works from the sources page and from the API, with what a
user pastes or uploads; and neither looks a name up in DNS (only the crawl does, in a worker).

A case is a connector's kind, or kind:variant for the other things that kind takes (a
Substack publication, any git URL, a ZIP of files, an article rendered in the browser)."""

import socket
from types import SimpleNamespace

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from ingestion.connectors import CONNECTORS
from ingestion.connectors.feed import substack
from ingestion.models import Source
from tests.conftest import SAMPLE_MARKDOWN, markdown_upload
from tests.ingestion.connectors.test_article_browser import SHELL, js_site  # noqa: F401 (a fixture)
from tests.ingestion.connectors.test_blog import build_blog
from tests.ingestion.connectors.test_feed import substack_publication
from tests.ingestion.connectors.test_github import github, make_repo  # noqa: F401 (a fixture the github case asks for)
from tests.ingestion.connectors.test_linkedin import export
from tests.ingestion.files import make_zip
from tests.ingestion.sites import post_html

pytestmark = pytest.mark.django_db


CASES = [
    *sorted(CONNECTORS),
    "feed:substack",
    "github:git",
    "upload:zip",
    pytest.param("article:browser", marks=pytest.mark.browser),
]


def what_a_user_gives(case: str, site, request) -> dict:
    """The form data of one source, as a user fills it in (a fresh file each time)."""
    if case == "upload":
        return {"file": markdown_upload(), "category": "article"}
    if case == "upload:zip":
        notes = {"bees.md": SAMPLE_MARKDOWN, "notes/rye.txt": "Baking rye\n\nI bake rye bread every Saturday."}
        return {"file": SimpleUploadedFile("writing.zip", make_zip(notes)), "category": "article"}
    if case == "linkedin":
        return {"file": SimpleUploadedFile("Basic_LinkedInDataExport_03-05-2024.zip", export())}
    if case == "github":
        request.getfixturevalue("github")
        return {"url": "https://github.com/ada"}
    if case == "github:git":
        request.getfixturevalue("settings").TWIN_GIT_ALLOW_LOCAL = True
        tmp_path = request.getfixturevalue("tmp_path")
        return {"url": make_repo(tmp_path / "plain", {"notes.md": "# Notes\n\nSome notes I keep.\n"})}
    if case == "article":
        site.add("/robots.txt", "", content_type="text/plain")
        return {"url": site.add("/2024/rye", post_html("Baking rye", "rye bread")), "category": "article"}
    if case == "article:browser":
        request.getfixturevalue("js_site")
        return {"url": site.add("/post", SHELL), "category": "article", "render_js": "on"}
    if case == "feed:substack":
        request.getfixturevalue("monkeypatch").setattr(substack, "ARCHIVE_PAGE_SIZE", 2)  # the pages served
        return {"url": substack_publication(site), "category": "post"}
    home = build_blog(site, feed="full")
    return {"url": home if case == "blog" else site.base + "/feed.xml", "category": "post"}


def test_the_table_covers_every_registered_connector():
    assert set(CONNECTORS) == {"upload", "article", "blog", "feed", "github", "linkedin"}
    assert {getattr(case, "values", [case])[0] for case in CASES} == {
        *CONNECTORS, "upload:zip", "article:browser", "feed:substack", "github:git"
    }  # fmt: skip


# Text that only the variant's own path can have brought in.
EXPECTED_TEXT = {
    "upload:zip": "rye bread every Saturday",  # the second file of the archive
    "article:browser": "hydration",  # written into the page by its JavaScript
    "feed:substack": "stamp collecting",  # an older post, listed only by the archive
    "github:git": "Some notes I keep",
}


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


@pytest.mark.parametrize("case", CASES)
def test_from_the_sources_page(case, owner, owner_client, site, request, handled):
    kind = case.split(":")[0]
    response = owner_client.post(reverse("add-source", args=[kind]), what_a_user_gives(case, site, request))

    assert response.status_code == 302, response.content.decode()[:2000]
    assert handled.lookups == []  # the web request only validated and queued
    assert_syncs(Source.objects.get(owner=owner, kind=kind), handled.crawls, case)


@pytest.mark.parametrize("case", CASES)
def test_from_the_api(case, owner, owner_api, site, request, handled):
    kind = case.split(":")[0]
    data = {**what_a_user_gives(case, site, request), "kind": kind}
    if data.get("render_js"):
        data["render_js"] = "true"  # what an API client sends for a checkbox

    response = owner_api.post("/api/v1/sources/", data, format="multipart")

    assert response.status_code == 201, response.json()
    assert handled.lookups == [] and response.json()["kind"] == kind
    assert_syncs(Source.objects.get(owner=owner, pk=response.json()["id"]), handled.crawls, case)


@pytest.mark.parametrize("via", ["page", "api"])
def test_a_medium_profile_becomes_its_feed(via, owner, owner_client, owner_api, handled):
    """What a user pastes for Medium. medium.com cannot be reached from the tests: the source is
    checked to read Medium's feed (test_feed reads a Medium-shaped feed served here)."""
    profile = "https://medium.com/@ada"
    if via == "page":
        response = owner_client.post(reverse("add-source", args=["feed"]), {"url": profile, "category": "post"})
        assert response.status_code == 302
    else:
        response = owner_api.post("/api/v1/sources/", {"url": profile, "category": "post"}, format="json")
        assert response.status_code == 201 and response.json()["kind"] == "feed"  # recognised without a kind

    source = Source.objects.get(owner=owner)
    assert (source.kind, source.options["feed_url"]) == ("feed", "https://medium.com/feed/@ada")
    assert len(handled.crawls) == 1 and handled.lookups == []


def assert_syncs(source, crawls, case):
    """The queued crawl, run as a worker would: it succeeds and stores documents."""
    from ingestion.tasks import crawl_source

    assert len(crawls) == 1
    crawl_source(crawls[0])
    run = source.last_run
    assert run.status == "succeeded" and run.documents_created > 0, (run.error, run.failures)
    assert source.documents.count() == run.documents_created
    if case in EXPECTED_TEXT:
        assert any(EXPECTED_TEXT[case] in text for text in source.documents.values_list("raw_text", flat=True))
