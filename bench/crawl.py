"""Crawl throughput on a local blog, and the cost of a second, unchanged sync.

A blog of N posts (about 600 words each, from the demo corpus) is served on loopback
with robots.txt, a home page, and a sitemap, with ETags (conditional requests answer
304). Two copies of the site are crawled: one whose sitemap carries <lastmod>, one
without it (every post is then re-checked with a conditional request).

- first sync: the whole crawl task (robots.txt, discovery, SSRF-guarded fetch with its
  deadline watchdog, host pacing with no delay, extraction, one upsert per post),
  against plain sequential `requests.get` of the same pages in the same run (no
  extraction, no storage): what politeness, safety and extraction cost per page.
- second sync of the unchanged site, against the first sync. Target: at least 20 times
  faster (ratio at most 0.05).

The feature pipeline is not run (bench/ingest.py measures it): changed documents are
not signalled.
"""

import hashlib
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

import requests

from . import common
from .common import info_row, log, row, timed


class BlogServer:
    def __init__(self, posts: dict[str, str], *, lastmod: bool):
        self.routes = {"/robots.txt": ("text/plain", b"User-agent: *\nDisallow: /private/\n")}
        links = "".join(f"<li><a href='{path}'>{path}</a></li>" for path in posts)
        self.routes["/"] = ("text/html; charset=utf-8", f"<html><body><ul>{links}</ul></body></html>".encode())
        for path, html in posts.items():
            self.routes[path] = ("text/html; charset=utf-8", html.encode())
        stamp = "<lastmod>2024-05-01</lastmod>" if lastmod else ""
        urls = "".join(f"<url><loc>{{base}}{path}</loc>{stamp}</url>" for path in posts)
        self.sitemap = f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
        routes = self.routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                content_type, body = routes.get(self.path, ("text/plain", b""))
                etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'  # noqa: S324 (an ETag)
                status = 304 if self.headers.get("If-None-Match") == etag else (200 if body else 404)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body) if status == 200 else 0))
                self.end_headers()
                if status == 200:
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.routes["/sitemap.xml"] = ("application/xml", self.sitemap.replace("{base}", self.base).encode())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def make_posts(count: int, seed: int) -> dict[str, str]:
    rng, sentences = random.Random(seed), common.corpus_sentences()
    posts = {}
    for i in range(count):
        text = common.synthetic_document(rng, sentences, f"Post number {i}", 600)
        paragraphs = "".join(f"<p>{p}</p>" for p in text.split("\n\n")[1:] if not p.startswith("#"))
        posts[f"/posts/{i:04d}"] = (
            f"<html><head><title>Post number {i}</title></head><body><nav><a href='/'>Home</a>"
            f"<a href='/private/x'>x</a></nav><article><h1>Post number {i}</h1>{paragraphs}</article>"
            "<footer>Written by the bench.</footer></body></html>"
        )
    return posts


def plain_fetch(base: str, paths) -> float:
    with timed() as t, requests.Session() as session:
        for path in paths:
            response = session.get(base + path, timeout=30)
            response.raise_for_status()
            assert response.content
    return t.seconds


def sync(source) -> tuple[float, object]:
    from ingestion.models import CrawlRun
    from ingestion.tasks import crawl_source

    run = CrawlRun.objects.create(owner=source.owner, source=source)
    with timed() as t:
        crawl_source(run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return t.seconds, run


def run(quick: bool) -> dict:
    common.setup_django()
    from django.conf import settings

    from ingestion.models import Source

    count = 100 if quick else 500
    settings.TWIN_CRAWL_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.TWIN_CRAWL_DELAY_SECONDS = 0  # politeness pauses would measure only the pause
    settings.TWIN_CRAWL_MAX_PAGES = count + 50
    posts = make_posts(count, seed=11)
    figures, rows = {}, []
    with common.scratch_database(), mock.patch("ingestion.crawling.do_send_changed"):
        owners = common.make_owners(2)  # one per site copy: an owner's identical texts are stored once
        for owner, (variant, lastmod) in zip(owners, (("lastmod", True), ("etag", False)), strict=True):
            server = BlogServer(posts, lastmod=lastmod)
            try:
                plain_fetch(server.base, list(posts)[:10])  # warm-up
                source = Source.objects.create(
                    owner=owner, kind="blog", url=server.base + "/", name=variant, category="post"
                )
                baseline_s = plain_fetch(server.base, posts)
                first_s, first = sync(source)
                second_s, second = sync(source)
                counts = [(r.documents_created, r.documents_unchanged, r.failures[:3]) for r in (first, second)]
                assert first.documents_created == count and second.documents_unchanged == count, counts
            finally:
                server.close()
            figures[variant] = {
                "plain_fetch_s": baseline_s,
                "first_sync_s": first_s,
                "second_sync_s": second_s,
                "first_requests": first.requests_made,
                "second_requests": second.requests_made,
            }
            log(
                f"{variant}: plain fetch {baseline_s:.1f} s, first sync {first_s:.1f} s ({first.requests_made} "
                f"requests), second sync {second_s:.2f} s ({second.requests_made} requests)"
            )
            label = "sitemap with lastmod" if lastmod else "ETag only"
            if lastmod:
                rows.append(
                    row(
                        f"first sync, {count} pages",
                        count / first_s,
                        count / baseline_s,
                        "pages/s",
                        lower_is_better=False,
                        note="whole crawl task vs plain sequential requests.get of the same pages",
                    )
                )
            rows.append(
                row(
                    f"second unchanged sync ({label})",
                    second_s,
                    first_s,
                    "s",
                    note=f"vs the first sync; {second.requests_made} requests (target ratio <= 0.05)",
                )
            )
        rows.append(
            info_row(
                "requests, second sync (ETag only)",
                figures["etag"]["second_requests"],
                figures["etag"]["first_requests"],
                "requests",
                note="second vs first: every post answered 304",
            )
        )
    notes = [
        f"{count} posts of about 600 words; pacing delay 0; the feature pipeline is not run.",
        "The first sync fetches robots.txt, the home page, the usual feed paths (404), the sitemap and every post.",
    ]
    return {
        "name": "crawl",
        "description": __doc__.strip().splitlines()[0],
        "params": {"pages": count},
        "rows": rows,
        "notes": notes,
        "details": figures,
    }
