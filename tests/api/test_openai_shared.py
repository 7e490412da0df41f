"""An invited user's own token and the official `openai` client: `model="twin:<username>"` asks the
twin shared with them (ask mode, from the shared sources), streaming and not; a revoked invitation
is a 404 on the next request, with the same token."""

import openai
import pytest
from openai import OpenAI

from accounts.actions import do_issue_api_token
from accounts.models import TwinAccess
from accounts.sharing import do_invite, do_revoke
from chat.models import Conversation
from tests.conftest import GARDEN_NOTES, add_markdown_source, make_user

pytestmark = pytest.mark.django_db(transaction=True)
QUESTION = [{"role": "user", "content": "When do your tomatoes ripen?"}]


@pytest.fixture
def reader(live_server, owner):
    add_markdown_source(owner)  # private
    add_markdown_source(owner, "garden.md", GARDEN_NOTES).set_audience(True)
    user = make_user("dave")
    do_invite(owner, "dave")
    _, raw = do_issue_api_token(user, "openai client", scopes=["chat"])
    return user, OpenAI(base_url=f"{live_server.url}/v1", api_key=raw, max_retries=0, timeout=120)


def test_an_invited_user_asks_the_shared_twin_through_the_official_client(reader, owner):
    user, client = reader
    completion = client.chat.completions.create(model="twin:alice", messages=QUESTION)

    assert completion.choices[0].message.content
    assert completion.model_extra["mode"] == "ask"
    assert [s["title"] for s in completion.model_extra["sources"]][:1] == ["My allotment by the river"]
    assert Conversation.objects.get().asker == user

    stream = client.chat.completions.create(model="twin-ask:alice", messages=QUESTION, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text.strip() == Conversation.objects.filter(asker=user).first().messages.last().content

    with pytest.raises(openai.BadRequestError, match="Only the twin's owner"):
        client.chat.completions.create(model="twin-write:alice", messages=QUESTION)

    do_revoke(owner, access=TwinAccess.objects.get(member=user))
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="twin:alice", messages=QUESTION)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="twin", messages=QUESTION, extra_body={"twin": "alice"})
