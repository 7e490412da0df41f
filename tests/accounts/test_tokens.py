"""The API token page: a new token is shown exactly once, stored hashed, and can be revoked."""

import re

import pytest
from django.db import connection
from django.urls import reverse

from accounts.actions import do_issue_api_token
from accounts.models import ApiToken, hash_token

pytestmark = pytest.mark.django_db


def create_token(client, name="laptop") -> str:
    response = client.post(reverse("tokens"), {"name": name})
    assert response.status_code == 200
    match = re.search(r'<pre id="new-token">(tw_[\w-]+)</pre>', response.content.decode())
    assert match, "the new token is shown"
    return match.group(1)


def all_token_rows() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apitoken")
        return repr(cursor.fetchall())


def test_the_page_lists_my_tokens(owner_client, owner):
    do_issue_api_token(owner, "build server")

    response = owner_client.get(reverse("tokens"))

    assert response.status_code == 200
    assert "build server" in response.content.decode()
    assert b'id="new-token"' not in response.content


def test_a_new_token_is_shown_exactly_once(owner_client, owner):
    raw = create_token(owner_client)

    again = owner_client.get(reverse("tokens")).content.decode()

    assert raw not in again
    token = ApiToken.objects.for_user(owner).get()
    assert token.name == "laptop" and token.key_prefix == raw[:10]
    assert f"{token.key_prefix}…" in again


def test_only_the_hash_of_a_token_is_stored(owner_client, owner):
    raw = create_token(owner_client)

    token = ApiToken.objects.get()
    assert token.key_hash == hash_token(raw) and token.key_hash != raw
    assert raw not in all_token_rows()


def test_a_token_from_the_page_works_on_the_api(owner_client, anon_api):
    anon_api.credentials(HTTP_AUTHORIZATION=f"Bearer {create_token(owner_client)}")

    assert anon_api.get("/api/v1/sources/").status_code == 200


def test_a_token_needs_a_name(owner_client):
    response = owner_client.post(reverse("tokens"), {"name": ""})

    assert response.status_code == 200
    assert b'id="new-token"' not in response.content
    assert "This field is required." in response.content.decode()
    assert not ApiToken.objects.exists()


def test_revoking_a_token_stops_it_working(owner_client, anon_api):
    raw = create_token(owner_client)
    token = ApiToken.objects.get()

    response = owner_client.post(reverse("revoke-token", args=[token.pk]))

    assert response.status_code == 302 and response["Location"] == reverse("tokens")
    token.refresh_from_db()
    assert token.revoked_at is not None
    anon_api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert anon_api.get("/api/v1/sources/").status_code == 401
    assert b"revoked" in owner_client.get(reverse("tokens")).content


def test_revoking_needs_a_post(owner_client, owner):
    token, _ = do_issue_api_token(owner, "laptop")

    assert owner_client.get(reverse("revoke-token", args=[token.pk])).status_code == 405
    token.refresh_from_db()
    assert token.is_active


def test_revoking_someone_elses_token_is_404(owner_client, other):
    token, _ = do_issue_api_token(other, "bob's laptop")

    response = owner_client.post(reverse("revoke-token", args=[token.pk]))

    assert response.status_code == 404
    token.refresh_from_db()
    assert token.is_active


def test_someone_elses_tokens_are_not_listed(owner_client, other):
    token, _ = do_issue_api_token(other, "bob's laptop")

    content = owner_client.get(reverse("tokens")).content.decode()

    assert token.key_prefix not in content and "bob" not in content
    assert reverse("revoke-token", args=[token.pk]) not in content


def test_anonymous_visitors_are_sent_to_login(anon_client, owner):
    token, _ = do_issue_api_token(owner, "laptop")

    for response in (
        anon_client.get(reverse("tokens")),
        anon_client.post(reverse("tokens"), {"name": "sneaky"}),
        anon_client.post(reverse("revoke-token", args=[token.pk])),
    ):
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    token.refresh_from_db()
    assert token.is_active and ApiToken.objects.count() == 1
