"""Article URLs: /sources/article/, do_add_article_source, and re-syncing a changed page."""

import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from django.urls import reverse

from features.models import Chunk
from ingestion.actions import SourceRefused, do_add_article_source, do_add_source, do_sync_source
from ingestion.models import CrawlRun, Document, Source
from tests.ingestion.conftest import closed_port
from tests.ingestion.sites import post_html

pytestmark = pytest.mark.django_db


def article_html(title: str, *paragraphs: str) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<html><head><title>{title}</title></head><body>"
        "<nav><a href='/'>Home</a> <a href='/archive'>Archive of every post</a></nav>"
        f"<article><h1>{title}</h1>{body}</article>"
        "<footer>Copyright 2024 the author. Built with a static site generator.</footer></body></html>"
    )


BREAD = article_html(
    "Baking rye bread",
    "I bake a dark rye loaf every Saturday with a starter I have kept alive for six years. The dough is "
    "closer to a paste than a dough, and I shape it with wet hands in a tin rather than on the counter.",
    "Rye needs a long rest after baking: I wait a full day before cutting it, or the crumb stays gummy.",
)


def add_article(client, url, category="article"):
    return client.post(reverse("add-source", args=["article"]), {"url": url, "category": category})


def test_an_article_url_becomes_one_document_with_chunks(owner_client, owner, local_site):
    url = local_site.page("/rye", BREAD)

    response = add_article(owner_client, url)

    assert response.status_code == 302
    source = Source.objects.get(owner=owner)
    document = Document.objects.get(source=source)
    assert source.kind == Source.Kind.ARTICLE and source.url == url
    assert document.title == "Baking rye bread" and document.url == url
    assert "wet hands in a tin" in document.raw_text and "Archive of every post" not in document.raw_text
    assert Chunk.objects.filter(clean_document__document=document, owner=owner).exists()
    assert source.last_run.status == "succeeded" and source.last_synced_at is not None


def test_a_plain_text_article_is_stored_as_it_is(owner, local_site):
    url = local_site.page("/notes.txt", "Plain notes on rye.\n\nNo markup at all here.", content_type="text/plain")

    source = do_add_article_source(owner, url, category="post")

    document = Document.objects.get(source=source)
    assert document.raw_text == "Plain notes on rye.\n\nNo markup at all here." and document.category == "post"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "127.0.0.1 is a loopback address"),
        ("http://127.0.0.1:9/", "Refused: port 9 (only 80, 443 can be crawled)."),
        ("http://example.com:99999/", "That address has an invalid port: ports run from 1 to 65535."),
        ("http://169.254.169.254/latest/meta-data/", "is a link-local address"),
        ("ftp://example.com/post", "Only http:// and https:// addresses can be crawled."),
        ("http://user:secret@example.com/", "Addresses with a user name or password are not accepted."),
    ],
)
def test_a_refused_address_is_answered_400_and_nothing_is_stored(owner_client, url, reason):
    response = add_article(owner_client, url)

    assert response.status_code == 400
    assert reason in response.content.decode()
    assert not Source.objects.exists() and not CrawlRun.objects.exists()


def test_an_unknown_host_is_looked_up_by_the_worker_and_fails_the_run_with_the_reason(owner_client, owner):
    response = add_article(owner_client, "http://no-such-blog.invalid/post")

    assert response.status_code == 302  # no DNS lookup in the web request
    run = Source.objects.get(owner=owner).last_run
    assert run.status == "failed" and "The host no-such-blog.invalid could not be found." in run.error


def test_an_unreachable_host_leaves_a_failed_run_with_its_error_on_the_source_page(
    owner_client, owner, local_site, settings
):
    port = closed_port()
    settings.TWIN_CRAWL_ALLOWED_PORTS = [port]  # allowed, but nothing listens there
    url = f"http://127.0.0.1:{port}/post"

    response = add_article(owner_client, url)

    assert response.status_code == 302
    source = Source.objects.get(owner=owner)
    run = CrawlRun.objects.get(source=source)
    assert run.status == "failed" and "Could not connect to 127.0.0.1" in run.error
    assert not Document.objects.exists()
    page = owner_client.get(reverse("source-detail", args=[source.pk])).content.decode()
    assert "Could not connect to 127.0.0.1" in page


def test_a_non_html_url_leaves_a_failed_run_with_its_error_on_the_source_page(owner_client, owner, local_site):
    url = local_site.page("/paper.pdf", "%PDF-1.7", content_type="application/pdf")

    add_article(owner_client, url)

    source = Source.objects.get(owner=owner)
    assert source.last_run.status == "failed"
    assert "not an HTML page (it is application/pdf)" in source.last_run.error
    assert not Document.objects.exists()
    page = owner_client.get(reverse("source-detail", args=[source.pk])).content.decode()
    assert "not an HTML page (it is application/pdf)" in page


def test_a_page_with_no_article_text_fails_the_run(owner, local_site):
    url = local_site.page("/empty", "<html><head><title>Empty</title></head><body></body></html>")

    source = do_add_article_source(owner, url, category="article")

    assert source.last_run.status == "failed" and "No article text was found" in source.last_run.error
    assert not Document.objects.exists()


def test_adding_the_same_url_twice_is_refused(owner_client, owner, local_site):
    url = local_site.page("/rye", BREAD)
    add_article(owner_client, url)

    response = add_article(owner_client, url)

    assert response.status_code == 400
    assert "You have already added that address." in response.content.decode()
    assert Source.objects.filter(owner=owner).count() == 1
    with pytest.raises(SourceRefused, match="already added"):
        do_add_article_source(owner, url, category="article")


def test_two_owners_may_add_the_same_url(owner, other, local_site):
    url = local_site.page("/rye", BREAD)

    do_add_article_source(owner, url, category="article")
    do_add_article_source(other, url, category="article")

    assert Document.objects.filter(owner=owner).count() == Document.objects.filter(owner=other).count() == 1


def test_the_source_limit_refuses_another_article_with_a_message(
    owner_client, owner, owner_source, local_site, settings
):
    settings.TWIN_MAX_SOURCES_PER_USER = 1

    response = add_article(owner_client, local_site.page("/rye", BREAD))

    assert response.status_code == 400
    assert "You have reached the limit of 1 sources; delete one to add another." in response.content.decode()
    assert list(Source.objects.filter(owner=owner)) == [owner_source]


def test_syncing_an_unchanged_article_creates_no_new_documents(owner_client, owner, local_site):
    source = do_add_article_source(owner, local_site.page("/rye", BREAD), category="article")
    document = Document.objects.get(source=source)
    chunk_ids = set(Chunk.objects.values_list("pk", flat=True))

    response = owner_client.post(reverse("sync-source", args=[source.pk]))

    assert response.status_code == 302
    run = source.last_run
    assert source.crawl_runs.count() == 2 and run.status == "succeeded"
    assert (run.documents_created, run.documents_updated, run.documents_unchanged) == (0, 0, 1)
    assert list(Document.objects.all()) == [document]
    assert set(Chunk.objects.values_list("pk", flat=True)) == chunk_ids


def test_a_changed_article_updates_its_document_and_replaces_its_chunks(owner, local_site):
    url = local_site.page("/rye", BREAD)
    source = do_add_article_source(owner, url, category="article")
    document = Document.objects.get(source=source)
    old_chunks = set(Chunk.objects.values_list("pk", flat=True))
    local_site.page(
        "/rye",
        article_html(
            "Baking rye bread",
            "Update: I switched to baking rye in a cast iron pot with the lid on, which keeps the crust thin "
            "and soft. The starter is now seven years old and still lively after a week in the fridge.",
        ),
    )

    run = do_sync_source(source)

    run.refresh_from_db()
    assert (run.status, run.documents_updated, run.documents_created) == ("succeeded", 1, 0)
    document.refresh_from_db()
    assert "cast iron pot" in document.raw_text and "wet hands" not in document.raw_text
    texts = list(Chunk.objects.filter(clean_document__document=document).values_list("text", flat=True))
    assert texts and all("wet hands" not in text for text in texts) and any("cast iron" in t for t in texts)
    assert not old_chunks & set(Chunk.objects.values_list("pk", flat=True))


def test_an_article_that_starts_failing_keeps_its_previous_document(owner, local_site):
    url = local_site.page("/rye", BREAD)
    source = do_add_article_source(owner, url, category="article")
    local_site.page("/rye", "gone", status=500)

    run = do_sync_source(source)

    run.refresh_from_db()
    assert run.status == "failed" and "HTTP 500" in run.error
    assert "wet hands" in Document.objects.get(source=source).raw_text
    assert Chunk.objects.filter(clean_document__document__source=source).exists()


def test_another_user_cannot_sync_or_see_your_source(other_client, owner, local_site):
    source = do_add_article_source(owner, local_site.page("/rye", BREAD), category="article")

    assert other_client.post(reverse("sync-source", args=[source.pk])).status_code == 404
    assert other_client.get(reverse("source-detail", args=[source.pk])).status_code == 404
    assert source.crawl_runs.count() == 1


def test_a_retry_after_date_is_honoured_within_the_backoff_cap(owner, site, settings, caplog):
    """A 503 asking (as an HTTP date) to come back tomorrow waits the cap, as the seconds
    form does; before, the date was ignored and the crawl retried after its own backoff."""
    settings.TWIN_CRAWL_BACKOFF_SECONDS, settings.TWIN_CRAWL_MAX_BACKOFF_SECONDS = 0.01, 0.05
    tomorrow = format_datetime(datetime.now(UTC) + timedelta(days=1), usegmt=True)
    answers = [
        (503, {"Content-Type": "text/plain", "Retry-After": tomorrow}, b"busy"),
        (200, {"Content-Type": "text/html; charset=utf-8"}, post_html("Rye", "rye bread").encode()),
    ]
    site.routes["/post"] = lambda: answers.pop(0) if len(answers) > 1 else answers[0]

    with caplog.at_level(logging.INFO, logger="ingestion.crawling"):
        source = do_add_source(owner, "article", {"url": site.base + "/post", "category": "article"})

    assert source.last_run.status == "succeeded", source.last_run.error
    assert Document.objects.filter(source=source).count() == 1
    assert "HTTP 503 from 127.0.0.1" in caplog.text and "retrying in 0.05s" in caplog.text


def test_robots_txt_wildcards_and_end_anchors_are_obeyed(owner, site):
    """`Disallow: /*.pdf$` forbids /a/b.pdf (the standard library's parser let it through)."""
    site.add("/robots.txt", "User-agent: *\nDisallow: /*.pdf$\n", content_type="text/plain")
    url = site.add("/a/b.pdf", post_html("A paper", "papers"))

    source = do_add_source(owner, "article", {"url": url, "category": "article"})

    assert source.last_run.status == "failed"
    assert "asks crawlers not to fetch /a/b.pdf" in source.last_run.error
    assert "/a/b.pdf" not in site.paths()


def test_the_longest_matching_robots_rule_wins(owner, site):
    """A longer Allow inside a disallowed folder allows that page (RFC 9309), wherever it stands."""
    site.add("/robots.txt", "User-agent: *\nDisallow: /drafts/\nAllow: /drafts/published-post\n", "text/plain")
    allowed = site.add("/drafts/published-post", post_html("Published", "publishing"))
    forbidden = site.add("/drafts/secret", post_html("Secret", "secrets"))

    published = do_add_source(owner, "article", {"url": allowed, "category": "article"})
    secret = do_add_source(owner, "article", {"url": forbidden, "category": "article"})

    assert published.last_run.status == "succeeded", published.last_run.error
    assert secret.last_run.status == "failed" and "robots.txt" in secret.last_run.error
    assert "/drafts/published-post" in site.paths(200) and "/drafts/secret" not in site.paths()
