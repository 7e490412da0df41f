"""Fetching user-given URLs without letting them reach inside our network (SSRF).

Layers, each enough on its own for the case it covers:
- `check_url` (no network, safe in a web thread): scheme, user info, port (80, 443 and
  TWIN_CRAWL_ALLOWED_PORTS; a port past 65535 is refused in words, not a 500) and host
  names that are IP literals, legacy numeric forms ("2130706433", "0x7f.1") included.
- At connect time the host is resolved with a timeout (TWIN_DNS_TIMEOUT) in a helper
  thread, every address is vetted (loopback, private, link-local, reserved, multicast,
  and IPv4 hidden inside IPv6: mapped, compatible, 6to4, Teredo, NAT64), and the socket
  connects to the vetted address itself: no second lookup can rebind the name. TLS
  still verifies the certificate against the host name.
- The address each socket actually reached is checked again (belt and braces).
- Each fetch has a hard wall-clock deadline: a watchdog shuts its sockets when it
  passes, so a server that drips its headers a byte at a time cannot hold a worker.
- A crawl run keeps its connections open between requests (`FetchSession`, HTTP
  keep-alive): a kept socket is one `_connect_vetted` opened, still bound to the
  address that was vetted, so reuse skips no check; the watchdog of every fetch
  watches all of the session's sockets, kept ones included.
- Size is counted on the raw bytes from the wire and on the decoded bytes (gzip bombs),
  redirects are capped and re-checked hop by hop, proxy variables are ignored.

Hosts named in TWIN_CRAWL_ALLOWED_HOSTS skip the address and port checks (tests serve
pages on loopback; an intranet blog may be listed explicitly).
"""

import hashlib
import heapq
import ipaddress
import itertools
import os
import socket
import ssl
import threading
import time
import weakref
import zlib
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import nullcontext
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import certifi
import urllib3
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection as urllib3_connection

TEXT_CONTENT_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "text/markdown")
USER_AGENT = "TwinsiteBot/1.0 (+self-hosted LLM twin; fetches only what its user linked; obeys robots.txt)"
ROBOTS_AGENT = "TwinsiteBot"
STANDARD_PORTS = (80, 443)
NAT64_NETWORKS = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class FetchError(Exception):
    """A refusal or failure, worded for the user who gave the URL."""


class HTTPStatusError(FetchError):
    """The server answered with an error status; crawls decide what it means (gone, back off)."""

    def __init__(self, message, status: int, retry_after: float | None = None):
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


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


def _host_is_allowed(host: str) -> bool:
    return host.lower().strip("[]").rstrip(".") in {h.lower() for h in settings.TWIN_CRAWL_ALLOWED_HOSTS}


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, in any of the forms routers translate."""
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if any(ip in network for network in NAT64_NETWORKS):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(ip))
    return None


def address_refusal(address: str) -> str | None:
    """Why a crawler may not connect to this address, or None when it may."""
    ip = ipaddress.ip_address(address.split("%")[0])
    candidates = [ip]
    if isinstance(ip, ipaddress.IPv6Address) and (inner := embedded_ipv4(ip)):
        candidates.insert(0, inner)
    for candidate in candidates:
        if candidate.is_loopback:
            return "a loopback address"
        if candidate.is_link_local:
            return "a link-local address (cloud metadata lives there)"
        if candidate.is_unspecified:
            return "a reserved address"
        if candidate.is_private:
            return "a private network address"
        if candidate.is_multicast or candidate.is_reserved or candidate.is_unspecified or not candidate.is_global:
            return "a reserved address"
    return None


def _literal_address(host: str) -> str | None:
    """The address a host name spells itself, in any form a resolver would accept."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    if host.replace(".", "").replace("x", "").replace("X", "").isalnum() and host[:1].isdigit():
        try:  # legacy forms getaddrinfo accepts: 2130706433, 0x7f.1, 0177.0.0.1, 127.1
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _port_of(parts) -> int:
    try:
        port = parts.port
    except ValueError:
        raise FetchError("That address has an invalid port: ports run from 1 to 65535.") from None
    if port == 0:
        raise FetchError("That address has an invalid port: ports run from 1 to 65535.")
    return port or (443 if parts.scheme == "https" else 80)


def check_url(url: str) -> str:
    """Validate a user-given URL without touching the network; return it normalised or raise FetchError.

    Names are resolved (with a timeout) only when a crawl connects, never in a web request.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise FetchError("Only http:// and https:// addresses can be crawled.")
    if not parts.hostname:
        raise FetchError("That address has no host name.")
    if parts.username or parts.password:
        raise FetchError("Addresses with a user name or password are not accepted.")
    port = _port_of(parts)
    if not _host_is_allowed(parts.hostname):
        allowed_ports = (*STANDARD_PORTS, *settings.TWIN_CRAWL_ALLOWED_PORTS)
        if port not in allowed_ports:
            raise FetchError(f"Refused: port {port} (only {', '.join(map(str, allowed_ports))} can be crawled).")
        literal = _literal_address(parts.hostname)
        if literal and (refusal := address_refusal(literal)):
            raise FetchError(f"Refused: {parts.hostname} is {refusal}.")
    return parts.geturl()


_resolver_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="twinsite-dns")


def resolve(host: str, port: int) -> list[tuple]:
    """getaddrinfo with a deadline (it has none of its own), as (family, sockaddr) pairs."""
    future = _resolver_pool.submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        infos = future.result(timeout=settings.TWIN_DNS_TIMEOUT)
    except FutureTimeout:
        raise FetchError(f"Looking up {host} took longer than {settings.TWIN_DNS_TIMEOUT} seconds.") from None
    except (socket.gaierror, UnicodeError):
        raise FetchError(f"The host {host} could not be found.") from None
    return [(info[0], info[4]) for info in infos]


def vetted_addresses(host: str, port: int) -> list[tuple]:
    """Resolve and refuse the lot if any address is internal (a mixed answer is a trick)."""
    addresses = resolve(host, port)
    if not _host_is_allowed(host):
        for _, sockaddr in addresses:
            if refusal := address_refusal(sockaddr[0]):
                raise FetchError(f"Refused: {host} resolves to {refusal}.")
    return addresses


class _Deadlines:
    """One thread fires every fetch's watchdog when its deadline passes.

    A thread per fetch (threading.Timer) costs more than a whole kept-alive 304 on a
    busy machine. The thread sleeps until the earliest deadline; a finished fetch is
    dropped from the heap when its deadline comes up, so adding one rarely wakes it.
    A forked worker starts its own thread (threads do not survive fork).
    """

    def __init__(self):
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self):
        self._pending, self._wake, self._thread = [], threading.Condition(), None
        self._numbers = itertools.count()

    def add(self, watchdog):
        with self._wake:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="twinsite-fetch-deadlines", daemon=True)
                self._thread.start()
            heapq.heappush(self._pending, (watchdog.deadline, next(self._numbers), watchdog))
            if self._pending[0][2] is watchdog:  # the earliest deadline now: the thread must wake sooner
                self._wake.notify()

    def _run(self):
        pending, wake = self._pending, self._wake
        while True:
            with wake:
                while pending and pending[0][2].finished:
                    heapq.heappop(pending)
                wait = pending[0][0] - time.monotonic() if pending else None
                if wait is None or wait > 0:
                    wake.wait(wait)
                    continue
                watchdog = heapq.heappop(pending)[2]
            watchdog.fire()


_deadlines = _Deadlines()


class _Watchdog:
    """Shuts every socket of one fetch when its wall-clock deadline passes: those it opens,
    and the kept-alive ones of its session (`sockets`), which it may be reusing."""

    _current = threading.local()

    def __init__(self, deadline: float, sockets: weakref.WeakSet):
        self.deadline, self.sockets = deadline, sockets
        self.fired = self.finished = False

    @classmethod
    def active(cls):
        return getattr(cls._current, "watchdog", None)

    def watch(self, sock):
        self.sockets.add(sock)
        if self.fired:
            self.fire()

    def fire(self):
        if self.finished:
            return
        self.fired = True
        for sock in list(self.sockets):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self):
        self._current.watchdog = self
        _deadlines.add(self)
        return self

    def __exit__(self, *exc):
        self.finished = True
        self._current.watchdog = None


def _connect_vetted(conn) -> socket.socket:
    """urllib3's _new_conn, connecting to an address that was vetted, never to a fresh lookup."""
    host = conn._dns_host
    if not _host_is_allowed(host) and conn.port not in (*STANDARD_PORTS, *settings.TWIN_CRAWL_ALLOWED_PORTS):
        raise FetchError(f"Refused: port {conn.port}.")
    error = None
    for _family, sockaddr in vetted_addresses(host, conn.port):
        try:
            sock = urllib3_connection.create_connection(
                (sockaddr[0], conn.port), conn.timeout, source_address=conn.source_address
            )
        except TimeoutError as exc:
            error = ConnectTimeoutError(conn, f"Connection to {conn.host} timed out.")
            error.__cause__ = exc
        except OSError as exc:
            error = NewConnectionError(conn, f"Failed to establish a new connection: {exc}")
        else:
            peer = sock.getpeername()[0]
            if not _host_is_allowed(host) and (refusal := address_refusal(peer)):
                sock.close()
                raise FetchError(f"Refused: {conn.host} resolves to {refusal}.")
            if watchdog := _Watchdog.active():
                watchdog.watch(sock)
            return sock
    raise error or NewConnectionError(conn, "no address")


class _GuardedHTTPConnection(HTTPConnection):
    def _new_conn(self):
        return _connect_vetted(self)


class _GuardedHTTPSConnection(HTTPSConnection):
    def _new_conn(self):
        return _connect_vetted(self)


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedPoolManager(urllib3.PoolManager):
    """urllib3's pools, with connections that go through _connect_vetted. No retries (a
    crawl decides), no redirects (each hop is checked), no proxy from the environment
    (it would hide the real peer address), certificates checked against certifi's CAs."""

    def __init__(self):
        super().__init__(num_pools=10, maxsize=1, retries=False, cert_reqs="CERT_REQUIRED", ca_certs=certifi.where())
        self.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


REQUEST_HEADERS = {
    "User-Agent": USER_AGENT,
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate",  # the two we decode (and count) ourselves
}
REDIRECT_STATUSES = (301, 302, 303, 307, 308)


class FetchSession:
    """The connections of a series of fetches (a crawl run), kept open between them.

    One TCP (and TLS) handshake per host instead of one per request. One fetch at a
    time: a crawl fetches sequentially. Close it when done (or use it as a context).
    """

    def __init__(self):
        self.http = _GuardedPoolManager()
        self.sockets = weakref.WeakSet()  # every socket it opened that is still alive

    def close(self):
        self.http.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _describe(exc: Exception, url: str, watchdog: _Watchdog) -> str:
    host = urlsplit(url).hostname
    if watchdog.fired:
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
    value = response.headers.get("Retry-After", "")
    return float(value) if value.strip().isdigit() else None


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


def _read_body(response, max_bytes: int, watchdog: _Watchdog) -> bytes:
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
    with (
        nullcontext(session) if session else FetchSession() as session,
        _Watchdog(deadline, session.sockets) as watchdog,
    ):
        for _ in range(settings.TWIN_FETCH_MAX_REDIRECTS + 1):
            try:
                response = session.http.urlopen(
                    "GET",
                    url,
                    headers={**REQUEST_HEADERS, **(headers or {})},
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
                    url = check_url(urljoin(url, response.headers.get("Location", "")))
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
