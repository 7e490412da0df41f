"""Asking and writing: the actions that views, the REST API and the OpenAI endpoint share.

`do_ask` stores the question and a pending answer and sends it to the serving worker (queue
"serve", chat/tasks.py → chat/serving.py), which publishes each event to Redis
(chat/streams.py); the web follows them (chat/following.py). A writing request (`do_write`, or a
chat message that asks for writing) is the same path in write mode, and its text is kept as a
Draft that the owner can edit; an edit of a draft or a revision of an answer is stored as a
correction (a preference pair) that the next DPO refinement trains on.
"""

from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.actions import do_ensure_twin
from core.queue import QueueUnavailable, send_on_commit
from features.actions import do_record_correction
from features.prompts import LENGTHS, build_messages, build_write_messages

from .admission import ChatBusy, ChatRefused, admit, check_can_chat, fail_abandoned_answers, fail_unsent_answer
from .following import access_check, wait_for_answer
from .models import Conversation, Draft, Message
from .writing import writing_request


def do_ask(
    owner,
    question: str,
    conversation: Conversation | None = None,
    history: list[dict] = (),
    mode: str = "auto",
    *,
    asker=None,
    visitor: str = "",
) -> Message:
    """Store the question and a pending answer; generation happens in chat/serving.py.

    history: earlier turns brought by the caller (the OpenAI API is stateless), stored in
    the new conversation before the question so the answer sees them as any chat would.
    mode: "ask", "write", or "auto" (a request to write something is written, anything else answered).
    A write-mode answer comes with a Draft.
    asker: an invited user asking `owner`'s twin (the caller checked accounts.sharing.may_chat). Their
    conversation is the owner's row naming them; it is answered in ask mode from the shared sources only.
    visitor: an anonymous visitor of the published twin (chat/visitors.py) asking in a conversation
    of their own; likewise answered from the shared sources only, in ask mode.
    """
    question = (question or "").strip()
    if not question:
        raise ChatRefused("Type a question first.")
    if len(question) > settings.TWIN_MAX_QUESTION_CHARS:
        raise ChatRefused(f"Questions are limited to {settings.TWIN_MAX_QUESTION_CHARS} characters.")
    if asker is not None and asker.pk == owner.pk:
        asker = None  # the owner asking their own twin
    if conversation is not None and (
        conversation.owner_id != owner.pk
        or conversation.asker_id != (asker.pk if asker else None)
        or conversation.visitor != visitor
    ):
        raise ChatRefused("That conversation is not yours.")
    if visitor:
        mode = Message.Mode.ASK
    if mode not in ("auto", Message.Mode.ASK, Message.Mode.WRITE):
        raise ChatRefused("The mode must be ask, write or auto.")
    if asker is not None:
        if mode == Message.Mode.WRITE:
            raise ChatRefused("Only the twin's owner may have it write; ask it a question instead.")
        mode = Message.Mode.ASK
    if mode == "auto":
        mode = Message.Mode.WRITE if writing_request(question) else Message.Mode.ASK
    draft = None
    if mode == Message.Mode.WRITE:
        draft = Draft(owner=owner, brief=question, form=Draft.Form.FREE)
    return _queue(owner, question, conversation, history, mode, draft, asker, visitor)
    return _queue(owner, question, conversation, history, mode, draft, visitor)


def do_write(owner, brief: str, form: str = "paragraph", length: str = "medium", alternatives: int = 1) -> Draft:
    """A new draft for a brief, written by the serving worker in the owner's voice."""
    brief = (brief or "").strip()
    if not brief:
        raise ChatRefused("Write a brief first: what should the text be about?")
    if len(brief) > settings.TWIN_MAX_QUESTION_CHARS:
        raise ChatRefused(f"Briefs are limited to {settings.TWIN_MAX_QUESTION_CHARS} characters.")
    if form not in Draft.Form.values:
        raise ChatRefused(f"The format must be one of: {', '.join(Draft.Form.values)}.")
    if length not in LENGTHS:
        raise ChatRefused(f"The length must be one of: {', '.join(LENGTHS)}.")
    if not 1 <= int(alternatives) <= settings.TWIN_MAX_ALTERNATIVES:
        raise ChatRefused(f"Ask for 1 to {settings.TWIN_MAX_ALTERNATIVES} alternatives.")
    draft = Draft(owner=owner, brief=brief, form=form, length=length, alternatives_wanted=int(alternatives))
    answer = _queue(owner, brief, None, (), Message.Mode.WRITE, draft)
    return answer.draft


def do_regenerate_draft(draft: Draft) -> Draft:
    """Write the draft again (new alternatives); its earlier text stays in its conversation."""
    answer = _queue(draft.owner, draft.brief, draft.message.conversation if draft.message else None, (), "write", draft)
    return answer.draft


def _queue(owner, question, conversation, history, mode, draft: Draft | None, asker=None, visitor="") -> Message:
    check_can_chat(owner, audience=asker is not None or bool(visitor))
    fail_abandoned_answers()
    try:
        with transaction.atomic():
            admit(owner, asker, visitor)
            if conversation is None:
                title = f"Draft: {question}" if mode == Message.Mode.WRITE else question
                conversation = Conversation.objects.create(owner=owner, asker=asker, visitor=visitor, title=title[:80])
            Message.objects.bulk_create(
                Message(conversation=conversation, role=turn["role"], content=turn["content"]) for turn in history
            )
            Message.objects.create(conversation=conversation, role=Message.Role.USER, content=question)
            answer = Message.objects.create(
                conversation=conversation, role=Message.Role.ASSISTANT, status=Message.Status.PENDING, mode=mode
            )
            if draft is not None:
                draft.message = answer
                draft.save()
            conversation.save(update_fields=["updated_at"])
            send_on_commit("chat.tasks.generate_answer", answer.pk, on_failure=partial(fail_unsent_answer, answer.pk))
    except QueueUnavailable as exc:  # the answer is stored failed with the reason; the question was fine
        raise ChatBusy(str(exc), reason="queue_down") from exc
    return answer


def do_answer(
    owner, question: str, conversation: Conversation | None = None, mode: str = "auto", *, asker=None
) -> Message:
    """Ask and wait for the whole answer (the REST API's non-streaming path); an asker's wait ends
    at once when their access is revoked (AccessRevoked)."""
    answer = do_ask(owner, question, conversation, mode=mode, asker=asker)
    return wait_for_answer(answer, access_check(asker, owner))


def do_edit_draft(draft: Draft, text: str) -> Draft:
    """The owner's own version of a draft: kept as its text, and as a correction (the owner's text
    chosen over the twin's) for the next refinement."""
    text = (text or "").strip()
    if not text:
        raise ChatRefused("A draft cannot be empty; delete it instead.")
    if draft.status != Draft.Status.DONE:
        raise ChatRefused("The draft is still being written; edit it once it is done.")
    with transaction.atomic():
        draft.text, draft.edited_at = text, timezone.now()
        draft.save(update_fields=["text", "edited_at", "updated_at"])
        if text != draft.generated_text:
            twin_name = do_ensure_twin(draft.owner).name
            messages = build_write_messages(twin_name, draft.brief, draft.form, LENGTHS[draft.length])
            do_record_correction(
                draft.owner, messages, chosen=text, rejected=draft.generated_text, origin="draft", origin_id=draft.pk
            )
    return draft


def do_revise_answer(answer: Message, text: str) -> Message:
    """The owner's better answer to a question: shown as the answer, kept as a correction."""
    text = (text or "").strip()
    if not text:
        raise ChatRefused("Write the answer you would have given.")
    if answer.role != Message.Role.ASSISTANT or answer.status != Message.Status.DONE:
        raise ChatRefused("Only a finished answer can be revised.")
    question = answer.conversation.messages.filter(role=Message.Role.USER, id__lt=answer.id).last()
    with transaction.atomic():
        if not answer.revised_from:
            answer.revised_from = answer.content
        answer.content = text
        answer.save(update_fields=["content", "revised_from"])
        owner = answer.conversation.owner
        notes = [e["text"] for e in (answer.trace.evidence if hasattr(answer, "trace") else [])]
        messages = build_messages(do_ensure_twin(owner).name, question.content if question else "", notes)
        do_record_correction(
            owner, messages, chosen=text, rejected=answer.revised_from, origin="answer", origin_id=answer.pk
        )
    return answer
