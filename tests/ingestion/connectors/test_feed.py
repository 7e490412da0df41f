"""Feeds: RSS 2.0 and Atom, shaped like Medium's and Substack's; profile URLs mapped to feeds."""

import json
from datetime import UTC, datetime

import pytest

from ingestion.actions import do_add_source, do_sync_source
from ingestion.connectors import recognise
from ingestion.connectors.feed import substack
from ingestion.connectors.feed.parse import feed_url_for
from ingestion.models import Document
from tests.ingestion.sites import LONG_PARAGRAPH, post_html

pytestmark = pytest.mark.django_db


def medium_feed(site) -> str:
    """Medium's shape: dc:creator, links with ?source=rss…, the whole post in content:encoded."""
    body = "".join(f"<p>{LONG_PARAGRAPH.format(topic=t)}</p>" for t in ("distributed systems", "on-call rotas"))
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:atom="http://www.w3.org/2005/Atom" '
        'version="2.0"><channel><title><![CDATA[Stories by Ada on Medium]]></title>'
        f"<link>{site.base}/@ada?source=rss-abc------2</link>"
        "<item><title><![CDATA[What on-call taught me]]></title>"
        f"<link>{site.base}/@ada/what-on-call-taught-me-1a2b3c?source=rss-abc------2</link>"
        '<guid isPermaLink="false">https://medium.com/p/1a2b3c</guid><category><![CDATA[sre]]></category>'
        "<dc:creator><![CDATA[Ada]]></dc:creator><pubDate>Mon, 04 Mar 2024 09:12:44 GMT</pubDate>"
        "<atom:updated>2024-03-04T09:12:44.123Z</atom:updated>"
        f"<content:encoded><![CDATA[<h3>What on-call taught me</h3>{body}"
        '<img src="https://medium.com/_/stat?event=post.clientViewed" width="1" height="1">]]></content:encoded>'
        "</item></channel></rss>"
    )


def substack_feed(site) -> str:
    """Substack's shape: a teaser in description, the post in content:encoded, an enclosure."""
    body = "".join(f"<p>{LONG_PARAGRAPH.format(topic=t)}</p>" for t in ("letter writing", "slow mail"))
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" version="2.0"><channel>'
        "<title><![CDATA[Slow Letters]]></title><link>https://slowletters.substack.com</link>"
        "<item><title><![CDATA[Why I still write letters]]></title>"
        "<description><![CDATA[A short teaser.]]></description>"
        f"<link>{site.base}/p/why-i-still-write-letters</link>"
        f'<guid isPermaLink="false">{site.base}/p/why-i-still-write-letters</guid>'
        "<dc:creator><![CDATA[Bo]]></dc:creator><pubDate>Sun, 10 Mar 2024 12:00:00 GMT</pubDate>"
        '<enclosure url="https://substackcdn.com/image/x.jpg" length="0" type="image/jpeg"/>'
        f"<content:encoded><![CDATA[{body}<p class='button-wrapper'><a href='/subscribe'>Subscribe now</a></p>]]>"
        "</content:encoded></item></channel></rss>"
    )


SUBSTACK_ROBOTS = "User-agent: *\nDisallow: /action/\nDisallow: /publish\nDisallow: /sign-in\nDisallow: /embed\n"
POST_DATE = "2023-01-01T12:00:00.000Z"  # as Substack's archive writes it
LATEST = [("feed-one", "Letters in spring", "spring letters"), ("feed-two", "Ink and paper", "fountain pens")]
OLDER = [("old-one", "My first letter", "first letters"), ("old-two", "Stamps", "stamp collecting")]


def substack_publication(site) -> str:
    """A publication shaped like Substack's: a feed of the latest posts (whole, generator
    Substack), the archive's JSON pages (2 posts a page here), a page per post, one paid."""
    site.add("/robots.txt", SUBSTACK_ROBOTS, content_type="text/plain")
    items = "".join(
        f"<item><title><![CDATA[{title}]]></title><link>{site.base}/p/{slug}</link>"
        f"<content:encoded><![CDATA[<p>{LONG_PARAGRAPH.format(topic=topic)}</p>"
        f"<p>{LONG_PARAGRAPH.format(topic=topic + ' again')}</p>]]></content:encoded></item>"
        for slug, title, topic in LATEST
    )
    site.add(
        "/feed",
        '<?xml version="1.0" encoding="UTF-8"?><rss xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        f'version="2.0"><channel><title>Slow Letters</title><generator>Substack</generator>{items}</channel></rss>',
        content_type="application/rss+xml; charset=utf-8",
    )
    listed = [(slug, title, "everyone") for slug, title, _ in LATEST + OLDER] + [("paid", "Members only", "only_paid")]
    archive = [
        {"canonical_url": f"{site.base}/p/{slug}", "title": title, "audience": audience, "post_date": POST_DATE}
        for slug, title, audience in listed
    ]
    for offset in range(0, len(archive) + 1, 2):
        site.add(
            f"/api/v1/archive?sort=new&offset={offset}&limit=2",
            json.dumps(archive[offset : offset + 2]),
            content_type="application/json; charset=utf-8",
        )
    for slug, title, topic in LATEST + OLDER + [("paid", "Members only", "paywalls")]:
        site.add(f"/p/{slug}", post_html(title, topic))
    return site.base + "/feed"


def test_a_substack_publication_gives_its_archive_beyond_the_feed(owner, site, monkeypatch):
    monkeypatch.setattr(substack, "ARCHIVE_PAGE_SIZE", 2)

    source = add_feed(owner, substack_publication(site))

    run = source.last_run
    assert run.status == "succeeded" and run.documents_created == 4, run.failures
    assert set(Document.objects.filter(source=source).values_list("title", flat=True)) == {
        "Letters in spring", "Ink and paper", "My first letter", "Stamps"
    }  # fmt: skip
    stamps = Document.objects.get(title="Stamps")
    assert stamps.metadata["via"] == "page" and stamps.published_at == datetime(2023, 1, 1, 12, tzinfo=UTC)
    assert [f["reason"] for f in run.failures] == ["A paid post: only its teaser is public."]
    assert [path for path in site.paths() if "archive" in path] == [
        f"/api/v1/archive?sort=new&offset={offset}&limit=2" for offset in (0, 2, 4)
    ]
    assert not {"/p/feed-one", "/p/feed-two", "/p/paid"} & set(site.paths())  # from the feed, or paid
    site.log.clear()

    run = do_sync_source(source)

    run.refresh_from_db()
    assert (run.documents_created, run.documents_updated, run.documents_unchanged) == (0, 0, 4)
    assert [(path, status) for path, status, _ in site.log] == [
        ("/robots.txt", 200), ("/feed", 304), ("/p/old-one", 304), ("/p/old-two", 304)
    ]  # fmt: skip


def test_a_broken_substack_archive_keeps_the_feed_and_says_why(owner, site):
    url = substack_publication(site)
    site.add("/api/v1/archive?sort=new&offset=0&limit=50", "<html>oops</html>")

    source = add_feed(owner, url)

    run = source.last_run
    assert run.status == "succeeded" and run.documents_created == 2
    assert run.failures[0]["reason"] == (
        "The Substack archive could not be read: That address is not application/json (it is text/html)."
    )


def atom_feed(site, *, full: bool) -> str:
    content = (
        f"<content type='html'>&lt;p&gt;{LONG_PARAGRAPH.format(topic='woodwork')} "
        f"{LONG_PARAGRAPH.format(topic='chisels')}&lt;/p&gt;</content>"
        if full
        else "<summary>Only a teaser.</summary>"
    )
    return (
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Shop notes</title>'
        f"<link href='{site.base}/'/><entry><title>Sharpening</title><id>tag:x,2024:1</id>"
        f"<link rel='alternate' href='{site.base}/posts/sharpening'/><updated>2024-01-01T00:00:00Z</updated>"
        f"{content}</entry></feed>"
    )


def add_feed(owner, url):
    return do_add_source(owner, "feed", {"url": url, "category": "article"})


def test_a_medium_shaped_feed_gives_the_full_posts(owner, site):
    url = site.add("/feed/@ada", medium_feed(site), content_type="text/xml; charset=UTF-8")

    source = add_feed(owner, url)

    document = Document.objects.get(source=source)
    assert document.title == "What on-call taught me" and "on-call rotas" in document.raw_text
    assert document.metadata["via"] == "feed" and document.published_at == datetime(2024, 3, 4, 9, 12, 44, tzinfo=UTC)
    assert site.paths() == ["/robots.txt", "/feed/@ada"]  # the text came from the feed


def test_a_substack_shaped_feed_gives_the_full_posts(owner, site):
    url = site.add("/feed", substack_feed(site), content_type="application/rss+xml")

    source = add_feed(owner, url)

    document = Document.objects.get(source=source)
    assert document.title == "Why I still write letters" and "slow mail" in document.raw_text
    assert "A short teaser" not in document.raw_text


def test_an_atom_feed_with_teasers_takes_each_post_from_its_page(owner, site):
    url = site.add("/atom.xml", atom_feed(site, full=False), content_type="application/atom+xml")
    site.add("/posts/sharpening", post_html("Sharpening", "sharpening chisels"))

    source = add_feed(owner, url)

    document = Document.objects.get(source=source)
    assert "sharpening chisels" in document.raw_text and document.metadata["via"] == "page"
    assert document.published_at == datetime(2024, 1, 1, tzinfo=UTC)  # the entry's <updated>, from the feed


def test_an_atom_feed_with_full_content(owner, site):
    url = site.add("/atom.xml", atom_feed(site, full=True), content_type="application/atom+xml")

    source = add_feed(owner, url)

    assert "chisels" in Document.objects.get(source=source).raw_text
    assert "/posts/sharpening" not in site.paths()


def test_a_page_that_advertises_its_feed_is_followed_to_it(owner, site):
    site.add("/feed.xml", substack_feed(site), content_type="application/rss+xml")
    url = site.add("/", "<html><head><link rel='alternate' type='application/rss+xml' href='/feed.xml'></head></html>")

    source = add_feed(owner, url)

    assert source.last_run.documents_created == 1


@pytest.mark.parametrize("inner", ["/inner-feed", "/etc/passwd"])
def test_a_feed_that_is_only_an_address_or_a_file_name_is_never_followed(owner, site, inner):
    """feedparser fetches a URL and opens a file name it is given as a string: it gets the
    fetched bytes as a stream, so neither is read."""
    site.add("/inner-feed", substack_feed(site), content_type="application/rss+xml")
    url = site.add("/feed.xml", (site.base if inner.startswith("/inner") else "") + inner, "application/rss+xml")

    source = add_feed(owner, url)

    assert source.last_run.status == "failed" and "That is not an RSS or Atom feed" in source.last_run.error
    assert "/inner-feed" not in site.paths() and not Document.objects.exists()


def test_a_slightly_broken_feed_is_read_all_the_same(owner, site):
    """An unescaped "&" (common in hand-made feeds) made the whole feed fail; its dates, in
    either form a feed writes them, become the documents' dates."""
    fish, peas, vinegar = (LONG_PARAGRAPH.format(topic=t) for t in ("fish & chips", "mushy peas", "malt vinegar"))
    site.add(
        "/feed.xml",
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Fish & Chips Weekly</title>'
        f"<item><title>Fish & chips</title><link>{site.base}/p/fish</link>"
        "<pubDate>Mon, 04 Mar 2024 09:12:44 +0100</pubDate>"
        f"<description><![CDATA[<p>{fish}</p><p>{vinegar}</p>]]></description></item>"
        f"<item><title>Mushy peas</title><link>{site.base}/p/peas</link><pubDate>2024-03-05T10:00:00Z</pubDate>"
        f"<description><![CDATA[<p>{peas}</p><p>{vinegar}</p>]]></description></item></channel></rss>",
        content_type="application/rss+xml",
    )

    source = add_feed(owner, site.base + "/feed.xml")

    assert source.last_run.status == "succeeded", source.last_run.error
    dates = dict(Document.objects.filter(source=source).values_list("title", "published_at"))
    assert dates == {
        "Fish & chips": datetime(2024, 3, 4, 8, 12, 44, tzinfo=UTC),
        "Mushy peas": datetime(2024, 3, 5, 10, tzinfo=UTC),
    }


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("<rss><channel><item><title>unclosed", "That is not a valid RSS or Atom feed (the XML is malformed)."),
        ("<html><body>just a page</body></html>", "No RSS or Atom feed was found at that address."),
        ('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "That is not an RSS or Atom feed"),
        (
            '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><rss><channel>'
            "<item><title>&e;</title><link>/x</link></item></channel></rss>",
            "",
        ),
    ],
)
def test_a_bad_feed_fails_the_run_with_its_reason_and_keeps_what_was_stored(owner, site, body, reason):
    url = site.add("/feed.xml", substack_feed(site), content_type="application/rss+xml")
    source = add_feed(owner, url)
    site.add("/feed.xml", body, content_type="text/html" if body.startswith("<html") else "application/xml")

    run = do_sync_source(source)

    run.refresh_from_db()
    if reason:
        assert run.status == "failed" and reason in run.error
    assert "root:" not in str(Document.objects.values_list("raw_text", "title"))  # no entity was resolved
    assert "slow mail" in Document.objects.get(title="Why I still write letters").raw_text


@pytest.mark.parametrize(
    ("url", "feed"),
    [
        ("https://medium.com/@ada", "https://medium.com/feed/@ada"),
        ("https://medium.com/@ada/some-post-1a2b", "https://medium.com/feed/@ada"),
        ("https://medium.com/the-publication", "https://medium.com/feed/the-publication"),
        ("https://ada.medium.com/", "https://ada.medium.com/feed"),
        ("https://slowletters.substack.com", "https://slowletters.substack.com/feed"),
        ("https://slowletters.substack.com/archive", "https://slowletters.substack.com/feed"),
        ("https://blog.example.com/feed.xml", "https://blog.example.com/feed.xml"),
    ],
)
def test_profiles_map_to_their_feeds(url, feed):
    assert feed_url_for(url) == feed


@pytest.mark.parametrize(
    ("url", "filename", "kind"),
    [
        ("https://medium.com/@ada", "", "feed"),
        ("https://slowletters.substack.com/", "", "feed"),
        ("https://blog.example.com/index.xml", "", "feed"),
        ("https://blog.example.com/", "", "blog"),
        ("https://blog.example.com/2024/a-post", "", "article"),
        ("", "notes.md", "upload"),
    ],
)
def test_what_a_user_pastes_is_recognised(url, filename, kind):
    assert recognise(url=url, filename=filename).kind == kind
