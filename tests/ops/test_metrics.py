"""/metrics: for staff and an allow-listed scraper only; its figures move with what the site does."""

import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from chat.actions import do_answer
from chat.models import Message
from core.queue import queue_lengths
from tests.chat.test_busy import ask_api, in_flight_answers

pytestmark = pytest.mark.django_db

SCRAPER_TOKEN = "scrape-me-not-guess-me"


def scrape(client, **extra) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of the endpoint's answer."""
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def test_staff_read_the_metrics_and_nobody_else_does(staff_client, owner_client, other_api, anon_client):
    figures = scrape(staff_client)

    assert ("twinsite_answers_total", (("status", "done"),)) in figures
    assert any(name == "django_http_requests_total_by_method_total" for name, _ in figures)  # django-prometheus
    assert any(name.startswith("django_db_execute") for name, _ in figures)  # its database backend
    assert owner_client.get("/metrics").status_code == 404
    assert other_api.get("/metrics").status_code == 404  # a user's API token is not a scraper's
    assert anon_client.get("/metrics").status_code == 404
    assert anon_client.post("/metrics").status_code == 405


def test_a_scraper_with_the_token_or_from_an_allowed_address_reads_them(anon_client, settings):
    settings.TWIN_METRICS_TOKEN = SCRAPER_TOKEN
    scrape(anon_client, HTTP_AUTHORIZATION=f"Bearer {SCRAPER_TOKEN}")
    assert anon_client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    assert anon_client.get("/metrics", HTTP_AUTHORIZATION=SCRAPER_TOKEN).status_code == 404  # not "Bearer …"

    settings.TWIN_METRICS_ALLOWED_IPS = ["10.1.2.0/24", "192.0.2.7"]
    scrape(anon_client, REMOTE_ADDR="10.1.2.9")
    scrape(anon_client, REMOTE_ADDR="192.0.2.7")
    assert anon_client.get("/metrics", REMOTE_ADDR="10.1.3.9").status_code == 404
    # a forged X-Forwarded-For picks no address: with no proxy configured it is ignored
    assert anon_client.get("/metrics", REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR="10.1.2.9").status_code == 404


def test_the_metrics_move_after_an_answer(staff_client, owner_source, owner):
    before = scrape(staff_client)

    do_answer(owner, "How much honey does a hive give in July?")
    after = scrape(staff_client)

    done = ("twinsite_answers_total", (("status", "done"),))
    assert after[done] == before.get(done, 0) + 1
    count = ("twinsite_answer_first_token_seconds_count", ())
    assert after[count] == before[count] + 1
    assert (
        after[("twinsite_answer_first_token_seconds_sum", ())] > before[("twinsite_answer_first_token_seconds_sum", ())]
    )
    assert after[("twinsite_answer_first_token_seconds_bucket", (("le", "+Inf"),))] == after[count]


def test_refusals_pending_answers_and_queues_are_counted(staff_client, owner_api, owner_source, owner, settings):
    in_flight_answers(owner, settings.TWIN_MAX_PENDING_ANSWERS_PER_USER)
    assert ask_api(owner_api).status_code == 429
    settings.TWIN_MAX_PENDING_ANSWERS_PER_USER = 99
    settings.TWIN_MAX_ANSWERS_IN_FLIGHT = 2
    assert ask_api(owner_api).status_code == 503

    figures = scrape(staff_client)

    assert figures[("twinsite_chat_refusals_total", (("reason", "user_limit"),))] == 1
    assert figures[("twinsite_chat_refusals_total", (("reason", "busy"),))] == 1
    assert figures[("twinsite_answers_in_flight", (("status", "pending"),))] == 2
    assert figures[("twinsite_oldest_pending_answer_age_seconds", ())] >= 0
    for queue in ("default", "gpu", "serve"):
        assert ("twinsite_celery_queue_length", (("queue", queue),)) in figures


def test_queue_lengths_read_the_brokers_lists_priorities_included(settings):
    import redis

    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    keys = [f"{prefix}serve", f"{prefix}serve\x06\x163", f"{prefix}default"]
    try:
        broker.rpush(keys[0], "a", "b")
        broker.rpush(keys[1], "c")
        broker.rpush(keys[2], "d")
        lengths = queue_lengths()
    finally:
        broker.delete(*keys)

    assert lengths["serve"] == 3 and lengths["default"] == 1 and lengths["gpu"] == 0


def test_a_failed_answer_counts_as_failed(staff_client, owner):
    answer = in_flight_answers(owner, 1)[0]
    Message.objects.filter(pk=answer.pk).update(status=Message.Status.FAILED)

    assert scrape(staff_client)[("twinsite_answers_total", (("status", "failed"),))] == 1
    assert settings.TWIN_METRICS_TOKEN == ""  # off unless configured
