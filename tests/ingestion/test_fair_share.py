"""Fair share of the sync workers: each owner has at most TWIN_MAX_ACTIVE_SYNCS_PER_USER syncs sent to
the queue and not finished; more wait, queued, and are sent in turn, one owner after another."""

from datetime import timedelta

import pytest
from django.utils import timezone

from ingestion.actions import do_dispatch_syncs, do_sync_source
from ingestion.models import CrawlRun, Source
from ingestion.tasks import crawl_source
from tests.conftest import add_markdown_source, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    """The queue, first in first out: which runs were sent, in order (no worker takes them)."""
    queue = []
    monkeypatch.setattr("ingestion.tasks.crawl_source.delay", lambda run_id: queue.append(run_id))
    return queue


def sources_of(user, count):
    return [
        add_markdown_source(user, f"{user.username}-{i}.md", f"# Note {i} of {user.username}\n\nBees, part {i}.")
        for i in range(count)
    ]


def test_one_owners_many_syncs_wait_their_turn_behind_another_owners(owner, other, owner_api, sent, settings):
    settings.TWIN_MAX_ACTIVE_SYNCS_PER_USER = 2
    hog = sources_of(owner, 4)
    hog_runs = [source.last_run for source in hog]
    response = owner_api.post(f"/api/v1/sources/{sources_of(owner, 1)[0].pk}/sync/")  # its fifth: also accepted
    late = sources_of(other, 1)[0].last_run

    assert sent == [hog_runs[0].pk, hog_runs[1].pk, late.pk]  # the other owner's sync is not behind the rest
    assert response.status_code == 202 and response.json()["status"] == "queued"
    assert response.json()["message"] == "Waiting for one of your other syncs to finish (at most 2 run at once)"
    held = CrawlRun.objects.filter(owner=owner, dispatched_at__isnull=True)
    assert held.count() == 3 and set(held.values_list("status", flat=True)) == {"queued"}

    crawl_source(hog_runs[0].pk)  # a worker runs the first one; when it ends, the owner's next is sent

    hog_runs[0].refresh_from_db()
    assert hog_runs[0].status == "succeeded"
    assert sent[3:] == [hog_runs[2].pk]


def test_held_syncs_are_never_resent_nor_failed_as_lost_while_they_wait(owner, sent, settings):
    settings.TWIN_MAX_ACTIVE_SYNCS_PER_USER = 1
    first, waiting = (source.last_run for source in sources_of(owner, 2))
    CrawlRun.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - timedelta(days=2))

    done = CrawlRun.objects.resume_stalled(stale_after=timedelta(microseconds=1))

    waiting.refresh_from_db()
    assert waiting.status == "queued" and waiting.dispatched_at is None
    assert sent == [first.pk, first.pk] and done["resent"] == 1  # only the sent one, whose message may be lost


def test_freed_places_go_round_robin_by_owner(owner, other, sent, settings):
    settings.TWIN_MAX_ACTIVE_SYNCS_PER_USER = 0  # everyone waits while the requests come in
    third = make_user("dave")
    runs = {user.username: [source.last_run for source in sources_of(user, n)] for user, n in [(owner, 3), (other, 2)]}
    runs["dave"] = [source.last_run for source in sources_of(third, 1)]
    assert sent == []

    settings.TWIN_MAX_ACTIVE_SYNCS_PER_USER = 2
    assert do_dispatch_syncs() == 5

    alice, bob, dave = runs["alice"], runs["bob"], runs["dave"]
    assert sent == [alice[0].pk, bob[0].pk, dave[0].pk, alice[1].pk, bob[1].pk]


def test_cancelling_a_sync_gives_its_place_to_the_owners_next(owner, owner_client, sent, settings):
    settings.TWIN_MAX_ACTIVE_SYNCS_PER_USER = 1
    first, second = sources_of(owner, 2)

    owner_client.post(f"/sources/{first.pk}/cancel/")

    assert sent == [first.last_run.pk, second.last_run.pk]
    assert Source.objects.get(pk=second.pk).last_run.message == "Waiting for a worker"
    assert do_sync_source(second).pk == second.last_run.pk  # still one run per source
