"""An article URL (a blog post, a Substack issue): fetched safely, main content extracted."""

from django.conf import settings

from ...safe_http import FetchError, fetch
from ..base import Connector, ConnectorError, FetchedDocument, extract_html


class ArticleConnector(Connector):
    kind = "article"

    def fetch(self, source, report):
        report(10, f"Fetching {source.url}")
        try:
            page = fetch(source.url)
        except FetchError as exc:
            raise ConnectorError(str(exc)) from None
        report(50, "Extracting the main content")
        if page.content_type in ("text/plain", "text/markdown"):
            title, text = source.name, page.text.strip()
        else:
            title, text = extract_html(page.text, page.url)
        if not text:
            raise ConnectorError("No article text was found on that page.")
        if len(text) > settings.TWIN_MAX_DOCUMENT_CHARS:
            raise ConnectorError(f"The article is longer than {settings.TWIN_MAX_DOCUMENT_CHARS:,} characters.")
        return [FetchedDocument(url=source.url, title=title, text=text)]
