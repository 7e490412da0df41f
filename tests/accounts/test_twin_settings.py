"""The twin's own settings: the name it speaks as, and continuous training."""

import pytest
from django.urls import reverse

from accounts.models import Twin

pytestmark = pytest.mark.django_db


def test_it_shows_the_current_settings(owner_client):
    response = owner_client.get(reverse("twin-settings"))
    assert response.status_code == 200 and b'value="Alice"' in response.content


def test_it_renames_the_twin_and_turns_auto_train_on(owner_client, owner):
    response = owner_client.post(reverse("twin-settings"), {"name": "Alice the beekeeper", "auto_train": "on"})
    assert response.status_code == 302
    twin = Twin.objects.get(owner=owner)
    assert twin.name == "Alice the beekeeper" and twin.auto_train


def test_a_blank_name_is_refused(owner_client, owner):
    response = owner_client.post(reverse("twin-settings"), {"name": ""})
    assert response.status_code == 400 and b"This field is required" in response.content
    assert Twin.objects.get(owner=owner).name == "Alice"


def test_each_user_edits_only_their_own_twin(other_client, owner, other):
    other_client.post(reverse("twin-settings"), {"name": "Mallory", "auto_train": "on"})
    assert Twin.objects.get(owner=owner).name == "Alice" and not Twin.objects.get(owner=owner).auto_train
    assert Twin.objects.get(owner=other).name == "Mallory"


def test_anonymous_visitors_are_sent_to_log_in(anon_client):
    response = anon_client.get(reverse("twin-settings"))
    assert response.status_code == 302 and "/login/" in response["Location"]
