"""Invited users chat with a twin shared with them: only their own conversations, answers drawn only
from the sources the owner shares, ask mode only, the owner's limits, and revocation on the next
request (an open stream and the API included)."""

import pytest
from django.conf import settings
from django.urls import reverse

from accounts.models import TwinAccess
from accounts.sharing import do_revoke
from chat import streams
from chat.actions import do_answer, do_ask
from chat.admission import ChatBusy, ChatRefused
from chat.following import ACCESS_REVOKED
from chat.models import Conversation, Message, PromptTrace
from tests.chat.test_busy import in_flight_answers

pytestmark = pytest.mark.django_db
HONEY = "How much honey does a hive give in July?"


def revoke(owner, invited):
    do_revoke(owner, access=TwinAccess.objects.get(owner=owner, member=invited))


def test_an_invited_users_answer_draws_only_on_shared_sources(owner, invited, owner_source, shared_source):
    """The honey is only in the private source: the owner's answer cites it, the invited user's does not."""
    owners = do_answer(owner, HONEY)
    theirs = do_answer(owner, HONEY, asker=invited)

    assert any(s["title"] == "Keeping bees on a city roof" for s in owners.sources)
    assert "twelve kilograms" in PromptTrace.objects.get(message=owners).prompt
    assert {s["title"] for s in theirs.sources} <= {"My allotment by the river"}
    trace = PromptTrace.objects.get(message=theirs)
    assert "twelve kilograms" not in trace.prompt + str(trace.evidence) + str(theirs.grounding)
    assert all(
        chunk["chunk_id"] in set(shared_source.documents.values_list("clean__chunks", flat=True))
        for chunk in trace.retrieved
    )
    assert theirs.conversation.owner == owner and theirs.conversation.asker == invited
    # a question the shared source answers is answered from it
    tomatoes = do_answer(owner, "When do your tomatoes ripen?", asker=invited)
    assert tomatoes.sources and tomatoes.sources[0]["title"] == "My allotment by the river"


def test_an_invited_user_cannot_write_nor_continue_someone_elses_conversation(owner, invited, shared_source):
    with pytest.raises(ChatRefused, match="Only the twin's owner"):
        do_ask(owner, "Write a short post about tomatoes", mode="write", asker=invited)
    assert do_answer(owner, "Write a short post about tomatoes", asker=invited).mode == "ask"  # auto: ask
    owners = do_answer(owner, "When do your tomatoes ripen?")
    with pytest.raises(ChatRefused, match="not yours"):
        do_ask(owner, "And the beans?", owners.conversation, asker=invited)
    with pytest.raises(ChatRefused, match="not yours"):  # nor the owner an invited user's
        do_ask(owner, "And the beans?", Conversation.objects.get(asker=invited))


def test_nothing_shared_yet_is_refused_with_a_reason(owner, invited, owner_source):
    with pytest.raises(ChatRefused, match="nothing shared"):
        do_ask(owner, HONEY, asker=invited)


def test_an_invited_user_has_their_own_in_flight_limit_and_takes_none_of_the_owners(owner, invited, shared_source):
    in_flight_answers(invited, settings.TWIN_MAX_PENDING_ANSWERS_PER_USER)  # questions to their own twin count
    with pytest.raises(ChatBusy) as refused:
        do_ask(owner, "When do your tomatoes ripen?", asker=invited)
    assert refused.value.status_code == 429

    Message.objects.filter(conversation__owner=invited).update(status=Message.Status.DONE)
    for _ in range(settings.TWIN_MAX_PENDING_ANSWERS_PER_USER):
        do_ask(owner, "When do your tomatoes ripen?", asker=invited)
    assert do_ask(owner, HONEY).status == Message.Status.PENDING  # the owner's own question still finds room


def test_the_invited_users_web_chat(invited_client, other_client, owner, invited, owner_source, shared_source):
    listing = invited_client.get(reverse("shared-twins")).content.decode()
    assert reverse("twin-chat", args=["alice"]) in listing

    response = invited_client.post(
        reverse("twin-chat-send", args=["alice"]), {"message": "When do your tomatoes ripen?"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    answer = Message.objects.get(role="assistant", conversation__asker=invited)
    stream_url = reverse("twin-chat-stream", args=["alice", answer.pk])
    assert stream_url in response.content.decode()
    events = b"".join(invited_client.get(stream_url).streaming_content).decode()
    assert "event: done" in events and "My allotment by the river" in events
    assert "/documents/" not in events  # citations link to no owner-only page

    page = invited_client.get(reverse("twin-conversation", args=["alice", answer.conversation_id])).content.decode()
    assert "When do your tomatoes ripen?" in page and "Revise this answer" not in page
    # the owner's own conversations stay the owner's
    own = do_answer(owner, HONEY)
    assert invited_client.get(reverse("twin-conversation", args=["alice", own.conversation_id])).status_code == 404
    assert HONEY not in invited_client.get(reverse("twin-chat", args=["alice"])).content.decode()
    assert invited_client.get(reverse("conversation", args=[own.conversation_id])).status_code == 404
    # someone not invited sees no twin at all
    assert other_client.get(reverse("twin-chat", args=["alice"])).status_code == 404
    assert other_client.get(stream_url).status_code == 404


def test_revocation_ends_the_web_chat_on_the_next_request(invited_client, owner, invited, shared_source):
    answer = do_answer(owner, "When do your tomatoes ripen?", asker=invited)
    revoke(owner, invited)

    assert invited_client.get(reverse("twin-chat", args=["alice"])).status_code == 404
    assert invited_client.post(reverse("twin-chat-send", args=["alice"]), {"message": "Beans?"}).status_code == 404
    assert invited_client.get(reverse("twin-chat-stream", args=["alice", answer.pk])).status_code == 404
    assert "alice" not in invited_client.get(reverse("shared-twins")).content.decode()


def test_revocation_ends_an_open_stream_with_an_error_event(invited_client, owner, invited, shared_source, monkeypatch):
    """An answer still being made: the stream shows its tokens, then the owner revokes, and the
    stream's next check ends it with the access-revoked error (it never sees the rest)."""
    conversation = Conversation.objects.create(owner=owner, asker=invited, title="Tomatoes?")
    Message.objects.create(conversation=conversation, role="user", content="Tomatoes?")
    answer = Message.objects.create(conversation=conversation, role="assistant", status=Message.Status.STREAMING)
    with streams.beating(answer.pk):  # the serving worker is alive and making it
        streams.publish(answer.pk, "sources", [])
        streams.publish(answer.pk, "token", "They ripen ")
        response = invited_client.get(reverse("twin-chat-stream", args=["alice", answer.pk]))
        events = iter(response.streaming_content)
        assert b"event: sources" in next(events) and b"They ripen" in next(events)

        revoke(owner, invited)
        streams.publish(answer.pk, "token", "in late August.")
        rest = b"".join(events).decode()

    assert "event: error" in rest and "revoked" in rest and "event: done" in rest
    assert "late August" not in rest


def test_the_rest_api_asks_a_shared_twin_and_checks_access_per_request(
    invited_api, owner, invited, shared_source, owner_source
):
    response = invited_api.post(
        "/api/v1/chat/", {"message": "When do your tomatoes ripen?", "twin": "alice"}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["mode"] == "ask" and body["draft"] is None
    assert body["message"]["sources"][0]["title"] == "My allotment by the river"
    conversation = body["conversation"]
    assert Conversation.objects.get(pk=conversation).asker == invited

    follow = invited_api.post(
        "/api/v1/chat/", {"message": "And beans?", "twin": "alice", "conversation": conversation}, format="json"
    )
    assert follow.status_code == 200 and follow.json()["conversation"] == conversation
    listed = invited_api.get("/api/v1/conversations/?twin=alice").json()["results"]
    assert [c["id"] for c in listed] == [conversation]
    assert invited_api.get("/api/v1/conversations/").json()["results"] == []  # their own twin has none
    write = invited_api.post("/api/v1/chat/", {"message": "A post", "twin": "alice", "mode": "write"}, format="json")
    assert write.status_code == 400

    revoke(owner, invited)  # the same token, the next request
    assert invited_api.post("/api/v1/chat/", {"message": "Beans?", "twin": "alice"}, format="json").status_code == 404
    assert invited_api.get("/api/v1/conversations/?twin=alice").status_code == 404
    assert invited_api.get(f"/api/v1/conversations/{conversation}/?twin=alice").status_code == 404


def test_a_stranger_names_no_twin(other_api, owner, shared_source):
    response = other_api.post("/api/v1/chat/", {"message": "Tomatoes?", "twin": "alice"}, format="json")
    assert response.status_code == 404 and not Message.objects.exists()
    body = {"model": "twin:alice", "messages": [{"role": "user", "content": "Tomatoes?"}]}
    assert other_api.post("/v1/chat/completions", body, format="json").status_code == 404


def test_the_openai_endpoint_ends_an_open_stream_when_access_is_revoked(
    invited_api, owner, invited, shared_source, monkeypatch
):
    """A streamed completion whose answer is still being made; the owner revokes mid-answer."""
    made = {}

    def ask_without_serving(owner_, question, **kwargs):
        conversation = Conversation.objects.create(owner=owner_, asker=kwargs["asker"], title=question)
        made["answer"] = Message.objects.create(conversation=conversation, role="assistant", status="streaming")
        return made["answer"]

    monkeypatch.setattr("chat.openai_api.do_ask", ask_without_serving)
    body = {"model": "twin:alice", "stream": True, "messages": [{"role": "user", "content": "Tomatoes?"}]}
    response = invited_api.post("/v1/chat/completions", body, format="json")
    assert response.status_code == 200
    with streams.beating(made["answer"].pk):
        streams.publish(made["answer"].pk, "token", "They ripen ")
        chunks = iter(response.streaming_content)
        assert b'"role": "assistant"' in next(chunks) and b"They ripen" in next(chunks)
        revoke(owner, invited)
        rest = b"".join(chunks).decode()
    assert ACCESS_REVOKED.split(";")[0] in rest and rest.rstrip().endswith("data: [DONE]")
