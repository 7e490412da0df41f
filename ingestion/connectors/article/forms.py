from django import forms

from ...models import Category
from ...safe_http import FetchError, check_url


class ArticleSourceForm(forms.Form):
    url = forms.URLField(max_length=2000, assume_scheme="https", help_text="A public blog post or article.")
    category = forms.ChoiceField(choices=Category.choices, initial=Category.ARTICLE)

    def clean_url(self):
        try:
            return check_url(self.cleaned_data["url"])
        except FetchError as exc:
            raise forms.ValidationError(str(exc)) from None
