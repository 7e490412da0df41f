"""One GET with every limit applied: redirects checked hop by hop, size counted on the
wire and decoded, the deadline, the content type; errors worded for the user."""

import hashlib
import ssl
import time
import zlib
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import urllib3
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from urllib3.exceptions import NewConnectionError

from .addresses import check_url
from .connections import FetchSession, Watchdog
from .errors import FetchError, HTTPStatusError

TEXT_CONTENT_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "text/markdown")
USER_AGENT = "TwinsiteBot/1.0 (+self-hosted LLM twin; fetches only what its user linked; obeys robots.txt)"
ROBOTS_AGENT = "TwinsiteBot"


@dataclass
class FetchedPage:
    url: str
    content_type: str
    body: bytes = b""
    charset: str = ""
    status: int = 200
    etag: str = ""
    last_modified: str = ""
    headers: dict = field(default_factory=dict)

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def text(self) -> str:
        return decode_body(self.body, self.charset)

    @property
    def body_hash(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


REQUEST_HEADERS = {
    "User-Agent": USER_AGENT,
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate",  # the two we decode (and count) ourselves
}
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
CREDENTIAL_HEADERS = {"authorization", "proxy-authorization", "cookie"}  # for the origin they were meant for


def _origin(url: str) -> tuple:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").rstrip("."), parts.port or (443 if parts.scheme == "https" else 80)


def _without_credentials(headers: dict) -> dict:
    return {name: value for name, value in headers.items() if name.lower() not in CREDENTIAL_HEADERS}


def _describe(exc: Exception, url: str, watchdog: Watchdog) -> str:
    host = urlsplit(url).hostname
    if watchdog.fired or time.monotonic() >= watchdog.deadline:  # its thread may not have woken yet
        return f"{host} took longer than the {settings.TWIN_FETCH_DEADLINE} second limit for one download."
    if isinstance(exc, NewConnectionError):  # a ConnectTimeoutError too, for urllib3's old callers
        return f"Could not connect to {host}: the host is unreachable or refused the connection."
    if isinstance(exc, urllib3.exceptions.TimeoutError | TimeoutError):
        return f"{host} did not answer within {settings.TWIN_FETCH_TIMEOUT} seconds."
    if isinstance(exc, urllib3.exceptions.SSLError | ssl.SSLError):
        return f"{host} has an invalid TLS certificate."
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return f"Could not connect to {host}: the host is unreachable or refused the connection."
    return f"Fetching {url} failed: {exc.__class__.__name__}."


def decode_body(body: bytes, charset: str = "") -> str:
    """The declared charset; without one, UTF-8 when the bytes are UTF-8 (HTTP's old
    default is Latin-1 for any text/* type, and nginx serves static pages without a charset)."""
    if charset:
        try:
            return body.decode(charset, "replace")
        except LookupError:
            pass  # an unknown charset name: guess as if none was given
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("cp1252", "replace")


def _charset(content_type_header: str) -> str:
    for part in content_type_header.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset":
            return value.strip().strip("\"'")
    return ""


def _retry_after(response) -> float | None:
    """Seconds to wait, from Retry-After in either form (RFC 9110: seconds, or an HTTP
    date); None when absent or unreadable. A crawl caps it (TWIN_CRAWL_MAX_BACKOFF_SECONDS)."""
    value = response.headers.get("Retry-After", "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": a date in UTC
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _finish_small(response, limit: int = 64 * 1024):
    """Read the rest of an answer whose body we do not want (a 304, an error page, a
    redirect): once it is read to its end, urllib3 puts the connection back in the pool
    for the next request. A longer body is left unread and its connection is closed."""
    try:
        read = 0
        while read <= limit and (block := response.read1(16 * 1024, decode_content=False)):
            read += len(block)
    except (urllib3.exceptions.HTTPError, OSError):
        pass  # the connection is closed with the response


def _read_body(response, max_bytes: int, watchdog: Watchdog) -> bytes:
    """Read the raw bytes (counted) and decode them ourselves (counted again)."""
    limit_error = FetchError(f"The page is larger than the {filesizeformat(max_bytes)} limit.")
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        decoder = zlib.decompressobj()
    elif encoding in ("", "identity"):
        decoder = None
    else:
        raise FetchError(f"The server sent an encoding we do not read ({encoding}).")
    raw_count, body = 0, bytearray()
    # read1 returns what one read brought: a body trickling in byte by byte cannot hold
    # a 64 KB read open; the watchdog ends the fetch at its deadline in any case.
    while block := response.read1(64 * 1024, decode_content=False):
        raw_count += len(block)
        if raw_count > max_bytes:
            raise limit_error
        if decoder is None:
            body.extend(block)
        else:
            try:
                body.extend(decoder.decompress(block, max_bytes + 1 - len(body)))
            except zlib.error:
                raise FetchError("The server sent a corrupt compressed body.") from None
            if decoder.unconsumed_tail:
                raise limit_error
        if len(body) > max_bytes:
            raise limit_error
        if watchdog.fired:
            break
    if watchdog.fired:  # a shut socket reads as the end of the body: never take it for the whole
        raise FetchError(f"The page took longer than the {settings.TWIN_FETCH_DEADLINE} second limit for one download.")
    return bytes(body)


def fetch(
    url: str,
    *,
    accept: tuple[str, ...] | None = TEXT_CONTENT_TYPES,
    headers: dict | None = None,
    max_bytes: int | None = None,
    deadline: float | None = None,
    session: FetchSession | None = None,
) -> FetchedPage:
    """GET a URL with every limit applied; raise FetchError with a readable reason.

    `accept`: content types taken (None: any). `headers`: e.g. If-None-Match, so a 304
    comes back as a page with `not_modified`. `deadline`: a time.monotonic() the whole
    fetch, redirects included, must end by (at most TWIN_FETCH_DEADLINE from now).
    `session`: connections to reuse (a crawl run's); without one, the fetch opens its own.
    """
    url = check_url(url)
    max_bytes = max_bytes or settings.TWIN_MAX_DOWNLOAD_BYTES
    own_deadline = time.monotonic() + settings.TWIN_FETCH_DEADLINE
    deadline = min(deadline, own_deadline) if deadline else own_deadline
    request_headers = {**REQUEST_HEADERS, **(headers or {})}
    with (
        nullcontext(session) if session else FetchSession() as session,
        Watchdog(deadline, session.sockets) as watchdog,
    ):
        for _ in range(settings.TWIN_FETCH_MAX_REDIRECTS + 1):
            try:
                response = session.http.urlopen(
                    "GET",
                    url,
                    headers=request_headers,
                    redirect=False,
                    preload_content=False,
                    timeout=urllib3.Timeout(connect=settings.TWIN_FETCH_TIMEOUT, read=settings.TWIN_FETCH_TIMEOUT),
                )
            except (urllib3.exceptions.HTTPError, OSError) as exc:  # a FetchError from the socket guard passes
                raise FetchError(_describe(exc, url, watchdog)) from None
            with response:
                is_redirect = response.status in REDIRECT_STATUSES and "Location" in response.headers
                if is_redirect or response.status == 304 or response.status >= 400:
                    _finish_small(response)
                if is_redirect:
                    target = check_url(urljoin(url, response.headers.get("Location", "")))
                    if _origin(target) != _origin(url):  # a token for one host is not for the host it sends us to
                        request_headers = _without_credentials(request_headers)
                    url = target
                    continue
                page = FetchedPage(
                    url=url,
                    content_type=response.headers.get("Content-Type", "").split(";")[0].strip().lower(),
                    charset=_charset(response.headers.get("Content-Type", "")),
                    status=response.status,
                    etag=response.headers.get("ETag", "")[:300],
                    last_modified=response.headers.get("Last-Modified", "")[:100],
                    headers=dict(response.headers),
                )
                if response.status == 304:
                    return page
                if response.status >= 400:
                    raise HTTPStatusError(
                        f"The page answered with HTTP {response.status} {response.reason}.",
                        response.status,
                        _retry_after(response),
                    )
                if accept is not None and page.content_type not in accept:
                    raise FetchError(
                        f"That address is not {'an HTML page' if 'text/html' in accept else ' or '.join(accept)} "
                        f"(it is {page.content_type or 'of unknown type'})."
                    )
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise FetchError(f"The page is larger than the {filesizeformat(max_bytes)} limit.")
                try:
                    page.body = _read_body(response, max_bytes, watchdog)
                except (urllib3.exceptions.HTTPError, OSError) as exc:
                    raise FetchError(_describe(exc, url, watchdog)) from None
                return page
        raise FetchError(f"Too many redirects (more than {settings.TWIN_FETCH_MAX_REDIRECTS}).")
