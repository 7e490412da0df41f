"""Reading LinkedIn's data export (Settings > Data privacy > Get a copy of your data).

What is taken, all of it written by the user:
- Shares.csv: posts (ShareCommentary; a reshare without words of one's own is skipped);
- Comments.csv: comments (Message; under MIN_COMMENT_WORDS words is skipped as too short
  to learn a voice from);
- Articles/Articles/*.html: long-form articles.
Everything else in the export (connections, messages, ads data) is never read.
"""

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import PurePosixPath

from ..base import ConnectorError, extract_html, first_line_title

MIN_COMMENT_WORDS = 20
csv.field_size_limit(1024 * 1024)


@dataclass
class ExportEntry:
    url: str
    title: str
    text: str
    category: str
    metadata: dict
    skip_reason: str = ""


def is_linkedin_export(names: list[str]) -> bool:
    return any(_kind_of(name) for name in names)


def _kind_of(name: str) -> str:
    path = PurePosixPath(name)
    if path.name in ("Shares.csv", "Posts.csv"):
        return "shares"
    if path.name == "Comments.csv":
        return "comments"
    if "Articles" in path.parts[:-1] and path.suffix.lower() in (".html", ".htm"):
        return "article"
    return ""


def _rows(data: bytes) -> list[dict]:
    try:
        return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ConnectorError(f"The file could not be read as CSV ({exc.__class__.__name__}).") from None


def _clean(text: str) -> str:
    """LinkedIn writes quotes doubled inside some fields and keeps \\r\\n: normalise both."""
    return text.replace('""', '"').replace("\r\n", "\n").strip().strip('"').strip()


def _row_url(kind: str, link: str, date: str, text: str) -> str:
    if link.startswith("https://"):
        return link
    digest = hashlib.sha256(f"{date}\n{text}".encode()).hexdigest()[:16]
    return f"linkedin://{kind}/{digest}"


def entries(name: str, data: bytes) -> list[ExportEntry]:
    """The user's writing in one file of the export ([] for files that hold none)."""
    kind = _kind_of(name)
    found = []
    if kind == "shares":
        for row in _rows(data):
            text = _clean(row.get("ShareCommentary") or row.get("Commentary") or "")
            url = _row_url("share", row.get("ShareLink", ""), row.get("Date", ""), text)
            metadata = {"path": name, "date": row.get("Date", ""), "shared_url": row.get("SharedUrl", "")}
            skip = "" if text else "A reshare without words of your own."
            found.append(ExportEntry(url, first_line_title(text, "LinkedIn post")[:120], text, "post", metadata, skip))
    elif kind == "comments":
        for row in _rows(data):
            text = _clean(row.get("Message", ""))
            url = _row_url("comment", "", row.get("Date", ""), text)
            skip = "" if len(text.split()) >= MIN_COMMENT_WORDS else "A comment too short to learn your voice from."
            metadata = {"path": name, "date": row.get("Date", ""), "on": row.get("Link", "")}
            found.append(
                ExportEntry(url, first_line_title(text, "LinkedIn comment")[:120], text, "post", metadata, skip)
            )
    elif kind == "article":
        html = data.decode("utf-8", "replace")
        title, text = extract_html(html)
        if not text:
            raise ConnectorError("No article text was found in that file.")
        found.append(ExportEntry(f"linkedin://article/{name}", title, text, "article", {"path": name}))
    return found
