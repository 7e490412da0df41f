from pathlib import Path

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from ...models import Category
from ..base import ConnectorError, extract_text
from .crawler import ALLOWED_EXTENSIONS, decode_upload


class UploadSourceForm(forms.Form):
    file = forms.FileField(help_text="Markdown, plain text or HTML, UTF-8.")
    category = forms.ChoiceField(choices=Category.choices, initial=Category.ARTICLE)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        name = Path(upload.name).name
        if not name.lower().endswith(ALLOWED_EXTENSIONS):
            raise forms.ValidationError(
                f"“{name}” is not a supported file type. Upload one of: {', '.join(ALLOWED_EXTENSIONS)}."
            )
        limit = settings.TWIN_MAX_UPLOAD_BYTES
        if upload.size > limit:
            raise forms.ValidationError(
                f"That file is {filesizeformat(upload.size)}; the limit is {filesizeformat(limit)}."
            )
        data = upload.read()
        upload.seek(0)
        try:
            title, text = extract_text(decode_upload(data), name)
        except ConnectorError as exc:
            raise forms.ValidationError(str(exc)) from None
        if len(text) > settings.TWIN_MAX_DOCUMENT_CHARS:
            raise forms.ValidationError(
                f"That document has {len(text):,} characters; the limit is {settings.TWIN_MAX_DOCUMENT_CHARS:,}."
            )
        upload.extracted_title = title
        return upload
