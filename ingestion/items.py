"""What connectors and the crawl share, and nothing else: the item a connector hands
to the crawl, and the small URL and status facts both sides read.

A leaf: it imports nothing of the project, so connectors can use it without reaching
the crawl (and, through the crawl, the models and actions that import connectors).
"""

from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urljoin, urlsplit

GONE_STATUSES = (404, 410)  # the page is gone: its stored document is marked gone, not failed


@dataclass
class Item:
    """One document as a connector found it."""

    url: str
    title: str
    text: str
    category: str = ""  # the source's category when empty
    metadata: dict = field(default_factory=dict)
    etag: str = ""
    last_modified: str = ""
    body_hash: str = ""
    published_at: datetime | None = None  # when the source says it was published (a feed's date)


def same_site(url: str, base: str) -> bool:
    return urlsplit(url).netloc.lower() == urlsplit(base).netloc.lower()


def absolute(base: str, href: str) -> str:
    """An absolute link without its #fragment."""
    return urljoin(base, href.strip()).split("#", 1)[0]
