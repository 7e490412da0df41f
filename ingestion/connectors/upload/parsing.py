"""The text of a PDF or a DOCX, read in a child process that sandbox.py starts with limits.

This file runs as a script in that child (`python -I parsing.py ARGS < file`), so it
imports nothing of Django or of this package: the limits come in on the command line,
the file on stdin, and the text (or the reason it cannot be read) goes back on stdout as
JSON. The child caps its own CPU time and address space before it reads a byte of the
file, so a file built to be slow or huge to read stops there, not in a worker.

Besides those limits, each reader refuses the shapes that cost hours for a few bytes:
- a PDF whose pages draw more than `max_content_bytes` of (decoded) content streams in
  all, a stream counting once for each page that draws it (300 pages drawing one shared
  0.7 MB stream took pypdf minutes to read);
- a DOCX whose document part unpacks to more than `max_xml_bytes`, or to more than
  `max_ratio` times its packed size (a 15 KB file held 10 MB of XML), counted on the
  bytes actually unpacked; its XML is read as a stream, a paragraph at a time.

The web form calls only `docx_part`, which reads the archive's directory, never the XML.
"""

import io
import json
import resource
import sys
import zipfile

WORD_NS = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
NOT_A_DOCX = "That DOCX could not be read (it is not a valid Word document)."
EXIT_OUT_OF_MEMORY = 3  # the child's exit status when an allocation failed under its memory limit
MIN_RATIO_ALLOWANCE = 64 * 1024  # a tiny part may unpack past the ratio: it is cheap anyway
CHUNK = 64 * 1024


class Unreadable(Exception):
    """Why the file cannot be read, in words for the user."""


def size_label(size: int) -> str:
    for unit in ("bytes", "KB", "MB"):
        if size < 1024:
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


# PDF


def _resolved(obj):
    return obj.get_object() if obj is not None else None


def _streams_drawn(page) -> list:
    """Each content stream a page draws, once: its /Contents and the form XObjects its
    resources name, those of forms within forms included (text extraction reads them all)."""
    from pypdf.generic import ArrayObject, DictionaryObject, StreamObject

    found, seen = [], set()
    streams, resources = [page.get("/Contents")], [page.get("/Resources")]
    while streams or resources:
        if resources:
            names = _resolved(resources.pop())
            xobjects = _resolved(names.get("/XObject")) if isinstance(names, DictionaryObject) else None
            if isinstance(xobjects, DictionaryObject):
                streams.extend(xobjects.values())
            continue
        obj = _resolved(streams.pop())
        if obj is None or id(obj) in seen:  # pypdf resolves a shared object to one Python object
            continue
        seen.add(id(obj))
        if isinstance(obj, ArrayObject):
            streams.extend(obj)
        elif isinstance(obj, StreamObject) and obj.get("/Subtype") in (None, "/Form"):  # not images
            found.append(obj)
            resources.append(obj.get("/Resources"))
    return found


def pdf_text(data: bytes, *, max_pages: int, max_content_bytes: int) -> str:
    import pypdf

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise Unreadable("That PDF is encrypted; upload a copy without a password.")
        pages = reader.pages[:max_pages]
        drawn = 0
        for page in pages:  # before reading any text: decoding is cheap (pypdf keeps a shared stream decoded)
            drawn += sum(len(stream.get_data()) for stream in _streams_drawn(page))
            if drawn > max_content_bytes:
                raise Unreadable(
                    f"That PDF's pages draw more than {size_label(max_content_bytes)} of content in all "
                    "(a stream counts once for each page that draws it), more than can be read in reasonable time."
                )
        texts = [(page.extract_text() or "").strip() for page in pages]
    except (Unreadable, MemoryError):
        raise
    except Exception as exc:  # pypdf raises many kinds of error on malformed files
        raise Unreadable(f"That PDF could not be read ({exc.__class__.__name__}).") from None
    return "\n\n".join(text for text in texts if text)


# DOCX


def docx_part(archive: zipfile.ZipFile, *, max_xml_bytes: int, max_ratio: int) -> zipfile.ZipInfo:
    """The document part of a DOCX, refused by what its directory says it unpacks to."""
    try:
        info = archive.getinfo("word/document.xml")
    except KeyError:
        raise Unreadable(NOT_A_DOCX) from None
    _check_unpacked(info, info.file_size, max_xml_bytes=max_xml_bytes, max_ratio=max_ratio)
    return info


def _check_unpacked(info: zipfile.ZipInfo, size: int, *, max_xml_bytes: int, max_ratio: int):
    if size > max_xml_bytes:
        raise Unreadable(f"That DOCX's text unpacks past {size_label(max_xml_bytes)}, the limit.")
    if size > max(max_ratio * info.compress_size, MIN_RATIO_ALLOWANCE):
        raise Unreadable(f"That DOCX expands more than {max_ratio} times its packed size, as archive bombs do.")


def _paragraph_lines(events) -> list[str]:
    """Paragraphs as lines, headings as Markdown; each is dropped once read, so memory stays flat."""
    lines = []
    for _, paragraph in events:
        text = "".join(node.text or "" for node in paragraph.iter(f"{WORD_NS}t")).strip()
        style = paragraph.find(f"{WORD_NS}pPr/{WORD_NS}pStyle")
        level = (style.get(f"{WORD_NS}val") or "") if style is not None else ""
        if text and level.lower().startswith("heading") and level[-1:].isdigit():
            text = "#" * int(level[-1]) + " " + text
        if text:
            lines.append(text)
        paragraph.clear(keep_tail=True)  # a paragraph inside another (a text box) is not read twice
        while paragraph.getprevious() is not None:
            del paragraph.getparent()[0]
    return lines


def docx_text(data: bytes, *, max_xml_bytes: int, max_ratio: int) -> str:
    """Paragraphs of word/document.xml (no entities, no network), within the unpacking limits."""
    from lxml import etree

    lines = []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            info = docx_part(archive, max_xml_bytes=max_xml_bytes, max_ratio=max_ratio)
            parser = etree.XMLPullParser(
                events=("end",), tag=f"{WORD_NS}p", resolve_entities=False, no_network=True, huge_tree=False
            )
            unpacked = 0
            with archive.open(info) as handle:  # counted as read, whatever the directory claimed
                while chunk := handle.read(CHUNK):
                    unpacked += len(chunk)
                    _check_unpacked(info, unpacked, max_xml_bytes=max_xml_bytes, max_ratio=max_ratio)
                    parser.feed(chunk)
                    lines += _paragraph_lines(parser.read_events())
            parser.close()
            lines += _paragraph_lines(parser.read_events())
    except (Unreadable, MemoryError):
        raise
    except (zipfile.BadZipFile, etree.XMLSyntaxError, OSError, EOFError, NotImplementedError, RuntimeError):
        raise Unreadable(NOT_A_DOCX) from None
    return "\n\n".join(lines)


# The child process


def limit_self(cpu_seconds: int, memory_bytes: int):
    """CPU time (SIGXCPU at the limit, SIGKILL a second later), address space, no files, no core dumps."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))


def main(argv: list[str]) -> int:
    request = json.loads(argv[1])
    limit_self(request["cpu_seconds"], request["memory_bytes"])
    data = sys.stdin.buffer.read()
    readers = {"pdf": pdf_text, "docx": docx_text}
    try:
        answer = {"text": readers[request["kind"]](data, **request["limits"])}
    except Unreadable as exc:
        answer = {"error": str(exc)}
    except MemoryError:
        return EXIT_OUT_OF_MEMORY
    sys.stdout.buffer.write(json.dumps(answer).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
