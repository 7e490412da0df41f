"""Token scopes, expiry and revocation through the API; approval needs the admin's model permission."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.actions import TokenRefused, do_issue_api_token
from accounts.models import ApiToken
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"
OPENAI_BODY = {"model": "twin", "messages": [{"role": "user", "content": "How much honey in July?"}]}


def client_with(user, **options) -> tuple[APIClient, ApiToken]:
    token, raw = do_issue_api_token(user, "scoped", **options)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client, token


def test_the_token_endpoint_issues_scoped_expiring_tokens(anon_api, owner):
    response = anon_api.post(
        "/api/v1/auth/token/",
        {"username": "alice", "password": PASSWORD, "scopes": ["read", "chat"], "expires_in_days": 30},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    token = ApiToken.objects.get(pk=body["id"])
    assert token.scopes == ["chat", "read"] and body["scopes"] == ["chat", "read"]
    assert abs(token.expires_at - (timezone.now() + timedelta(days=30))) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("extra", "field"),
    [({"scopes": ["admin"]}, "scopes"), ({"expires_in_days": 0}, "expires_in_days")],
)
def test_bad_scopes_or_expiry_are_named_and_issue_nothing(anon_api, owner, extra, field):
    response = anon_api.post("/api/v1/auth/token/", {"username": "alice", "password": PASSWORD, **extra}, format="json")

    assert response.status_code == 400 and field in response.json()
    assert not ApiToken.objects.exists()


def test_only_staff_get_the_review_scope(anon_api, owner):
    response = anon_api.post(
        "/api/v1/auth/token/", {"username": "alice", "password": PASSWORD, "scopes": ["review"]}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"detail": "Only staff members may have the review scope."}
    with pytest.raises(TokenRefused):
        do_issue_api_token(owner, "sneaky", scopes=["review"])
    assert not ApiToken.objects.exists()


def test_a_read_token_reads_but_changes_nothing_and_cannot_chat(owner, owner_source):
    client, _ = client_with(owner, scopes=["read"])

    assert client.get("/api/v1/sources/").status_code == 200
    assert client.get(f"/api/v1/documents/{owner_source.documents.get().pk}/").status_code == 200
    refused = client.post("/api/v1/training-runs/", {}, format="json")
    assert refused.status_code == 403 and "allow no changes" in refused.json()["detail"]
    assert client.delete(f"/api/v1/sources/{owner_source.pk}/").status_code == 403
    assert owner.sources.filter(pk=owner_source.pk).exists()
    chat = client.post("/api/v1/chat/", {"message": "Hello?"}, format="json")
    assert chat.status_code == 403 and "“chat” scope" in chat.json()["detail"]
    assert client.post("/v1/chat/completions", OPENAI_BODY, format="json").status_code == 403
    assert not owner.conversations.exists()


def test_a_chat_token_chats_through_both_apis_and_reads_nothing_else(owner, owner_source):
    client, _ = client_with(owner, scopes=["chat"])

    assert client.post("/api/v1/chat/", {"message": "How much honey in July?"}, format="json").status_code == 200
    completion = client.post("/v1/chat/completions", OPENAI_BODY, format="json")
    assert completion.status_code == 200 and completion.json()["choices"][0]["message"]["content"]
    assert client.get("/api/v1/sources/").status_code == 403
    assert client.get("/api/v1/conversations/").status_code == 403


def test_a_token_without_scopes_has_full_access(owner, owner_source):
    client, _ = client_with(owner)

    assert client.get("/api/v1/sources/").status_code == 200
    assert client.post("/api/v1/chat/", {"message": "Hello?"}, format="json").status_code == 200


def test_an_expired_token_is_refused_like_a_revoked_one(owner):
    client, token = client_with(owner, expires_in_days=1)
    assert client.get("/api/v1/sources/").status_code == 200

    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get("/api/v1/sources/")

    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid, expired or revoked token."


def test_tokens_are_listed_and_revoked_through_the_api(owner, other):
    client, mine = client_with(owner)
    laptop, laptop_raw = do_issue_api_token(owner, "laptop")
    theirs, _ = do_issue_api_token(other, "bob's laptop")

    listed = client.get("/api/v1/auth/tokens/").json()["results"]
    assert {t["id"] for t in listed} == {mine.pk, laptop.pk}
    assert all("key_hash" not in t and "token" not in t for t in listed)

    response = client.post(f"/api/v1/auth/tokens/{laptop.pk}/revoke/")

    assert response.status_code == 200 and response.json()["revoked_at"]
    laptop_client = APIClient()
    laptop_client.credentials(HTTP_AUTHORIZATION=f"Bearer {laptop_raw}")
    assert laptop_client.get("/api/v1/sources/").status_code == 401
    assert client.post(f"/api/v1/auth/tokens/{theirs.pk}/revoke/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.is_active


def test_a_read_token_lists_tokens_but_cannot_revoke_them(owner):
    client, read_token = client_with(owner, scopes=["read"])

    assert client.get("/api/v1/auth/tokens/").status_code == 200
    assert client.post(f"/api/v1/auth/tokens/{read_token.pk}/revoke/").status_code == 403
    read_token.refresh_from_db()
    assert read_token.is_active


def reviewer(*permissions):
    user = make_user("rita", is_staff=True)
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename, content_type__app_label="training"))
    return user


def test_approval_needs_the_same_model_permission_as_the_admin(owner_model_version):
    """Staff status alone, or a view permission, is not enough: the admin asks for change_modelversion."""
    client, _ = client_with(reviewer("view_modelversion"))

    for action in ("approve", "reject"):
        response = client.post(f"/api/v1/models/{owner_model_version.pk}/{action}/")
        assert response.status_code == 403, action
    owner_model_version.refresh_from_db()
    assert owner_model_version.status == "candidate" and owner_model_version.reviewed_by is None


def test_staff_with_the_change_permission_approve_and_reject_through_the_api(owner_model_version):
    client, _ = client_with(reviewer("change_modelversion"))

    response = client.post(f"/api/v1/models/{owner_model_version.pk}/reject/")

    assert response.status_code == 200 and response.json()["status"] == "rejected"


def test_a_review_token_reviews_and_a_read_token_does_not(owner_model_version, staff):
    read_client, _ = client_with(staff, scopes=["read"])
    review_client, _ = client_with(staff, scopes=["review"])
    url = f"/api/v1/models/{owner_model_version.pk}/approve/"

    assert read_client.post(url).status_code == 403
    owner_model_version.refresh_from_db()
    assert owner_model_version.status == "candidate"
    assert review_client.get("/api/v1/models/").status_code == 403
    assert review_client.post(url).status_code == 200
    owner_model_version.refresh_from_db()
    assert owner_model_version.status == "production"


def test_the_tokens_page_creates_scoped_expiring_tokens_and_shows_them(owner_client, owner):
    response = owner_client.post(reverse("tokens"), {"name": "chat app", "scopes": ["chat"], "expires_in_days": "7"})

    assert response.status_code == 200 and b'id="new-token"' in response.content
    token = ApiToken.objects.for_user(owner).get()
    assert token.scopes == ["chat"] and token.expires_at > timezone.now() + timedelta(days=6)
    page = owner_client.get(reverse("tokens")).content.decode()
    assert '<td class="token-scopes">Chat</td>' in page
    assert f'<td class="token-expiry">{token.expires_at:%Y-%m-%d %H:%M}</td>' in page
    assert 'value="review"' not in page  # not offered to non-staff


def test_the_tokens_page_refuses_the_review_scope_to_non_staff(owner_client):
    response = owner_client.post(reverse("tokens"), {"name": "sneaky", "scopes": ["review"]})

    assert response.status_code == 200 and b'id="new-token"' not in response.content
    assert "not one of the available choices" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_an_expired_token_shows_as_expired_with_no_revoke_button(owner_client, owner):
    token, _ = do_issue_api_token(owner, "old", expires_in_days=1)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(days=1))

    page = owner_client.get(reverse("tokens")).content.decode()

    assert "expired" in page and reverse("revoke-token", args=[token.pk]) not in page


def test_the_hyperparameters_action_needs_the_review_scope(owner, staff, owner_dataset, monkeypatch):
    """Staff-only like approval: a staff member's read or chat token must not change a run."""
    monkeypatch.setattr("training.tasks.train_model.delay", lambda run_id: None)  # the run stays queued
    from training.actions import do_start_training_run

    run = do_start_training_run(owner, owner_dataset)
    url = f"/api/v1/training-runs/{run.pk}/hyperparameters/"
    body = {"hyperparameters": {"lora_r": 4}}
    read_client, _ = client_with(staff, scopes=["read", "chat"])
    review_client, _ = client_with(staff, scopes=["review"])

    refused = read_client.patch(url, body, format="json")

    assert refused.status_code == 403 and "“review” scope" in refused.json()["detail"]
    run.refresh_from_db()
    assert run.hyperparameters["lora_r"] != 4
    assert review_client.patch(url, body, format="json").status_code == 200
    run.refresh_from_db()
    assert run.hyperparameters["lora_r"] == 4
