from django import forms

from ..forms import UrlSourceForm


class ArticleSourceForm(UrlSourceForm):
    render_js = forms.BooleanField(
        required=False,
        label="Render with a browser",
        help_text=(
            "For pages whose text appears only after JavaScript runs (used anyway when too little text is found)."
        ),
    )
