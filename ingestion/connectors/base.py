"""What every source connector provides; one package per connector (upload/, article/, ...)."""

from collections.abc import Callable
from dataclasses import dataclass

import trafilatura


class ConnectorError(Exception):
    """A failure worded for the user (bad file, unreachable host, no text found)."""


@dataclass
class FetchedDocument:
    url: str
    title: str
    text: str


Report = Callable[[float, str], None]  # (percent, message)


class Connector:
    kind: str = ""

    def fetch(self, source, report: Report) -> list[FetchedDocument]:
        raise NotImplementedError


def first_line_title(text: str, fallback: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:300]
    return fallback


def extract_html(html: str, url: str | None = None) -> tuple[str, str]:
    """Main content as Markdown (headings kept, menus and footers dropped) and the title."""
    text = trafilatura.extract(html, url=url, output_format="markdown", include_comments=False) or ""
    metadata = trafilatura.extract_metadata(html)
    title = (metadata.title if metadata and metadata.title else "") or first_line_title(text, url or "Untitled")
    return title.strip()[:300], text.strip()


def extract_text(content: str, filename: str) -> tuple[str, str]:
    """Title and text of an uploaded file, by its extension."""
    if filename.lower().endswith((".html", ".htm")):
        title, text = extract_html(content)
    else:
        text = content.strip()
        title = first_line_title(text, filename)
    if not text:
        raise ConnectorError("No readable text was found in that file.")
    return title, text
