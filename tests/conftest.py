"""Shared fixtures: three users (owner, other, stranger-as-anonymous), clients, API
tokens, documents through the real pipeline, and a local HTTP server for crawling.

Unit tests run Celery eagerly, and `transaction.on_commit` callbacks run at once
(the test transaction never commits). Tests that use `transactional_db` or
`live_server` keep the real on_commit behaviour: they commit like production.
"""

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from rest_framework.test import APIClient

import training.tasks  # noqa: F401  (registers the tasks features sends by name, so eager Celery runs them)
from accounts.actions import do_create_user, do_issue_api_token

SAMPLE_MARKDOWN = """# Keeping bees on a city roof

## Why a roof

I keep two hives on the flat roof of our building. The bees fly over the traffic and find linden trees
in the park three streets away. In a good July each hive gives me about twelve kilograms of honey.

## The first winter

The first winter I lost one colony to damp, not cold. Since then I tilt each hive forward by two
centimetres so that condensation runs out of the entrance instead of dripping onto the cluster.
I check the weight of each hive by lifting the back edge every fortnight from November to March.
"""


def commits_for_real(request) -> bool:
    """A test that commits like production: it asks for transactional_db or live_server,
    or is marked django_db(transaction=True) (which pytest-django does not show as a fixture)."""
    if {"transactional_db", "live_server"} & set(request.fixturenames):
        return True
    marker = request.node.get_closest_marker("django_db")
    return bool(marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])))


@pytest.fixture(autouse=True, scope="session")
def _reap_stale_processes():
    """Workers and web servers that an interrupted earlier run left running on this test database;
    at the end, this run's broker keys."""
    from tests.processes import forget_broker, reap_stale_processes

    reap_stale_processes()
    yield
    forget_broker(os.environ["TWIN_TEST_CACHE_PREFIX"])


@pytest.fixture(autouse=True)
def _immediate_on_commit(request, monkeypatch):
    if commits_for_real(request):
        return
    monkeypatch.setattr(transaction, "on_commit", lambda func, using=None, robust=False: func())


@pytest.fixture(autouse=True)
def _clear_cache(settings):
    """Throttle counters must not leak between tests. Only this run's keys go: another
    test run may share the Redis database (cache.clear() would flush all of it)."""
    client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    keys = list(client.scan_iter(match=f"{settings.CACHES['default']['KEY_PREFIX']}:*"))
    if keys:
        client.delete(*keys)


def expected_device() -> str:
    """Where a training run must have trained on this machine: its GPU where CUDA is present, else
    the CPU. Asked of the machine, not of training's own device code: a run records the device its
    weights were on (training.lora.device_label), so one that fell back to the CPU on a GPU
    machine fails this."""
    import torch

    return torch.cuda.get_device_properties(0).name if torch.cuda.is_available() else "cpu"


def make_user(username: str, **extra):
    return do_create_user(username, "correct horse battery", email=f"{username}@example.com", **extra)


@pytest.fixture
def owner(db):
    return make_user("alice", twin_name="Alice")


@pytest.fixture
def other(db):
    return make_user("bob", twin_name="Bob")


@pytest.fixture
def staff(db):
    return make_user("carol", is_staff=True, is_superuser=True)


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def other_client(db, other):
    from django.test import Client

    client = Client()
    client.force_login(other)
    return client


@pytest.fixture
def anon_client(db):
    from django.test import Client

    return Client()


def api_client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        _, raw = do_issue_api_token(user, "tests")
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def owner_api(owner):
    return api_client_for(owner)


@pytest.fixture
def other_api(other):
    return api_client_for(other)


@pytest.fixture
def anon_api(db):
    return APIClient()


def markdown_upload(name="bees.md", text=SAMPLE_MARKDOWN) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/markdown")


def add_markdown_source(user, name="bees.md", text=SAMPLE_MARKDOWN):
    """Add an upload through the real action: crawl, clean, chunk, embed, dataset (eager)."""
    from ingestion.actions import do_add_upload_source
    from ingestion.connectors.upload.forms import UploadSourceForm

    form = UploadSourceForm({"category": "article"}, {"file": markdown_upload(name, text)})
    assert form.is_valid(), form.errors
    return do_add_upload_source(user, form.cleaned_data["file"], category="article")


@pytest.fixture
def owner_source(owner):
    return add_markdown_source(owner)


@pytest.fixture
def other_source(other):
    return add_markdown_source(
        other,
        "sailing.md",
        "# Sailing notes\n\nI sail a small dinghy on the lake every Sunday morning when the wind is light. "
        "The boat is eleven feet long and I bought it second hand for four hundred euros.\n\n"
        "## Capsizing\n\nI capsized twice in the first month and learned to right the boat from the water.",
    )


GARDEN_NOTES = """# My allotment by the river

I grow tomatoes and runner beans on an allotment by the river. The tomatoes ripen in late August,
and I water them every second evening with rain water from two barrels by the shed.
"""


@pytest.fixture
def invited(owner):
    """A user the owner invited to chat with their twin (an active invitation)."""
    from accounts.sharing import do_invite

    user = make_user("dave")
    do_invite(owner, "dave")
    return user


@pytest.fixture
def invited_client(db, invited):
    from django.test import Client

    client = Client()
    client.force_login(invited)
    return client


@pytest.fixture
def invited_api(invited):
    return api_client_for(invited)


@pytest.fixture
def shared_source(owner):
    """A source of the owner's that the twin's audience may draw on (the owner's other sources stay private)."""
    return add_markdown_source(owner, "garden.md", GARDEN_NOTES).set_audience(True)


class LocalSite:
    """A tiny HTTP server on loopback: path -> (status, headers, body)."""

    def __init__(self):
        self.routes: dict[str, tuple[int, dict, bytes]] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                status, headers, body = site.routes.get(self.path, (404, {"Content-Type": "text/plain"}, b"nope"))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def page(self, path: str, body: str, content_type="text/html; charset=utf-8", status=200, **headers):
        self.routes[path] = (status, {"Content-Type": content_type, **headers}, body.encode())
        return self.base + path

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def local_site(settings):
    """Pages on 127.0.0.1, which the crawler may fetch only because the test allows the host and its port."""
    settings.TWIN_CRAWL_ALLOWED_HOSTS = ["127.0.0.1"]
    site = LocalSite()
    settings.TWIN_CRAWL_ALLOWED_PORTS = [site.server.server_port]  # an allowed host still needs an allowed port
    yield site
    site.close()


@pytest.fixture
def production_model_version(owner_source, owner, staff):
    """The owner's twin with a really trained (tiny) adapter in production."""
    from training.actions import do_approve_model_version, do_start_training_run
    from training.models import ModelVersion

    run = do_start_training_run(owner)
    model_version = ModelVersion.objects.get(training_run=run)
    # The tiny random model's gate verdict is noise (tests/settings.py); serving is what matters here.
    return do_approve_model_version(model_version, staff, override_reason="serving tests")
