"""The official `openai` Python client against a live Twinsite server, streaming and not."""

import pytest
from django.test import override_settings
from openai import OpenAI

from accounts.actions import do_issue_api_token
from chat.models import Conversation, PromptTrace
from tests.conftest import add_markdown_source

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(live_server, owner):
    add_markdown_source(owner)
    _, raw = do_issue_api_token(owner, "openai client")
    return OpenAI(base_url=f"{live_server.url}/v1", api_key=raw, max_retries=0, timeout=120)


HISTORY = [
    {"role": "user", "content": "Where do you keep your hives?"},
    {"role": "assistant", "content": "On the flat roof of our building."},
    {"role": "user", "content": "How much honey do they give?"},
]


@override_settings(TWIN_MAX_SENTENCES=1, TWIN_MAX_NEW_TOKENS=60)  # an answer that ends by itself: "stop"
def test_a_completion_through_the_official_client(client):
    completion = client.chat.completions.create(model="twin", messages=HISTORY)

    text = completion.choices[0].message.content
    assert text and completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens > 0
    trace = PromptTrace.objects.get()
    assert trace.answer == text
    # the whole message list reached the prompt, in order, with the notes
    assert trace.prompt.index("Where do you keep your hives?") < trace.prompt.index("How much honey do they give?")
    assert "twelve kilograms" in trace.prompt


def test_a_streamed_completion_through_the_official_client(client):
    stream = client.chat.completions.create(model="twin", messages=HISTORY, stream=True)

    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

    assert text.strip() == Conversation.objects.get().messages.last().content


def test_the_official_client_gets_a_draft_with_model_twin_write(client, owner):
    from chat.models import Draft

    completion = client.chat.completions.create(
        model="twin-write", messages=[{"role": "user", "content": "a short post about my rooftop hives"}]
    )

    text = completion.choices[0].message.content
    draft = Draft.objects.for_user(owner).get()
    assert text and text == draft.text == draft.generated_text
    assert completion.model_extra["mode"] == "write" and completion.model_extra["draft"] == draft.pk
    trace = PromptTrace.objects.get()
    assert "Write a piece of about" in trace.prompt and "a short post about my rooftop hives" in trace.prompt
