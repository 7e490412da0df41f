"""A blog or site, from its home page: its feed, else its sitemap, else links from its
pages (depth TWIN_CRAWL_MAX_DEPTH from the home page, TWIN_CRAWL_MAX_PAGES pages).
The skip rule for pages that are not posts is in discover.py.

What is remembered between syncs (source.state): the feed or sitemap that worked, so
a later sync asks for it directly, conditionally, and posts are re-checked with their
own ETag / Last-Modified: an unchanged blog costs a few 304s.
"""

from collections import deque
from urllib.parse import urljoin, urlsplit

from django.conf import settings

from ...items import same_site
from ...safe_http import FetchError, HTTPStatusError
from ..base import Connector, ConnectorError
from ..feed.parse import XML_TYPES, advertised_feeds
from ..feed.sync import sync_feed
from ..pages import recheck_unseen, sync_page
from .discover import ASSET_SUFFIXES, USUAL_FEED_PATHS, page_links, sitemap_urls, skip_reason
from .forms import BlogSourceForm

MAX_SITEMAPS = 10


class BlogConnector(Connector):
    kind = "blog"
    label = "Blog or site"
    help_text = "Paste the home page of your blog; its posts are found through its feed, sitemap or links."
    form_class = BlogSourceForm
    recrawls = True
    order = 25
    recognition_order = 70

    def recognises(self, *, url, filename):
        return bool(url) and urlsplit(url).path in ("", "/")

    def source_fields(self, cleaned_data):
        fields = super().source_fields(cleaned_data)
        fields["options"] = {"max_pages": cleaned_data.get("max_pages")}
        return fields

    def sync(self, crawl):
        crawl.page_limit = crawl.source.options.get("max_pages") or settings.TWIN_CRAWL_MAX_PAGES
        try:
            self._discover_and_sync(crawl)
        except FetchError as exc:
            raise ConnectorError(str(exc)) from None
        recheck_unseen(crawl, budget=crawl.pages_left())

    def _discover_and_sync(self, crawl):
        source, state = crawl.source, crawl.source.state
        remembered = state.get("feed", {}).get("url")
        if remembered:
            try:
                return sync_feed(crawl, remembered, follow_html=False)
            except (HTTPStatusError, ConnectorError):
                state.pop("feed", None)  # moved or broken: discover again
        if state.get("discovered_by") == "sitemap" and (posts := self._sitemap_posts(crawl, source.url)):
            return self._sync_posts(crawl, posts)
        crawl.progress(3, f"Reading {source.url}")
        home = crawl.fetch(source.url)
        for feed_url in self._feed_candidates(home):
            try:
                return sync_feed(crawl, feed_url, follow_html=False)
            except (HTTPStatusError, ConnectorError):
                continue
        if posts := self._sitemap_posts(crawl, source.url):
            return self._sync_posts(crawl, posts)
        state["discovered_by"] = "links"
        return self._crawl_links(crawl, home)

    def _feed_candidates(self, home):
        advertised = advertised_feeds(home.text, home.url)
        return advertised or [urljoin(home.url, path) for path in USUAL_FEED_PATHS]

    def _sitemap_posts(self, crawl, home_url) -> list[tuple[str, str]]:
        """(post, lastmod) from the sitemaps; each sitemap is asked for conditionally, and a
        304 reuses what it listed last time (source.state["sitemaps"])."""
        remembered = crawl.source.state.get("sitemaps") or {}
        queue = deque(remembered or crawl.sitemaps_from_robots(home_url) or [urljoin(home_url, "/sitemap.xml")])
        sitemaps, posts, read = {}, {}, 0
        while queue and read < MAX_SITEMAPS and len(posts) < crawl.page_limit:
            url, read = queue.popleft(), read + 1
            known = remembered.get(url, {})
            try:
                page = crawl.fetch(url, accept=(*XML_TYPES, "text/plain"), validators=known)
            except FetchError:
                continue
            if page.not_modified:
                entries, children = known.get("entries", {}), known.get("children", [])
            else:
                pages, children = sitemap_urls(page.body)
                entries = dict(pages)
            sitemaps[url] = {"etag": page.etag or known.get("etag", ""), "entries": entries, "children": children}
            sitemaps[url]["last_modified"] = page.last_modified or known.get("last_modified", "")
            queue.extend(child for child in children if child not in sitemaps)
            for page_url, lastmod in entries.items():
                if not same_site(page_url, home_url) or page_url in posts:
                    continue
                if reason := skip_reason(page_url, home_url):
                    crawl.skip(page_url, reason)
                else:
                    posts[page_url] = lastmod
        crawl.source.state["sitemaps"] = sitemaps
        return list(posts.items())[: crawl.page_limit]

    def _sync_posts(self, crawl, posts):
        """A post whose sitemap <lastmod> is the one stored with it is unchanged without a request."""
        crawl.source.state["discovered_by"] = "sitemap"
        for i, (url, lastmod) in enumerate(posts):
            if i % 10 == 0:
                crawl.progress(10 + 85 * i / max(1, len(posts)), f"{url} ({i + 1}/{len(posts)})")
            known = crawl.known.get(url)
            if lastmod and known and known.gone_at is None and known.metadata.get("lastmod") == lastmod:
                crawl.unchanged(url)
                continue
            try:
                sync_page(crawl, url, metadata={"via": "page", "lastmod": lastmod})
            except ConnectorError as exc:
                crawl.fail(url, str(exc))

    def _crawl_links(self, crawl, home):
        """Breadth first from the home page: index pages are followed, posts stored and followed.

        A link robots.txt disallows is never requested, wherever it appears (footers too)."""
        queue, queued, fetched = deque([(home.url, 0, home)]), {home.url}, 0
        while queue and fetched < crawl.page_limit:
            url, depth, page = queue.popleft()
            if page is None:
                if not crawl.allowed_by_robots(url):
                    crawl.skip(url, "robots.txt asks crawlers not to fetch it.")
                    continue
                fetched += 1
                crawl.progress(10 + 85 * fetched / crawl.page_limit, f"{url} ({fetched} pages)")
                page = self._fetch_linked(crawl, url, is_post=not skip_reason(url, home.url))
            if page is None or page.not_modified or depth >= settings.TWIN_CRAWL_MAX_DEPTH:
                continue
            for link in page_links(page.text, page.url):
                if link not in queued and same_site(link, home.url) and not link.lower().endswith(ASSET_SUFFIXES):
                    queued.add(link)
                    queue.append((link, depth + 1, None))

    def _fetch_linked(self, crawl, url, *, is_post):
        """The page (for its links), storing it when it is a post; None when it could not be read."""
        if not is_post:
            try:
                return crawl.fetch(url)
            except FetchError:
                return None
        try:
            sync_page(crawl, url, metadata={"via": "page"})
        except ConnectorError as exc:
            if "only navigation" in str(exc):
                crawl.skip(url, str(exc))
            else:
                crawl.fail(url, str(exc))
        return crawl.last_page


connector = BlogConnector()
