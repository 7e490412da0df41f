from django import forms
from django.conf import settings

from ..forms import FileSourceForm
from ..upload.files import open_archive
from .export import is_linkedin_export


class LinkedInSourceForm(FileSourceForm):
    extensions = (".zip",)
    category = forms.CharField(required=False, widget=forms.HiddenInput, initial="post")

    def max_bytes(self) -> int:
        return settings.TWIN_MAX_ARCHIVE_BYTES

    def check_content(self, upload):
        from ..base import ConnectorError

        data = upload.read()
        upload.seek(0)
        try:
            with open_archive(data) as archive:
                names = archive.namelist()
        except ConnectorError as exc:
            raise forms.ValidationError(str(exc)) from None
        if not is_linkedin_export(names):
            raise forms.ValidationError(
                "That is not a LinkedIn data export: it has no Shares.csv, Comments.csv or Articles folder."
            )
        upload.extracted_title = "LinkedIn export"
        return upload
