"""/api/v1/audience/…: the owner's audience (members, conversations, revisions, unanswered questions)."""

import pytest

from accounts.actions import do_issue_api_token
from chat import audience
from features.models import Correction
from tests.audience import VISITOR, an_audience, exchange, invited_reader
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def talks(owner, other):
    return an_audience(owner, other, invited_reader(owner))


def rows(response):
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_members(owner_api, talks):
    members = {m["name"]: m for m in rows(owner_api.get("/api/v1/audience/members/"))}

    tag = audience.visitor_tag(VISITOR)
    assert set(members) == {"Dave Reader", f"Visitor #{tag[:6]}"}
    dave = members["Dave Reader"]
    reader = talks.conversation.asker
    assert dave["key"] == f"user-{reader.pk}" and dave["kind"] == "invited" and dave["user_id"] == reader.pk
    assert (dave["conversations"], dave["questions"], dave["answers"], dave["grounded"]) == (2, 2, 2, 1)
    assert dave["grounded_share"] == 0.5 and dave["access"] == "active"
    visitor = members[f"Visitor #{tag[:6]}"]
    assert visitor["key"] == f"visitor-{tag}" and visitor["user_id"] is None and visitor["grounded_share"] == 1.0
    assert VISITOR not in str(members)


def test_conversations_list_and_detail(owner_api, talks):
    listed = rows(owner_api.get("/api/v1/audience/conversations/"))

    assert len(listed) == 3 and "boat" not in str(listed) and "My own question" not in str(listed)
    row = next(c for c in listed if c["id"] == talks.conversation_id)
    assert row["asker"] == "Dave Reader" and row["member"] == f"user-{talks.conversation.asker_id}"
    assert row["questions"] == 1
    assert (row["answers"], row["grounded"]) == (1, 1) and "messages" not in row
    detail = owner_api.get(f"/api/v1/audience/conversations/{talks.conversation_id}/").json()
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant"]
    assert detail["messages"][1]["id"] == talks.pk and detail["messages"][1]["grounding"]["score"] == 1.0


def test_conversations_of_one_member(owner_api, talks):
    key = f"visitor-{audience.visitor_tag(VISITOR)}"

    mine = rows(owner_api.get("/api/v1/audience/conversations/", {"member": key}))

    assert [c["title"] for c in mine] == ["Do you sell the honey?"]
    dave = f"user-{talks.conversation.asker_id}"
    assert len(rows(owner_api.get("/api/v1/audience/conversations/", {"member": dave}))) == 2
    assert rows(owner_api.get("/api/v1/audience/conversations/", {"member": "user-abc"})) == []


def test_own_and_other_conversations_are_404(owner_api, owner, other, talks):
    own = exchange(owner, "Mine again")
    theirs = exchange(other, "Theirs", visitor="x")

    for conversation in (own.conversation_id, theirs.conversation_id):
        assert owner_api.get(f"/api/v1/audience/conversations/{conversation}/").status_code == 404


def test_revising_an_audience_answer_makes_a_correction(owner_api, owner, talks):
    response = owner_api.post(
        "/api/v1/audience/revisions/", {"answer": talks.pk, "text": "About twelve kilos."}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["answer"] == talks.pk and body["text"] == "About twelve kilos." and body["asker"] == "Dave Reader"
    assert body["question"] == "How much honey in July?" and body["twin_answer"].startswith("In a good July")
    correction = Correction.objects.for_user(owner).get()
    assert body["correction"] == correction.pk and body["waiting"] is True
    assert (correction.origin, correction.origin_id, correction.chosen) == ("answer", talks.pk, "About twelve kilos.")
    assert rows(owner_api.get("/api/v1/audience/revisions/")) == [body]


def test_a_second_revision_replaces_the_first_correction(owner_api, talks):
    for text in ("First try.", "Second try."):
        owner_api.post("/api/v1/audience/revisions/", {"answer": talks.pk, "text": text}, format="json")

    [revision] = rows(owner_api.get("/api/v1/audience/revisions/"))

    assert revision["text"] == "Second try." and revision["twin_answer"].startswith("In a good July")
    assert Correction.objects.count() == 1


def test_revisions_are_refused_for_other_answers_and_bad_input(owner_api, owner, other, talks):
    own = exchange(owner, "Mine again")
    theirs = exchange(other, "Theirs", visitor="x")

    for answer in (own.pk, theirs.pk, talks.pk - 1):  # the owner's own chat, another twin, a question
        response = owner_api.post("/api/v1/audience/revisions/", {"answer": answer, "text": "No."}, format="json")
        assert response.status_code == 404
    empty = owner_api.post("/api/v1/audience/revisions/", {"answer": talks.pk, "text": " "}, format="json")
    assert empty.status_code == 400
    assert owner_api.post("/api/v1/audience/revisions/", {"text": "No."}, format="json").status_code == 400
    assert not Correction.objects.exists()


def test_unanswered_topics(owner_api, talks):
    [topic] = rows(owner_api.get("/api/v1/audience/unanswered/"))

    assert topic["name"] == "What do you feed them in winter?" and topic["count"] == 1
    [question] = topic["questions"]
    assert question["asker"] == "Dave Reader" and question["revised"] is False
    assert question["conversation"] != talks.conversation_id and question["answer"] > talks.pk


def test_token_scopes(owner, talks):
    read = api_client_for(None)
    read.credentials(HTTP_AUTHORIZATION=f"Bearer {do_issue_api_token(owner, 'read', scopes=['read'])[1]}")
    chat = api_client_for(None)
    chat.credentials(HTTP_AUTHORIZATION=f"Bearer {do_issue_api_token(owner, 'chat', scopes=['chat'])[1]}")

    for path in ("members/", "conversations/", "revisions/", "unanswered/"):
        assert read.get(f"/api/v1/audience/{path}").status_code == 200
        assert chat.get(f"/api/v1/audience/{path}").status_code == 403
    revise = {"answer": talks.pk, "text": "Mine."}
    assert read.post("/api/v1/audience/revisions/", revise, format="json").status_code == 403
    assert not Correction.objects.exists()


def test_other_users_see_only_their_own_audience(other_api, anon_api, talks):
    assert rows(other_api.get("/api/v1/audience/members/"))[0]["name"].startswith("Visitor #")
    assert "Dave" not in str(rows(other_api.get("/api/v1/audience/conversations/")))
    assert anon_api.get("/api/v1/audience/members/").status_code == 401
