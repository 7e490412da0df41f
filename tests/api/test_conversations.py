"""/api/v1/conversations/: my conversations, and one with its messages."""

import pytest

pytestmark = pytest.mark.django_db

URL = "/api/v1/conversations/"


def test_the_list_shows_only_my_conversations(owner_api, owner_answer, other_answer):
    response = owner_api.get(URL)

    assert response.status_code == 200
    rows = response.json()["results"]
    assert [c["id"] for c in rows] == [owner_answer.conversation_id]
    assert rows[0]["title"] == "How much honey does a hive give in July?" and "messages" not in rows[0]


def test_a_conversation_shows_its_messages_with_sources(owner_api, owner_answer):
    response = owner_api.get(f"{URL}{owner_answer.conversation_id}/")

    assert response.status_code == 200
    messages = response.json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[0]["content"] == "How much honey does a hive give in July?"
    assert messages[1]["id"] == owner_answer.pk and messages[1]["content"] == owner_answer.content
    assert messages[1]["sources"] == owner_answer.sources


def test_another_users_conversation_is_404(owner_api, other_answer):
    response = owner_api.get(f"{URL}{other_answer.conversation_id}/")

    assert response.status_code == 404
    assert "boat" not in response.content.decode()


def test_conversations_are_read_only(owner_api, owner_answer):
    assert owner_api.delete(f"{URL}{owner_answer.conversation_id}/").status_code == 405
    assert owner_api.post(URL, {"title": "x"}, format="json").status_code == 405


def test_anonymous_callers_are_refused(anon_api, owner_answer):
    assert anon_api.get(URL).status_code == 401
    assert anon_api.get(f"{URL}{owner_answer.conversation_id}/").status_code == 401
