"""The owner's Audience pages: who talked to the twin, each conversation (answers revisable into
corrections), charts of the audience's days; and the owner's own chat showing only their own."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import TwinAccess
from chat import audience
from chat.models import Conversation, Message
from features.models import Correction
from tests.audience import NO_NOTES, VISITOR, an_audience, exchange, grounded, invited_reader

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(owner):
    return invited_reader(owner)


@pytest.fixture
def talks(owner, other, reader):
    """an_audience, and the reader's second question in their first conversation (three in all)."""
    first = an_audience(owner, other, reader)
    exchange(owner, "And in August?", asker=reader, grounding=grounded(0.5), conversation=first.conversation)
    return first


def test_members_are_invited_users_by_name_and_visitors_by_tag(owner, reader, talks):
    members = {m.name: m for m in audience.members(owner)}

    tag = audience.visitor_tag(VISITOR)
    assert set(members) == {"Dave Reader", f"Visitor #{tag[:6]}"}
    dave = members["Dave Reader"]
    assert (dave.kind, dave.key, dave.access) == ("invited", f"user-{reader.pk}", "active")
    assert (dave.conversations, dave.questions, dave.answers, dave.grounded) == (2, 3, 3, 1)
    assert dave.grounded_share == pytest.approx(1 / 3, abs=1e-3)
    visitor = members[f"Visitor #{tag[:6]}"]
    assert (visitor.kind, visitor.key) == ("visitor", f"visitor-{tag}")
    assert (visitor.questions, visitor.grounded_percent) == (1, 100)
    assert VISITOR not in visitor.key + visitor.name  # the id is the visitor's key, never shown


def test_a_revoked_invitation_keeps_the_members_history(owner, reader, talks):
    TwinAccess.objects.filter(member=reader).update(revoked_at=timezone.now())

    [dave] = [m for m in audience.members(owner) if m.kind == "invited"]

    assert dave.access == "revoked" and dave.questions == 3


def test_the_audience_page_lists_members_and_conversations_of_the_owner_only(owner_client, owner, talks):
    content = owner_client.get("/audience/").content.decode()

    assert "Dave Reader" in content and f"Visitor #{audience.visitor_tag(VISITOR)[:6]}" in content
    assert '33% <span class="muted">(1 of 3)' in content
    assert f'href="/audience/conversations/{talks.conversation_id}/"' in content
    assert "How long is your boat?" not in content and "My own question" not in content
    assert content.count("<svg") == 3  # questions, time to first token, grounding


def test_the_page_filters_conversations_by_member(owner_client, owner, reader, talks):
    key = f"visitor-{audience.visitor_tag(VISITOR)}"

    content = owner_client.get("/audience/", {"member": key}).content.decode()

    assert "Do you sell the honey?" in content.split("<h2>Conversations")[1]
    assert "How much honey in July?" not in content.split("<h2>Conversations")[1]


def test_an_audience_conversation_is_readable_by_the_owner(owner_client, talks):
    response = owner_client.get(f"/audience/conversations/{talks.conversation_id}/")

    content = response.content.decode()
    assert response.status_code == 200
    assert "How much honey in July?" in content and "And in August?" in content and "Dave Reader" in content
    assert f'action="/audience/answers/{talks.pk}/revise/"' in content


def test_nobody_else_reads_it_not_even_the_invited_user_who_asked(other_client, reader, talks, client):
    client.force_login(reader)

    for visitor in (other_client, client):
        assert visitor.get(f"/audience/conversations/{talks.conversation_id}/").status_code == 404
        assert visitor.post(f"/audience/answers/{talks.pk}/revise/", {"text": "Mine."}).status_code == 404
        assert "How much honey" not in visitor.get("/audience/").content.decode()
    talks.refresh_from_db()
    assert not talks.revised_from


def test_the_owners_own_conversation_is_not_an_audience_page(owner_client, owner):
    own = exchange(owner, "My own question to my twin")

    assert owner_client.get(f"/audience/conversations/{own.conversation_id}/").status_code == 404
    assert owner_client.post(f"/audience/answers/{own.pk}/revise/", {"text": "Mine."}).status_code == 404


def test_revising_an_audience_answer_makes_a_correction_shown_on_the_dashboard(owner_client, owner, talks):
    response = owner_client.post(f"/audience/answers/{talks.pk}/revise/", {"text": "About twelve kilos a hive."})

    assert response.status_code == 302 and response["Location"] == f"/audience/conversations/{talks.conversation_id}/"
    talks.refresh_from_db()
    assert talks.content == "About twelve kilos a hive."
    assert talks.revised_from.startswith("In a good July")
    correction = Correction.objects.for_user(owner).get(origin="answer", origin_id=talks.pk)
    assert correction.chosen == "About twelve kilos a hive." and correction.rejected == talks.revised_from
    assert "How much honey in July?" in correction.prompt[-1]["content"]  # the reader's question, in the template
    card = owner_client.get("/dashboard/").content.decode().split('id="corrections"')[1].split("</section>")[0]
    assert "<strong>1</strong> correction waiting" in card and "1 of them to your" in card
    page = owner_client.get(f"/audience/conversations/{talks.conversation_id}/").content.decode()
    assert '<div class="answer-text revised">About twelve kilos a hive.</div>' in page and "the twin had said" in page
    revised = page.split(f'id="answer-{talks.pk}"')[1].split('class="bubble')[0]
    assert "Twelve kilograms." not in revised  # the twin's checked sentences are not shown as the answer


def test_an_empty_revision_is_refused_with_the_reason(owner_client, talks):
    response = owner_client.post(f"/audience/answers/{talks.pk}/revise/", {"text": "  "})

    assert response.status_code == 400 and "Write the answer you would have given." in response.content.decode()
    assert not Correction.objects.exists()


def test_daily_series_count_questions_and_take_percentiles_of_the_first_token(owner, reader):
    today = timezone.now()
    for ms in (100, 200, 300, 400):
        exchange(owner, "Honey?", asker=reader, first_token_ms=ms, grounding=grounded(1.0), at=today)
    exchange(owner, "Winter?", asker=reader, grounding=NO_NOTES, at=today)  # no first token: not in the times
    exchange(owner, "Bees?", visitor=VISITOR, first_token_ms=900, grounding=grounded(0.5), at=today - timedelta(1))
    exchange(owner, "Mine", first_token_ms=5000, at=today)  # the owner's own: not the audience's

    series = audience.daily(owner, days=7)

    day, yesterday = timezone.localdate(), timezone.localdate() - timedelta(1)
    assert len(series.days) == 7 and series.days[-1] == day
    assert series.questions[-1] == [day, 5] and series.questions[-2] == [yesterday, 1] and series.questions[0][1] == 0
    assert series.first_token_p50 == [[yesterday, 900], [day, 250]]
    assert series.first_token_p95 == [[yesterday, 900], [day, 385]]  # continuous: 300 + 0.85 * 100
    assert series.grounding == [[yesterday, 50.0], [day, 100.0]]
    assert series.grounded_share == [[yesterday, 0.0], [day, 80.0]]  # 4 of 5 answers (no notes: not grounded)


def test_the_charts_draw_each_day_with_its_value(owner_client, owner, reader):
    exchange(owner, "Honey?", asker=reader, first_token_ms=420)

    content = owner_client.get("/audience/").content.decode()

    assert f"<title>{timezone.localdate().isoformat()}: questions 1</title>" in content
    assert f"<title>{timezone.localdate().isoformat()}: p95 420</title>" in content


def test_the_owners_chat_lists_and_opens_only_their_own_conversations(owner_client, owner, owner_api, talks):
    own = exchange(owner, "My own question to my twin")

    chat = owner_client.get("/chat/").content.decode()
    assert f'href="/chat/{own.conversation_id}/"' in chat and f'href="/chat/{talks.conversation_id}/"' not in chat
    assert owner_client.get(f"/chat/{talks.conversation_id}/").status_code == 404
    sent = owner_client.post("/chat/send/", {"message": "Hi", "conversation": talks.conversation_id})
    assert sent.status_code == 404 and talks.conversation.messages.count() == 4  # nothing added to Dave's
    listed = [c["id"] for c in owner_api.get("/api/v1/conversations/").json()["results"]]
    assert own.conversation_id in listed and len(listed) == 2  # and the fixture's own one, none of Dave's
    assert talks.conversation_id not in listed
    assert owner_api.get(f"/api/v1/conversations/{talks.conversation_id}/").status_code == 404
    asked = owner_api.post("/api/v1/chat/", {"message": "Hi", "conversation": talks.conversation_id}, format="json")
    assert asked.status_code == 404


def test_revising_on_the_chat_page_still_returns_to_the_right_page(owner_client, talks):
    response = owner_client.post(f"/chat/messages/{talks.pk}/revise/", {"text": "Mine."})

    assert response["Location"] == f"/audience/conversations/{talks.conversation_id}/"
    assert Conversation.objects.get(pk=talks.conversation_id).messages.filter(content="Mine.").exists()
    assert Message.objects.get(pk=talks.pk).revised_from
