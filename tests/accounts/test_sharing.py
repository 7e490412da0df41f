"""Sharing a twin: invitations by username or email (bound at signup), groups, revocation,
the owner's Sharing page and the /api/v1/sharing/ endpoints."""

import pytest
from django.urls import reverse

from accounts.models import AudienceGroup, TwinAccess
from accounts.sharing import (
    SharingRefused,
    do_create_group,
    do_delete_group,
    do_invite,
    do_move_member,
    do_rename_group,
    do_revoke,
    may_chat,
    shared_twins,
)
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def test_an_invitation_by_username_lets_that_user_chat_and_nobody_else(owner, other):
    reader = make_user("dave")
    assert not may_chat(reader, owner)

    access = do_invite(owner, "dave")

    assert access.member == reader and may_chat(reader, owner) and may_chat(owner, owner)
    assert not may_chat(other, owner) and not may_chat(owner, reader)  # an invitation goes one way
    assert list(shared_twins(reader)) == [owner] and list(shared_twins(other)) == []
    assert do_invite(owner, "dave") == access  # inviting again changes nothing


def test_an_invitation_by_email_waits_for_the_address_to_sign_up(owner, client):
    access = do_invite(owner, "New.Reader@Example.com")
    assert access.member is None and access.email == "new.reader@example.com"

    client.post(
        reverse("signup"),
        {
            "username": "newreader",
            "email": "new.reader@example.com",
            "password1": "a long pass phrase 9",
            "password2": "a long pass phrase 9",
        },
    )

    access.refresh_from_db()
    assert access.member.username == "newreader" and may_chat(access.member, owner)


def test_an_email_of_an_existing_user_invites_that_user(owner, other):
    assert do_invite(owner, "BOB@example.com").member == other


@pytest.mark.parametrize("who", ["", "nobody-by-that-name", "not an email@", "alice"])
def test_bad_invitations_are_refused_with_a_reason(owner, who):
    with pytest.raises(SharingRefused):
        do_invite(owner, who)
    assert not TwinAccess.objects.exists()


def test_revoking_one_person_or_a_whole_group(owner):
    readers = do_create_group(owner, "readers")
    dave, erin, fay = make_user("dave"), make_user("erin"), make_user("fay")
    do_invite(owner, "dave", readers)
    do_invite(owner, "erin", readers)
    fays = do_invite(owner, "fay")

    assert do_revoke(owner, group=readers) == 2
    assert not may_chat(dave, owner) and not may_chat(erin, owner) and may_chat(fay, owner)
    do_revoke(owner, access=fays)
    assert not may_chat(fay, owner) and list(shared_twins(fay)) == []
    assert do_invite(owner, "fay").pk != fays.pk  # invited again: a new invitation


def test_groups_are_renamed_deleted_and_members_moved(owner, other):
    readers, students = do_create_group(owner, "readers"), do_create_group(owner, "students")
    make_user("dave")
    access = do_invite(owner, "dave", readers)

    do_move_member(access, students)
    assert access.group == students
    with pytest.raises(SharingRefused, match="already have"):
        do_rename_group(readers, "students")
    assert do_rename_group(readers, "fans").name == "fans"
    do_delete_group(students)
    access.refresh_from_db()
    assert access.group is None and access.revoked_at is None  # still invited
    with pytest.raises(SharingRefused, match="not yours"):
        do_move_member(access, do_create_group(other, "bob's"))


def test_the_sharing_page_invites_groups_revokes_and_shares_sources(owner_client, owner, owner_source):
    make_user("dave")
    assert owner_client.get(reverse("dashboard")).content.count(b'href="/sharing/"') == 1  # linked from the nav
    owner_client.post(reverse("sharing-add-group"), {"name": "readers"})
    group = AudienceGroup.objects.get(owner=owner)
    owner_client.post(reverse("sharing"), {"who": "dave", "group": group.pk})
    page = owner_client.get(reverse("sharing")).content.decode()
    assert "dave" in page and "readers" in page and owner_source.name in page and "private" in page

    response = owner_client.post(
        reverse("source-audience", args=[owner_source.pk]), {"audience": "on"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and "shared" in response.content.decode()
    owner_source.refresh_from_db()
    assert owner_source.audience

    access = TwinAccess.objects.get(owner=owner)
    owner_client.post(reverse("sharing-revoke", args=[access.pk]))
    access.refresh_from_db()
    assert access.revoked_at is not None


def test_a_refused_invitation_is_explained_on_the_page(owner_client):
    response = owner_client.post(reverse("sharing"), {"who": "nobody"}, follow=True)
    assert "There is no user “nobody”" in response.content.decode()


def test_the_sharing_api(owner_api, owner, other_api, owner_source):
    make_user("dave")
    group = owner_api.post("/api/v1/sharing/groups/", {"name": "readers"}, format="json").json()
    created = owner_api.post("/api/v1/sharing/invitations/", {"who": "dave", "group": group["id"]}, format="json")
    assert created.status_code == 201 and created.json()["member"] == "dave" and created.json()["active"]
    assert owner_api.post("/api/v1/sharing/invitations/", {"who": "x@"}, format="json").status_code == 400
    invitation = created.json()["id"]

    assert [row["id"] for row in owner_api.get("/api/v1/sharing/invitations/").json()["results"]] == [invitation]
    assert owner_api.get("/api/v1/sharing/groups/").json()["results"][0]["members"] == 1
    assert (
        owner_api.patch(f"/api/v1/sharing/invitations/{invitation}/", {"group": None}, format="json").json()["group"]
        is None
    )
    assert (
        owner_api.patch(f"/api/v1/sharing/groups/{group['id']}/", {"name": "fans"}, format="json").json()["name"]
        == "fans"
    )

    sources = owner_api.get("/api/v1/sharing/sources/").json()["results"]
    assert sources == [
        {"id": owner_source.pk, "name": owner_source.name, "kind": "upload", "category": "article", "audience": False}
    ]
    shared = owner_api.patch(f"/api/v1/sharing/sources/{owner_source.pk}/", {"audience": True}, format="json")
    assert shared.status_code == 200 and shared.json()["audience"] is True

    # another owner reaches none of it
    assert other_api.get(f"/api/v1/sharing/invitations/{invitation}/").status_code == 404
    assert other_api.post(f"/api/v1/sharing/invitations/{invitation}/revoke/").status_code == 404
    assert (
        other_api.patch(f"/api/v1/sharing/sources/{owner_source.pk}/", {"audience": False}, format="json").status_code
        == 404
    )
    assert other_api.get("/api/v1/sharing/invitations/").json()["results"] == []

    revoked = owner_api.post(f"/api/v1/sharing/invitations/{invitation}/revoke/")
    assert revoked.json()["active"] is False and revoked.json()["revoked_at"]
    assert owner_api.delete(f"/api/v1/sharing/groups/{group['id']}/").status_code == 204


def test_a_read_token_reads_sharing_and_changes_nothing(owner, owner_source):
    from rest_framework.test import APIClient

    from accounts.actions import do_issue_api_token

    _, raw = do_issue_api_token(owner, "reader", scopes=["read"])
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/sharing/sources/").status_code == 200
    assert (
        client.patch(f"/api/v1/sharing/sources/{owner_source.pk}/", {"audience": True}, format="json").status_code
        == 403
    )
    assert client.post("/api/v1/sharing/invitations/", {"who": "bob"}, format="json").status_code == 403
