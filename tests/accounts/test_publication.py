"""The owner's "Publish" page and /api/v1/sharing/publication/: publish, the address, the sites that may
embed the widget, the monthly quota, a new widget key and the snippet to paste."""

import pytest

from accounts.models import Publication
from accounts.publication import PublicationRefused, do_ensure_publication, normalize_origin

pytestmark = pytest.mark.django_db


def test_the_page_starts_unpublished_and_the_owner_publishes(owner_client, owner):
    page = owner_client.get("/sharing/publication/")
    publication = Publication.objects.get(owner=owner)
    assert page.status_code == 200 and not publication.enabled and publication.slug == "alice"
    assert f"data-twin-key=&quot;{publication.widget_key}&quot;" in page.content.decode()  # the snippet

    saved = owner_client.post(
        "/sharing/publication/",
        {
            "enabled": "on",
            "slug": "alice-bees",
            "allowed_origins": "https://Blog.example/\nhttp://localhost:8080",
            "monthly_quota": "40",
        },
    )

    assert saved.status_code == 302
    publication.refresh_from_db()
    assert publication.enabled and publication.slug == "alice-bees" and publication.monthly_quota == 40
    assert publication.allowed_origins == ["https://blog.example", "http://localhost:8080"]
    assert "http://testserver/t/alice-bees/" in owner_client.get("/sharing/publication/").content.decode()


def test_a_bad_origin_or_a_taken_address_is_refused_with_the_reason(owner_client, owner, other):
    do_ensure_publication(other)  # has the slug "bob"
    bad = owner_client.post(
        "/sharing/publication/", {"slug": "x", "allowed_origins": "https://blog.example/posts", "monthly_quota": "5"}
    )
    assert bad.status_code == 400 and "no path" in bad.content.decode()
    taken = owner_client.post("/sharing/publication/", {"slug": "bob", "monthly_quota": "5"})
    assert taken.status_code == 400 and "taken" in taken.content.decode()
    assert Publication.objects.get(owner=owner).slug == "alice"


def test_rotating_the_key_changes_it(owner_client, owner):
    old = do_ensure_publication(owner).widget_key
    assert owner_client.post("/sharing/publication/rotate-key/").status_code == 302
    new = Publication.objects.get(owner=owner).widget_key
    assert new != old and new.startswith("tww_")


@pytest.mark.parametrize(
    "value, origin",
    [
        ("https://blog.example", "https://blog.example"),
        ("HTTPS://Blog.Example:443/", "https://blog.example"),
        ("http://127.0.0.1:8001", "http://127.0.0.1:8001"),
    ],
)
def test_origins_are_normalized_as_a_browser_sends_them(value, origin):
    assert normalize_origin(value) == origin


@pytest.mark.parametrize("value", ["*", "blog.example", "ftp://blog.example", "https://*.example", "https://a.b/c", ""])
def test_anything_but_an_origin_is_refused(value):
    with pytest.raises(PublicationRefused):
        normalize_origin(value)


def test_the_api_reads_and_changes_the_publication(owner_api, owner, other):
    got = owner_api.get("/api/v1/sharing/publication/")
    assert got.status_code == 200 and got.json()["enabled"] is False and got.json()["answers_this_month"] == 0
    key = got.json()["widget_key"]
    assert key in got.json()["embed_snippet"]

    patched = owner_api.patch("/api/v1/sharing/publication/", {"enabled": True, "monthly_quota": 7}, format="json")
    assert patched.status_code == 200 and patched.json()["enabled"] and patched.json()["slug"] == "alice"
    put = owner_api.put(
        "/api/v1/sharing/publication/",
        {"enabled": True, "slug": "my-twin", "allowed_origins": ["https://blog.example/"], "monthly_quota": 9},
        format="json",
    )
    assert put.status_code == 200, put.json()
    assert put.json()["allowed_origins"] == ["https://blog.example"] and put.json()["public_url"].endswith(
        "/t/my-twin/"
    )
    assert (
        owner_api.patch("/api/v1/sharing/publication/", {"widget_key": "mine"}, format="json").json()["widget_key"]
        == key
    )  # read-only

    bad = owner_api.patch("/api/v1/sharing/publication/", {"allowed_origins": ["*"]}, format="json")
    assert (bad.status_code == 400 and "origin" in str(bad.json())) or "address" in str(bad.json())
    do_ensure_publication(other)
    taken = owner_api.patch("/api/v1/sharing/publication/", {"slug": "bob"}, format="json")
    assert taken.status_code == 400 and "taken" in str(taken.json())

    rotated = owner_api.post("/api/v1/sharing/publication/rotate-key/")
    assert rotated.status_code == 200 and rotated.json()["widget_key"] != key
    assert Publication.objects.get(owner=owner).widget_key == rotated.json()["widget_key"]


def test_the_api_needs_a_full_access_token_to_change_it(owner):
    from rest_framework.test import APIClient

    from accounts.actions import do_issue_api_token
    from tests.conftest import api_client_for

    _, raw = do_issue_api_token(owner, "reader", scopes=["read"])
    reader = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert reader.get("/api/v1/sharing/publication/").status_code == 200
    assert reader.patch("/api/v1/sharing/publication/", {"enabled": True}, format="json").status_code == 403
    assert reader.post("/api/v1/sharing/publication/rotate-key/").status_code == 403
    assert api_client_for(None).get("/api/v1/sharing/publication/").status_code in (401, 403)
