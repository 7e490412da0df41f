"""SSRF, table-driven: every case through fetch() and through a whole crawl task.

Names are answered by a fake resolver (getaddrinfo) so that "a public name that
resolves inside" can be tested without DNS; IP literals, odd numeric forms and IPv6
forms that carry an IPv4 address are resolved by nothing at all.
"""

import socket
import time

import pytest
from urllib3.util import connection

from ingestion.actions import do_sync_source
from ingestion.models import Document, Source
from ingestion.safe_http import FetchError, fetch

REAL_CREATE_CONNECTION = connection.create_connection
FAKE_DNS = {
    "localhost": ["127.0.0.1"],
    "internal.test": ["192.168.0.10"],
    "metadata.test": ["169.254.169.254"],
    "mixed.test": ["93.184.216.34", "10.0.0.2"],
    "v6internal.test": ["fd12::1"],
    "sixtofour.test": ["2002:a00:1::"],
    "cgnat.test": ["100.64.0.1"],
}

CASES = [
    ("http://127.0.0.1/", "127.0.0.1 is a loopback address"),
    ("http://127.8.9.10/admin", "is a loopback address"),
    ("http://[::1]/", "is a loopback address"),
    ("http://localhost/", "localhost resolves to a loopback address"),
    ("http://10.0.0.1/", "is a private network address"),
    ("http://172.16.5.4/", "is a private network address"),
    ("http://192.168.1.1/router", "is a private network address"),
    ("http://[fd00::1]/", "is a private network address"),
    ("http://169.254.169.254/latest/meta-data/", "is a link-local address"),
    ("http://[fe80::1]/", "is a link-local address"),
    ("http://[::ffff:127.0.0.1]/", "is a loopback address"),
    ("http://[::ffff:a9fe:a9fe]/", "is a link-local address"),  # mapped, written in hex
    ("http://[2002:7f00:1::]/", "is a loopback address"),  # 6to4 of 127.0.0.1
    ("http://[2002:a9fe:a9fe::]/", "is a link-local address"),  # 6to4 of 169.254.169.254
    ("http://[64:ff9b::a00:1]/", "is a private network address"),  # NAT64 of 10.0.0.1
    ("http://[::127.0.0.1]/", "is a loopback address"),  # IPv4-compatible
    ("http://[2001::80ff:fffe]/", "is a loopback address"),  # Teredo, client 127.0.0.1
    ("http://0.0.0.0/", "is a reserved address"),
    ("http://224.0.0.1/", "is a reserved address"),
    ("http://2130706433/", "is a loopback address"),  # 127.0.0.1 as one decimal number
    ("http://0x7f.1/", "is a loopback address"),
    ("http://0177.0.0.1/", "is a loopback address"),
    ("http://127.1/", "is a loopback address"),
    ("http://internal.test/", "internal.test resolves to a private network address"),
    ("http://metadata.test/", "metadata.test resolves to a link-local address"),
    ("http://mixed.test/", "mixed.test resolves to a private network address"),
    ("http://v6internal.test/", "v6internal.test resolves to a private network address"),
    ("http://sixtofour.test/", "sixtofour.test resolves to a private network address"),
    ("http://cgnat.test/", "cgnat.test resolves to a reserved address"),
    ("http://example.com:22/", "Refused: port 22 (only 80, 443 can be crawled)."),
    ("http://example.com:6379/", "Refused: port 6379"),
    ("http://example.com:70000/", "That address has an invalid port: ports run from 1 to 65535."),
    ("file:///etc/passwd", "Only http:// and https:// addresses can be crawled."),
    ("gopher://example.com/", "Only http:// and https:// addresses can be crawled."),
    ("http://user:secret@example.com/", "Addresses with a user name or password are not accepted."),
    ("http://slow-dns.test/", "Looking up slow-dns.test took longer than 1 seconds."),
]


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch, settings):
    settings.TWIN_DNS_TIMEOUT = 1
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host == "slow-dns.test":
            time.sleep(1.5)
        if host in FAKE_DNS:
            return [
                (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in FAKE_DNS[host]
            ]
        if host.endswith(".test"):
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    def no_connection(*args, **kwargs):
        raise AssertionError(f"a connection was attempted: {args}")

    monkeypatch.setattr(connection, "create_connection", no_connection)


def test_the_table_has_at_least_25_cases():
    assert len(CASES) >= 25


@pytest.mark.parametrize(("url", "reason"), CASES, ids=[url for url, _ in CASES])
def test_fetch_refuses(url, reason):
    with pytest.raises(FetchError) as refused:
        fetch(url)
    assert reason in str(refused.value)


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "reason"), CASES, ids=[url for url, _ in CASES])
@pytest.mark.parametrize("kind", ["article", "blog"])
def test_a_crawl_task_refuses(owner, url, reason, kind):
    """A source stored before a rule existed (no form on the way) is refused by the crawl itself."""
    source = Source.objects.create(owner=owner, kind=kind, url=url, name=url)

    run = do_sync_source(source)

    run.refresh_from_db()
    assert run.status == "failed" and reason in run.error
    assert run.requests_made <= 1 and not Document.objects.exists()


@pytest.mark.django_db
def test_a_redirect_into_the_network_is_refused_on_that_hop(owner, site, monkeypatch):
    monkeypatch.setattr(connection, "create_connection", REAL_CREATE_CONNECTION)  # the test site is reachable
    site.add("/robots.txt", "", content_type="text/plain")
    url = site.add("/go", "", status=302, Location="http://[2002:a9fe:a9fe::]/latest/meta-data/")
    source = Source.objects.create(owner=owner, kind="article", url=url, name=url)

    run = do_sync_source(source)

    run.refresh_from_db()
    assert run.status == "failed" and "is a link-local address" in run.error
