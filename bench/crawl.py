"""Crawl throughput on a local blog, and the cost of a second, unchanged sync.

A blog of N posts (about 600 words each, from the demo corpus) is served on loopback
with robots.txt, a home page, and a sitemap, with ETags (conditional requests answer
304). Two copies of the site are crawled: one whose sitemap carries <lastmod>, one
without it (every post is then re-checked with a conditional request).

- first sync: the whole crawl task (robots.txt, discovery, SSRF-guarded fetch with its
  deadline watchdog, host pacing with no delay, extraction, one upsert per post),
  against plain sequential `requests.get` of the same pages in the same run (no
  extraction, no storage): what politeness, safety and extraction cost per page.
- second sync of the unchanged site, against the first sync. Target: at least 20
  times faster (ratio at most 0.05). The pacing delay is 0 for every sync, so neither
  is measured as pauses.

Three first syncs (each of a new copy of the source, owned by its own user) alternate
with plain fetches and six re-syncs; medians are reported.

`python -m bench.crawl [--quick] [--pages N]` runs it alone (default 500 pages).

The feature pipeline is not run (bench/ingest.py measures it): changed documents are
not signalled.
"""

import argparse
import hashlib
import multiprocessing
import random
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

import requests

from . import common
from .common import info_row, log, row, timed

# First syncs and re-syncs alternate, so a burst of load from others hits both; medians are reported.
REPEATS = 3  # first syncs (each of a new copy of the source)
RESYNCS_PER_REPEAT = 2  # unchanged re-syncs of the first copy after each


class BlogServer:
    def __init__(self, posts: dict[str, str], *, lastmod: bool):
        from django.db import connections

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
            protocol_version = "HTTP/1.1"  # keep-alive, as real web servers do
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms wait on a kept connection

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

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{server.server_port}"
        self.routes["/sitemap.xml"] = ("application/xml", self.sitemap.replace("{base}", self.base).encode())
        # A process of its own, as a real site is: its work does not share the crawler's
        # interpreter lock (the crawler's share of a 304 would include serving it).
        connections.close_all()  # the child never touches the database; it must not inherit a connection
        self.process = multiprocessing.get_context("fork").Process(target=server.serve_forever, daemon=True)
        self.process.start()
        server.socket.close()  # the child listens; this process only connects

    def close(self):
        self.process.terminate()
        self.process.join()


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


def plain_fetch(base: str, paths, *, extract: bool = False) -> float:
    """Sequential requests.get of every page; with `extract`, each page's article extracted
    as the crawl extracts it (trafilatura), which is most of a first sync's work."""
    from ingestion.connectors.base import extract_article

    with timed() as t, requests.Session() as session:
        for path in paths:
            response = session.get(base + path, timeout=30)
            response.raise_for_status()
            assert response.content
            if extract:
                assert extract_article(response.text, base + path)[1]
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


def measure(server, posts, variant: str) -> dict:
    """Interleaved: plain fetch, a first sync of a new copy of the source (its own owner),
    then re-syncs of the first copy, REPEATS times; every figure is kept, medians reported."""
    from ingestion.models import Source

    count = len(posts)
    plain_fetch(server.base, list(posts)[:10])  # warm-up
    sources = [
        Source.objects.create(owner=owner, kind="blog", url=server.base + "/", name=variant, category="post")
        for owner in common.make_owners(REPEATS, prefix=f"{variant}-")  # an owner's identical texts are stored once
    ]
    figures = {"plain_fetch_s": [], "fetch_extract_s": [], "first_sync_s": [], "second_sync_s": []}
    for source in sources:
        figures["plain_fetch_s"].append(plain_fetch(server.base, posts))
        figures["fetch_extract_s"].append(plain_fetch(server.base, posts, extract=True))
        first_s, first = sync(source)
        assert first.documents_created == count, (first.documents_created, first.failures[:3])
        figures["first_sync_s"].append(first_s)
        for _ in range(RESYNCS_PER_REPEAT):
            second_s, second = sync(sources[0])
            assert second.documents_unchanged == count, (second.documents_unchanged, second.failures[:3])
            figures["second_sync_s"].append(second_s)
    return figures | {"first_requests": first.requests_made, "second_requests": second.requests_made}


def run(quick: bool, pages: int | None = None) -> dict:
    common.setup_django()
    from django.conf import settings

    count = pages or (100 if quick else 500)
    settings.TWIN_CRAWL_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.TWIN_CRAWL_DELAY_SECONDS = 0  # the same for every sync: pauses would measure only the pause
    settings.TWIN_CRAWL_MAX_PAGES = count + 50
    posts = make_posts(count, seed=11)
    figures, rows = {}, []
    with common.scratch_database(), mock.patch("ingestion.crawling.do_send_changed"):
        for variant, lastmod in (("lastmod", True), ("etag", False)):
            server = BlogServer(posts, lastmod=lastmod)
            settings.TWIN_CRAWL_ALLOWED_PORTS = [int(server.base.rsplit(":", 1)[1])]  # an allowed host needs its port
            try:
                figures[variant] = measure(server, posts, variant)
            finally:
                server.close()
            f = figures[variant]
            plain_s, extract_s, first_s, second_s = (
                common.median(f[k]) for k in ("plain_fetch_s", "fetch_extract_s", "first_sync_s", "second_sync_s")
            )
            log(
                f"{variant}: plain fetch {plain_s:.2f} s (with extraction {extract_s:.2f} s), "
                f"first sync {first_s:.2f} s ({f['first_requests']} requests), "
                f"second sync {second_s:.3f} s ({f['second_requests']} requests): {first_s / second_s:.0f}x"
            )
            label = "sitemap with lastmod" if lastmod else "ETag only"
            if lastmod:
                rows.append(
                    row(
                        f"first sync, {count} pages",
                        count / first_s,
                        count / plain_s,
                        "pages/s",
                        lower_is_better=False,
                        note="whole crawl task vs plain sequential requests.get of the same pages",
                    )
                )
                rows.append(
                    row(
                        f"first sync, {count} pages, vs fetch + extract",
                        count / first_s,
                        count / extract_s,
                        "pages/s",
                        lower_is_better=False,
                        note="the same, against requests.get plus the article extraction of each page",
                    )
                )
            rows.append(
                row(
                    f"second unchanged sync ({label})",
                    second_s,
                    first_s,
                    "s",
                    note=f"vs the first sync ({first_s / second_s:.0f}x faster); {f['second_requests']} requests "
                    "(target ratio <= 0.05)",
                )
            )
        etag = figures["etag"]
        rows.append(
            info_row(
                "time per unchanged post, second sync (ETag only)",
                common.median(etag["second_sync_s"]) / count * 1000,
                common.median(etag["first_sync_s"]) / count * 1000,
                "ms",
                note="second vs first sync: a conditional request answered 304, against fetch + extract + store",
            )
        )
    notes = [
        f"{count} posts of about 600 words; pacing delay 0 for every sync; the feature pipeline is not run.",
        "The first sync fetches robots.txt, the home page, the usual feed paths (404), the sitemap and every post.",
        "The server speaks HTTP/1.1 with keep-alive, like any web server; the crawl keeps one connection per host.",
        "With the default TWIN_CRAWL_DELAY_SECONDS (1 s), each request of an ETag-only re-sync waits its turn: "
        "only a feed or sitemap <lastmod> spares the requests.",
    ]
    return {
        "name": "crawl",
        "description": __doc__.strip().splitlines()[0],
        "params": {"pages": count, "repeats": REPEATS, "resyncs_per_repeat": RESYNCS_PER_REPEAT},
        "rows": rows,
        "notes": notes,
        "details": figures,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100 pages")
    parser.add_argument("--pages", type=int, help="site size (default 500, --quick 100)")
    args = parser.parse_args(argv)
    result = run(quick=args.quick, pages=args.pages) | {"quick": args.quick, "environment": common.environment()}
    common.write_and_print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
