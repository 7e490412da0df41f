"""Logging in and out, and what anonymous visitors see."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"


def test_the_login_page_renders(anon_client):
    response = anon_client.get(reverse("login"))

    assert response.status_code == 200
    assert b'name="username"' in response.content and b'name="password"' in response.content


def test_correct_credentials_sign_in_and_open_the_dashboard(anon_client, owner):
    response = anon_client.post(reverse("login"), {"username": "alice", "password": PASSWORD})

    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    assert int(anon_client.session["_auth_user_id"]) == owner.pk


def test_login_returns_to_the_page_that_asked_for_it(anon_client, owner):
    response = anon_client.post(
        reverse("login"), {"username": "alice", "password": PASSWORD, "next": reverse("sources")}
    )

    assert response["Location"] == reverse("sources")


def test_login_never_redirects_off_site(anon_client, owner):
    response = anon_client.post(
        reverse("login"), {"username": "alice", "password": PASSWORD, "next": "https://evil.example/"}
    )

    assert response["Location"] == reverse("dashboard")


def test_a_wrong_password_shows_an_error_and_does_not_sign_in(anon_client, owner):
    response = anon_client.post(reverse("login"), {"username": "alice", "password": "wrong"})

    assert response.status_code == 200
    assert "enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in anon_client.session


def test_an_inactive_user_cannot_sign_in(anon_client, owner):
    owner.is_active = False
    owner.save()

    anon_client.post(reverse("login"), {"username": "alice", "password": PASSWORD})

    assert "_auth_user_id" not in anon_client.session


def test_logging_out_signs_out(owner_client):
    response = owner_client.post(reverse("logout"))

    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert "_auth_user_id" not in owner_client.session
    assert owner_client.get(reverse("dashboard")).status_code == 302


def test_anonymous_visitors_get_the_home_page(anon_client):
    response = anon_client.get(reverse("home"))

    assert response.status_code == 200
    assert reverse("signup").encode() in response.content


def test_signed_in_users_go_from_home_to_the_dashboard(owner_client):
    response = owner_client.get(reverse("home"))

    assert response.status_code == 302 and response["Location"] == reverse("dashboard")


def test_anonymous_visitors_are_sent_to_login_with_a_way_back(anon_client):
    response = anon_client.get(reverse("dashboard"))

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={reverse('dashboard')}"
