"""Form bases the connectors' forms extend: a URL to crawl, or a file to upload.

The same form validates the web page's POST and the API's body, so a rule (and its
message) lives in one place. Neither touches the network: names are resolved by the
crawl, in a worker.
"""

from pathlib import Path

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from ..models import Category
from ..safe_http import FetchError, check_url


class SourceForm(forms.Form):
    category = forms.ChoiceField(choices=Category.choices, initial=Category.ARTICLE)
    recrawl_hours = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=24 * 365,
        label="Sync every (hours)",
        help_text="Empty: the site default; 0: only when you press Sync.",
    )


class UrlSourceForm(SourceForm):
    url = forms.URLField(max_length=2000, assume_scheme="https")
    field_order = ["url", "category"]

    def clean_url(self):
        try:
            return check_url(self.cleaned_data["url"])
        except FetchError as exc:
            raise forms.ValidationError(str(exc)) from None


class FileSourceForm(SourceForm):
    """A file of one of `extensions`, under TWIN_MAX_UPLOAD_BYTES (or `max_bytes`)."""

    file = forms.FileField()
    extensions: tuple[str, ...] = ()
    field_order = ["file", "category"]

    def max_bytes(self) -> int:
        return settings.TWIN_MAX_UPLOAD_BYTES

    def clean_file(self):
        upload = self.cleaned_data["file"]
        name = Path(upload.name).name
        if not name.lower().endswith(self.extensions):
            raise forms.ValidationError(
                f"“{name}” is not a supported file type. Upload one of: {', '.join(self.extensions)}."
            )
        limit = self.max_bytes()
        if upload.size > limit:
            raise forms.ValidationError(
                f"That file is {filesizeformat(upload.size)}; the limit is {filesizeformat(limit)}."
            )
        return self.check_content(upload)

    def check_content(self, upload):
        """Look inside the file before storing it; raise ValidationError with the reason."""
        return upload
