"""Fixtures for ingestion tests: a private upload directory per test, and raw TCP servers
for the replies http.server cannot give (no Content-Length, a trickle, or no answer)."""

import socket
import threading
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path) -> Path:
    """Uploads of this test only, so "no file left behind" can be checked exactly."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


@pytest.fixture
def allow_loopback(settings):
    """Loopback on the crawl allow-list; returns allow_port(port), since an allowed host
    still needs an allowed port (each test server allows its own random one)."""
    settings.TWIN_CRAWL_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.TWIN_CRAWL_ALLOWED_PORTS = []

    def allow_port(port: int) -> int:
        settings.TWIN_CRAWL_ALLOWED_PORTS = [*settings.TWIN_CRAWL_ALLOWED_PORTS, port]
        return port

    return allow_port


class RawServer:
    """A loopback TCP server: reads each request's head, then calls respond(conn, stopped)."""

    def __init__(self, respond):
        self.respond = respond
        self.stopped = threading.Event()
        self.requests = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/"

    def _serve(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(4096)
                if not data:
                    return
                head += data
            self.requests += 1
            try:
                self.respond(conn, self.stopped)
            except OSError:
                pass  # the client gave up on us, which is what most of these tests want

    def close(self):
        self.stopped.set()
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()


@pytest.fixture
def raw_server(allow_loopback):
    servers = []

    def start(respond) -> RawServer:
        servers.append(RawServer(respond))
        allow_loopback(servers[-1].listener.getsockname()[1])
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def send_chunked(total_bytes: int, block: bytes = b"<p>" + b"x" * 16_000 + b"</p>"):
    """An HTML body of total_bytes in chunked encoding: no Content-Length to trust."""

    def respond(conn, stopped):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n")
        sent = 0
        while sent < total_bytes:
            conn.sendall(b"%x\r\n%s\r\n" % (len(block), block))
            sent += len(block)
        conn.sendall(b"0\r\n\r\n")

    return respond


def send_until_close(total_bytes: int):
    """An HTML body with neither Content-Length nor chunking: it ends when the server closes."""

    def respond(conn, stopped):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n")
        conn.sendall(b"<p>" + b"y" * total_bytes + b"</p>")

    return respond


def never_answer(conn, stopped):
    """Accept the request and say nothing until the test ends."""
    stopped.wait()


def trickle(every_seconds: float, declared_bytes: int = 100_000):
    """Headers at once, then one byte at a time: each read is quick, the whole never ends."""

    def respond(conn, stopped):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % declared_bytes)
        while not stopped.wait(every_seconds):
            conn.sendall(b"z")

    return respond


@pytest.fixture
def blackhole_port():
    """A loopback port that never completes a connection: its listener's backlog is full
    and nobody accepts, so Linux drops every further SYN and connect() waits out its timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for sock in (*fillers, listener):
        sock.close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return sock.getsockname()[1]


@pytest.fixture
def site(allow_loopback):
    from tests.ingestion.sites import Site

    server = Site()
    allow_loopback(server.server.server_port)
    yield server
    server.close()
