"""Politeness across workers: one request at a time per host (HostPacer), with the delay."""

import time

import pytest

from ingestion.crawling import HostPacer, RunStopped

HOST = "blog.example"


@pytest.fixture
def workers():
    """Two crawls' pacers, as two workers have them."""
    pacers = HostPacer(), HostPacer()
    yield pacers
    for pacer in pacers:
        pacer.close()


def soon(seconds: float) -> float:
    return time.monotonic() + seconds


def test_with_no_delay_a_run_keeps_its_turn_and_another_waits_until_it_is_given_back(workers):
    first, second = workers
    key = first.acquire(HOST, soon(5), hold_seconds=1)
    first.release(key, 0)
    assert first.acquire(HOST, soon(5), hold_seconds=1) == key  # its next request: no wait

    with pytest.raises(RunStopped, match="Waited too long"):
        second.acquire(HOST, soon(0.2), hold_seconds=1)
    first.close()  # the end of the run gives the turn back
    assert second.acquire(HOST, soon(1), hold_seconds=1) == key


def test_another_host_is_not_held_up(workers):
    first, second = workers
    first.acquire(HOST, soon(5), hold_seconds=1)
    assert second.acquire("other.example", soon(0.2), hold_seconds=1)


def test_with_a_delay_the_host_rests_between_requests_whoever_asks(workers):
    first, second = workers
    key = first.acquire(HOST, soon(5), hold_seconds=1)
    first.release(key, 0.5)
    released = time.monotonic()

    with pytest.raises(RunStopped):
        second.acquire(HOST, soon(0.1), hold_seconds=1)
    second.acquire(HOST, soon(5), hold_seconds=1)
    assert time.monotonic() - released >= 0.45
    with pytest.raises(RunStopped):  # the run that rested does not skip the queue either
        first.acquire(HOST, soon(0.2), hold_seconds=1)


def test_a_lease_runs_out_without_the_run_that_held_it(workers, monkeypatch):
    """A worker that dies holding a host's turn blocks it for one fetch's hold plus the lease, no longer."""
    monkeypatch.setattr(HostPacer, "LEASE_SECONDS", 0.2)
    first, second = workers
    first.acquire(HOST, soon(5), hold_seconds=0.3)  # and never released: the worker died
    started = time.monotonic()

    second.acquire(HOST, soon(5), hold_seconds=0.3)
    assert 0.3 <= time.monotonic() - started < 2
