"""An RSS or Atom feed; also a Medium profile or publication, or a Substack publication,
which map to their feeds (parse.feed_url_for); a Substack's archive lists the posts older
than its feed's latest (substack.py). A page address works too when the page advertises
its feed."""

from ...safe_http import FetchError
from ..base import Connector, ConnectorError
from ..pages import recheck_unseen
from .forms import FeedSourceForm
from .parse import feed_url_for, looks_like_feed_url
from .sync import sync_feed


class FeedConnector(Connector):
    kind = "feed"
    label = "Feed, Medium or Substack"
    help_text = (
        "Paste an RSS or Atom feed address, a Medium profile (medium.com/@you) or a Substack "
        "publication (you.substack.com)."
    )
    form_class = FeedSourceForm
    recrawls = True
    order = 30
    recognition_order = 20

    def recognises(self, *, url, filename):
        return bool(url) and looks_like_feed_url(url)

    def source_fields(self, cleaned_data):
        fields = super().source_fields(cleaned_data)
        fields["options"] = {"feed_url": feed_url_for(cleaned_data["url"])}
        return fields

    def sync(self, crawl):
        feed_url = crawl.source.options.get("feed_url") or feed_url_for(crawl.source.url)
        try:
            sync_feed(crawl, feed_url)
        except FetchError as exc:
            raise ConnectorError(str(exc)) from None
        recheck_unseen(crawl, budget=crawl.pages_left())


connector = FeedConnector()
