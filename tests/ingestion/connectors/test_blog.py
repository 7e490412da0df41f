"""Blog or site: discovery by feed, sitemap or links; robots.txt; incremental re-syncs."""

import pytest

from features.datasets import read_records
from features.models import Chunk, FeatureRun
from ingestion.actions import do_add_source, do_sync_source
from ingestion.connectors.blog.discover import skip_reason
from ingestion.models import Document
from tests.ingestion.sites import post_html, rss

pytestmark = pytest.mark.django_db

POSTS = [("/2024/rye", "Baking rye", "rye bread"), ("/2024/bees", "Roof bees", "beekeeping")]
POSTS += [("/2024/sails", "Small sails", "dinghy sailing")]
PRIVATE = "<a href='/private/drafts'>drafts</a>"
ROBOTS = "User-agent: *\nDisallow: /private/\n"


def build_blog(site, *, feed="full", sitemap=False):
    """Home, posts, about, tags and a private page linked from every footer (robots.txt forbids it)."""
    site.add("/robots.txt", ROBOTS, content_type="text/plain")
    links = "".join(f"<li><a href='{path}'>{title}</a></li>" for path, title, _ in POSTS)
    head = "<link rel='alternate' type='application/rss+xml' href='/feed.xml'>" if feed else ""
    site.add(
        "/",
        f"<html><head><title>My blog</title>{head}</head><body><ul>{links}</ul>"
        f"<a href='/about'>About</a> <a href='/tags/'>Tags</a><footer>{PRIVATE}</footer></body></html>",
    )
    for path, title, topic in POSTS:
        site.add(path, post_html(title, topic, links=PRIVATE))
    site.add("/about", post_html("About me", "about pages"))
    site.add("/tags/", "<html><body>" + links + PRIVATE + "</body></html>")
    site.add("/private/drafts", post_html("Secret draft", "secrets"))
    if feed:
        site.add("/feed.xml", rss(site, POSTS, full_text=feed == "full"), content_type="application/rss+xml")
    if sitemap:
        urls = "".join(
            f"<url><loc>{site.base}{p}</loc><lastmod>2024-05-0{i}</lastmod></url>"
            for i, p in enumerate([*(p for p, _, _ in POSTS), "/about"], start=1)
        )
        body = f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
        site.add("/sitemap.xml", body, content_type="application/xml")
    return site.base + "/"


def add_blog(owner, url):
    return do_add_source(owner, "blog", {"url": url, "category": "post"})


def test_a_blog_with_a_full_text_feed_is_read_from_the_feed(owner, site):
    source = add_blog(owner, build_blog(site, feed="full"))

    run = source.last_run
    assert run.status == "succeeded", run.error
    assert (run.documents_created, run.documents_failed) == (3, 0)
    titles = set(Document.objects.filter(source=source).values_list("title", flat=True))
    assert titles == {"Baking rye", "Roof bees", "Small sails"}
    assert all(doc.category == "post" for doc in Document.objects.filter(source=source))
    assert not {path for path, _, _ in POSTS} & set(site.paths())  # the text came from the feed
    assert "/private/drafts" not in site.paths()


def test_a_second_sync_of_an_unchanged_blog_downloads_and_processes_nothing_new(owner, site):
    source = add_blog(owner, build_blog(site, feed="full"))
    feature_runs, documents = FeatureRun.objects.count(), list(Document.objects.values("pk", "content_hash"))
    site.log.clear()

    run = do_sync_source(source)

    run.refresh_from_db()
    assert run.status == "succeeded"
    assert (run.documents_created, run.documents_updated, run.documents_unchanged) == (0, 0, 3)
    assert [(path, status) for path, status, _ in site.log] == [("/robots.txt", 200), ("/feed.xml", 304)]
    assert FeatureRun.objects.count() == feature_runs  # nothing re-entered the feature pipeline
    assert list(Document.objects.values("pk", "content_hash")) == documents


def test_a_teaser_feed_takes_the_text_from_each_post_and_resyncs_with_304s(owner, site):
    source = add_blog(owner, build_blog(site, feed="teaser"))
    assert source.last_run.documents_created == 3
    assert "keep a log and read it back" in Document.objects.get(title="Baking rye").raw_text
    site.log.clear()
    site.connections = 0

    run = do_sync_source(source)

    run.refresh_from_db()
    assert run.documents_unchanged == 3 and run.documents_created + run.documents_updated == 0
    assert {status for path, status, _ in site.log if path.startswith("/2024/")} == {304}
    assert site.connections == 1  # robots.txt, the feed and every post over one kept-alive connection


def test_without_a_feed_the_sitemap_lists_the_posts_and_non_posts_are_skipped(owner, site):
    source = add_blog(owner, build_blog(site, feed=None, sitemap=True))

    run = source.last_run
    assert run.status == "succeeded" and run.documents_created == 3
    assert {f["url"].removeprefix(site.base) for f in run.failures} == {"/about"}
    assert "/about" not in site.paths() and "/private/drafts" not in site.paths()


def test_a_second_sync_by_sitemap_asks_only_for_the_sitemap_when_nothing_changed(owner, site):
    source = add_blog(owner, build_blog(site, feed=None, sitemap=True))
    site.log.clear()

    run = do_sync_source(source)

    run.refresh_from_db()
    assert (run.documents_unchanged, run.documents_created, run.documents_updated) == (3, 0, 0)
    assert [(path, status) for path, status, _ in site.log] == [("/robots.txt", 200), ("/sitemap.xml", 304)]


def test_a_new_lastmod_in_the_sitemap_rechecks_only_that_post(owner, site):
    source = add_blog(owner, build_blog(site, feed=None, sitemap=True))
    status, headers, body = site.routes["/sitemap.xml"]
    site.routes["/sitemap.xml"] = (status, headers, body.replace(b"2024-05-01", b"2024-06-01"))
    site.add("/2024/rye", post_html("Baking rye", "rye with caraway"))
    site.log.clear()

    run = do_sync_source(source)

    run.refresh_from_db()
    assert (run.documents_updated, run.documents_unchanged) == (1, 2)
    assert [path for path, _, _ in site.log] == ["/robots.txt", "/sitemap.xml", "/2024/rye"]


def test_without_feed_or_sitemap_links_are_followed_and_robots_txt_is_obeyed(owner, site):
    source = add_blog(owner, build_blog(site, feed=None, sitemap=False))

    run = source.last_run
    assert run.status == "succeeded" and run.documents_created == 3
    assert "/private/drafts" not in site.paths()  # linked from every page, never requested
    assert not Document.objects.filter(title="Secret draft").exists()
    assert any("robots.txt" in f["reason"] for f in run.failures)


def test_a_page_that_is_only_navigation_is_skipped_with_the_reason(owner, site):
    url = build_blog(site, feed=None)
    menu = "".join(f"<li><a href='/2024/x{i}'>Another post in the list number {i}</a></li>" for i in range(30))
    site.add("/2024/links", f"<html><body><ul>{menu}</ul></body></html>")
    site.routes["/"] = (
        200,
        site.routes["/"][1],
        site.routes["/"][2].replace(b"</ul>", b"<a href='/2024/links'>L</a></ul>"),
    )

    source = add_blog(owner, url)

    failure = next(f for f in source.last_run.failures if f["url"].endswith("/2024/links"))
    assert failure["reason"] == "The page has only navigation links, no article text." and not failure["failed"]
    assert not Document.objects.filter(url__endswith="/2024/links").exists()


def test_a_changed_post_is_updated_and_reenters_the_feature_pipeline(owner, site):
    source = add_blog(owner, build_blog(site, feed="teaser"))
    rye = Document.objects.get(title="Baking rye")
    site.add("/2024/rye", post_html("Baking rye", "rye bread with a new starter"))

    run = do_sync_source(source)

    run.refresh_from_db()
    assert (run.documents_updated, run.documents_unchanged) == (1, 2)
    rye.refresh_from_db()
    assert "new starter" in rye.raw_text
    assert FeatureRun.objects.order_by("-pk").first().document_ids == [rye.pk]


def test_a_post_that_disappears_is_marked_gone_not_deleted(owner, site):
    source = add_blog(owner, build_blog(site, feed="teaser"))
    site.remove("/2024/sails")

    run = do_sync_source(source)

    run.refresh_from_db()
    assert run.documents_gone == 1
    sails = Document.objects.get(title="Small sails")
    assert sails.gone_at is not None and Document.objects.filter(source=source, gone_at__isnull=True).count() == 2


def searched_documents(owner, query) -> set[int]:
    return {chunk.clean_document.document_id for chunk in Chunk.objects.for_user(owner).search(query, k=10)}


def dataset_documents(owner) -> set[int]:
    """The documents of the dataset the owner's last feature run built (or found unchanged)."""
    dataset = FeatureRun.objects.filter(owner=owner).order_by("-pk").first().dataset_version
    return {record["document_id"] for record in read_records(dataset.file_path)}


def test_a_gone_post_leaves_search_and_the_dataset_and_comes_back_when_it_returns(owner, site):
    source = add_blog(owner, build_blog(site, feed="teaser"))
    sails = Document.objects.get(title="Small sails")
    assert sails.pk in searched_documents(owner, "dinghy sailing") and sails.pk in dataset_documents(owner)
    site.remove("/2024/sails")

    do_sync_source(source)

    sails.refresh_from_db()
    assert sails.gone_at is not None and "dinghy sailing" in sails.raw_text  # the row stays, marked
    assert sails.pk not in searched_documents(owner, "dinghy sailing")
    assert sails.pk not in dataset_documents(owner) and searched_documents(owner, "rye bread")
    assert not Chunk.objects.filter(clean_document__document=sails).exists()

    site.add("/2024/sails", post_html("Small sails", "dinghy sailing"))
    run = do_sync_source(source)

    run.refresh_from_db()
    sails.refresh_from_db()
    assert (run.documents_updated, run.documents_unchanged) == (1, 2) and sails.gone_at is None
    assert sails.pk in searched_documents(owner, "dinghy sailing") and sails.pk in dataset_documents(owner)


def test_a_failing_post_fails_alone_with_its_reason(owner, site, settings):
    settings.TWIN_MAX_DOWNLOAD_BYTES = 64 * 1024
    url = build_blog(site, feed="teaser")
    site.add("/2024/bees", "<p>" + "x" * 200_000 + "</p>")

    source = add_blog(owner, url)

    run = source.last_run
    assert run.status == "succeeded" and (run.documents_created, run.documents_failed) == (2, 1)
    assert run.failures == [
        {"url": site.base + "/2024/bees", "reason": "The page is larger than the 64.0\xa0KB limit.", "failed": True}
    ]


def test_a_server_error_is_retried_with_backoff(owner, site):
    url = build_blog(site, feed="teaser")
    body = post_html("Baking rye", "rye bread")
    site.add_sequence("/2024/rye", (503, "busy"), (503, "busy"), (200, body))

    source = add_blog(owner, url)

    assert source.last_run.documents_created == 3
    assert [status for path, status, _ in site.log if path == "/2024/rye"] == [503, 503, 200]


def test_a_redirected_post_is_followed(owner, site):
    url = build_blog(site, feed="teaser")
    site.add("/2024/rye", "", status=301, Location="/2024/rye-bread")
    site.add("/2024/rye-bread", post_html("Baking rye", "rye bread"))

    source = add_blog(owner, url)

    assert source.last_run.documents_created == 3 and Document.objects.filter(title="Baking rye").exists()


def test_every_request_carries_the_honest_user_agent(owner, site):
    add_blog(owner, build_blog(site, feed="teaser"))

    assert {headers["User-Agent"] for _, _, headers in site.log} == {
        "TwinsiteBot/1.0 (+self-hosted LLM twin; fetches only what its user linked; obeys robots.txt)"
    }


@pytest.mark.parametrize(
    ("path", "is_post"),
    [
        ("/2024/05/my-post", True),
        ("/posts/hello-world/", True),
        ("/", False),
        ("/about", False),
        ("/tags/python/", False),
        ("/category/life", False),
        ("/page/2/", False),
        ("/archive/2023", False),
        ("/search?q=x", False),
        ("/2024/05/my-post?utm=feed", False),
        ("/images/cat.jpg", False),
        ("/author/me", False),
    ],
)
def test_the_skip_rule(path, is_post):
    assert (skip_reason("https://blog.example.com" + path, "https://blog.example.com/") == "") is is_post


def test_a_page_on_another_site_is_not_a_post():
    assert skip_reason("https://elsewhere.example.com/post", "https://blog.example.com/") == "Not on the blog's site."
