"""Substack: its feed carries only the latest posts (20); its archive lists every one.

A publication is recognised by its host (*.substack.com) or, on a custom domain, by the
feed's <generator>Substack</generator>. The archive is the JSON that Substack's own
/archive page reads, a page of posts at a time, newest first:

    GET /api/v1/archive?sort=new&offset=0&limit=50
    [{"canonical_url": "https://you.substack.com/p/slug", "title": "...",
      "post_date": "2024-03-10T12:00:00.000Z", "audience": "everyone", ...}, ...]

Each post the feed did not carry is taken from its own page (conditionally, like any
page). robots.txt governs the archive like any path (Substack's allows it). A paid
post is skipped: only its teaser is public.
"""

import json
from datetime import UTC, datetime
from urllib.parse import urlsplit

from ...safe_http import FetchError
from .parse import Feed

ARCHIVE_PATH = "/api/v1/archive?sort=new&offset={offset}&limit={limit}"
ARCHIVE_PAGE_SIZE = 50
PAID_AUDIENCES = {"only_paid", "founding"}


def is_substack(feed: Feed, feed_url: str) -> bool:
    host = (urlsplit(feed_url).hostname or "").lower()
    return host.endswith(".substack.com") or feed.generator.strip().lower() == "substack"


def archive_posts(crawl, feed_url: str):
    """(address, post) for each post the archive lists, newest first, while this sync may
    still make requests. A broken archive ends the listing with one skipped item saying why
    (the feed's posts are stored all the same)."""
    parts = urlsplit(feed_url)
    offset = 0
    while crawl.pages_left() > 0:
        url = f"{parts.scheme}://{parts.netloc}" + ARCHIVE_PATH.format(offset=offset, limit=ARCHIVE_PAGE_SIZE)
        try:
            posts = _archive_page(crawl, url)
        except ValueError as exc:
            crawl.skip(url, f"The Substack archive could not be read: {exc}")
            return
        for post in posts:
            if isinstance(post, dict) and isinstance(address := post.get("canonical_url"), str):
                yield address, post
        if len(posts) < ARCHIVE_PAGE_SIZE:
            return
        offset += len(posts)


def _archive_page(crawl, url: str) -> list:
    try:
        posts = json.loads(crawl.fetch(url, accept=("application/json",)).body)
    except FetchError as exc:
        raise ValueError(str(exc)) from None
    except ValueError:
        raise ValueError("it is not JSON.") from None
    if isinstance(posts, dict):  # some versions wrap the list
        posts = posts.get("posts")
    if not isinstance(posts, list):
        raise ValueError("it is not a list of posts.")
    return posts


def is_paid(post: dict) -> bool:
    return post.get("audience") in PAID_AUDIENCES


def post_date(post: dict) -> datetime | None:
    """The post's "post_date" (ISO 8601, "2024-03-10T12:00:00.000Z"), or None when it has none we can read."""
    try:
        when = datetime.fromisoformat(str(post.get("post_date") or ""))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
