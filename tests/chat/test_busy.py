"""No single user stalls the chat: answers in flight are capped per user and site-wide, a
question beyond either is refused at once ("busy", with Retry-After), an answer the serving
worker does not start in time is dropped as busy, and one whose worker died is marked
interrupted instead of staying "streaming"."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from chat import streams
from chat.actions import do_answer
from chat.admission import INTERRUPTED, NOT_STARTED
from chat.following import follow_answer
from chat.models import Conversation, Message
from chat.tasks import fail_abandoned_answers
from tests.processes import forget_queued_tasks
from twinsite.celery import app as celery_app

pytestmark = pytest.mark.django_db

QUESTION = "How much honey does a hive give in July?"
RETRY_AFTER = str(settings.TWIN_CHAT_RETRY_AFTER_SECONDS)


def in_flight_answers(user, count: int, status=Message.Status.PENDING, age_seconds: float = 0) -> list[Message]:
    """Answers still waiting for (or being made by) the serving worker, as a busy moment leaves them."""
    conversation = Conversation.objects.create(owner=user, title="Earlier questions")
    answers = []
    for _ in range(count):
        Message.objects.create(conversation=conversation, role="user", content="An earlier question?")
        answers.append(Message.objects.create(conversation=conversation, role="assistant", status=status))
    if age_seconds:
        Message.objects.filter(pk__in=[a.pk for a in answers]).update(
            created_at=timezone.now() - timedelta(seconds=age_seconds)
        )
    return answers


def ask_api(client, message=QUESTION):
    return client.post("/api/v1/chat/", {"message": message}, format="json")


def ask_web(client, message=QUESTION):
    return client.post(reverse("chat-send"), {"message": message}, HTTP_HX_REQUEST="true")


def test_a_user_with_answers_in_flight_waits_and_others_do_not(
    owner_api, owner_client, other_api, owner_source, other_source, owner
):
    in_flight_answers(owner, settings.TWIN_MAX_PENDING_ANSWERS_PER_USER)
    stored = Message.objects.count()

    api = ask_api(owner_api)
    web = ask_web(owner_client)

    assert api.status_code == 429 and api["Retry-After"] == RETRY_AFTER
    assert "still answering your 2 earlier questions" in api.json()["detail"]
    assert web.status_code == 429 and web["Retry-After"] == RETRY_AFTER
    assert "still answering your 2 earlier questions" in web.content.decode()
    assert Message.objects.count() == stored  # nothing half-asked
    assert ask_api(other_api, "How long is your boat?").status_code == 200


def test_a_full_site_answers_busy_with_retry_after(owner_api, owner_client, owner_source, other, settings):
    settings.TWIN_MAX_ANSWERS_IN_FLIGHT = 2
    in_flight_answers(other, 1)
    (streaming,) = in_flight_answers(other, 1, status=Message.Status.STREAMING)

    with streams.beating(streaming.pk):  # its worker is alive
        api = ask_api(owner_api)
        openai = owner_api.post(
            "/v1/chat/completions", {"messages": [{"role": "user", "content": QUESTION}]}, format="json"
        )
        web = ask_web(owner_client)
        page = owner_client.post(reverse("chat-send"), {"message": QUESTION})  # without htmx: the whole page

    assert api.status_code == 503 and api["Retry-After"] == RETRY_AFTER and "busy" in api.json()["detail"]
    assert openai.status_code == 503 and openai["Retry-After"] == RETRY_AFTER
    assert openai.json()["error"]["type"] == "server_error" and "busy" in openai.json()["error"]["message"]
    assert web.status_code == 503 and web["Retry-After"] == RETRY_AFTER
    assert "Twinsite is busy answering other questions" in web.content.decode()
    assert page.status_code == 503 and "Twinsite is busy answering other questions" in page.content.decode()
    assert not Conversation.objects.filter(owner=owner_source.owner).exists()


def test_answers_that_will_never_finish_do_not_count(owner_api, owner_source, owner, settings):
    """A pending answer past the wait, and a streaming one whose worker stopped beating, are failed first."""
    stale = in_flight_answers(owner, 1, age_seconds=settings.TWIN_ANSWER_WAIT_SECONDS + 1)
    orphan = in_flight_answers(owner, 1, status=Message.Status.STREAMING)

    response = ask_api(owner_api)

    assert response.status_code == 200
    stale[0].refresh_from_db()
    orphan[0].refresh_from_db()
    assert (stale[0].status, stale[0].error) == ("failed", NOT_STARTED)
    assert (orphan[0].status, orphan[0].error) == ("failed", INTERRUPTED)


def test_the_wait_for_the_serving_worker_is_bounded(owner_api, owner_source, owner, settings):
    """No serving worker takes the answer: the caller hears "busy" after the wait, not never."""
    settings.TWIN_ANSWER_WAIT_SECONDS = 1
    forget_queued_tasks("serve")
    celery_app.conf.task_always_eager = False  # the task goes to Redis, where no worker listens
    try:
        response = ask_api(owner_api)
    finally:
        celery_app.conf.task_always_eager = True
        forget_queued_tasks("serve")

    assert response.status_code == 503 and response["Retry-After"] == RETRY_AFTER
    assert response.json()["detail"] == NOT_STARTED
    answer = Message.objects.get(role="assistant")
    assert answer.status == "failed" and answer.error == NOT_STARTED


def test_an_answer_whose_worker_died_ends_with_what_was_said(owner_source, owner):
    """The serving process was killed mid-answer: its heartbeat is gone, its tokens are in the stream."""
    (answer,) = in_flight_answers(owner, 1, status=Message.Status.STREAMING)
    streams.publish(answer.pk, "sources", [])
    streams.publish(answer.pk, "token", "Each hive gives")

    events = [(event.kind, event.data) for event in follow_answer(answer)]

    assert events == [("sources", []), ("token", "Each hive gives"), ("error", INTERRUPTED)]
    answer.refresh_from_db()
    assert (answer.status, answer.content) == ("failed", "Each hive gives")


def test_the_beat_task_sweeps_abandoned_answers_of_every_user(owner, other):
    stale = in_flight_answers(owner, 2, age_seconds=settings.TWIN_ANSWER_WAIT_SECONDS + 5)
    orphan = in_flight_answers(other, 1, status=Message.Status.STREAMING)
    fresh = in_flight_answers(other, 1)

    assert fail_abandoned_answers() == 3

    assert Message.objects.get(pk=fresh[0].pk).status == "pending"
    assert set(Message.objects.filter(pk__in=[m.pk for m in stale + orphan]).values_list("status", flat=True)) == {
        "failed"
    }


def test_the_chat_page_shows_why_an_answer_did_not_come(owner_client, owner_source, owner):
    in_flight_answers(owner, 1, age_seconds=settings.TWIN_ANSWER_WAIT_SECONDS + 1)
    fail_abandoned_answers()

    response = owner_client.get(reverse("conversation", args=[Conversation.objects.get(owner=owner).pk]))

    assert NOT_STARTED in response.content.decode()


def test_a_finished_answer_is_followed_from_the_database(owner_source, owner):
    answer = do_answer(owner, QUESTION)

    kinds = [event.kind for event in follow_answer(answer)]

    assert kinds == ["sources", "token", "grounding", "done"]


def test_the_web_chat_is_throttled_with_the_apis_budget(owner_api, owner_client, other_api, owner_source, owner):
    """The configured rate, counted in the configured cache (Redis), as in production."""
    limit = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["chat"].removesuffix("/min"))
    assert limit == 30
    for _ in range(limit - 1):
        assert ask_api(owner_api, "").status_code == 400  # refused, and counted: probing costs like asking
    assert ask_web(owner_client, "").status_code == 400  # the last question of the minute

    web = ask_web(owner_client)
    api = ask_api(owner_api)

    assert web.status_code == 429 and 0 < int(web["Retry-After"]) <= 60
    assert f"please wait {web['Retry-After']} seconds" in web.content.decode()
    assert api.status_code == 429 and 0 < int(api["Retry-After"]) <= 60
    assert len(cache.get(f"throttle_chat_{owner.pk}")) == limit
    assert not Message.objects.exists()
    assert ask_api(other_api, "").status_code == 400  # another user's budget is their own


def test_an_answer_beyond_the_batches_waits_in_line_and_sees_its_place(owner_client, owner, other):
    """Before its first token, a waiting answer's page says its place in line, which moves up as
    answers ahead of it start, and clears when its own answer starts."""
    ahead = in_flight_answers(other, 2)
    mine = in_flight_answers(owner, 1)[0]
    followed = follow_answer(mine)
    first = next(followed)
    assert (first.kind, first.data) == ("queue", 3)  # before any token: the serve queue is busy
    Message.objects.filter(pk=ahead[0].pk).update(status=Message.Status.STREAMING)  # a worker started it
    with streams.beating(ahead[0].pk):
        moved = next(followed)
    assert (moved.kind, moved.data) == ("queue", 2)
    Message.objects.filter(pk=mine.pk).update(status=Message.Status.STREAMING)
    streams.publish(mine.pk, "sources", [])
    assert [(event.kind, event.data) for event in (next(followed), next(followed))] == [("queue", 0), ("sources", [])]
    followed.close()

    from chat.events import Event
    from chat.views import sse_of

    assert "3rd in line" in sse_of(Event("queue", 3))
    assert "in line" not in sse_of(Event("queue", 0))
    from chat.widget_views import _sse_of as widget_sse_of

    assert widget_sse_of(Event("queue", 3)) == "event: queue\ndata: 3\n\n"  # twin-widget.js: "Waiting: 3 in line…"


def test_the_busy_limit_is_derived_from_measured_throughput():
    """Refused only past the rows being decoded plus the line the workers clear within the wait."""
    per_worker = (
        settings.TWIN_SERVE_BATCH + settings.TWIN_SERVE_ANSWERS_PER_MINUTE * settings.TWIN_ANSWER_WAIT_SECONDS // 60
    )
    expected = min(settings.TWIN_SERVE_WORKERS * per_worker, settings.TWIN_WEB_THREADS * 3 // 4)
    assert settings.TWIN_MAX_ANSWERS_IN_FLIGHT == expected > settings.TWIN_SERVE_BATCH
