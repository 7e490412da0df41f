"""Deleting an account deletes the twin's Hugging Face Hub repository, against a fake Hub on
loopback (TWIN_HF_ENDPOINT): the real client, the real HTTP request. A Hub that fails is
reported and logged, and the account is deleted anyway."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse

from accounts.models import User
from tests.api.test_token_scopes import client_with

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"


class FakeHub:
    """DELETE /api/repos/delete as the Hub answers it; `status` sets the answer."""

    def __init__(self):
        self.requests, self.status = [], 200
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_DELETE(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                hub.requests.append((self.path, self.headers.get("Authorization"), body))
                payload = b"{}" if hub.status == 200 else b'{"error": "Internal Error"}'
                self.send_response(hub.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub(settings, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # as with TWIN_HF_TOKEN set (settings)
    fake = FakeHub()
    settings.TWIN_HF_ENDPOINT = f"http://127.0.0.1:{fake.server.server_port}"
    settings.TWIN_HF_TOKEN = "hf_test_token"
    settings.TWIN_HF_REPO_PREFIX = "twin-org/twinsite-"
    yield fake
    fake.close()


def test_the_page_names_the_hub_repository_and_deleting_deletes_it(owner_client, owner, hub):
    page = owner_client.get(reverse("delete-account")).content.decode()
    assert f"<code>twin-org/twinsite-{owner.pk}</code>" in page

    response = owner_client.post(reverse("delete-account"), {"password": PASSWORD}, follow=True)

    assert not User.objects.filter(pk=owner.pk).exists()
    assert hub.requests == [
        (
            "/api/repos/delete",
            "Bearer hf_test_token",
            {"name": f"twinsite-{owner.pk}", "organization": "twin-org", "type": "model"},
        )
    ]
    assert f"Hugging Face Hub repository twin-org/twinsite-{owner.pk} is deleted." in response.content.decode()


def test_a_hub_failure_is_reported_and_the_account_is_deleted_anyway(owner, hub, caplog):
    hub.status = 500
    client, _ = client_with(owner)

    response = client.post("/api/v1/account/delete/", {"password": PASSWORD}, format="json")

    assert response.status_code == 200
    assert not User.objects.filter(pk=owner.pk).exists()
    repository = response.json()["hub_repository"]
    assert repository["repo_id"] == f"twin-org/twinsite-{owner.pk}" and repository["deleted"] is False
    assert "500" in repository["error"] and "could not be deleted" in response.json()["detail"]
    assert f"could not delete Hub repository twin-org/twinsite-{owner.pk}" in caplog.text


def test_without_a_hub_the_page_says_nothing_was_pushed(owner_client):
    page = owner_client.get(reverse("delete-account")).content.decode()

    assert "Nothing of your twin is pushed to a model hub" in page
