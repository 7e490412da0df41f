"""SSRF-safe fetching: what check_url refuses, and every limit fetch() applies."""

import gzip
import re
import socket
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from ingestion.safe_http import FetchError, FetchSession, HTTPStatusError, check_url, fetch
from tests.ingestion.conftest import closed_port, never_answer, send_chunked, send_until_close, trickle

TOO_LARGE = re.escape("The page is larger than the 64.0\xa0KB limit.")  # TWIN_MAX_DOWNLOAD_BYTES = 64 KiB
PAGE = "<html><head><title>Hello</title></head><body><p>Hello from the test site.</p></body></html>"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://127.8.9.10/admin", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://10.0.0.1/", "private"),
        ("http://172.16.5.4/", "private"),
        ("http://192.168.1.1/router", "private"),
        ("http://[fd00::1]/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://169.254.1.1/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[::ffff:169.254.169.254]/", "link-local"),
        ("http://[::ffff:10.0.0.1]/", "private"),
        ("http://0.0.0.0/", "Refused"),
        ("http://224.0.0.1/", "Refused"),
    ],
)
def test_check_url_refuses_internal_addresses(url, reason):
    with pytest.raises(FetchError, match=reason):
        check_url(url)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/file.txt", "gopher://example.com:70/"])
def test_check_url_refuses_schemes_other_than_http(url):
    with pytest.raises(FetchError, match="Only http:// and https://"):
        check_url(url)


@pytest.mark.parametrize("url", ["http://user:secret@example.com/", "https://token@example.com/post"])
def test_check_url_refuses_credentials_in_the_address(url):
    with pytest.raises(FetchError, match="user name or password"):
        check_url(url)


def test_an_unknown_host_could_not_be_found_when_fetching():
    with pytest.raises(FetchError, match=r"The host no-such-blog\.invalid could not be found"):
        fetch("https://no-such-blog.invalid/post")


def test_check_url_does_no_dns_lookup(monkeypatch):
    def no_dns(*args, **kwargs):
        raise AssertionError("check_url looked a name up")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    assert check_url("https://no-such-blog.invalid/post") == "https://no-such-blog.invalid/post"


def test_check_url_refuses_an_address_without_a_host():
    with pytest.raises(FetchError, match="no host name"):
        check_url("http:///just-a-path")


def test_check_url_accepts_a_public_address():
    assert check_url("  http://93.184.216.34/post?id=1  ") == "http://93.184.216.34/post?id=1"


def test_a_public_name_that_resolves_to_an_internal_address_is_refused_before_connecting(monkeypatch):
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda *args, **kwargs: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", 80))]
    )
    with pytest.raises(FetchError, match=re.escape("blog.example.com resolves to a private network address")):
        fetch("http://blog.example.com/")


def test_loopback_is_refused_unless_the_host_is_explicitly_allowed(settings):
    with pytest.raises(FetchError, match="loopback"):
        check_url("http://127.0.0.1/")
    with pytest.raises(FetchError, match="port 8000"):
        check_url("http://127.0.0.1:8000/")
    settings.TWIN_CRAWL_ALLOWED_HOSTS, settings.TWIN_CRAWL_ALLOWED_PORTS = ["127.0.0.1"], [8000]
    assert check_url("http://127.0.0.1:8000/") == "http://127.0.0.1:8000/"


def test_an_allowed_host_still_needs_an_allowed_port(settings):
    """Loopback on the allow-list (an intranet blog, the tests) must not open the app's own
    port, nor Redis's or PostgreSQL's, to a tenant's crawl."""
    settings.TWIN_CRAWL_ALLOWED_HOSTS, settings.TWIN_CRAWL_ALLOWED_PORTS = ["127.0.0.1"], []

    for port in (8000, 6379, 5432):
        with pytest.raises(FetchError, match=re.escape(f"Refused: port {port} (only 80, 443 can be crawled).")):
            check_url(f"http://127.0.0.1:{port}/")
    assert check_url("http://127.0.0.1/") == "http://127.0.0.1/"


def test_the_app_itself_on_an_allowed_host_is_not_fetched_on_its_port(local_site, monkeypatch, settings):
    """The crawl of a tenant reached the app's own port on allowed loopback; refused at the
    URL check, and again by the socket guard when that check is bypassed."""
    from ingestion.safe_http import fetching

    url = local_site.page("/admin/", "the app itself")
    port = local_site.server.server_port
    settings.TWIN_CRAWL_ALLOWED_PORTS = []

    with pytest.raises(FetchError, match=re.escape(f"Refused: port {port}")):
        fetch(url)
    monkeypatch.setattr(fetching, "check_url", lambda url: url)
    with pytest.raises(FetchError, match=re.escape(f"Refused: port {port}")):
        fetch(url)


def test_a_port_from_the_setting_is_allowed(settings):
    settings.TWIN_CRAWL_ALLOWED_PORTS = [8080]

    assert check_url("http://example.com:8080/") == "http://example.com:8080/"
    with pytest.raises(FetchError, match=re.escape("Refused: port 8081 (only 80, 443, 8080 can be crawled).")):
        check_url("http://example.com:8081/")


def test_fetch_returns_the_page_from_an_allowed_host(local_site):
    url = local_site.page("/post", PAGE)

    page = fetch(url)

    assert page.url == url and page.content_type == "text/html" and "Hello from the test site." in page.text


def test_fetch_follows_a_redirect_within_the_allowed_host(local_site):
    target = local_site.page("/new", PAGE)
    start = local_site.page("/old", "", status=301, Location="/new")

    assert fetch(start).url == target


def test_a_redirect_to_another_host_drops_the_credentials(site, allow_loopback, settings):
    """A GitHub token sent to api.github.com must not follow a redirect to whatever host the
    answer names; a redirect within the host keeps it."""
    from tests.ingestion.sites import Site

    other = Site()
    try:
        allow_loopback(other.server.server_port)
        settings.TWIN_CRAWL_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
        elsewhere = other.add("/landing", PAGE).replace("127.0.0.1", "localhost")
        site.add("/start", "", status=302, Location="/moved")
        site.add("/moved", "", status=302, Location=elsewhere)

        page = fetch(site.base + "/start", headers={"Authorization": "token s3cret", "Cookie": "session=1"})
    finally:
        other.close()

    assert page.url == elsewhere
    assert [(path, headers.get("Authorization")) for path, _, headers in site.log] == [
        ("/start", "token s3cret"),
        ("/moved", "token s3cret"),
    ]
    [(path, _, headers)] = other.log
    assert path == "/landing" and "Authorization" not in headers and "Cookie" not in headers


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://10.0.0.1/", "10.0.0.1 is a private network address"),
        ("http://localhost/", "localhost resolves to a loopback address"),
        ("http://example.com:25/", "Refused: port 25"),
        ("file:///etc/passwd", "Only http:// and https://"),
    ],
)
def test_a_redirect_to_a_refused_address_is_refused_on_that_hop(local_site, location, reason):
    url = local_site.page("/go", "", status=302, Location=location)

    with pytest.raises(FetchError, match=reason):
        fetch(url)


def test_too_many_redirects_are_refused(local_site, settings):
    settings.TWIN_FETCH_MAX_REDIRECTS = 3
    for hop in range(4):
        local_site.page(f"/hop{hop}", "", status=302, Location=f"/hop{hop + 1}")
    local_site.page("/hop4", PAGE)

    with pytest.raises(FetchError, match=r"Too many redirects \(more than 3\)"):
        fetch(local_site.base + "/hop0")


def test_redirects_up_to_the_limit_are_followed(local_site, settings):
    settings.TWIN_FETCH_MAX_REDIRECTS = 3
    for hop in range(3):
        local_site.page(f"/hop{hop}", "", status=302, Location=f"/hop{hop + 1}")
    local_site.page("/hop3", PAGE)

    assert fetch(local_site.base + "/hop0").url.endswith("/hop3")


def test_a_page_whose_content_length_is_over_the_limit_is_refused(local_site, settings):
    settings.TWIN_MAX_DOWNLOAD_BYTES = 64 * 1024
    url = local_site.page("/big", "<p>" + "x" * (65 * 1024) + "</p>")

    with pytest.raises(FetchError, match=TOO_LARGE):
        fetch(url)


def test_a_chunked_page_over_the_limit_is_refused_while_reading(raw_server, settings):
    settings.TWIN_MAX_DOWNLOAD_BYTES = 64 * 1024
    server = raw_server(send_chunked(10 * 1024 * 1024))

    with pytest.raises(FetchError, match=TOO_LARGE):
        fetch(server.url)


def test_a_page_without_content_length_over_the_limit_is_refused_while_reading(raw_server, settings):
    settings.TWIN_MAX_DOWNLOAD_BYTES = 64 * 1024
    server = raw_server(send_until_close(1024 * 1024))

    with pytest.raises(FetchError, match=TOO_LARGE):
        fetch(server.url)


def test_a_chunked_page_under_the_limit_is_read_whole(raw_server, settings):
    settings.TWIN_MAX_DOWNLOAD_BYTES = 64 * 1024
    server = raw_server(send_chunked(32_000))

    assert fetch(server.url).text.count("x") == 32_000


@pytest.mark.parametrize("content_type", ["application/pdf", "image/png", "application/octet-stream"])
def test_non_html_content_is_refused_with_its_type(local_site, content_type):
    url = local_site.page("/file", "%PDF-1.4 not really", content_type=content_type)

    with pytest.raises(FetchError, match=f"not an HTML page \\(it is {content_type}\\)"):
        fetch(url)


def test_a_page_without_a_content_type_is_refused(raw_server):
    server = raw_server(lambda conn, stopped: conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"))

    with pytest.raises(FetchError, match="of unknown type"):
        fetch(server.url)


@pytest.mark.parametrize(("status", "words"), [(404, "HTTP 404 Not Found"), (500, "HTTP 500 Internal Server Error")])
def test_an_http_error_status_is_reported(local_site, status, words):
    url = local_site.page("/broken", "oops", status=status)

    with pytest.raises(FetchError, match=words):
        fetch(url)


def http_date(seconds_from_now: int) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds_from_now), usegmt=True)


@pytest.mark.parametrize(
    ("retry_after", "low", "high"),
    [
        (lambda: "120", 120, 120),
        (lambda: http_date(120), 100, 121),
        (lambda: http_date(-3600), 0, 0),  # already past: now
        (lambda: "tomorrow-ish", None, None),
    ],
    ids=["seconds", "http-date", "past-date", "unreadable"],
)
def test_retry_after_is_read_in_seconds_and_as_an_http_date(local_site, retry_after, low, high):
    url = local_site.page("/busy", "busy", status=503, **{"Retry-After": retry_after()})

    with pytest.raises(HTTPStatusError) as answered:
        fetch(url)

    wait = answered.value.retry_after
    assert (wait is None) if low is None else (low <= wait <= high)


def test_a_closed_port_says_it_could_not_connect(allow_loopback):
    with pytest.raises(FetchError, match=re.escape("Could not connect to 127.0.0.1")):
        fetch(f"http://127.0.0.1:{allow_loopback(closed_port())}/")


def test_connection_attempts_to_many_unreachable_addresses_end_at_the_deadline(blackhole_port, monkeypatch, settings):
    """A name with 20 addresses that never answer took the connect timeout for each, one
    after the other, outside the fetch's deadline (300 s at the defaults); the attempts
    now share the deadline: a 2 s deadline leaves room for two 1 s attempts, no more."""
    from urllib3.util import connection

    settings.TWIN_FETCH_TIMEOUT, settings.TWIN_FETCH_DEADLINE = 1, 2
    settings.TWIN_CRAWL_ALLOWED_HOSTS, settings.TWIN_CRAWL_ALLOWED_PORTS = ["many.test"], [blackhole_port]
    twenty = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", blackhole_port))] * 20
    real_getaddrinfo, real_connect, attempts = socket.getaddrinfo, connection.create_connection, []
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda host, *a, **k: twenty if host == "many.test" else real_getaddrinfo(host, *a, **k)
    )
    monkeypatch.setattr(connection, "create_connection", lambda *a, **k: attempts.append(a) or real_connect(*a, **k))

    with pytest.raises(FetchError, match=re.escape("many.test took longer than the 2 second limit for one download.")):
        fetch(f"http://many.test:{blackhole_port}/")
    assert 1 <= len(attempts) <= 3


def test_a_server_that_never_answers_hits_the_timeout(raw_server, settings):
    settings.TWIN_FETCH_TIMEOUT = 1
    server = raw_server(never_answer)

    started = time.monotonic()
    with pytest.raises(FetchError, match="did not answer within 1 seconds"):
        fetch(server.url)
    assert time.monotonic() - started < 5


def test_a_page_that_stalls_after_its_headers_hits_the_timeout(raw_server, settings):
    settings.TWIN_FETCH_TIMEOUT = 1
    server = raw_server(trickle(every_seconds=60))

    with pytest.raises(FetchError, match="did not answer within 1 seconds"):
        fetch(server.url)


def test_a_page_trickling_in_byte_by_byte_is_cut_off_at_the_deadline(raw_server, settings):
    settings.TWIN_FETCH_TIMEOUT, settings.TWIN_FETCH_DEADLINE = 1, 2
    server = raw_server(trickle(every_seconds=0.1))

    started = time.monotonic()
    with pytest.raises(FetchError, match="took longer than the 2 second limit"):
        fetch(server.url)
    assert time.monotonic() - started < 4  # the deadline, and some slack


def drip_headers(conn, stopped):
    for byte in b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Slow: " + b"a" * 10_000:
        if stopped.wait(0.2):
            return
        conn.sendall(bytes([byte]))


def test_headers_dripping_in_byte_by_byte_are_cut_off_at_the_deadline(raw_server, settings):
    """Each byte comes well within the read timeout; only a wall-clock deadline ends it."""
    settings.TWIN_FETCH_TIMEOUT, settings.TWIN_FETCH_DEADLINE = 1, 2
    server = raw_server(drip_headers)

    started = time.monotonic()
    with pytest.raises(FetchError, match="took longer than the 2 second limit"):
        fetch(server.url)
    assert time.monotonic() - started < 4


def keep_alive(*answers):
    """Answer one request after another on the same connection: each answer is the bytes
    to send, or a function that sends them itself. Counts the connections accepted."""
    connections = []

    def respond(conn, stopped):
        connections.append(conn)
        for i, answer in enumerate(answers):
            if i:  # the head of the next request on this connection
                head = b""
                while b"\r\n\r\n" not in head:
                    if not (data := conn.recv(4096)):
                        return
                    head += data
            answer(conn, stopped) if callable(answer) else conn.sendall(answer)

    return respond, connections


def page_bytes(body: str) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body.encode())


def test_a_session_keeps_its_connection_for_the_next_requests(raw_server):
    not_modified = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 0\r\n\r\n"
    gone = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nnope"
    respond, connections = keep_alive(page_bytes(PAGE), not_modified, gone, page_bytes(PAGE))
    server = raw_server(respond)

    with FetchSession() as session:
        assert "Hello from the test site" in fetch(server.url, session=session).text
        assert fetch(server.url, session=session, headers={"If-None-Match": '"x"'}).not_modified
        with pytest.raises(FetchError, match="HTTP 404"):
            fetch(server.url + "gone", session=session)
        assert "Hello from the test site" in fetch(server.url, session=session).text

    assert len(connections) == 1


def test_a_kept_connection_that_starts_dripping_is_cut_off_at_the_deadline(raw_server, settings):
    """The watchdog of a fetch shuts the kept-alive socket it reuses, not only those it opens."""
    settings.TWIN_FETCH_TIMEOUT, settings.TWIN_FETCH_DEADLINE = 1, 2
    respond, connections = keep_alive(page_bytes(PAGE), drip_headers)
    server = raw_server(respond)

    with FetchSession() as session:
        fetch(server.url, session=session)
        started = time.monotonic()
        with pytest.raises(FetchError, match="took longer than the 2 second limit"):
            fetch(server.url, session=session)
    assert time.monotonic() - started < 4 and len(connections) == 1


def test_the_connection_goes_to_the_vetted_address_not_to_a_second_lookup(monkeypatch, settings):
    """A name that answers public, then loopback (DNS rebinding), is looked up once: the
    socket connects to the address that was checked, so loopback is never reached."""
    from urllib3.util import connection

    answers = iter(["93.184.216.34", "127.0.0.1", "127.0.0.1"])
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *args, **kwargs: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))],
    )
    connected = []

    def record(address, *args, **kwargs):
        connected.append(address)
        raise OSError("not reachable from the tests")

    monkeypatch.setattr(connection, "create_connection", record)

    with pytest.raises(FetchError, match=re.escape("Could not connect to rebind.example.com")):
        fetch("http://rebind.example.com/secret")
    assert connected == [("93.184.216.34", 80)]
    assert next(answers) == "127.0.0.1"  # the second answer was never asked for


def test_the_socket_guard_refuses_even_when_the_checks_are_bypassed(local_site, monkeypatch, settings):
    from ingestion.safe_http import connections, fetching, resolve

    url = local_site.page("/secret", "internal only")
    settings.TWIN_CRAWL_ALLOWED_HOSTS = []
    settings.TWIN_CRAWL_ALLOWED_PORTS = [local_site.server.server_port]
    monkeypatch.setattr(fetching, "check_url", lambda url: url)
    with pytest.raises(FetchError, match=re.escape("127.0.0.1 resolves to a loopback address")):
        fetch(url)

    monkeypatch.setattr(connections, "vetted_addresses", resolve)
    with pytest.raises(FetchError, match=re.escape("127.0.0.1 resolves to a loopback address")):
        fetch(url)


def test_proxy_variables_in_the_environment_are_ignored(local_site, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("NO_PROXY", "")
    url = local_site.page("/post", PAGE)

    assert "Hello from the test site." in fetch(url).text


def test_a_utf8_page_without_a_declared_charset_keeps_its_accents(local_site):
    url = local_site.page("/cafe", "<p>Un café crème à Zürich</p>", content_type="text/html")

    assert "Un café crème à Zürich" in fetch(url).text


def test_a_declared_charset_is_honoured(raw_server):
    body = "<p>Un café crème</p>".encode("latin-1")
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=ISO-8859-1\r\nContent-Length: %d\r\n\r\n" % len(body)
    server = raw_server(lambda conn, stopped: conn.sendall(head + body))

    assert "Un café crème" in fetch(server.url).text


def gzipped(html: bytes):
    body = gzip.compress(html)
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"

    return lambda conn, stopped: conn.sendall(head % len(body) + body)


def test_a_gzipped_page_is_decompressed(raw_server):
    server = raw_server(gzipped(b"<p>Compressed but readable.</p>"))

    assert fetch(server.url).text == "<p>Compressed but readable.</p>"


def test_a_small_gzipped_page_that_inflates_past_the_limit_is_refused(raw_server, settings):
    settings.TWIN_MAX_DOWNLOAD_BYTES = 64 * 1024
    server = raw_server(gzipped(b"<p>" + b"a" * (10 * 1024 * 1024) + b"</p>"))  # about 10 KB on the wire

    with pytest.raises(FetchError, match=TOO_LARGE):
        fetch(server.url)
