"""An article URL (a blog post, a Substack issue): fetched safely, main content extracted.

Pages that build their text in JavaScript go through headless Chromium (browser.py)
when the user asks, or when the static page yields fewer than TWIN_BROWSER_MIN_WORDS.
"""

from urllib.parse import urlsplit

from ..base import Connector
from ..pages import sync_page
from .browser import extractor_for
from .forms import ArticleSourceForm


class ArticleConnector(Connector):
    kind = "article"
    label = "Article URL"
    help_text = "Paste the address of one article or blog post."
    form_class = ArticleSourceForm
    recrawls = True
    order = 20
    recognition_order = 80  # any page address no other connector claims

    def recognises(self, *, url, filename):
        return bool(url) and urlsplit(url).path not in ("", "/")

    def source_fields(self, cleaned_data):
        fields = super().source_fields(cleaned_data)
        fields["options"] = {"render_js": bool(cleaned_data.get("render_js"))}
        return fields

    def sync(self, crawl):
        source = crawl.source
        crawl.progress(10, f"Fetching {source.url}")
        sync_page(crawl, source.url, extract=extractor_for(crawl, source))


connector = ArticleConnector()
