"""RSS 2.0, RSS 1.0 and Atom, parsed with lxml (no entities, no network), and the feed
addresses of Medium and Substack.
"""

import re
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import lxml.html
from lxml import etree

from ..base import ConnectorError, extract_html

ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}encoded"
RSS1 = "{http://purl.org/rss/1.0/}"
FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+xml", "application/rdf+xml")
XML_TYPES = (*FEED_TYPES, "application/xml", "text/xml")
FULL_TEXT_MIN_WORDS = 120  # a feed entry shorter than this is a teaser: the page has the post


@dataclass
class FeedEntry:
    link: str
    title: str = ""
    content_html: str = ""  # the full post, when the feed carries it
    summary_html: str = ""
    published: str = ""
    guid: str = ""


@dataclass
class Feed:
    title: str = ""
    link: str = ""
    generator: str = ""  # the software that wrote it ("Substack")
    entries: list[FeedEntry] = field(default_factory=list)


def _text(node, path: str) -> str:
    found = node.find(path)
    return (found.text or "").strip() if found is not None else ""


def _atom_link(node) -> str:
    links = node.findall(f"{ATOM}link")
    for link in links:
        if link.get("rel", "alternate") == "alternate" and link.get("href"):
            return link.get("href").strip()
    return links[0].get("href", "").strip() if links else ""


def _atom_content(node, tag: str) -> str:
    found = node.find(f"{ATOM}{tag}")
    if found is None:
        return ""
    if found.get("type") == "xhtml":
        return "".join(etree.tostring(child, encoding="unicode") for child in found)
    return found.text or ""


def parse_feed(body: bytes, base_url: str = "") -> Feed:
    """The feed's entries; ConnectorError when the bytes are not a feed we can read."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=False)
    try:
        root = etree.fromstring(body, parser)
    except (etree.XMLSyntaxError, ValueError):
        raise ConnectorError("That is not a valid RSS or Atom feed (the XML is malformed).") from None
    tag = etree.QName(root).localname
    if tag == "rss":
        channel = root.find("channel")
        if channel is None:
            raise ConnectorError("That RSS feed has no channel.")
        feed = Feed(title=_text(channel, "title"), link=_text(channel, "link"), generator=_text(channel, "generator"))
        for item in channel.findall("item"):
            guid = item.find("guid")
            link = _text(item, "link")
            if not link and guid is not None and guid.get("isPermaLink", "true") == "true":
                link = (guid.text or "").strip()
            feed.entries.append(
                FeedEntry(
                    link=link,
                    title=_text(item, "title"),
                    content_html=_text(item, CONTENT),
                    summary_html=_text(item, "description"),
                    published=_text(item, "pubDate"),
                    guid=(guid.text or "").strip() if guid is not None else "",
                )
            )
    elif tag == "feed" and root.tag.startswith(ATOM):
        feed = Feed(title=_text(root, f"{ATOM}title"), link=_atom_link(root), generator=_text(root, f"{ATOM}generator"))
        for entry in root.findall(f"{ATOM}entry"):
            feed.entries.append(
                FeedEntry(
                    link=_atom_link(entry),
                    title=_text(entry, f"{ATOM}title"),
                    content_html=_atom_content(entry, "content"),
                    summary_html=_atom_content(entry, "summary"),
                    published=_text(entry, f"{ATOM}published") or _text(entry, f"{ATOM}updated"),
                    guid=_text(entry, f"{ATOM}id"),
                )
            )
    elif tag == "RDF":
        feed = Feed(title=_text(root, f"{RSS1}channel/{RSS1}title"))
        for item in root.findall(f"{RSS1}item"):
            feed.entries.append(
                FeedEntry(
                    link=_text(item, f"{RSS1}link"),
                    title=_text(item, f"{RSS1}title"),
                    content_html=_text(item, CONTENT),
                    summary_html=_text(item, f"{RSS1}description"),
                )
            )
    else:
        raise ConnectorError(f"That is not an RSS or Atom feed (its root element is <{tag}>).")
    for entry in feed.entries:
        entry.link = urljoin(base_url, entry.link) if entry.link else ""
    return feed


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
