"""Sentry's options come from the environment: release, environment, and trace sampling for the web
and for Celery tasks. Checked through a transport that keeps the envelopes (no network)."""

from wsgiref.util import setup_testing_defaults

import pytest
import sentry_sdk
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from sentry_sdk.transport import Transport

from twinsite import sentry
from twinsite.celery import resume_stalled_jobs
from twinsite.wsgi import application

pytestmark = pytest.mark.django_db


class KeptEnvelopes(Transport):
    def __init__(self, options=None):
        super().__init__(options)
        self.envelopes = []

    def capture_envelope(self, envelope):
        self.envelopes.append(envelope)

    def items(self, kind: str) -> list[dict]:
        return [item.payload.json for e in self.envelopes for item in e.items if item.type == kind]


@pytest.fixture
def reporting(monkeypatch):
    """init_sentry as settings.py calls it, with this environment, into a kept transport."""
    monkeypatch.setenv("SENTRY_DSN", "https://public@sentry.example.invalid/1")
    monkeypatch.setenv("SENTRY_RELEASE", "twinsite@1.2.3")
    monkeypatch.setenv("SENTRY_ENVIRONMENT", "staging")
    transport = KeptEnvelopes()

    def start(web_rate: str, tasks_rate: str | None = None):
        monkeypatch.setenv("SENTRY_TRACES_SAMPLE_RATE", web_rate)
        if tasks_rate is not None:
            monkeypatch.setenv("SENTRY_TASKS_TRACES_SAMPLE_RATE", tasks_rate)
        sentry.init_sentry(False, transport=transport)
        return transport

    yield start
    sentry_sdk.get_client().close()
    # Off again for the rest of the run. An empty DSN, not a missing one: sentry_sdk.init() without
    # a DSN reads SENTRY_DSN, still set here (monkeypatch undoes it after this teardown), and every
    # later test then sent its log lines to sentry.example.invalid over the network.
    sentry_sdk.init(dsn="")
    assert sentry_sdk.get_client().transport is None


def get_through_wsgi(path: str):
    """A request as gunicorn makes it (the test client bypasses the WSGI handler Sentry traces)."""
    environ = {}
    setup_testing_defaults(environ)
    environ["PATH_INFO"] = path
    # As the test client does: the test's own database connection stays open across the request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        b"".join(application(environ, lambda status, headers, exc_info=None: None))
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def test_errors_web_requests_and_tasks_report_with_the_release(reporting):
    kept = reporting("1.0")

    sentry_sdk.capture_message("something to look at")
    get_through_wsgi("/login/")
    resume_stalled_jobs.apply()
    sentry_sdk.flush()

    event = kept.items("event")[0]
    assert event["release"] == "twinsite@1.2.3" and event["environment"] == "staging"
    transactions = kept.items("transaction")
    assert {t["contexts"]["trace"]["op"] for t in transactions} >= {"http.server", "queue.task.celery"}
    assert all(t["release"] == "twinsite@1.2.3" for t in transactions)


def test_tasks_are_sampled_at_their_own_rate(reporting):
    kept = reporting("1.0", tasks_rate="0")

    get_through_wsgi("/login/")
    resume_stalled_jobs.apply()
    sentry_sdk.flush()

    assert [t["contexts"]["trace"]["op"] for t in kept.items("transaction")] == ["http.server"]


def test_the_release_is_the_build_file_or_the_checkout(monkeypatch, tmp_path):
    monkeypatch.delenv("SENTRY_RELEASE", raising=False)
    monkeypatch.setattr(sentry, "BASE_DIR", tmp_path)
    assert sentry.release() is None  # no build file, no checkout

    (tmp_path / "RELEASE").write_text("twinsite@v21-3-gabc1234\n")
    assert sentry.release() == "twinsite@v21-3-gabc1234"

    monkeypatch.setattr(sentry, "BASE_DIR", sentry.Path(__file__).resolve().parent.parent.parent)
    assert sentry.release().startswith("twinsite@")  # `git describe` of this checkout
