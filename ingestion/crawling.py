"""One sync of a source: what every connector fetches through, and where each item lands.

A connector's `sync(crawl)` asks `crawl.fetch` for pages and hands each item it finds
to `crawl.store` (or says it was unchanged, failed, skipped or gone). The crawl:
- obeys robots.txt for every path it fetches (RFC 9309: a missing file allows all, an
  unreachable one forbids all), and its Crawl-delay;
- sends one request at a time per host across all workers, with a delay between them
  (a Redis key per host), with an honest user agent (safe_http.USER_AGENT);
- backs off and retries on 429 and 5xx, honouring Retry-After within limits;
- sends conditional requests (ETag, Last-Modified) for pages it has stored;
- stores each item in its own transaction, so a failure, a cancel or the run's deadline
  keeps everything stored before it and damages nothing;
- keeps the run's counts and failed items up to date for the live progress row, and
  stops at the next item once the user cancels or the run's deadline passes.
"""

import logging
import time
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from protego import Protego

from core.jobs import JobStatus

from .actions import do_mark_gone, do_send_changed, do_upsert_document
from .items import Item
from .models import CrawlRun, Document
from .safe_http import (
    ROBOTS_AGENT,
    TEXT_CONTENT_TYPES,
    USER_AGENT,
    FetchError,
    FetchSession,
    HTTPStatusError,
    fetch,
)

logger = logging.getLogger(__name__)
MAX_FAILURES_KEPT = 200
SAVE_EVERY_SECONDS = 1.0  # progress of cheap outcomes reaches the run row this often (the page polls every 2 s)


class RunStopped(Exception):
    """The user cancelled the run, or it reached its deadline: stop at once, keep what is stored."""


class HostPacer:
    """One request at a time per host, TWIN_CRAWL_DELAY_SECONDS apart, across every worker.

    A Redis key per host: taken (SET NX) for the request, then left to rest for the
    delay. The commands go over a connection of the crawl's own, and a release is sent
    without waiting for Redis's answer (Redis applies it at once; the answer is read
    with the next command's).

    With no delay to keep (TWIN_CRAWL_DELAY_SECONDS 0 and no Crawl-delay), a run keeps
    the host's key between its requests (a lease of LEASE_SECONDS beyond one fetch's
    longest hold), so consecutive requests to one host cost no round trip to Redis; it is
    still one request at a time, as the run fetches one page after the other. The lease
    is given back when it runs out, when the run turns to another host, and at the end.
    """

    LEASE_SECONDS = 2.0

    def __init__(self):
        cache_settings = settings.CACHES["default"]
        self.connection = redis.Redis.from_url(cache_settings["LOCATION"]).connection_pool.make_connection()
        self.prefix = f"{cache_settings.get('KEY_PREFIX', '')}:crawl-host:"
        self.unread = 0  # answers sent back by Redis that were not read yet
        self.lease_key, self.lease_until = None, 0.0  # the key held between requests, and until when (monotonic)

    def _send(self, *commands):
        self.connection.send_packed_command(self.connection.pack_commands(commands))
        self.unread += len(commands)

    def _answers(self) -> list:
        answers = []
        try:
            while self.unread:
                answers.append(self.connection.read_response())
                self.unread -= 1
        except Exception:  # the connection's state is unknown: start afresh with the next command
            self.unread = 0
            self.connection.disconnect()
            raise
        return answers

    def acquire(self, host: str, deadline: float, hold_seconds: float):
        """Wait for the host's turn (at once while this run holds the host's lease for a whole fetch more)."""
        key = self.prefix + host
        if key == self.lease_key and time.monotonic() + hold_seconds < self.lease_until:
            return key
        self._drop_lease()
        while True:
            sent_at = time.monotonic()
            self._send(("SET", key, "busy", "NX", "PX", max(1, int((hold_seconds + self.LEASE_SECONDS) * 1000))))
            if self._answers()[-1]:
                self.lease_key, self.lease_until = key, sent_at + hold_seconds + self.LEASE_SECONDS
                return key
            if time.monotonic() > deadline:
                raise RunStopped(f"Waited too long for a turn to fetch from {host}.")
            time.sleep(0.01)

    def release(self, key: str, delay: float):
        """After a request: the key rests for the delay; with none, the run keeps its lease."""
        if delay > 0:
            self.lease_key = None
            self._send(("SET", key, "resting", "PX", max(1, int(delay * 1000))))

    def _drop_lease(self):
        if self.lease_key and time.monotonic() < self.lease_until:  # still ours: past it, another run's
            self._send(("DEL", self.lease_key))
        self.lease_key = None

    def close(self):
        """Give the lease back, read what Redis still owes (so every release was applied), then hang up."""
        try:
            self._drop_lease()
            self._answers()
        finally:
            self.connection.disconnect()


class CancelWatch:
    """Tells whether the user cancelled the run, without a round trip per question.

    It subscribes to the run's channel (CrawlRun.request_cancel publishes there) and
    looks at the subscription's socket, a poll that does not wait. A cancel from before
    the subscription is found in the cache flag, read once the subscription is confirmed.
    """

    def __init__(self, run):
        self.flag_key = run.cancel_flag_key
        self.pubsub = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"]).pubsub()
        self.pubsub.subscribe(run.cancel_channel)
        if not self.pubsub.get_message(timeout=settings.TWIN_FETCH_TIMEOUT):  # Redis's "subscribed"
            self.close()  # no subscription: ask the cache each time instead
        self.cancelled = bool(cache.get(self.flag_key))

    def is_cancelled(self) -> bool:
        if self.pubsub is None and not self.cancelled:
            self.cancelled = bool(cache.get(self.flag_key))
        while not self.cancelled and self.pubsub and (message := self.pubsub.get_message(timeout=0)):
            self.cancelled = message["type"] == "message"
        return self.cancelled

    def close(self):
        if self.pubsub is not None:
            self.pubsub.close()
            self.pubsub = None


class Crawl:
    def __init__(self, run):
        self.run, self.source = run, run.source
        self.started = time.monotonic()
        self.deadline = self.started + settings.TWIN_CRAWL_RUN_SECONDS
        # Every stored document of the source, in one query: the per-item decisions (304,
        # same bytes, same lastmod) are made against it without asking the database.
        self.known = {
            doc.url: doc
            for doc in Document.objects.filter(source=self.source).only(
                "id", "url", "title", "content_hash", "etag", "last_modified", "body_hash", "gone_at", "metadata"
            )
        }
        self.seen: set[str] = set()
        self.changed: list[int] = []
        self.counts = {"created": 0, "updated": 0, "unchanged": 0, "failed": 0, "skipped": 0, "gone": 0}
        self.failures: list[dict] = []
        self.requests = 0
        self.robots: dict[str, tuple[Protego | None, str]] = {}
        self.pacer = HostPacer()
        self.cancel = CancelWatch(run)
        self.http = FetchSession()  # connections kept alive from one request to the next
        self._row_stopped = False  # the run row was no longer "running" when progress was written
        self.page_limit = settings.TWIN_CRAWL_MAX_PAGES
        self._saved_at = 0.0
        self.last_page = None  # the page sync_page fetched last (the blog follows its links)

    # -- fetching -------------------------------------------------------------------
    def fetch(
        self,
        url: str,
        *,
        accept=TEXT_CONTENT_TYPES,
        conditional: bool = False,
        validators=None,
        max_bytes=None,
        headers=None,
        is_api: bool = False,
    ):
        """A polite, robots-checked, retried fetch; 304 comes back as `page.not_modified`.

        `conditional`: send the stored document's ETag / Last-Modified; `validators`: send
        these instead ({"etag", "last_modified"}, for pages that are not documents: feeds).
        `is_api`: a documented API (GitHub's REST API), which robots.txt does not govern.
        """
        if not is_api and not self.allowed_by_robots(url):
            raise FetchError(f"robots.txt of {urlsplit(url).netloc} asks crawlers not to fetch {urlsplit(url).path}.")
        headers = dict(headers or {})
        known = self.known.get(url)
        if validators is None and conditional and known and known.gone_at is None:  # a gone page comes back whole
            validators = {"etag": known.etag, "last_modified": known.last_modified}
        if validators:
            if validators.get("etag"):
                headers["If-None-Match"] = validators["etag"]
            if validators.get("last_modified"):
                headers["If-Modified-Since"] = validators["last_modified"]
        return self._fetch_with_backoff(url, accept=accept, headers=headers, max_bytes=max_bytes)

    user_agent = USER_AGENT

    def pages_left(self) -> int:
        """Requests this sync may still make under TWIN_CRAWL_MAX_PAGES."""
        return max(0, self.page_limit - self.requests)

    def fetch_quietly(self, url: str):
        """For the browser's requests: robots.txt and pacing, any content type, no database."""
        if not self.allowed_by_robots(url):
            raise FetchError(f"robots.txt disallows {url}.")
        return self._paced_fetch(urlsplit(url).netloc.lower(), url, accept=None, headers={}, max_bytes=None)

    def _fetch_with_backoff(self, url, **kwargs):
        host = urlsplit(url).netloc.lower()
        for attempt in range(settings.TWIN_CRAWL_RETRIES + 1):
            try:
                return self._paced_fetch(host, url, **kwargs)
            except HTTPStatusError as exc:
                if (exc.status != 429 and exc.status < 500) or attempt == settings.TWIN_CRAWL_RETRIES:
                    raise
                wait = min(
                    exc.retry_after
                    if exc.retry_after is not None
                    else settings.TWIN_CRAWL_BACKOFF_SECONDS * 2**attempt,
                    settings.TWIN_CRAWL_MAX_BACKOFF_SECONDS,
                )
                if time.monotonic() + wait > self.deadline:
                    raise
                logger.info("HTTP %s from %s; retrying in %.2fs", exc.status, host, wait)
                time.sleep(wait)
                self.check_stopped()
        raise AssertionError("unreachable")  # pragma: no cover

    def _paced_fetch(self, host, url, **kwargs):
        hold = settings.TWIN_FETCH_DEADLINE + 5
        self.check_stopped()
        key = self.pacer.acquire(host, self.deadline, hold)
        try:
            self.requests += 1
            return fetch(url, deadline=self.deadline, session=self.http, **kwargs)
        except FetchError:
            self.check_stopped()  # cut off by the run's deadline: say so, not "this page failed"
            raise
        finally:
            self.pacer.release(key, max(settings.TWIN_CRAWL_DELAY_SECONDS, self._crawl_delay(url)))

    def _robots_for(self, url):
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self.robots:
            self.robots[origin] = self._read_robots(origin)
        return self.robots[origin]

    def _read_robots(self, origin):
        """(parser, refusal): a missing robots.txt allows everything; an unreachable one nothing."""
        try:
            page = self._fetch_with_backoff(f"{origin}/robots.txt", accept=None, headers={}, max_bytes=512 * 1024)
        except HTTPStatusError as exc:
            if exc.status < 500:
                return None, ""
            return None, f"robots.txt of {origin} answered HTTP {exc.status}, so nothing there is fetched."
        except FetchError as exc:  # unreachable: nothing there can be fetched, for the same reason
            return None, str(exc)
        return Protego.parse(page.text), ""  # RFC 9309: wildcards, "$", the longest matching rule wins

    def robots_refusal(self, url) -> str:
        return self._robots_for(url)[1]

    def allowed_by_robots(self, url: str) -> bool:
        parser, refusal = self._robots_for(url)
        if refusal:
            raise FetchError(refusal)
        return parser is None or parser.can_fetch(url, ROBOTS_AGENT)

    def sitemaps_from_robots(self, url) -> list[str]:
        parser, _ = self._robots_for(url)
        return list(parser.sitemaps) if parser else []

    def _crawl_delay(self, url) -> float:
        parts = urlsplit(url)
        parser, _ = self.robots.get(f"{parts.scheme}://{parts.netloc}", (None, ""))
        delay = parser.crawl_delay(ROBOTS_AGENT) if parser else None
        return min(float(delay or 0), settings.TWIN_CRAWL_MAX_BACKOFF_SECONDS)

    # -- outcomes -------------------------------------------------------------------
    def store(self, item: Item) -> str:
        """Upsert one item; returns created, updated, unchanged or skipped."""
        self.seen.add(item.url)
        outcome, document_id, reason = do_upsert_document(self.source, item)
        self.counts[outcome] += 1
        if outcome in ("created", "updated"):
            self.changed.append(document_id)
        if reason:
            self._remember(item.url, reason, failed=False)
        self._save()
        return outcome

    def unchanged(self, url: str, page=None):
        """The server said 304, or the bytes hash as before: nothing to extract or process."""
        self.seen.add(url)
        if page is not None and not page.not_modified and (page.etag or page.last_modified):
            Document.objects.filter(source=self.source, url=url).update(
                etag=page.etag, last_modified=page.last_modified
            )
        self.counts["unchanged"] += 1
        self._save(soon=True)

    def fail(self, url: str, reason: str):
        self.seen.add(url)  # a failing page is not gone: its stored document stays as it was
        self.counts["failed"] += 1
        self._remember(url, reason, failed=True)
        self._save()

    def skip(self, url: str, reason: str):
        self.counts["skipped"] += 1
        self._remember(url, reason, failed=False)
        self._save(soon=True)

    def gone(self, url: str):
        self.seen.add(url)
        if do_mark_gone(self.source, [url]):
            self.counts["gone"] += 1
        self._save()

    def _remember(self, url, reason, *, failed: bool):
        if len(self.failures) < MAX_FAILURES_KEPT:
            self.failures.append({"url": url, "reason": reason, "failed": failed})

    def unseen_urls(self) -> list[str]:
        """Stored documents this run has not met yet (still present ones first)."""
        return [url for url, doc in self.known.items() if url not in self.seen and doc.gone_at is None]

    def mark_unseen_gone(self):
        """For connectors whose listing is complete (an archive, a repository)."""
        urls = self.unseen_urls()
        self.counts["gone"] += do_mark_gone(self.source, urls)
        self.seen.update(urls)

    # -- progress and stopping -----------------------------------------------------------
    def progress(self, percent: float, message: str):
        """Show what the sync does; also where connectors that work without fetching (a
        cloned repository, an archive) stop for a cancel."""
        self.run.message = message[:300]
        self.run.progress = max(0, min(99, int(percent)))
        self._save(soon=True)
        self.check_stopped()

    def check_stopped(self):
        """Stop at the run's deadline, or when it was cancelled: a message on the run's
        channel (CancelWatch), or a run row that was no longer "running" when last written."""
        if time.monotonic() > self.deadline:
            raise RunStopped(
                f"The sync stopped at its limit of {settings.TWIN_CRAWL_RUN_SECONDS} seconds; "
                "what it fetched is kept and the next sync goes on from there."
            )
        if self._row_stopped or self.cancel.is_cancelled():
            raise RunStopped("Cancelled")

    def counters(self) -> dict:
        return {
            "documents_created": self.counts["created"],
            "documents_updated": self.counts["updated"],
            "documents_unchanged": self.counts["unchanged"],
            "documents_failed": self.counts["failed"],
            "documents_skipped": self.counts["skipped"],
            "documents_gone": self.counts["gone"],
            "requests_made": self.requests,
            "failures": self.failures,
        }

    def _save(self, *, soon: bool = False) -> bool:
        """Write the counts to the run row the user watches: at once for work done (a stored
        or failed item), within a second for progress steps and the cheap outcomes
        (unchanged, skipped), so an unchanged sync of a big site is not a stream of UPDATEs.
        Returns whether it wrote."""
        now = time.monotonic()
        if soon and now - self._saved_at < SAVE_EVERY_SECONDS:
            return False
        self._saved_at = now
        fields = self.counters()
        written = CrawlRun.objects.filter(pk=self.run.pk, status=JobStatus.RUNNING).update(
            progress=self.run.progress, message=self.run.message, heartbeat_at=timezone.now(), **fields
        )
        self._row_stopped = not written
        return True

    def close(self):
        try:
            self.pacer.close()
        finally:
            self.cancel.close()
            self.http.close()

    def send_changed(self):
        """Changed documents re-enter the feature pipeline (one batch per run)."""
        if self.changed:
            do_send_changed(self.source.owner_id, self.changed)
            self.changed = []

    def summary(self) -> str:
        c = self.counts
        text = f"{c['created']} new, {c['updated']} updated, {c['unchanged']} unchanged"
        for key in ("failed", "skipped", "gone"):
            if c[key]:
                text += f", {c[key]} {key}"
        return text
