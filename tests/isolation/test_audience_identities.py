"""The audience routes for issue 21's two new identities: a user the owner invited (who has talked to
the owner's twin) and an anonymous visitor of the owner's published twin (who has too).

Neither may see the owner's Audience pages: the invited user, signed in, gets their own (empty)
audience and a 404 for the owner's conversations and answers; the visitor is sent to log in (pages)
or refused (API); and the owner's rows stay as they were. (The matrix in routes.py covers the
other five identities; the sharing branch adds these two to it for every route.)
"""

from dataclasses import replace

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import Publication, TwinAccess
from tests.audience import exchange
from tests.conftest import api_client_for, make_user

from .routes import MINE, OBJECT, REFUSED, ROUTES, SERVED
from .test_routes import check_outcome, hit, owner_markers
from .world import snapshot

pytestmark = pytest.mark.django_db
AUDIENCE_ROUTES = [row for row in ROUTES if "/audience/" in row.path]


@pytest.fixture
def invited(owner):
    """Dave, invited to the owner's twin, who asked it something (his conversation is the owner's row)."""
    user = make_user("dave")
    TwinAccess.objects.create(owner=owner, member=user)
    exchange(owner, "Dave asks the twin about queen rearing", asker=user)
    return user


@pytest.fixture
def published(owner):
    return Publication.objects.create(owner=owner, enabled=True, slug="alice", widget_key=Publication.new_widget_key())


def test_there_are_audience_routes_to_check():
    assert {row.kind for row in AUDIENCE_ROUTES} == {MINE, OBJECT} and len(AUDIENCE_ROUTES) >= 10


@pytest.mark.parametrize("row", AUDIENCE_ROUTES, ids=str)
def test_invited_users_and_visitors_never_reach_the_owners_audience(row, owner_world, invited, published):
    owner_world.build_all()
    row.fill(owner_world)
    if row.is_api:
        as_invited, as_visitor = api_client_for(invited), APIClient()
    else:
        as_invited, as_visitor = Client(), Client()
        as_invited.force_login(invited)
    for identity, client, expected in [
        ("invited", as_invited, 404 if row.kind == OBJECT else SERVED),
        ("visitor", as_visitor, REFUSED),
    ]:
        before = snapshot(owner_world.user, skip_users=[invited])
        response, body = hit(client, row, owner_world)
        check_outcome(response, replace(row, expect={identity: expected}), identity)
        assert snapshot(owner_world.user, skip_users=[invited]) == before, f"{identity} changed the owner's data"
        for marker in [*owner_markers(owner_world), "queen rearing", "Dave asks"]:
            assert marker not in body, f"{identity} was shown the owner's {marker!r}: {row}"
