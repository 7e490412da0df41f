"""RSS (0.9x, 1.0, 2.0) and Atom, read by feedparser from the bytes the crawl fetched,
and the feed addresses of Medium and Substack.

feedparser is never given a URL nor a string: a string that looks like an address (or a
file name) is fetched or opened by it, past every check of safe_http. It gets a stream
of the bytes, which it reads and nothing more. It forgives slightly broken XML (an
unescaped "&"), resolves no external entity, and reads dates in the forms feeds use.
"""

import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import feedparser
import lxml.html
from lxml import etree

from ..base import ConnectorError, extract_html

FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+xml", "application/rdf+xml")
XML_TYPES = (*FEED_TYPES, "application/xml", "text/xml")
FULL_TEXT_MIN_WORDS = 120  # a feed entry shorter than this is a teaser: the page has the post


@dataclass
class FeedEntry:
    link: str
    title: str = ""
    content_html: str = ""  # the full post, when the feed carries it
    summary_html: str = ""
    published: datetime | None = None
    guid: str = ""


@dataclass
class Feed:
    title: str = ""
    link: str = ""
    generator: str = ""  # the software that wrote it ("Substack")
    entries: list[FeedEntry] = field(default_factory=list)


def _when(entry) -> datetime | None:
    """When the entry was published (else last updated), in UTC as feedparser reads it."""
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    return datetime(*parsed[:6], tzinfo=UTC) if parsed else None


def _content(entry) -> str:
    for content in entry.get("content") or []:
        if content.get("value"):
            return content["value"]
    return ""


def parse_feed(body: bytes, base_url: str = "") -> Feed:
    """The feed's entries; ConnectorError when the bytes are not a feed we can read."""
    parsed = feedparser.parse(io.BytesIO(body), response_headers={"content-location": base_url})
    if not parsed.get("version"):
        raise ConnectorError("That is not an RSS or Atom feed (no feed was found in it).")
    entries = [
        FeedEntry(
            link=urljoin(base_url, entry.get("link", "").strip()) if entry.get("link") else "",
            title=entry.get("title", "").strip(),
            content_html=_content(entry),
            summary_html=entry.get("summary", ""),
            published=_when(entry),
            guid=entry.get("id", "").strip(),
        )
        for entry in parsed.entries
    ]
    if parsed.get("bozo") and not any(entry.link for entry in entries):  # broken past what can be read
        raise ConnectorError("That is not a valid RSS or Atom feed (the XML is malformed).")
    info = parsed.feed
    return Feed(
        title=info.get("title", ""), link=info.get("link", ""), generator=info.get("generator", ""), entries=entries
    )


def entry_full_text(entry: FeedEntry) -> str:
    """The post's text from the feed when the feed carries the whole post, else ""."""
    html = entry.content_html or entry.summary_html
    if not html.strip():
        return ""
    _, text = extract_html(f"<html><body><article>{html}</article></body></html>")
    if not text:
        text = lxml.html.fromstring(html).text_content().strip() if html.strip() else ""
    return text if len(text.split()) >= FULL_TEXT_MIN_WORDS else ""


def advertised_feeds(html: str, base_url: str) -> list[str]:
    """Feeds a page names in <link rel="alternate" type="application/rss+xml" href=…>."""
    try:
        tree = lxml.html.fromstring(html)
    except (etree.ParserError, ValueError):
        return []
    found = []
    for link in tree.xpath("//link[@href]"):
        rel = (link.get("rel") or "").lower().split()
        if "alternate" in rel and (link.get("type") or "").lower() in FEED_TYPES:
            found.append(urljoin(base_url, link.get("href").strip()))
    return found


def feed_url_for(url: str) -> str:
    """The feed of a Medium profile or publication, a Substack publication; else the URL itself.

    medium.com/@name -> medium.com/feed/@name; name.medium.com -> name.medium.com/feed;
    medium.com/publication -> medium.com/feed/publication; name.substack.com -> name.substack.com/feed.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    segments = [s for s in parts.path.split("/") if s]
    if host in ("medium.com", "www.medium.com") and segments and segments[0] != "feed":
        return f"https://medium.com/feed/{segments[0]}"
    if host.endswith(".medium.com") and host != "www.medium.com" and not segments[:1] == ["feed"]:
        return f"https://{host}/feed"
    if host.endswith(".substack.com") and segments[:1] != ["feed"]:
        return f"https://{host}/feed"
    return url


def looks_like_feed_url(url: str) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host == "medium.com" or host.endswith((".medium.com", ".substack.com")):
        return True
    return bool(re.search(r"(/feed/?|/rss/?|/atom/?|\.xml|\.rss|\.atom)$", parts.path.lower()))
