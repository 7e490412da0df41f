"""Password guessing and bulk signups are slowed down, per username and per client address.

Every test runs against the configured limits (settings.py, not test overrides) and
the real Redis cache that production uses for the counters.
"""

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import ApiToken, User
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"
LIMIT = settings.AXES_FAILURE_LIMIT
COOLOFF_SECONDS = int(settings.AXES_COOLOFF_TIME.total_seconds())


def rate_limit(scope: str) -> int:
    return int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][scope].split("/")[0])


def web_login(username, password, address="198.51.100.7", **headers):
    return Client(REMOTE_ADDR=address, **headers).post(reverse("login"), {"username": username, "password": password})


def signed_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == reverse("dashboard")


def assert_locked_page(response):
    assert response.status_code == 429
    assert response["Retry-After"] == str(COOLOFF_SECONDS)
    assert "Too many failed sign-in attempts" in response.content.decode()


def test_the_limits_are_the_documented_ones():
    """The figures the other tests count against: a regression here would weaken every one of them."""
    assert LIMIT == 5 and COOLOFF_SECONDS == 15 * 60
    assert settings.AXES_LOCKOUT_PARAMETERS == ["ip_address"]
    assert rate_limit("token") == 10 and rate_limit("signup") == 10
    assert settings.REST_FRAMEWORK["NUM_PROXIES"] == 0


def test_repeated_wrong_passwords_lock_the_web_login_even_for_the_right_one(owner):
    for _ in range(LIMIT - 1):
        response = web_login("alice", "wrong guess")
        assert response.status_code == 200 and "enter a correct username" in response.content.decode()
    assert_locked_page(web_login("alice", "wrong guess"))  # the failure that reaches the limit

    response = web_login("alice", PASSWORD)

    assert_locked_page(response)
    assert "_auth_user_id" not in response.client.session


def test_guesses_from_one_address_do_not_lock_the_user_out_elsewhere(owner):
    """Anyone who knows a username could otherwise keep its owner out: only the guesser's address is locked."""
    for _ in range(LIMIT):
        web_login("alice", "wrong guess", address="203.0.113.66")

    assert_locked_page(web_login("alice", PASSWORD, address="203.0.113.66"))  # the attacker's address
    assert signed_in(web_login("alice", PASSWORD, address="203.0.113.200"))  # the owner, from home


def test_an_address_is_locked_whatever_usernames_it_guesses(owner, other):
    for attempt in range(LIMIT):
        web_login(f"someone{attempt}", "wrong guess", address="192.0.2.50")

    assert_locked_page(web_login("bob", PASSWORD, address="192.0.2.50"))
    assert signed_in(web_login("bob", PASSWORD, address="192.0.2.51"))


def test_a_forged_forwarded_for_header_does_not_reset_the_count(owner):
    """No proxy is configured (NUM_PROXIES = 0), so the header is ignored entirely."""
    for attempt in range(LIMIT):
        web_login(f"someone{attempt}", "wrong", address="192.0.2.60", HTTP_X_FORWARDED_FOR=f"10.0.0.{attempt}")

    response = web_login("alice", PASSWORD, address="192.0.2.60", HTTP_X_FORWARDED_FOR="10.9.9.9")

    assert_locked_page(response)


def test_behind_one_proxy_only_the_address_it_appended_counts(settings, owner):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    for attempt in range(LIMIT):
        forged = f"10.0.0.{attempt}, 198.51.100.99"  # the client's forgery, then what the proxy appended
        web_login(f"someone{attempt}", "wrong", address="127.0.0.1", HTTP_X_FORWARDED_FOR=forged)

    locked = web_login("alice", PASSWORD, address="127.0.0.1", HTTP_X_FORWARDED_FOR="10.1.1.1, 198.51.100.99")
    elsewhere = web_login("alice", PASSWORD, address="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.100")

    assert_locked_page(locked)
    assert signed_in(elsewhere)


def test_the_admin_login_is_locked_the_same_way(staff):
    client = Client(REMOTE_ADDR="192.0.2.70")
    for attempt in range(LIMIT):
        response = client.post("/admin/login/", {"username": "carol", "password": "wrong"})
        assert response.status_code == (200 if attempt < LIMIT - 1 else 429)

    response = client.post("/admin/login/?next=/admin/", {"username": "carol", "password": PASSWORD})

    assert_locked_page(response)
    assert client.get("/admin/").status_code == 302  # still not signed in


def ask_for_token(client, username="alice", password=PASSWORD):
    return client.post("/api/v1/auth/token/", {"username": username, "password": password}, format="json")


def test_the_token_endpoint_locks_after_wrong_passwords_and_answers_json(owner):
    client = APIClient(REMOTE_ADDR="192.0.2.80")
    for attempt in range(LIMIT):
        assert ask_for_token(client, password="wrong").status_code == (400 if attempt < LIMIT - 1 else 429)

    response = ask_for_token(client)

    assert response.status_code == 429
    assert response["Retry-After"] == str(COOLOFF_SECONDS)
    assert "Too many failed sign-in attempts" in response.json()["detail"]
    assert not ApiToken.objects.exists()


def test_a_lockout_on_the_api_also_holds_on_the_web_login(owner):
    client = APIClient(REMOTE_ADDR="192.0.2.81")
    for _ in range(LIMIT):
        ask_for_token(client, password="wrong")

    assert_locked_page(web_login("alice", PASSWORD, address="192.0.2.81"))


def test_the_token_endpoint_is_throttled_per_address_and_a_forged_header_does_not_help(owner):
    client = APIClient(REMOTE_ADDR="192.0.2.90")
    for _ in range(rate_limit("token")):
        assert ask_for_token(client).status_code == 201

    client.credentials(HTTP_X_FORWARDED_FOR="10.2.2.2")
    response = ask_for_token(client)

    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert ApiToken.objects.count() == rate_limit("token")
    assert ask_for_token(APIClient(REMOTE_ADDR="192.0.2.91")).status_code == 201


SIGNUP = {"email": "", "password1": "a long and unusual passphrase", "password2": "a long and unusual passphrase"}


def test_signups_are_limited_per_address():
    for attempt in range(rate_limit("signup")):
        response = Client(REMOTE_ADDR="192.0.2.100").post(reverse("signup"), {**SIGNUP, "username": f"new{attempt}"})
        assert response.status_code == 302

    forged = Client(REMOTE_ADDR="192.0.2.100", HTTP_X_FORWARDED_FOR="10.3.3.3")
    response = forged.post(reverse("signup"), {**SIGNUP, "username": "one-too-many"})

    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert "Too many signups from your address" in response.content.decode()
    assert not User.objects.filter(username="one-too-many").exists()
    assert User.objects.count() == rate_limit("signup")
    other_address = Client(REMOTE_ADDR="192.0.2.101").post(reverse("signup"), {**SIGNUP, "username": "elsewhere"})
    assert other_address.status_code == 302


def test_failed_signups_count_too(db):
    """A client probing usernames or passwords gets the same budget as one creating accounts."""
    client = Client(REMOTE_ADDR="192.0.2.110")
    for _ in range(rate_limit("signup")):
        assert client.post(reverse("signup"), {**SIGNUP, "username": "bad name!"}).status_code == 200

    assert client.post(reverse("signup"), {**SIGNUP, "username": "fine"}).status_code == 429
    assert client.get(reverse("signup")).status_code == 200  # the page itself stays readable
    assert not User.objects.exists()


def test_a_locked_out_address_is_told_so_even_with_the_right_password_not_told_it_is_wrong(owner):
    make_user("dave")
    for _ in range(LIMIT):
        web_login("dave", "wrong", address="192.0.2.120")

    response = web_login("dave", PASSWORD, address="192.0.2.120")

    assert_locked_page(response)
    assert "enter a correct username" not in response.content.decode()
