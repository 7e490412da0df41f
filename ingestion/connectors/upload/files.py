"""Reading uploaded files: Markdown, text, HTML, PDF, DOCX, and ZIP archives of them.

A ZIP is read in memory, never unpacked to disk, within limits that stop archive bombs:
at most TWIN_ZIP_MAX_ENTRIES entries, TWIN_ZIP_MAX_TOTAL_BYTES expanded in all, no entry
expanding more than TWIN_ZIP_MAX_RATIO times its compressed size (checked on the bytes
read, not on the sizes the archive claims), and no entry whose path climbs out of the
archive (`..`, absolute paths, drive letters). A bad entry fails alone, with its reason.
"""

import io
import zipfile
from collections.abc import Iterator
from pathlib import PurePosixPath

import pypdf
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from lxml import etree

from ..base import ConnectorError, extract_text, first_line_title

TEXT_EXTENSIONS = (".md", ".markdown", ".txt", ".html", ".htm")
DOCUMENT_EXTENSIONS = (*TEXT_EXTENSIONS, ".pdf", ".docx")
ALLOWED_EXTENSIONS = (*DOCUMENT_EXTENSIONS, ".zip")
WORD_NS = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def decode_upload(data: bytes) -> str:
    """UTF-8 (with or without BOM), else a clear refusal: binaries are not text."""
    if b"\x00" in data[:8192]:
        raise ConnectorError("That file looks binary; upload Markdown, plain text, HTML, PDF or DOCX.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConnectorError("That file is not UTF-8 text; save it as UTF-8 and upload it again.") from None


def pdf_text(data: bytes) -> str:
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise ConnectorError("That PDF is encrypted; upload a copy without a password.")
        pages = [(page.extract_text() or "").strip() for page in reader.pages[: settings.TWIN_PDF_MAX_PAGES]]
    except ConnectorError:
        raise
    except Exception as exc:  # pypdf raises many kinds of error on malformed files
        raise ConnectorError(f"That PDF could not be read ({exc.__class__.__name__}).") from None
    return "\n\n".join(page for page in pages if page)


def docx_text(data: bytes) -> str:
    """Paragraphs of word/document.xml, headings as Markdown (no entities, no network)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            info = archive.getinfo("word/document.xml")
            if info.file_size > settings.TWIN_ZIP_MAX_TOTAL_BYTES:
                raise ConnectorError("That DOCX expands past the size limit.")
            xml = archive.read(info)
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
        root = etree.fromstring(xml, parser)
    except ConnectorError:
        raise
    except (zipfile.BadZipFile, KeyError, etree.XMLSyntaxError, OSError, EOFError):
        raise ConnectorError("That DOCX could not be read (it is not a valid Word document).") from None
    lines = []
    for paragraph in root.iter(f"{WORD_NS}p"):
        text = "".join(node.text or "" for node in paragraph.iter(f"{WORD_NS}t")).strip()
        if not text:
            continue
        style = paragraph.find(f"{WORD_NS}pPr/{WORD_NS}pStyle")
        level = (style.get(f"{WORD_NS}val") or "") if style is not None else ""
        if level.lower().startswith("heading") and level[-1:].isdigit():
            text = "#" * int(level[-1]) + " " + text
        lines.append(text)
    return "\n\n".join(lines)


def read_document(name: str, data: bytes) -> tuple[str, str]:
    """(title, text) of one file by its extension; ConnectorError says why it cannot be read."""
    lower = name.lower()
    if lower.endswith(".pdf"):
        text = pdf_text(data)
        title = first_line_title(text, PurePosixPath(name).name)
    elif lower.endswith(".docx"):
        text = docx_text(data)
        title = first_line_title(text, PurePosixPath(name).name)
    elif lower.endswith(TEXT_EXTENSIONS):
        title, text = extract_text(decode_upload(data), name)
    else:
        raise ConnectorError(f"“{name}” is not a supported file type.")
    if not text.strip():
        raise ConnectorError("No readable text was found in that file.")
    if len(text) > settings.TWIN_MAX_DOCUMENT_CHARS:
        raise ConnectorError(
            f"That document has {len(text):,} characters; the limit is {settings.TWIN_MAX_DOCUMENT_CHARS:,}."
        )
    return title, text.strip()


def unsafe_member_name(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return name.startswith(("/", "\\")) or ".." in path.parts or (len(name) > 1 and name[1] == ":")


def open_archive(data: bytes) -> zipfile.ZipFile:
    """The archive, refused whole when it is not a ZIP or has too many entries."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, EOFError):
        raise ConnectorError("That file is not a valid ZIP archive.") from None
    if len(archive.infolist()) > settings.TWIN_ZIP_MAX_ENTRIES:
        raise ConnectorError(f"That archive has more than {settings.TWIN_ZIP_MAX_ENTRIES:,} entries.")
    return archive


def archive_members(archive: zipfile.ZipFile) -> Iterator[tuple[str, bytes | ConnectorError]]:
    """(name, bytes) of each file entry, or (name, the reason it is refused)."""
    total, budget = 0, settings.TWIN_ZIP_MAX_TOTAL_BYTES
    for info in archive.infolist():
        if info.is_dir():
            continue
        name = info.filename
        if name.startswith("__MACOSX/") or PurePosixPath(name).name.startswith("."):
            continue  # Finder's resource forks and hidden files: not the user's writing
        if unsafe_member_name(name):
            yield name, ConnectorError("Refused: its path leads outside the archive.")
            continue
        if info.file_size > budget - total:
            yield name, ConnectorError(f"Refused: the archive expands past {filesizeformat(budget)} in all.")
            continue
        ratio_cap = max(settings.TWIN_ZIP_MAX_RATIO * info.compress_size, 64 * 1024)
        try:
            with archive.open(info) as handle:  # never more than either limit allows, whatever the header says
                data = handle.read(min(budget - total, ratio_cap) + 1)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError) as exc:
            yield name, ConnectorError(f"That entry could not be unpacked ({exc.__class__.__name__}).")
            continue
        if len(data) > budget - total:
            yield name, ConnectorError(f"Refused: the archive expands past {filesizeformat(budget)} in all.")
            continue
        if len(data) > ratio_cap:
            yield (
                name,
                ConnectorError(
                    f"Refused: it expands more than {settings.TWIN_ZIP_MAX_RATIO} times its packed size, "
                    "as archive bombs do."
                ),
            )
            continue
        total += len(data)
        yield name, data
