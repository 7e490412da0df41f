"""One web page as one item: fetched conditionally, skipped when unchanged, extracted otherwise.

Shared by the article, feed and blog connectors.
"""

from django.conf import settings

from ..items import GONE_STATUSES, Item
from ..safe_http import FetchError, HTTPStatusError
from .base import ConnectorError, extract_article, first_line_title

PLAIN_TYPES = ("text/plain", "text/markdown")


def sync_page(crawl, url: str, *, metadata: dict | None = None, extract=None, published_at=None) -> str:
    """Fetch `url` and store its article; returns created, updated, unchanged, skipped or gone.

    A 304, or the same bytes as last time, is "unchanged" without extracting anything.
    A 404 or 410 marks the stored document gone. Anything else that goes wrong raises
    ConnectorError with the reason. `extract(page) -> (title, text)` replaces the static
    extraction (the article connector's browser path). `published_at`: the date a feed or
    an archive gave the page.
    """
    crawl.last_page = None
    try:
        page = crawl.last_page = crawl.fetch(url, conditional=True)
    except HTTPStatusError as exc:
        if exc.status in GONE_STATUSES:
            crawl.gone(url)
            return "gone"
        raise ConnectorError(str(exc)) from None
    except FetchError as exc:
        raise ConnectorError(str(exc)) from None
    known = crawl.known.get(url)
    if page.not_modified or (known and known.gone_at is None and known.body_hash == page.body_hash):
        crawl.unchanged(url, page)
        return "unchanged"
    if page.content_type in PLAIN_TYPES:
        text = page.text.strip()
        title = first_line_title(text, url)
        if not text:
            raise ConnectorError("No article text was found on that page.")
    elif extract is not None:
        title, text = extract(page)
    else:
        title, text = extract_article(page.text, page.url)
    if len(text) > settings.TWIN_MAX_DOCUMENT_CHARS:
        raise ConnectorError(f"The article is longer than {settings.TWIN_MAX_DOCUMENT_CHARS:,} characters.")
    item = Item(
        url=url,
        title=title,
        text=text,
        metadata=metadata or {},
        etag=page.etag,
        last_modified=page.last_modified,
        body_hash=page.body_hash,
        published_at=published_at,
    )
    return crawl.store(item)


def recheck_unseen(crawl, budget: int):
    """Stored documents this sync did not meet (a feed shows only its latest posts): ask
    each page, conditionally, whether it still exists. 404 or 410 marks it gone; a page
    whose text came from a feed keeps that text while the page is there."""
    for url in crawl.unseen_urls()[:budget]:
        known = crawl.known[url]
        try:
            if known.metadata.get("via") == "feed":
                page = crawl.fetch(url, conditional=True, accept=None)
                crawl.unchanged(url, page)
            else:
                sync_page(crawl, url, metadata=known.metadata)
        except HTTPStatusError as exc:
            if exc.status in GONE_STATUSES:
                crawl.gone(url)
            else:
                crawl.fail(url, str(exc))
        except (FetchError, ConnectorError) as exc:
            crawl.fail(url, str(exc))
