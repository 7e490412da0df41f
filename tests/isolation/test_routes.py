"""Tenant isolation on every route of the site, for six identities.

The routes come from the URL resolver: each one must be a row of the matrix
(tests/isolation/routes.py) with exactly the methods it accepts, so a new route or
a new method fails here until it is classified. Each row is hit by another user, their
API token, an anonymous caller, a staff member who owns nothing, a user the owner invited, and the owner; after
every request but the owner's (and staff review), every row the owner has and every
file in the data directory are as they were, and the answer shows none of the owner's data.
"""

import json

import pytest
from django.urls import URLResolver, get_resolver, resolve, reverse

from accounts.models import ApiToken

from .conftest import IDENTITIES
from .routes import MINE, OBJECT, OK, PUBLIC, REFUSED, ROUTES, SERVED, STAFF, VISITOR, WIDGET, Route
from .world import AnyIds, owned_models, owner_path, snapshot

pytestmark = pytest.mark.django_db
METHODS = ("get", "head", "post", "put", "patch", "delete", "options")


def site_routes() -> set[str]:
    """Every URL pattern of the site but the admin's, as the resolver spells its route."""

    def walk(patterns, prefix):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace != "admin":
                    yield from walk(pattern.url_patterns, prefix + str(pattern.pattern).removeprefix("^"))
            else:
                yield prefix + str(pattern.pattern).removeprefix("^")  # as ResolverMatch.route joins them

    return set(walk(get_resolver().url_patterns, ""))


def route_of(row: Route) -> str:
    return resolve(row.fill(AnyIds())[0]).route


def hit(client, row: Route, world):
    path, data = row.fill(world)
    data = {key: getattr(client, "visitor_id", "") if value == VISITOR else value for key, value in data.items()}
    if row.is_api and row.method not in ("get", "head"):
        response = getattr(client, row.method)(path, data, format="json")
    elif row.kind == WIDGET and row.method == "post":  # as the widget sends it: JSON as text/plain, no preflight
        response = client.post(path, json.dumps(data), content_type="text/plain")
    else:
        response = getattr(client, row.method)(path, data)
    body = b"".join(response.streaming_content) if response.streaming else response.content  # read as a client would
    return response, body.decode(errors="replace")


def owner_markers(world) -> list[str]:
    """Text that gives the owner's data away: the source, a sentence of the document, the question, the token."""
    return [
        world.filename,
        "linden trees in the park",
        world.question,
        world.unanswered_question,
        world.token.key_prefix,
    ]


def check_outcome(response, row: Route, identity: str):
    expected, status = row.outcome(identity), response.status_code
    to_login = status == 302 and response["Location"].startswith(reverse("login") + "?next=")
    where = f"{identity}: {row}: {status}"
    if expected == OK:
        assert status < 400 and not to_login, where
    elif expected == SERVED:
        assert status < 500 and not to_login, where
    elif expected == REFUSED:
        assert to_login if not row.is_api else status in (401, 403), where
    else:
        assert status in (expected if isinstance(expected, set) else {expected}), where


def test_every_route_is_a_row_of_the_matrix():
    assert {route_of(row) for row in ROUTES} == site_routes()


def test_each_route_takes_exactly_the_methods_of_its_rows(staff):
    """Probed as staff on ids that exist nowhere: a method a route takes answers anything but 405,
    any other 405 (OPTIONS included: DRF would answer it with 200 and a description of the view)."""
    from django.test import Client

    declared = {}
    for row in ROUTES:
        declared.setdefault(route_of(row), (row, set()))[1].add(row.method)
    for route, (row, methods) in sorted(declared.items()):
        path, _ = row.fill(AnyIds())
        taken = set()
        for method in METHODS:
            client = Client()
            client.force_login(staff)
            if getattr(client, method)(path).status_code != 405:
                taken.add(method)
        assert taken == methods, f"{route} ({path}) takes {sorted(taken)}; the matrix has {sorted(methods)}"


@pytest.mark.parametrize("row", ROUTES, ids=str)
def test_each_identity_gets_what_the_matrix_says_and_changes_nothing_of_the_owners(
    row, owner_world, identity_client, other, staff
):
    if row.kind == PUBLIC:
        owner_world.source  # noqa: B018 (the owner has data that a public page must not show)
    else:
        owner_world.build_all()
    row.fill(owner_world)  # builds what the row names before the first snapshot
    acting_user = {"other": other, "other_token": other, "staff": staff, "invited": owner_world.invited}
    for identity in IDENTITIES:
        skip = [acting_user[identity]] if identity in acting_user and row.kind in (MINE, PUBLIC) else []
        client = identity_client(identity, row.is_api)  # signing in changes the signed-in user's own row
        before = snapshot(owner_world.user, skip_users=skip)
        response, body = hit(client, row, owner_world)
        check_outcome(response, row, identity)
        if row.may_change_owner_data(identity):
            continue
        if not row.audience_writes:
            assert snapshot(owner_world.user, skip_users=skip) == before, f"{identity} changed the owner's data: {row}"
        for marker in owner_markers(owner_world):
            assert marker not in body, f"{identity} was shown the owner's {marker!r}: {row}"


@pytest.mark.parametrize("row", [r for r in ROUTES if r.kind in (OBJECT, STAFF) and "{" in r.path], ids=str)
def test_a_malformed_id_is_refused_not_a_server_error(row, identity_client):
    identity = "staff" if row.kind == STAFF else "owner"

    response, _ = hit(identity_client(identity, row.is_api), row, AnyIds("abc"))

    assert response.status_code in (400, 404), f"{row}: {response.status_code}"


def test_every_owned_model_is_in_the_snapshot_and_scoped_by_for_user(owner_world, other_world):
    """The snapshot is not vacuous: a built world has rows in every owned model, each reached through for_user."""
    owner_world.build_all()
    other_world.build_all()
    rows = snapshot(owner_world.user)["rows"]
    models = owned_models()

    assert {m.__name__ for m in models} >= {"Source", "Chunk", "Message", "PromptTrace", "ModelVersionEvent", "Twin"}
    for model in models:
        assert rows[model.__name__], f"the owner has no {model.__name__}: the snapshot would not notice a change"
        mine = set(model.objects.for_user(owner_world.user).values_list("pk", flat=True))
        assert mine == set(model.objects.filter(**{owner_path(model): owner_world.user}).values_list("pk", flat=True))
        assert not mine & set(model.objects.for_user(other_world.user).values_list("pk", flat=True))
    assert ApiToken.objects.for_user(None).count() == 0
