"""Turning a feed's entries into items: the feed connector's sync, and the blog's when it finds a feed.

The feed is fetched conditionally (its ETag and Last-Modified live in the source's
state): a 304 means no entry changed, so entries whose text came from the feed are
unchanged without a download; entries whose text is on their page are re-checked
with conditional requests of their own. A Substack feed is followed by its archive
(substack.py), which lists the posts older than the feed's latest.
"""

from ...items import same_site
from ..base import ConnectorError, Item, first_line_title
from ..pages import sync_page
from .parse import XML_TYPES, advertised_feeds, entry_full_text, parse_feed
from .substack import archive_posts, is_paid, is_substack, post_date


def _page_item(crawl, url: str, metadata: dict, published_at=None):
    try:
        sync_page(crawl, url, metadata=metadata, published_at=published_at)
    except ConnectorError as exc:
        crawl.fail(url, str(exc))


def _sync_substack_archive(crawl, feed_url: str, items: dict):
    """The posts older than the feed's latest, from the publication's archive (substack.py)."""
    crawl.progress(90, "Reading the Substack archive")
    for url, post in archive_posts(crawl, feed_url):
        if url in items or url in crawl.seen:
            continue
        if not same_site(url, feed_url):
            crawl.skip(url, "The archive lists it on another site than the publication's.")
            continue
        if is_paid(post):
            crawl.skip(url, "A paid post: only its teaser is public.")
            continue
        items[url] = "page"
        _page_item(crawl, url, {"feed": feed_url, "via": "page"}, post_date(post))


def sync_feed(crawl, feed_url: str, *, follow_html: bool = True) -> None:
    """Store every entry of the feed at `feed_url`; ConnectorError when it is not a feed."""
    state = crawl.source.state.get("feed") or {}
    validators = state if state.get("url") == feed_url else {}
    crawl.progress(5, f"Reading the feed {feed_url}")
    page = crawl.fetch(feed_url, accept=None, validators=validators)
    if page.not_modified:
        for url, via in state.get("items", {}).items():
            if via == "feed":
                crawl.unchanged(url)
            else:
                _page_item(crawl, url, {"via": "page"})
        return
    if page.content_type in ("text/html", "application/xhtml+xml") and follow_html:
        feeds = advertised_feeds(page.text, page.url)
        if not feeds:
            raise ConnectorError("No RSS or Atom feed was found at that address.")
        return sync_feed(crawl, feeds[0], follow_html=False)
    if page.content_type not in (*XML_TYPES, "text/plain", ""):
        raise ConnectorError(f"That address is not a feed (it is {page.content_type}).")
    feed = parse_feed(page.body, page.url)
    entries = feed.entries[: crawl.page_limit]
    items = {}
    for i, entry in enumerate(entries):
        crawl.progress(10 + 85 * i / max(1, len(entries)), f"{entry.title or entry.link} ({i + 1}/{len(entries)})")
        if not entry.link.startswith(("http://", "https://")):
            crawl.skip(entry.guid or entry.title or "(an entry)", "The entry has no web address.")
            continue
        metadata = {"feed": feed_url}
        if text := entry_full_text(entry):
            items[entry.link] = "feed"
            title = entry.title or first_line_title(text, entry.link)
            item = Item(entry.link, title, text, metadata={**metadata, "via": "feed"}, published_at=entry.published)
            crawl.store(item)
        else:
            items[entry.link] = "page"
            _page_item(crawl, entry.link, {**metadata, "via": "page"}, entry.published)
    if is_substack(feed, feed_url):
        _sync_substack_archive(crawl, feed_url, items)
    crawl.source.state["feed"] = {
        "url": feed_url,
        "etag": page.etag,
        "last_modified": page.last_modified,
        "items": items,
    }
