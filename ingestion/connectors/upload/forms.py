from django import forms
from django.conf import settings

from ..base import ConnectorError
from ..forms import FileSourceForm
from .files import ALLOWED_EXTENSIONS, TEXT_EXTENSIONS, check_document, has_documents, open_archive, read_document


class UploadSourceForm(FileSourceForm):
    extensions = ALLOWED_EXTENSIONS
    name = forms.CharField(required=False, max_length=300, widget=forms.HiddenInput)

    def max_bytes(self) -> int:
        name = getattr(self.files.get("file"), "name", "").lower()
        return settings.TWIN_MAX_ARCHIVE_BYTES if name.endswith(".zip") else settings.TWIN_MAX_UPLOAD_BYTES

    def check_content(self, upload):
        """Only what is cheap to look at, so a bad file is refused before anything is stored and
        a hostile one costs the request nothing: a text file is decoded and extracted now; a PDF
        or a DOCX has its header or ZIP directory checked and is read by the sync, in a sandbox;
        an archive's directory is checked and its entries are read, each on its own, by the sync."""
        data = upload.read()
        upload.seek(0)
        name = upload.name.lower()
        try:
            if name.endswith(".zip"):
                with open_archive(data) as archive:
                    if not has_documents(archive):
                        raise ConnectorError("That archive has no file that could be read.")
                upload.extracted_title = upload.name
            elif name.endswith(TEXT_EXTENSIONS):
                upload.extracted_title, _ = read_document(upload.name, data)
            else:
                check_document(upload.name, data)
                upload.extracted_title = upload.name  # the sync names the source after the document's title
        except ConnectorError as exc:
            raise forms.ValidationError(str(exc)) from None
        return upload
