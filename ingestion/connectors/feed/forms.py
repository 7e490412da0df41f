from ..forms import UrlSourceForm


class FeedSourceForm(UrlSourceForm):
    pass
