"""The task queue down when work is sent: a clear 503 with Retry-After, and nothing left waiting.

The broker is a real, unreachable one (a closed loopback port), and the tests commit like
production (transactional), so tasks are sent by the real on_commit after the request's writes.
"""

import time
from contextlib import contextmanager

import pytest
from celery import current_app
from django.urls import reverse

from chat.models import Message
from core.jobs import JobStatus
from ingestion.models import CrawlRun
from tests.conftest import add_markdown_source, api_client_for
from tests.processes import free_port
from training.models import TrainingRun

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def broker_down():
    """Point the Celery app at a loopback port nothing listens on, sending for real (not eagerly)."""
    conf = current_app.conf
    saved = conf.broker_url, conf.broker_write_url, conf.task_always_eager
    conf.broker_url, conf.broker_write_url = f"redis://127.0.0.1:{free_port()}/0", None
    conf.task_always_eager = False
    current_app._pool, current_app.amqp._producer_pool = None, None  # no connection kept from the real broker
    try:
        yield
    finally:
        conf.broker_url, conf.broker_write_url, conf.task_always_eager = saved
        current_app._pool, current_app.amqp._producer_pool = None, None


@pytest.fixture
def source(owner):
    return add_markdown_source(owner)  # built eagerly, while the broker is "up"


def assert_answer_failed_with_reason(owner):
    answer = Message.objects.for_user(owner).filter(role=Message.Role.ASSISTANT).get()
    assert answer.status == Message.Status.FAILED
    assert "task queue cannot be reached" in answer.error
    assert not Message.objects.in_flight().exists()


def test_web_chat_says_the_site_is_busy_and_leaves_no_pending_answer(owner_client, owner, source):
    with broker_down():
        started = time.monotonic()
        response = owner_client.post(reverse("chat-send"), {"message": "How do I keep bees?"}, HTTP_HX_REQUEST="true")
        took = time.monotonic() - started
    assert response.status_code == 503
    assert response["Retry-After"]
    assert "task queue cannot be reached" in response.content.decode()
    assert took < 5, f"the refusal took {took:.1f} s"
    assert_answer_failed_with_reason(owner)


def test_rest_api_chat_answers_503_json(owner, source):
    with broker_down():
        response = api_client_for(owner).post("/api/v1/chat/", {"message": "How do I keep bees?"}, format="json")
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert "task queue cannot be reached" in response.json()["detail"]
    assert_answer_failed_with_reason(owner)


def test_openai_endpoint_answers_503_in_its_error_format(owner, source):
    body = {"model": "twin", "messages": [{"role": "user", "content": "How do I keep bees?"}]}
    with broker_down():
        response = api_client_for(owner).post("/v1/chat/completions", body, format="json")
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert "task queue cannot be reached" in response.json()["error"]["message"]
    assert_answer_failed_with_reason(owner)


def test_web_sync_now_shows_a_page_and_fails_the_crawl_run_with_the_reason(owner_client, owner, source):
    runs_before = CrawlRun.objects.for_user(owner).count()
    with broker_down():
        response = owner_client.post(reverse("sync-source", args=[source.pk]))
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert "task queue cannot be reached" in response.content.decode()
    run = CrawlRun.objects.for_user(owner).first()
    assert CrawlRun.objects.for_user(owner).count() == runs_before + 1
    assert run.status == JobStatus.FAILED and "task queue cannot be reached" in run.error
    # Once the queue is back, syncing works again: the failed run does not block it.
    response = owner_client.post(reverse("sync-source", args=[source.pk]))
    assert response.status_code == 302
    assert CrawlRun.objects.for_user(owner).first().status == JobStatus.SUCCEEDED


def test_api_sync_answers_503_json(owner, source):
    with broker_down():
        response = api_client_for(owner).post(f"/api/v1/sources/{source.pk}/sync/")
    assert response.status_code == 503
    assert "task queue cannot be reached" in response.json()["detail"]
    assert not CrawlRun.objects.for_user(owner).active().exists()


def test_starting_training_fails_the_run_so_another_can_start(owner_client, owner, source):
    with broker_down():
        response = owner_client.post(reverse("start-training"))
    assert response.status_code == 503
    run = TrainingRun.objects.for_user(owner).get()
    assert run.status == JobStatus.FAILED and "task queue cannot be reached" in run.error
    assert not TrainingRun.objects.for_user(owner).active().exists()  # the one-active-run rule is free again
