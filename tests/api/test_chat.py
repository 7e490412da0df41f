"""POST /api/v1/chat/: ask my twin; the answer comes with the sources it was grounded on."""

import pytest
from django.conf import settings

from chat.models import Conversation, Message

pytestmark = pytest.mark.django_db


URL = "/api/v1/chat/"


def ask(client, message, **extra):
    return client.post(URL, {"message": message, **extra}, format="json")


def test_before_any_source_the_reason_is_given(owner_api, owner):
    response = ask(owner_api, "What do you keep on the roof?")

    assert response.status_code == 400
    assert "add a source" in response.json()["detail"]
    assert not Conversation.objects.exists()


def test_an_answer_comes_with_its_sources(owner_api, owner_source, other_source):
    response = ask(owner_api, "How much honey does a hive give in July?")

    assert response.status_code == 200
    body = response.json()
    message = body["message"]
    assert message["role"] == "assistant" and message["status"] == "done" and message["content"]
    assert message["sources"] and {s["title"] for s in message["sources"]} == {"Keeping bees on a city roof"}
    assert all(s["document_id"] == owner_source.documents.get().pk for s in message["sources"])
    honey = next(s for s in message["sources"] if "twelve kilograms" in s["excerpt"])
    assert honey["headings"] == ["Keeping bees on a city roof", "Why a roof"]  # where in the document
    conversation = Conversation.objects.get(pk=body["conversation"])
    assert conversation.owner == owner_source.owner
    assert [m.role for m in conversation.messages.all()] == ["user", "assistant"]


def test_a_conversation_can_be_continued(owner_api, owner_source):
    first = ask(owner_api, "Where do the bees fly?").json()

    response = ask(owner_api, "And in winter?", conversation=first["conversation"])

    assert response.status_code == 200
    assert response.json()["conversation"] == first["conversation"]
    messages = Message.objects.filter(conversation_id=first["conversation"])
    assert [m.content for m in messages if m.role == "user"] == ["Where do the bees fly?", "And in winter?"]
    assert Conversation.objects.count() == 1


def test_another_users_conversation_is_404(owner_api, other_answer, owner_source):
    response = ask(owner_api, "What did you say?", conversation=other_answer.conversation_id)

    assert response.status_code == 404
    assert other_answer.conversation.messages.count() == 2
    assert not Conversation.objects.filter(owner=owner_source.owner).exists()


@pytest.mark.parametrize("message", ["", "   "])
def test_an_empty_message_is_a_400(owner_api, owner_source, message):
    response = ask(owner_api, message)

    assert response.status_code == 400
    assert "message" in response.json()


def test_an_overlong_question_is_refused(owner_api, owner_source, settings):
    settings.TWIN_MAX_QUESTION_CHARS = 20

    response = ask(owner_api, "Why do you tilt each hive forward every winter?")

    assert response.status_code == 400
    assert "limited to 20 characters" in response.json()["detail"]


def test_chat_is_throttled(owner_api, other_api, owner_source, other_source):
    """The configured rate (30 a minute), counted in the configured cache (Redis)."""
    limit = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["chat"].removesuffix("/min"))
    assert ask(owner_api, "Where do the bees fly?").status_code == 200
    for _ in range(limit - 1):
        assert ask(owner_api, "").status_code == 400  # a refused question is counted too

    response = ask(owner_api, "And in winter?")

    assert response.status_code == 429 and 0 < int(response["Retry-After"]) <= 60
    assert Message.objects.filter(role="user").count() == 1
    assert ask(other_api, "How long is your boat?").status_code == 200


def test_anonymous_callers_are_refused(anon_api, owner_source):
    assert ask(anon_api, "Hello?").status_code == 401
    assert not Conversation.objects.exists()


def test_a_generation_failure_is_a_503_and_the_answer_is_marked_failed(owner_api, owner_source, monkeypatch):
    from chat.models import Message

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr("chat.llm.TwinModels.serve", broken)
    response = owner_api.post("/api/v1/chat/", {"message": "How much honey?"}, format="json")

    assert response.status_code == 503 and "could not answer" in response.json()["detail"]
    assert Message.objects.get(role="assistant").status == "failed"
