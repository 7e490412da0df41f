"""Signing up creates the user and their twin, and signs them in."""

import pytest
from django.urls import reverse

from accounts.models import Twin, User

pytestmark = pytest.mark.django_db

GOOD = {
    "username": "dana",
    "email": "dana@example.com",
    "twin_name": "Dana's twin",
    "password1": "a long and unusual passphrase",
    "password2": "a long and unusual passphrase",
}


def test_the_signup_page_renders(anon_client):
    response = anon_client.get(reverse("signup"))

    assert response.status_code == 200
    assert b'name="username"' in response.content and b'name="twin_name"' in response.content


def test_signing_up_creates_the_user_and_their_twin_and_signs_in(anon_client):
    response = anon_client.post(reverse("signup"), GOOD)

    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    user = User.objects.get(username="dana")
    assert user.email == "dana@example.com" and user.check_password(GOOD["password1"])
    assert not user.is_staff
    assert Twin.objects.get(owner=user).name == "Dana's twin"
    assert int(anon_client.session["_auth_user_id"]) == user.pk
    assert anon_client.get(reverse("dashboard")).status_code == 200


def test_the_twin_is_named_after_the_user_by_default(anon_client):
    anon_client.post(reverse("signup"), {**GOOD, "twin_name": ""})

    assert Twin.objects.get(owner__username="dana").name == "dana"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"password2": "something else entirely"}, "password2", "didn’t match"),
        ({"password1": "short", "password2": "short"}, "password2", "too short"),
        ({"password1": "password", "password2": "password"}, "password2", "too common"),
        ({"username": ""}, "username", "required"),
        ({"username": "bad name!"}, "username", "valid username"),
        ({"email": "not-an-email"}, "email", "valid email"),
    ],
)
def test_bad_signups_show_the_errors_and_create_nothing(anon_client, changes, field, message):
    response = anon_client.post(reverse("signup"), {**GOOD, **changes})

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors and any(message in e for e in errors[field])
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not User.objects.exists() and not Twin.objects.exists()
    assert "_auth_user_id" not in anon_client.session


def test_a_taken_username_is_refused(anon_client, owner):
    response = anon_client.post(reverse("signup"), {**GOOD, "username": owner.username})

    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert User.objects.filter(username=owner.username).count() == 1


def test_a_signed_in_user_is_sent_to_the_dashboard(owner_client):
    response = owner_client.get(reverse("signup"))

    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
