"""Reading uploaded files: Markdown, text, HTML, PDF, DOCX, and ZIP archives of them.

A ZIP is read in memory, never unpacked to disk, within limits that stop archive bombs:
at most TWIN_ZIP_MAX_ENTRIES entries, TWIN_ZIP_MAX_TOTAL_BYTES expanded in all, no entry
expanding more than TWIN_ZIP_MAX_RATIO times its compressed size (checked on the bytes
read, not on the sizes the archive claims), and no entry whose path climbs out of the
archive (`..`, absolute paths, drive letters). A bad entry fails alone, with its reason.

A PDF or a DOCX, uploaded alone or inside a ZIP, is read by the sync in a child process
with CPU-time and memory limits (sandbox.py), within limits of its own (parsing.py): the
content its pages draw, and how far a DOCX's document part unpacks. The web request only
looks at what is cheap: size, extension, a PDF's header, a ZIP's directory.
"""

import io
import zipfile
from collections.abc import Iterator
from pathlib import PurePosixPath

from django.conf import settings
from django.template.defaultfilters import filesizeformat

from ..base import ConnectorError, extract_text, first_line_title
from .parsing import NOT_A_DOCX, Unreadable, docx_part
from .sandbox import read_in_sandbox

TEXT_EXTENSIONS = (".md", ".markdown", ".txt", ".html", ".htm")
DOCUMENT_EXTENSIONS = (*TEXT_EXTENSIONS, ".pdf", ".docx")
ALLOWED_EXTENSIONS = (*DOCUMENT_EXTENSIONS, ".zip")


def decode_upload(data: bytes) -> str:
    """UTF-8 (with or without BOM), else a clear refusal: binaries are not text."""
    if b"\x00" in data[:8192]:
        raise ConnectorError("That file looks binary; upload Markdown, plain text, HTML, PDF or DOCX.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConnectorError("That file is not UTF-8 text; save it as UTF-8 and upload it again.") from None


def check_document(name: str, data: bytes):
    """What the web request may look at in a PDF or a DOCX before storing it: the PDF's magic
    number, the DOCX's ZIP directory. Reading them is the sync's work (sandbox.py)."""
    lower = name.lower()
    try:
        if lower.endswith(".pdf") and b"%PDF-" not in data[:1024]:  # readers allow leading junk
            raise ConnectorError("That file is not a PDF (it has no “%PDF-” header).")
        if lower.endswith(".docx"):
            try:
                archive = zipfile.ZipFile(io.BytesIO(data))
            except (zipfile.BadZipFile, OSError, EOFError):
                raise ConnectorError(NOT_A_DOCX) from None
            with archive:
                docx_part(
                    archive, max_xml_bytes=settings.TWIN_DOCX_MAX_XML_BYTES, max_ratio=settings.TWIN_ZIP_MAX_RATIO
                )
    except Unreadable as exc:
        raise ConnectorError(str(exc)) from None


def read_document(name: str, data: bytes) -> tuple[str, str]:
    """(title, text) of one file by its extension; ConnectorError says why it cannot be read."""
    lower = name.lower()
    if lower.endswith((".pdf", ".docx")):
        text = read_in_sandbox(lower.rsplit(".", 1)[-1], data)
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


def listed(info: zipfile.ZipInfo) -> bool:
    """Whether an entry is one of the user's files (not a folder, Finder's resource forks, a hidden file)."""
    name = info.filename
    return not (info.is_dir() or name.startswith("__MACOSX/") or PurePosixPath(name).name.startswith("."))


def has_documents(archive: zipfile.ZipFile) -> bool:
    """Whether any entry could become a document, by its directory alone (nothing is unpacked)."""
    return any(
        listed(info) and not unsafe_member_name(info.filename) and info.filename.lower().endswith(DOCUMENT_EXTENSIONS)
        for info in archive.infolist()
    )


def archive_members(archive: zipfile.ZipFile) -> Iterator[tuple[str, bytes | ConnectorError]]:
    """(name, bytes) of each file entry, or (name, the reason it is refused)."""
    total, budget = 0, settings.TWIN_ZIP_MAX_TOTAL_BYTES
    for info in archive.infolist():
        if not listed(info):
            continue
        name = info.filename
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
