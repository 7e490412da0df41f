"""Uploaded files: Markdown, text, HTML, PDF, DOCX, or a ZIP of them, stored privately under TWIN_DATA_DIR."""

from pathlib import Path, PurePosixPath

from ...models import Source
from ..base import Connector, ConnectorError, Item
from .files import DOCUMENT_EXTENSIONS, archive_members, open_archive, read_document
from .forms import UploadSourceForm


def read_upload(source) -> tuple[str, bytes]:
    """(original file name, bytes) of the source's stored upload."""
    try:
        with source.upload.open("rb") as handle:
            data = handle.read()
    except (FileNotFoundError, ValueError):
        raise ConnectorError("The uploaded file is missing from storage; upload it again.") from None
    return Path(source.upload.name).name.split("-", 1)[-1], data


class UploadConnector(Connector):
    kind = "upload"
    label = "Files"
    help_text = "Upload a .md, .txt, .html, .pdf or .docx file, or a .zip of them."
    form_class = UploadSourceForm
    takes_file = True
    order = 10
    recognition_order = 90  # any file no other connector claims

    def recognises(self, *, url, filename):
        return bool(filename)

    def sync(self, crawl):
        crawl.progress(10, "Reading the uploaded file")
        filename, data = read_upload(crawl.source)
        if not filename.lower().endswith(".zip"):
            crawl.progress(20, f"Reading {filename}")
            title, text = read_document(filename, data)  # a PDF or DOCX in a sandbox; failing leaves what is stored
            crawl.store(Item(url=f"upload://{filename}", title=title, text=text))
            # A PDF or DOCX source is named after its file until it is read (the request does not read it).
            Source.objects.filter(pk=crawl.source.pk, name=filename).exclude(name=title).update(name=title[:300])
            return
        with open_archive(data) as archive:
            members = [info for info in archive.infolist() if not info.is_dir()]
            for i, (name, body) in enumerate(archive_members(archive)):
                crawl.progress(10 + 85 * i / max(1, len(members)), f"Reading {name} ({i + 1}/{len(members)})")
                url = f"upload://{filename}/{name}"
                if isinstance(body, ConnectorError):
                    crawl.fail(url, str(body))
                elif not name.lower().endswith(DOCUMENT_EXTENSIONS):
                    crawl.skip(url, f"Not a supported file type ({PurePosixPath(name).suffix or 'no extension'}).")
                else:
                    try:
                        title, text = read_document(name, body)
                    except ConnectorError as exc:
                        crawl.fail(url, str(exc))
                    else:
                        crawl.store(Item(url=url, title=title, text=text, metadata={"path": name}))
        crawl.mark_unseen_gone()


connector = UploadConnector()
