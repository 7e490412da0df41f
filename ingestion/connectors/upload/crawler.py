"""Uploaded files: Markdown, plain text or HTML, stored privately under TWIN_DATA_DIR."""

from pathlib import Path

from ..base import Connector, ConnectorError, FetchedDocument, extract_text

ALLOWED_EXTENSIONS = (".md", ".markdown", ".txt", ".html", ".htm")


def decode_upload(data: bytes) -> str:
    """UTF-8 (with or without BOM), else a clear refusal: binaries are not text."""
    if b"\x00" in data[:8192]:
        raise ConnectorError("That file looks binary; upload Markdown, plain text or HTML.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConnectorError("That file is not UTF-8 text; save it as UTF-8 and upload it again.") from None


class UploadConnector(Connector):
    kind = "upload"

    def fetch(self, source, report):
        report(10, "Reading the uploaded file")
        try:
            with source.upload.open("rb") as handle:
                data = handle.read()
        except (FileNotFoundError, ValueError):
            raise ConnectorError("The uploaded file is missing from storage; upload it again.") from None
        filename = Path(source.upload.name).name.split("-", 1)[-1]
        title, text = extract_text(decode_upload(data), filename)
        report(60, "Extracted the text")
        return [FetchedDocument(url=f"upload://{filename}", title=title, text=text)]
