"""Asking a twin: retrieval over the owner's chunks, the shared prompt template,
generation with the owner's production adapter, and a prompt trace per answer.

`stream_answer` yields events that the browser (SSE), the REST API and the
OpenAI-compatible endpoint all render in their own format.
"""

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from accounts.models import Twin
from features.models import Chunk
from ingestion.models import Source
from training.base_models import display_name
from training.models import ModelVersion
from training.prompts import build_messages

from .llm import get_models
from .models import Conversation, Message, PromptTrace

logger = logging.getLogger(__name__)
EXCERPT_CHARS = 300


class ChatRefused(Exception):
    """The question cannot be answered now; the message says why."""


class AnswerFailed(Exception):
    """Generation broke on our side (logged); the question was fine."""


@dataclass
class Event:
    kind: str  # "sources", "token", "done", "error"
    data: object


def check_can_chat(owner):
    if not Source.objects.for_user(owner).exists():
        raise ChatRefused("Your twin has nothing to answer from yet: add a source (a file or an article URL) first.")
    if not Chunk.objects.for_user(owner).exists():
        raise ChatRefused("Your sources are still being processed (or had no text); try again in a minute.")


def do_ask(owner, question: str, conversation: Conversation | None = None) -> Message:
    """Store the question and a pending answer; generation happens in stream_answer."""
    question = (question or "").strip()
    if not question:
        raise ChatRefused("Type a question first.")
    if len(question) > settings.TWIN_MAX_QUESTION_CHARS:
        raise ChatRefused(f"Questions are limited to {settings.TWIN_MAX_QUESTION_CHARS} characters.")
    if conversation is not None and conversation.owner_id != owner.pk:
        raise ChatRefused("That conversation is not yours.")
    check_can_chat(owner)
    with transaction.atomic():
        if conversation is None:
            conversation = Conversation.objects.create(owner=owner, title=question[:80])
        Message.objects.create(conversation=conversation, role=Message.Role.USER, content=question)
        answer = Message.objects.create(
            conversation=conversation, role=Message.Role.ASSISTANT, status=Message.Status.PENDING
        )
        conversation.save(update_fields=["updated_at"])
    return answer


def _question_for(answer: Message) -> str:
    return answer.conversation.messages.filter(role=Message.Role.USER, id__lt=answer.id).last().content


def _source_entry(chunk: Chunk) -> dict:
    document = chunk.clean_document.document
    return {
        "chunk_id": chunk.pk,
        "document_id": document.pk,
        "title": document.title,
        "url": document.url if document.url.startswith("http") else "",
        "score": round(chunk.score, 4),
        "excerpt": chunk.text[:EXCERPT_CHARS],
    }


def stream_answer(answer: Message) -> Iterator[Event]:
    """Generate a pending answer, or replay a finished one (an SSE reconnect is harmless)."""
    claimed = Message.objects.filter(pk=answer.pk, status=Message.Status.PENDING).update(
        status=Message.Status.STREAMING
    )
    if not claimed:
        answer.refresh_from_db()
        yield Event("sources", answer.sources)
        if answer.status == Message.Status.FAILED:
            yield Event("error", answer.error)
        elif answer.content:
            yield Event("token", answer.content)
        yield Event("done", answer)
        return

    owner = answer.conversation.owner
    started = time.perf_counter()
    try:
        question = _question_for(answer)
        chunks = Chunk.objects.for_user(owner).search(question, k=settings.TWIN_RETRIEVAL_TOP_K)
        retrieval_ms = int((time.perf_counter() - started) * 1000)
        answer.sources = [_source_entry(chunk) for chunk in chunks]
        yield Event("sources", answer.sources)

        model_version = ModelVersion.objects.production_for(owner)
        messages = build_messages(Twin.for_user(owner).name, question, [chunk.text for chunk in chunks])
        stream = get_models().stream(messages, model_version)
        while True:
            try:
                piece = next(stream)
            except StopIteration as finished:
                generation = finished.value
                break
            answer.content += piece
            yield Event("token", piece)
    except GeneratorExit:  # the client went away mid-answer: keep what was said, mark it cut short
        answer.status, answer.error = Message.Status.FAILED, "The answer was interrupted."
        answer.save(update_fields=["status", "error", "content", "sources"])
        raise
    except Exception:
        logger.exception("answering message %s failed", answer.pk)
        answer.status, answer.error = Message.Status.FAILED, "The twin could not answer just now; please try again."
        answer.save(update_fields=["status", "error", "content", "sources"])
        yield Event("error", answer.error)
        return
    with transaction.atomic():
        answer.content = answer.content.strip() or "(no answer)"
        answer.status = Message.Status.DONE
        answer.model_version = model_version
        answer.save(update_fields=["content", "status", "sources", "model_version"])
        PromptTrace.objects.create(
            owner=owner,
            message=answer,
            question=question,
            retrieved=[{"chunk_id": c.pk, "score": round(c.score, 4)} for c in chunks],
            prompt=generation.prompt,
            answer=answer.content,
            model_version=model_version,
            base_model=model_version.base_model.identifier if model_version else settings.TWIN_BASE_MODEL,
            retrieval_ms=retrieval_ms,
            first_token_ms=generation.first_token_ms,
            latency_ms=int((time.perf_counter() - started) * 1000),
            prompt_tokens=generation.prompt_tokens,
            tokens_generated=generation.tokens,
        )
    yield Event("done", answer)


def wait_for_answer(answer: Message) -> Message:
    """Run a pending answer to its end (the non-streaming paths)."""
    for event in stream_answer(answer):
        if event.kind == "error":
            raise AnswerFailed(event.data)
    answer.refresh_from_db()
    return answer


def do_answer(owner, question: str, conversation: Conversation | None = None) -> Message:
    """Ask and wait for the whole answer (the REST API's non-streaming path)."""
    return wait_for_answer(do_ask(owner, question, conversation))


def serving_description(owner) -> str:
    model_version = ModelVersion.objects.production_for(owner)
    if model_version is None:
        return f"{display_name(settings.TWIN_BASE_MODEL)} (base model: no approved adapter yet)"
    return f"{model_version.base_model.name} + your adapter v{model_version.version}"
