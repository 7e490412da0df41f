"""The job row's guarantees (core/jobs.py): one claim wins; a heartbeat beats through phases that
report no progress, so a redelivered task cannot take a job that is alive; a job whose worker
died is resumed by beat, and one that keeps losing its worker is failed with a reason."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from core.jobs import JobStatus
from ingestion.models import CrawlRun, Document, Source
from twinsite.celery import resume_stalled_jobs


@pytest.fixture
def run(owner_source):
    return CrawlRun.objects.create(owner=owner_source.owner, source=owner_source)


def go_silent(run, seconds_ago: int, **fields):
    CrawlRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=seconds_ago), **fields)


@pytest.mark.django_db
def test_one_claim_wins_and_each_claim_counts_as_an_attempt(run):
    assert run.claim() and run.attempts == 1
    assert not CrawlRun.objects.get(pk=run.pk).claim()  # a redelivery while it runs: nothing happens
    go_silent(run, 3600)
    assert CrawlRun.objects.get(pk=run.pk).claim()  # its worker died
    assert CrawlRun.objects.get(pk=run.pk).attempts == 2


@pytest.mark.django_db(transaction=True)  # the heartbeat thread has its own connection: rows must be committed
def test_a_silent_phase_keeps_its_job_while_the_heartbeat_beats(run, settings):
    settings.TWIN_JOB_HEARTBEAT_SECONDS = 1
    settings.TWIN_JOB_STALE_SECONDS = 3
    assert run.claim()

    with run.keep_alive():
        time.sleep(5)  # a model load: no progress reported for longer than the stale window
        assert not CrawlRun.objects.get(pk=run.pk).claim(), "a redelivered task took a job that was alive"

    time.sleep(4)  # the worker is gone: nothing beats any more
    assert CrawlRun.objects.get(pk=run.pk).claim()


@pytest.mark.django_db
def test_beat_resumes_a_job_whose_worker_died_and_leaves_a_live_one(owner_source, owner):
    dead = CrawlRun.objects.create(owner=owner, source=owner_source)
    go_silent(dead, 3600, status=JobStatus.RUNNING, attempts=1)
    other_source = Source.objects.create(owner=owner, kind="upload", name="empty")
    alive = CrawlRun.objects.create(owner=owner, source=other_source)
    go_silent(alive, 5, status=JobStatus.RUNNING, attempts=1)

    done = resume_stalled_jobs()

    assert done["CrawlRun"]["resumed"] == 1
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert dead.status == "succeeded" and dead.attempts == 2 and dead.documents_unchanged == 1  # resumed, once
    assert Document.objects.filter(source=owner_source).count() == 1
    assert alive.status == "running" and alive.attempts == 1


@pytest.mark.django_db
def test_a_job_that_keeps_losing_its_worker_is_failed_with_a_reason(run, settings):
    go_silent(run, 3600, status=JobStatus.RUNNING, attempts=settings.TWIN_JOB_MAX_ATTEMPTS)

    assert CrawlRun.objects.resume_stalled()["failed"] == 1

    run.refresh_from_db()
    assert run.status == "failed" and "stopped every time" in run.error
