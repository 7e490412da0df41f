"""The identities and the two worlds of the isolation tests.

Identities: the owner (a session on pages, an API token on the API), another user
with a session, another user's API token, an anonymous caller, a staff member
who owns nothing (a superuser: if one can't read a twin's data outside the admin,
no lesser staff can), a user the owner invited to chat with the twin (a session on
pages, their own API token on the API), and an anonymous visitor of the owner's published twin (no
account; the visitor id of a conversation with the twin, which every other identity
lacks: each of them asks the widget with a visitor id of its own).
"""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.api.conftest import SAILING_LOG, stub_evaluate, stub_train_lora
from tests.conftest import SAMPLE_MARKDOWN, api_client_for

from .world import VISITOR_ID, World

# The owner last: its requests may change things.
IDENTITIES = ("other", "other_token", "anonymous", "staff", "invited", "visitor", "owner")


@pytest.fixture(autouse=True)
def _private_data_dir(settings, tmp_path):
    """A data directory of the test's own, so that "no file changed" looks at this test's files only."""
    settings.TWIN_DATA_DIR = tmp_path / "data"
    settings.MEDIA_ROOT = settings.TWIN_DATA_DIR / "uploads"


@pytest.fixture(autouse=True)
def _quick_training(monkeypatch):
    monkeypatch.setattr("training.tasks.train_lora", stub_train_lora)
    monkeypatch.setattr("training.tasks.evaluate", stub_evaluate)


@pytest.fixture
def owner_world(owner):
    return World(owner, "bees.md", SAMPLE_MARKDOWN, "How much honey does a hive give in July?")


@pytest.fixture
def other_world(other):
    return World(other, "sailing.md", SAILING_LOG, "How long is your boat?")


@pytest.fixture
def invited(owner_world):
    return owner_world.invited


@pytest.fixture
def identity_client(owner, other, staff, owner_world):
    """identity_client(identity, api) -> a client acting as that identity on a page (api=False) or the API."""

    def make(identity: str, api: bool):
        client = APIClient() if api else Client()
        if identity == "owner" and api:
            client = api_client_for(owner)
        elif identity == "invited" and api:
            client = api_client_for(owner_world.invited)
        elif identity == "invited":
            client.force_login(owner_world.invited)
        elif identity in ("owner", "other", "staff"):
            client.force_login({"owner": owner, "other": other, "staff": staff}[identity])
        elif identity == "other_token":
            token = api_client_for(other)._credentials["HTTP_AUTHORIZATION"]
            client = APIClient(HTTP_AUTHORIZATION=token) if api else Client(HTTP_AUTHORIZATION=token)
        client.visitor_id = VISITOR_ID if identity == "visitor" else f"{identity.replace('_', '-')}-own-visitor-id"
        # Different people, different addresses: per-address limits (the login lockout counts
        # wrong passwords per address) must not carry one identity's requests over to the next.
        client.defaults["REMOTE_ADDR"] = f"198.51.100.{IDENTITIES.index(identity) + 1}"
        return client

    return make
