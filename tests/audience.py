"""Audience rows for the tests: an invited user's or a visitor's exchange with an owner's twin, made
with the ORM as the serving worker leaves them (a question, a finished answer with its grounding,
and the answer's prompt trace). The sharing and widget code create these rows in the app."""

from datetime import datetime

from chat.models import Conversation, Message, PromptTrace

NO_NOTES = {"score": None, "sentences": [], "quote": None, "no_notes": True}


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
