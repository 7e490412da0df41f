"""What every source connector provides; one package per connector (upload/, article/, feed/, ...).

A connector package has `connector.py` with `connector = SomeConnector()`, a `forms.py`
with the form the web page and the API both validate with, and its own modules for
fetching and parsing. Its tests live in tests/ingestion/connectors/test_<kind>.py.
"""

import lxml.html
import trafilatura
from lxml import etree

from ..items import Item

__all__ = ["Connector", "ConnectorError", "Item", "extract_html", "extract_text", "first_line_title"]


class ConnectorError(Exception):
    """A failure worded for the user (bad file, unreachable host, no text found)."""


class Connector:
    kind: str = ""
    label: str = ""
    # What the user pastes or uploads, shown on the sources page and in the API docs.
    help_text: str = ""
    form_class = None  # a django Form: its cleaned data feeds source_fields()
    takes_file = False  # the form is multipart
    recrawls = False  # scheduled re-syncs (a file never changes; a blog does)
    order = 50  # place on the sources page
    recognition_order = 50  # lower is tried first when guessing the kind of a pasted input

    def recognises(self, *, url: str, filename: str) -> bool:
        return False

    def source_fields(self, cleaned_data: dict) -> dict:
        """Source model fields from the form's cleaned data (name, url, category, options, upload)."""
        fields = {"category": cleaned_data.get("category") or "article", "name": cleaned_data.get("name", "")}
        if cleaned_data.get("recrawl_hours") is not None:
            fields["recrawl_hours"] = cleaned_data["recrawl_hours"]
        if cleaned_data.get("url"):
            fields["url"] = cleaned_data["url"]
        if cleaned_data.get("file") is not None:
            fields["upload"] = cleaned_data["file"]
            fields["name"] = fields["name"] or getattr(cleaned_data["file"], "extracted_title", "")
        return fields

    def sync(self, crawl) -> None:
        """Fetch, parse and hand every item to crawl.store (or .unchanged/.fail/.skip/.gone)."""
        raise NotImplementedError


def first_line_title(text: str, fallback: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:300]
    return fallback


MIN_WORDS_OUTSIDE_LINKS = 40
MIN_ARTICLE_WORDS = 10
MAX_LINK_WORD_SHARE = 0.6


def navigation_only(html: str) -> bool:
    """The documented rule for "this page is only navigation": fewer than 40 words of its
    visible body text lie outside links, and links hold more than 60% of its words.

    trafilatura falls back to whatever text a page has, so a page of menus and link
    lists would otherwise become a "document" of link titles.
    """
    try:
        tree = lxml.html.fromstring(html)
    except (etree.ParserError, ValueError):
        return False
    body = tree.find("body") if tree.find("body") is not None else tree
    for junk in body.xpath("//script|//style|//noscript|//template"):
        junk.drop_tree()
    words = len(body.text_content().split())
    link_words = sum(len(a.text_content().split()) for a in body.iter("a"))
    return words - link_words < MIN_WORDS_OUTSIDE_LINKS and link_words > MAX_LINK_WORD_SHARE * max(1, words)


def extract_html(html: str, url: str | None = None) -> tuple[str, str]:
    """Main content as Markdown (headings kept, menus and footers dropped) and the title."""
    text = trafilatura.extract(html, url=url, output_format="markdown", include_comments=False) or ""
    metadata = trafilatura.extract_metadata(html)
    title = (metadata.title if metadata and metadata.title else "") or first_line_title(text, url or "Untitled")
    return title.strip()[:300], text.strip()


def extract_article(html: str, url: str) -> tuple[str, str]:
    """extract_html, refusing a page that is only navigation or has no text, with the reason."""
    if navigation_only(html):
        raise ConnectorError("The page has only navigation links, no article text.")
    title, text = extract_html(html, url)
    if len(text.split()) < MIN_ARTICLE_WORDS:  # "Loading…": a page that renders in JavaScript
        raise ConnectorError("No article text was found on that page.")
    return title, text


def extract_text(content: str, filename: str) -> tuple[str, str]:
    """Title and text of an uploaded text file, by its extension."""
    if filename.lower().endswith((".html", ".htm")):
        if navigation_only(content):
            raise ConnectorError("That page has only navigation links, no article text.")
        title, text = extract_html(content)
    else:
        text = content.strip()
        title = first_line_title(text, filename)
    if not text:
        raise ConnectorError("No readable text was found in that file.")
    return title, text
