from django import forms
from django.conf import settings

from ...models import Category
from ..forms import UrlSourceForm
from .git import is_local


class GitSourceForm(UrlSourceForm):
    url = forms.CharField(
        max_length=2000,
        label="Address",
        help_text="github.com/you, github.com/you/repo, or an https git URL.",
    )
    category = forms.ChoiceField(choices=Category.choices, initial=Category.CODE, required=False)

    def clean_url(self):
        url = self.cleaned_data["url"].strip()
        if is_local(url) and settings.TWIN_GIT_ALLOW_LOCAL:
            return url  # tests clone repositories they made
        if "://" not in url:
            url = "https://" + url
        self.cleaned_data["url"] = url
        return super().clean_url()
