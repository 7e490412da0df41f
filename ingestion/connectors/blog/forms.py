from django import forms
from django.conf import settings

from ..forms import UrlSourceForm


class BlogSourceForm(UrlSourceForm):
    max_pages = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=5000,
        help_text="Most pages fetched in one sync (empty: the site default).",
    )

    def clean_max_pages(self):
        value = self.cleaned_data.get("max_pages")
        return min(value, settings.TWIN_CRAWL_MAX_PAGES) if value else None
