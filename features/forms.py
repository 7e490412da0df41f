"""The search form, shared by the search page and GET /api/v1/search/ so both validate alike."""

from django import forms

from ingestion.models import Category, Source

MAX_QUERY_CHARS = 1000


class SearchForm(forms.Form):
    q = forms.CharField(max_length=MAX_QUERY_CHARS, strip=True, error_messages={"required": "Give a query with ?q=."})
    category = forms.ChoiceField(choices=[("", "Any kind"), *Category.choices], required=False)
    source = forms.ModelChoiceField(queryset=Source.objects.none(), required=False, empty_label="Any source")
    since = forms.DateField(
        required=False,
        help_text="Documents dated on or after this day.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    until = forms.DateField(
        required=False,
        help_text="Documents dated on or before this day.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["source"].queryset = Source.objects.for_user(user)  # another user's source id is invalid

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise forms.ValidationError({"until": "The end date is before the start date."})
        return data

    def search_filters(self) -> dict:
        data = self.cleaned_data
        source = data.get("source")
        return {
            "category": data.get("category") or None,
            "source": source.pk if source else None,
            "since": data.get("since"),
            "until": data.get("until"),
        }
