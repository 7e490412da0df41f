"""Fetching user-given URLs without letting them reach inside our network (SSRF).

Two layers:
- `check_url` resolves the host and refuses loopback, private, link-local, reserved
  and multicast addresses (cloud metadata lives at 169.254.169.254), so a form can
  say "refused" at once.
- `fetch` checks the address each socket actually connected to, on every redirect
  hop, so DNS rebinding between the check and the connection gains nothing. It also
  caps the size, the time and the number of redirects, ignores proxy variables, and
  accepts only text content types.

Hosts named in TWIN_CRAWL_ALLOWED_HOSTS skip the address check (tests serve pages
on loopback; an intranet blog may be listed explicitly).
"""

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

TEXT_CONTENT_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "text/markdown")
USER_AGENT = "TwinsiteBot/1.0 (+self-hosted LLM twin; fetches pages its user linked)"


class FetchError(Exception):
    """A refusal or failure, worded for the user who gave the URL."""


@dataclass
class FetchedPage:
    url: str
    content_type: str
    text: str


def _host_is_allowed(host: str) -> bool:
    return host.lower().rstrip(".") in {h.lower() for h in settings.TWIN_CRAWL_ALLOWED_HOSTS}


def _address_refusal(address: str) -> str | None:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if ip.is_private:
        return "a private network address"
    if ip.is_multicast or ip.is_reserved or ip.is_unspecified or not ip.is_global:
        return "a reserved address"
    return None


def check_url(url: str) -> str:
    """Validate scheme and host of a user-given URL; return it normalised or raise FetchError."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise FetchError("Only http:// and https:// addresses can be crawled.")
    if not parts.hostname:
        raise FetchError("That address has no host name.")
    if parts.username or parts.password:
        raise FetchError("Addresses with a user name or password are not accepted.")
    if not _host_is_allowed(parts.hostname):
        try:
            infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError):
            raise FetchError(f"The host {parts.hostname} could not be found.") from None
        for info in infos:
            refusal = _address_refusal(info[4][0])
            if refusal:
                raise FetchError(f"Refused: {parts.hostname} resolves to {refusal}.")
    return parts.geturl()


def _guard_socket(conn, sock):
    if not _host_is_allowed(conn.host):
        refusal = _address_refusal(sock.getpeername()[0])
        if refusal:
            sock.close()
            raise FetchError(f"Refused: {conn.host} resolves to {refusal}.")
    return sock


class _GuardedHTTPConnection(HTTPConnection):
    def _new_conn(self):
        return _guard_socket(self, super()._new_conn())


class _GuardedHTTPSConnection(HTTPSConnection):
    def _new_conn(self):
        return _guard_socket(self, super()._new_conn())


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # a proxy from the environment would hide the real peer address
    session.headers["User-Agent"] = USER_AGENT
    adapter = _GuardedAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _describe(exc: requests.RequestException | urllib3.exceptions.HTTPError, url: str) -> str:
    host = urlsplit(url).hostname
    if isinstance(exc, requests.Timeout | urllib3.exceptions.TimeoutError):
        return f"{host} did not answer within {settings.TWIN_FETCH_TIMEOUT} seconds."
    if isinstance(exc, requests.exceptions.SSLError):
        return f"{host} has an invalid TLS certificate."
    if isinstance(exc, requests.ConnectionError):
        return f"Could not connect to {host}: the host is unreachable or refused the connection."
    return f"Fetching {url} failed: {exc.__class__.__name__}."


def _decode(body: bytes, response: requests.Response) -> str:
    """The declared charset; without one, UTF-8 when the bytes are UTF-8 (requests would
    assume Latin-1 for any text/* type, and nginx serves static pages without a charset)."""
    if "charset=" in response.headers.get("Content-Type", "").lower():
        try:
            return body.decode(response.encoding, "replace")
        except LookupError:
            pass  # an unknown charset name: guess as if none was given
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("cp1252", "replace")


def fetch(url: str) -> FetchedPage:
    """GET a page with every limit applied; raise FetchError with a readable reason."""
    url = check_url(url)
    max_bytes = settings.TWIN_MAX_DOWNLOAD_BYTES
    deadline = time.monotonic() + settings.TWIN_FETCH_TIMEOUT * 2
    with _session() as session:
        for _ in range(settings.TWIN_FETCH_MAX_REDIRECTS + 1):
            try:
                response = session.get(url, stream=True, allow_redirects=False, timeout=settings.TWIN_FETCH_TIMEOUT)
            except requests.RequestException as exc:  # a FetchError from the socket guard passes through
                raise FetchError(_describe(exc, url)) from None
            with response:
                if response.is_redirect:
                    url = check_url(urljoin(url, response.headers.get("Location", "")))
                    continue
                if response.status_code >= 400:
                    raise FetchError(f"The page answered with HTTP {response.status_code} {response.reason}.")
                content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if content_type not in TEXT_CONTENT_TYPES:
                    raise FetchError(f"That address is not an HTML page (it is {content_type or 'of unknown type'}).")
                declared = int(response.headers.get("Content-Length") or 0)
                if declared > max_bytes:
                    raise FetchError(f"The page is larger than the {filesizeformat(max_bytes)} limit.")
                body = bytearray()
                try:
                    # read1 returns what one read brought: a body trickling in byte by byte
                    # cannot hold a 64 KB read (and the deadline check) open for hours.
                    while block := response.raw.read1(64 * 1024, decode_content=True):
                        body.extend(block)
                        if len(body) > max_bytes:
                            raise FetchError(f"The page is larger than the {filesizeformat(max_bytes)} limit.")
                        if time.monotonic() > deadline:
                            raise FetchError("The page took too long to download.")
                except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
                    raise FetchError(_describe(exc, url)) from None
                return FetchedPage(url=url, content_type=content_type, text=_decode(bytes(body), response))
        raise FetchError(f"Too many redirects (more than {settings.TWIN_FETCH_MAX_REDIRECTS}).")
