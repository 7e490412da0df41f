"""POST /api/v1/auth/token/: a password buys a token, shown once, usable as a Bearer token, revocable."""

import pytest

from accounts.models import ApiToken, hash_token

pytestmark = pytest.mark.django_db


URL = "/api/v1/auth/token/"
PASSWORD = "correct horse battery"


def ask_for_token(client, username="alice", password=PASSWORD, **extra):
    return client.post(URL, {"username": username, "password": password, **extra}, format="json")


def test_correct_credentials_return_a_new_token(anon_api, owner):
    response = ask_for_token(anon_api, name="my laptop")

    assert response.status_code == 201
    body = response.json()
    assert body["token"].startswith("tw_") and body["name"] == "my laptop"
    token = ApiToken.objects.get(pk=body["id"])
    assert token.owner == owner and token.is_active


def test_the_raw_token_is_returned_once_and_only_its_hash_is_stored(anon_api, owner):
    first = ask_for_token(anon_api).json()
    second = ask_for_token(anon_api).json()

    assert first["token"] != second["token"]
    stored = ApiToken.objects.get(pk=first["id"])
    assert stored.key_hash == hash_token(first["token"]) != first["token"]
    assert not ApiToken.objects.filter(key_hash=first["token"]).exists()
    assert first["token"] not in repr(list(ApiToken.objects.values()))


def test_a_wrong_password_is_a_400_and_issues_nothing(anon_api, owner):
    response = ask_for_token(anon_api, password="wrong horse")

    assert response.status_code == 400
    assert response.json() == {"detail": "Wrong username or password."}
    assert not ApiToken.objects.exists()


def test_an_unknown_user_gets_the_same_400_as_a_wrong_password(anon_api, owner):
    response = ask_for_token(anon_api, username="mallory")

    assert response.status_code == 400
    assert response.json() == {"detail": "Wrong username or password."}


def test_missing_fields_are_named(anon_api, db):
    response = anon_api.post(URL, {}, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {"username", "password"}


def test_an_inactive_user_gets_no_token(anon_api, owner):
    owner.is_active = False
    owner.save()

    assert ask_for_token(anon_api).status_code == 400


@pytest.mark.parametrize("keyword", ["Bearer", "Token"])
def test_the_token_authenticates_api_calls(anon_api, owner, owner_source, keyword):
    raw = ask_for_token(anon_api).json()["token"]
    anon_api.credentials(HTTP_AUTHORIZATION=f"{keyword} {raw}")

    response = anon_api.get("/api/v1/sources/")

    assert response.status_code == 200
    assert [s["id"] for s in response.json()["results"]] == [owner_source.pk]


def test_using_a_token_records_when_it_was_last_used(anon_api, owner):
    body = ask_for_token(anon_api).json()
    anon_api.credentials(HTTP_AUTHORIZATION=f"Bearer {body['token']}")

    anon_api.get("/api/v1/sources/")

    assert ApiToken.objects.get(pk=body["id"]).last_used_at is not None


def test_a_revoked_token_is_refused_with_401(anon_api, owner):
    body = ask_for_token(anon_api).json()
    anon_api.credentials(HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    assert anon_api.get("/api/v1/sources/").status_code == 200

    ApiToken.objects.get(pk=body["id"]).revoke()
    response = anon_api.get("/api/v1/sources/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_token_of_a_deactivated_user_is_refused(anon_api, owner):
    raw = ask_for_token(anon_api).json()["token"]
    owner.is_active = False
    owner.save()
    anon_api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert anon_api.get("/api/v1/sources/").status_code == 401


@pytest.mark.parametrize("header", ["Bearer tw_made_up", "Bearer", "Bearer two words"])
def test_made_up_or_malformed_tokens_are_refused_with_401(anon_api, db, header):
    anon_api.credentials(HTTP_AUTHORIZATION=header)

    assert anon_api.get("/api/v1/sources/").status_code == 401


def test_no_token_at_all_is_refused_with_401(anon_api, db):
    response = anon_api.get("/api/v1/sources/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
