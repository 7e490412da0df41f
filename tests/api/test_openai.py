"""POST /v1/chat/completions: the OpenAI-compatible endpoint, streaming and not."""

import json

import pytest
from django.test import override_settings
from django.urls import reverse

from chat.models import Conversation, PromptTrace
from features.grounding.generate import CUT_MARK

pytestmark = pytest.mark.django_db

# One sentence and room for it: the answer ends by itself (finish_reason "stop").
ENDS_ITSELF = override_settings(TWIN_MAX_SENTENCES=1, TWIN_MAX_NEW_TOKENS=60)
# Four tokens (eight with the notes' allowance): the budget cuts the answer mid-sentence.
CUT_BY_BUDGET = override_settings(TWIN_MAX_NEW_TOKENS=4)

URL = "/v1/chat/completions"


def complete(client, messages, **extra):
    return client.post(URL, {"model": "my-twin", "messages": messages, **extra}, format="json")


def user(text):
    return {"role": "user", "content": text}


def events(response) -> list[str]:
    body = b"".join(response.streaming_content).decode()
    return [line.removeprefix("data: ") for line in body.split("\n\n") if line]


@ENDS_ITSELF
def test_a_completion_has_the_openai_shape(owner_api, owner_source):
    response = complete(owner_api, [{"role": "system", "content": "Be brief."}, user("Why tilt the hives?")])

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == "my-twin" and isinstance(body["created"], int)
    choice = body["choices"][0]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"]
    assert not choice["message"]["content"].endswith(CUT_MARK) and not PromptTrace.objects.get().cut_short
    usage = body["usage"]
    assert all(isinstance(usage[key], int) for key in ("prompt_tokens", "completion_tokens", "total_tokens"))
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert {s["title"] for s in body["sources"]} == {"Keeping bees on a city roof"}
    assert {tuple(s["headings"]) for s in body["sources"]} <= {
        ("Keeping bees on a city roof", "Why a roof"),
        ("Keeping bees on a city roof", "The first winter"),
    }


def test_the_whole_message_list_is_the_conversation(owner_api, owner_source):
    messages = [
        user("Where are the hives?"),
        {"role": "assistant", "content": "On the flat roof."},
        user("Why tilt them?"),
    ]

    complete(owner_api, messages)

    stored = list(Conversation.objects.get().messages.values_list("role", "content"))
    assert stored[:3] == [
        ("user", "Where are the hives?"),
        ("assistant", "On the flat roof."),
        ("user", "Why tilt them?"),
    ]
    prompt = PromptTrace.objects.get().prompt
    assert prompt.index("Where are the hives?") < prompt.index("On the flat roof.") < prompt.index("Why tilt them?")


def test_content_parts_are_read_as_text(owner_api, owner_source):
    parts = [{"type": "text", "text": "How heavy"}, {"type": "text", "text": "are the hives?"}]

    response = complete(owner_api, [{"role": "user", "content": parts}])

    assert response.status_code == 200
    assert Conversation.objects.get().messages.first().content == "How heavy are the hives?"


@ENDS_ITSELF
def test_streaming_sends_chunks_and_ends_with_done(owner_api, owner_source):
    response = complete(owner_api, [user("Where do the bees fly?")], stream=True)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    data = events(response)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(item) for item in data[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "my-twin" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text.strip() and text.strip() == Conversation.objects.get().messages.last().content


@CUT_BY_BUDGET
def test_an_answer_the_budget_cuts_short_says_so_and_finishes_with_length(owner_api, owner_source):
    body = complete(owner_api, [user("Why tilt the hives?")]).json()

    choice = body["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["content"].endswith(CUT_MARK)
    trace = PromptTrace.objects.get()
    assert trace.cut_short and trace.answer == choice["message"]["content"]
    assert 0 < body["usage"]["completion_tokens"] <= 8 + 1  # the budget, and the mark


@CUT_BY_BUDGET
def test_a_streamed_answer_the_budget_cuts_short_finishes_with_length(owner_api, owner_source):
    chunks = [json.loads(item) for item in events(complete(owner_api, [user("Why tilt the hives?")], stream=True))[:-1]]

    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text.strip().endswith(CUT_MARK) and text.strip() == Conversation.objects.get().messages.last().content


@CUT_BY_BUDGET
def test_staff_find_the_answers_the_budget_cut_in_the_admin(owner_api, owner_source, staff, client):
    complete(owner_api, [user("Why tilt the hives?")])
    client.force_login(staff)
    changelist = reverse("admin:chat_prompttrace_changelist")

    cut = client.get(changelist, {"cut_short__exact": "1"}).content.decode()
    whole = client.get(changelist, {"cut_short__exact": "0"}).content.decode()

    assert "Why tilt the hives?" in cut and "Why tilt the hives?" not in whole


@pytest.mark.parametrize(
    "messages",
    [[], [{"role": "system", "content": "You are a twin."}], [user("   ")], "Hello?", [{"role": "user"}]],
)
def test_no_user_message_is_an_openai_style_400(owner_api, owner_source, messages):
    response = complete(owner_api, messages)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and "user message" in error["message"]
    assert not Conversation.objects.exists()


@pytest.mark.parametrize("body", [[], "Hello?", [{"role": "user", "content": "Hello?"}]])
def test_a_body_that_is_not_a_json_object_is_an_openai_style_400(owner_api, owner_source, body):
    response = owner_api.post(URL, body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert not Conversation.objects.exists()


def test_before_any_source_the_reason_is_an_openai_style_400(owner_api, owner):
    response = complete(owner_api, [user("Hello?")])

    assert response.status_code == 400
    assert "add a source" in response.json()["error"]["message"]


def test_an_api_token_is_required(anon_api, owner_source):
    response = complete(anon_api, [user("Hello?")])

    assert response.status_code == 401
    assert not Conversation.objects.exists()


def test_answers_use_only_the_callers_own_writing(other_api, owner_source, other_source):
    bees = complete(other_api, [user("How much honey does a hive give?")]).json()
    sailing = complete(other_api, [user("What did you write about sailing?")]).json()

    # Alice's notes answer the first question exactly, but Bob has none on bees: no notes, no sources
    assert bees["grounding"]["no_notes"] is True and bees["sources"] == []
    assert sailing["sources"] and {s["title"] for s in sailing["sources"]} == {"Sailing notes"}


@pytest.mark.parametrize(
    ("history", "says"),
    [
        ([user(f"Question {i}?") for i in range(51)], "At most 50 earlier messages"),
        ([user("bees " * 2000), user("hives " * 2000)], "may total 20000 characters"),
    ],
)
def test_a_history_past_the_limits_is_refused_in_openai_format(owner_api, owner_source, history, says):
    """The history is stored with the conversation: a client must not store megabytes through it."""
    response = complete(owner_api, [*history, user("Why tilt the hives?")])

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and says in error["message"]
    assert not Conversation.objects.exists()


def test_the_stored_history_counts_against_the_storage_quota(owner_api, owner, owner_source, settings):
    from accounts.quotas import stored_bytes

    before = stored_bytes(owner)
    history = [user("Tell me about the roof " + "and the bees " * 100)]
    settings.TWIN_MAX_STORED_BYTES = before + len(history[0]["content"]) // 2

    refused = complete(owner_api, [*history, user("Why tilt the hives?")])

    assert refused.status_code == 400 and "its limit is" in refused.json()["error"]["message"]
    assert not Conversation.objects.exists()
    settings.TWIN_MAX_STORED_BYTES = before + 10 * len(history[0]["content"])
    assert complete(owner_api, [*history, user("Why tilt the hives?")]).status_code == 200
    assert stored_bytes(owner) >= before + len(history[0]["content"])  # the stored history counts
