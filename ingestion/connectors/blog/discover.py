"""Finding a blog's posts: its feed, else its sitemap, else links from its pages.

The skip rule (which pages are not posts), applied to every address found:
- another site, another scheme than http(s), or a query string (?page=2, ?tag=x);
- the home page itself;
- a path segment that names an index or a site page: about, contact, tag(s),
  category/categories, archive(s), page, author(s), search, feed, rss, atom, login,
  signin, signup, subscribe, newsletter, privacy, terms;
- a file that is not a page (.jpg, .png, .gif, .svg, .webp, .ico, .css, .js, .json,
  .xml, .rss, .atom, .pdf, .zip, .mp3, .mp4).
Pages skipped by the rule are still followed for links when crawling the index, and
a page that passes it but is only navigation is skipped with that reason.
"""

from urllib.parse import urlsplit

import lxml.html
from lxml import etree

from ...items import absolute, same_site

NON_POST_SEGMENTS = {
    "about",
    "contact",
    "tag",
    "tags",
    "category",
    "categories",
    "archive",
    "archives",
    "page",
    "author",
    "authors",
    "search",
    "feed",
    "rss",
    "atom",
    "login",
    "signin",
    "signup",
    "subscribe",
    "newsletter",
    "privacy",
    "terms",
}
ASSET_SUFFIXES = (
    ".jpg", ".jpeg", ".png", ".gif", ".svg", ".webp", ".ico", ".css", ".js", ".json",
    ".xml", ".rss", ".atom", ".pdf", ".zip", ".mp3", ".mp4",
)  # fmt: skip
USUAL_FEED_PATHS = ("/feed", "/feed.xml", "/rss.xml", "/atom.xml", "/index.xml", "/rss", "/feed/")
SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


def skip_reason(url: str, home: str) -> str:
    """Why `url` is not a post of the blog at `home` ("" when it may be one)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not same_site(url, home):
        return "Not on the blog's site."
    if parts.query:
        return "An address with a query string (an index or search page)."
    path = parts.path.rstrip("/")
    if path in ("", urlsplit(home).path.rstrip("/")):
        return "The home page."
    segments = [segment.lower() for segment in path.split("/") if segment]
    if NON_POST_SEGMENTS & set(segments):
        return "An index or site page (about, tags, archives…), not a post."
    if path.lower().endswith(ASSET_SUFFIXES):
        return "Not a page."
    return ""


def page_links(html: str, base_url: str) -> list[str]:
    """Every <a href> of the page, header and footer included, absolute, in order, once."""
    try:
        tree = lxml.html.fromstring(html)
    except (etree.ParserError, ValueError):
        return []
    seen, links = set(), []
    for anchor in tree.xpath("//a[@href]"):
        href = anchor.get("href", "")
        if href.startswith(("mailto:", "javascript:", "tel:")):
            continue
        url = absolute(base_url, href)
        if url not in seen:
            seen.add(url)
            links.append(url)
    return links


def sitemap_urls(body: bytes) -> tuple[list[tuple[str, str]], list[str]]:
    """([(page address, lastmod)], child sitemaps) of a sitemap or sitemap index."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(body, parser)
    except (etree.XMLSyntaxError, ValueError):
        return [], []
    entries = []
    for node in root:
        if not isinstance(node.tag, str):
            continue
        loc = node.find(f"{SITEMAP_NS}loc") if node.find(f"{SITEMAP_NS}loc") is not None else node.find("loc")
        lastmod = node.find(f"{SITEMAP_NS}lastmod") if node.find(f"{SITEMAP_NS}lastmod") is not None else None
        if loc is not None and (loc.text or "").strip():
            entries.append(((loc.text or "").strip(), (lastmod.text or "").strip() if lastmod is not None else ""))
    if etree.QName(root).localname == "sitemapindex":
        return [], [url for url, _ in entries]
    return entries, []
