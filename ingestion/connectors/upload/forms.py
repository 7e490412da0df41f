from django import forms
from django.conf import settings

from ..base import ConnectorError
from ..forms import FileSourceForm
from .files import ALLOWED_EXTENSIONS, DOCUMENT_EXTENSIONS, archive_members, open_archive, read_document


class UploadSourceForm(FileSourceForm):
    extensions = ALLOWED_EXTENSIONS
    name = forms.CharField(required=False, max_length=300, widget=forms.HiddenInput)

    def max_bytes(self) -> int:
        name = getattr(self.files.get("file"), "name", "").lower()
        return settings.TWIN_MAX_ARCHIVE_BYTES if name.endswith(".zip") else settings.TWIN_MAX_UPLOAD_BYTES

    def check_content(self, upload):
        """A single file is read now, so a bad one is refused before anything is stored; an
        archive is opened (entry count) and its entries are read, each on its own, by the sync."""
        data = upload.read()
        upload.seek(0)
        try:
            if upload.name.lower().endswith(".zip"):
                with open_archive(data) as archive:
                    members = archive_members(archive)
                    if not any(
                        isinstance(body, bytes) and name.lower().endswith(DOCUMENT_EXTENSIONS) for name, body in members
                    ):
                        raise ConnectorError("That archive has no file that could be read.")
                upload.extracted_title = upload.name
            else:
                upload.extracted_title, _ = read_document(upload.name, data)
        except ConnectorError as exc:
            raise forms.ValidationError(str(exc)) from None
        return upload
