"""The admin, isolated: its pages are for staff only, on every model a user owns.

Every admin route is classified: a registered model's standard pages (changelist, add,
change, delete, history, and the bare-id redirect), a known custom page, or a page of
the admin site itself. For each owned model, the owner, another user, another user's
API token and an anonymous caller are sent to the admin login from every page, by GET
and by POST, and nothing of the owner's changes; staff read every page (admin review).
"""

import pytest
from django.contrib import admin
from django.urls import URLResolver, get_resolver, reverse

from .conftest import IDENTITIES
from .world import owned_models, snapshot

pytestmark = pytest.mark.django_db

PAGES = ("changelist", "add", "change", "delete", "history")
OBJECT_PAGES = ("change", "delete", "history")
SITE_PAGES = {"index", "login", "logout", "password_change", "password_change_done", "autocomplete", "jsi18n"}
SITE_PAGES |= {"view_on_site", "app_list"}
CUSTOM_PAGES = {"auth_user_password_change", "training_modelversion_review"}  # POST-only review: tested below
CATCH_ALL = "admin/(?P<url>.*)$"


def admin_routes() -> list[tuple[str, str | None]]:
    """(route, name) of every admin URL pattern."""

    def walk(patterns, prefix):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern), pattern.name

    resolver = next(p for p in get_resolver().url_patterns if getattr(p, "namespace", None) == "admin")
    return list(walk(resolver.url_patterns, str(resolver.pattern)))


def model_pages(model) -> set[str]:
    return {f"{model._meta.app_label}_{model._meta.model_name}_{page}" for page in PAGES}


def test_every_admin_route_is_classified():
    registered = admin.site._registry
    standard = set().union(*(model_pages(model) for model in registered))
    redirects = {f"admin/{m._meta.app_label}/{m._meta.model_name}/<path:object_id>/" for m in registered}
    unclassified = [
        (route, name)
        for route, name in admin_routes()
        if name not in standard | SITE_PAGES | CUSTOM_PAGES and route not in redirects | {CATCH_ALL}
    ]

    assert not unclassified


def test_every_owned_model_the_admin_shows_is_tested():
    shown = [m for m in owned_models() if m in admin.site._registry]

    assert {m.__name__ for m in shown} >= {"Source", "Document", "Chunk", "ModelVersion", "PromptTrace", "ApiToken"}


def to_admin_login(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize(
    "model", [m for m in owned_models() if m in admin.site._registry], ids=lambda m: m._meta.label_lower
)
def test_only_staff_reach_the_admin_pages_of_an_owned_model(model, owner_world, identity_client):
    row = owner_world.object_for(model)
    info = f"admin:{model._meta.app_label}_{model._meta.model_name}"
    paths = {page: reverse(f"{info}_{page}", args=[row.pk] if page in OBJECT_PAGES else []) for page in PAGES}
    paths["bare id"] = paths["change"].removesuffix("change/")
    for identity in IDENTITIES:
        client = identity_client(identity, api=False)
        before = snapshot(owner_world.user)
        for page, path in paths.items():
            if identity == "staff":  # admin review: every page but "add" (rows come from the pipelines)
                expected = {"bare id": {302}, "add": {200, 403}}.get(page, {200})
                assert client.get(path).status_code in expected, f"staff: GET {path}"
                continue
            for method in ("get", "head", "options"):  # the admin's views take any method: all are refused
                assert to_admin_login(getattr(client, method)(path)), f"{identity}: {method.upper()} {path}"
            data = {"post": "yes", "action": "delete_selected", "_selected_action": [row.pk]}
            assert to_admin_login(client.post(path, data)), f"{identity}: POST {path}"
        if identity != "staff":
            assert snapshot(owner_world.user) == before, f"{identity} changed the owner's data through the admin"


def test_only_staff_review_a_model_in_the_admin(owner_world, identity_client):
    model_version = owner_world.model_version
    path = reverse("admin:training_modelversion_review", args=[model_version.pk])
    for identity in IDENTITIES:
        client = identity_client(identity, api=False)
        if identity == "staff":
            assert client.post(path, {"_review": "approve"}).status_code == 302
            continue
        before = snapshot(owner_world.user)
        assert to_admin_login(client.post(path, {"_review": "approve"})), identity
        assert snapshot(owner_world.user) == before, identity
    model_version.refresh_from_db()
    assert model_version.status == "production"


@pytest.mark.parametrize("name", ["index", "password_change", "auth_user_password_change", "accounts_user_changelist"])
def test_the_admin_site_is_for_staff_only(name, owner_world, identity_client):
    path = reverse(f"admin:{name}", args=[owner_world.user.pk] if name == "auth_user_password_change" else [])
    for identity in IDENTITIES:
        response = identity_client(identity, api=False).get(path)
        assert response.status_code == 200 if identity == "staff" else to_admin_login(response), identity
