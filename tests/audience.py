"""Audience rows for the tests: an invited user's or a visitor's exchange with an owner's twin, made
with the ORM as the serving worker leaves them (a question, a finished answer with its grounding,
and the answer's prompt trace). The sharing and widget code create these rows in the app."""

from datetime import datetime

from accounts.models import TwinAccess
from chat.models import Conversation, Message, PromptTrace
from tests.conftest import make_user

VISITOR = "3f1c9a1e-visitor-browser-id"  # a widget visitor's id (kept in their browser)
NO_NOTES = {"score": None, "sentences": [], "quote": None, "no_notes": True}


def invited_reader(owner, username="dave"):
    """A user the owner invited to their twin (with a twin of their own, as every user has)."""
    user = make_user(username, first_name="Dave", last_name="Reader")
    TwinAccess.objects.create(owner=owner, member=user)
    return user


def grounded(score: float) -> dict:
    return {"score": score, "sentences": [{"text": "Twelve kilograms.", "supported": score >= 0.5}], "quote": None}


def exchange(
    owner,
    question: str,
    answer: str = "In a good July each hive gives me about twelve kilograms of honey.",
    *,
    asker=None,
    visitor: str = "",
    grounding: dict | None = None,
    first_token_ms: int = 300,
    at: datetime | None = None,
    conversation: Conversation | None = None,
) -> Message:
    """One question and its finished answer (returned) in a new or given audience conversation."""
    grounding = grounded(1.0) if grounding is None else grounding
    if conversation is None:
        conversation = Conversation.objects.create(owner=owner, asker=asker, visitor=visitor, title=question[:80])
    asked = Message.objects.create(conversation=conversation, role=Message.Role.USER, content=question)
    reply = Message.objects.create(
        conversation=conversation, role=Message.Role.ASSISTANT, content=answer, grounding=grounding
    )
    no_notes = bool(grounding.get("no_notes"))
    PromptTrace.objects.create(
        owner=owner,
        message=reply,
        question=question,
        answer=answer,
        grounding=grounding,
        base_model="tiny",
        prompt="" if no_notes else f"<notes>…</notes> {question}",
        first_token_ms=0 if no_notes else first_token_ms,
    )
    if at is not None:  # created_at is auto_now_add: dated afterwards
        Message.objects.filter(pk__in=[asked.pk, reply.pk]).update(created_at=at)
        PromptTrace.objects.filter(message=reply).update(created_at=at)
        reply.refresh_from_db()
    return reply


def an_audience(owner, other, reader) -> Message:
    """The owner's audience: the reader (invited) asked two questions in two conversations, one not in
    the notes; a visitor asked one. The owner's own chat and another twin's visitor must never count.
    Returns the reader's first answer."""
    first = exchange(owner, "How much honey in July?", asker=reader, grounding=grounded(1.0))
    exchange(owner, "What do you feed them in winter?", asker=reader, grounding=NO_NOTES)
    exchange(owner, "Do you sell the honey?", visitor=VISITOR, grounding=grounded(0.9))
    exchange(owner, "My own question to my twin")
    exchange(other, "How long is your boat?", visitor="someone-elses-visitor")
    return first
