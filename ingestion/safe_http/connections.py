"""Connections: sockets that reach only vetted addresses, pooled per crawl run
(`FetchSession`), and the watchdog that shuts a fetch's sockets at its deadline."""

import heapq
import itertools
import os
import socket
import threading
import time
import weakref

import certifi
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from .addresses import address_refusal, host_is_allowed, port_refusal, vetted_addresses
from .errors import FetchError


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


class Watchdog:
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


def connect_vetted(conn) -> socket.socket:
    """urllib3's _new_conn, connecting to an address that was vetted, never to a fresh lookup."""
    host = conn._dns_host
    if refusal := port_refusal(conn.port):
        raise FetchError(refusal)
    error, watchdog = None, Watchdog.active()
    for _family, sockaddr in vetted_addresses(host, conn.port):
        timeout = conn.timeout
        if watchdog:  # every attempt within the fetch's deadline: 20 silent addresses must not take 20 timeouts
            left = watchdog.deadline - time.monotonic()
            if left <= 0:
                raise ConnectTimeoutError(conn, f"Connecting to {conn.host} ran past the fetch's deadline.")
            timeout = min(timeout, left) if isinstance(timeout, int | float) else left
        try:
            sock = urllib3_connection.create_connection(
                (sockaddr[0], conn.port), timeout, source_address=conn.source_address
            )
        except TimeoutError as exc:
            error = ConnectTimeoutError(conn, f"Connection to {conn.host} timed out.")
            error.__cause__ = exc
        except OSError as exc:
            error = NewConnectionError(conn, f"Failed to establish a new connection: {exc}")
        else:
            peer = sock.getpeername()[0]
            if not host_is_allowed(host) and (refusal := address_refusal(peer)):
                sock.close()
                raise FetchError(f"Refused: {conn.host} resolves to {refusal}.")
            if watchdog:
                watchdog.watch(sock)
            return sock
    raise error or NewConnectionError(conn, "no address")


class _GuardedHTTPConnection(HTTPConnection):
    def _new_conn(self):
        return connect_vetted(self)


class _GuardedHTTPSConnection(HTTPSConnection):
    def _new_conn(self):
        return connect_vetted(self)


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedPoolManager(urllib3.PoolManager):
    """urllib3's pools, with connections that go through connect_vetted. No retries (a
    crawl decides), no redirects (each hop is checked), no proxy from the environment
    (it would hide the real peer address), certificates checked against certifi's CAs."""

    def __init__(self):
        super().__init__(num_pools=10, maxsize=1, retries=False, cert_reqs="CERT_REQUIRED", ca_certs=certifi.where())
        self.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


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
