import pytest
from django.test import Client


@pytest.fixture
def staff_client(staff):
    """A staff member's session (the Operations page and /metrics are theirs)."""
    client = Client()
    client.force_login(staff)
    return client
