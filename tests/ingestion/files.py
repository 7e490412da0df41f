"""Files made in the tests: a PDF with a text layer, a DOCX, and ZIP archives; and hostile ones:
a PDF whose pages all draw one large shared stream, a DOCX that unpacks hundreds of times over."""

import io
import zipfile
import zlib

TYPES_NS = "http://schemas.openxmlformats.org/package/2006/content-types"


def text_ops(*lines: str) -> bytes:
    return "".join(
        f"BT /F1 12 Tf 72 {720 - 16 * (i % 40)} Td ({line.replace('(', '[').replace(')', ']')}) Tj ET\n"
        for i, line in enumerate(lines)
    ).encode("latin-1")


def make_pdf(*lines: str) -> bytes:
    """A one-page PDF whose text layer holds `lines` (Helvetica, one line each)."""
    return pdf_of_pages(1, text_ops(*lines))


def make_shared_stream_pdf(pages: int, lines: int) -> bytes:
    """A PDF of `pages` pages that all draw one content stream of `lines` lines of text,
    deflated: a few kilobytes that cost a reader pages x lines of work."""
    return pdf_of_pages(pages, text_ops(*(f"Line {i} of the page that every page draws." for i in range(lines))))


def pdf_of_pages(pages: int, content: bytes) -> bytes:
    """Objects: 1 the page tree, 2 the font, 3 the content (deflated when large), 4.. the pages
    (each drawing object 3), then the catalog."""
    if len(content) > 4096:
        packed = zlib.compress(content, 9)
        stream = b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(packed), packed)
    else:
        stream = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content)
    kids = " ".join(f"{4 + i} 0 R" for i in range(pages)).encode()
    page = b"<< /Type /Page /Parent 1 0 R /MediaBox [0 0 612 792] /Contents 3 0 R "
    page += b"/Resources << /Font << /F1 2 0 R >> >> >>"
    objects = [
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        stream,
        *[page] * pages,
        b"<< /Type /Catalog /Pages 1 0 R >>",
    ]
    return _pdf(objects, root=len(objects))


def _pdf(objects: list[bytes], *, root: int) -> bytes:
    out, offsets = io.BytesIO(), []
    out.write(b"%PDF-1.4\n")
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, xref))
    return out.getvalue()


def make_docx(*paragraphs: tuple[str, str]) -> bytes:
    """A DOCX of (style, text) paragraphs; style "" or "Heading1"."""
    ns = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    body = "".join(
        "<w:p>"
        + (f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else "")
        + f"<w:r><w:t>{text}</w:t></w:r></w:p>"
        for style, text in paragraphs
    )
    return make_zip(
        {
            "[Content_Types].xml": f'<Types xmlns="{TYPES_NS}"/>',
            "word/document.xml": f'<w:document xmlns:w="{ns}"><w:body>{body}</w:body></w:document>',
        }
    )


def make_zip(members: dict[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data.encode() if isinstance(data, str) else data)
    return buffer.getvalue()


def make_repetitive_docx(paragraphs: int) -> bytes:
    """A DOCX of one sentence repeated: its document part unpacks hundreds of times over."""
    return make_docx(*[("", "The same sentence, over and over again.")] * paragraphs)
