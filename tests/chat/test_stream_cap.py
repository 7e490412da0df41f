"""Open answer streams (each holds a web thread) are capped per user, counted in the real Redis:
beyond TWIN_MAX_STREAMS_PER_USER a stream is refused with 429 and Retry-After; a stream that ends
gives its slot back, and one whose process died stops counting after TWIN_STREAM_SLOT_SECONDS."""

import time

import pytest
from django.conf import settings
from django.urls import reverse

from chat.models import Message
from tests.chat.test_busy import RETRY_AFTER, in_flight_answers

pytestmark = pytest.mark.django_db
LIMIT = settings.TWIN_MAX_STREAMS_PER_USER


def open_stream(client, answer):
    """The response with its body unread: the stream is open, as a browser holds it."""
    return client.get(reverse("chat-stream", args=[answer.pk]))


@pytest.fixture
def answers(owner):
    return in_flight_answers(owner, LIMIT + 2, status=Message.Status.DONE)


def test_streams_beyond_the_cap_are_refused_and_others_are_not(owner_client, other_client, other, answers):
    held = [open_stream(owner_client, answer) for answer in answers[:LIMIT]]
    assert all(response.status_code == 200 for response in held)

    refused = open_stream(owner_client, answers[LIMIT])
    assert refused.status_code == 429 and refused["Retry-After"] == RETRY_AFTER
    assert f"{LIMIT} answers streaming already" in refused.content.decode()

    others = in_flight_answers(other, 1, status=Message.Status.DONE)
    assert open_stream(other_client, others[0]).status_code == 200  # a per-user count

    b"".join(held[0].streaming_content)  # one stream runs to its end and gives its slot back
    assert open_stream(owner_client, answers[LIMIT]).status_code == 200


@pytest.mark.django_db(transaction=True)  # closing a response closes the database connection, as in production
def test_a_stream_closed_by_the_server_gives_its_slot_back(owner_client, answers):
    held = [open_stream(owner_client, answer) for answer in answers[:LIMIT]]
    next(iter(held[0].streaming_content))  # the client read a little, then went away
    held[0].close()  # what the WSGI server does then
    assert open_stream(owner_client, answers[LIMIT]).status_code == 200


def test_slots_of_a_killed_process_expire(owner_client, answers, settings):
    settings.TWIN_STREAM_SLOT_SECONDS = 1
    for answer in answers[:LIMIT]:
        open_stream(owner_client, answer)  # never closed: the process serving them "died"
    assert open_stream(owner_client, answers[LIMIT]).status_code == 429
    time.sleep(1.2)
    assert open_stream(owner_client, answers[LIMIT]).status_code == 200


def test_openai_streaming_shares_the_cap_and_asks_nothing_when_refused(owner_client, owner_api, owner, answers):
    for answer in answers[:LIMIT]:
        open_stream(owner_client, answer)
    stored = Message.objects.count()
    body = {"model": "twin", "stream": True, "messages": [{"role": "user", "content": "Bees?"}]}
    response = owner_api.post("/v1/chat/completions", body, format="json")
    assert response.status_code == 429 and response["Retry-After"] == RETRY_AFTER
    assert "answers streaming already" in response.json()["error"]["message"]
    assert Message.objects.count() == stored
