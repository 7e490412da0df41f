"""Asking a twin: retrieval over the owner's chunks, the shared prompt template,
generation with the owner's production adapter, and a prompt trace per answer.

`generate_answer_events` yields events that the browser (SSE), the REST API and the
OpenAI-compatible endpoint all render in their own format.

Grounding (the design is in the module docstrings it calls): the question's best
sentences from the retrieved chunks go into a short prompt (features/evidence.py),
decoding favours continuing them (chat/steering.py), and each answer sentence is
then checked against the notes (chat/grounding.py). When no note is close enough
to the question, the twin says it has no notes on that instead of inventing.
"""

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from accounts.actions import do_ensure_twin
from features.embeddings import count_tokens, embed, embed_query
from features.evidence import NoteSentences
from features.models import Chunk
from ingestion.models import Source
from training.base_models import display_name
from training.models import ModelVersion
from training.prompts import build_messages

from .grounding import check_grounding
from .llm import get_models
from .models import Conversation, Message, PromptTrace

logger = logging.getLogger(__name__)
EXCERPT_CHARS = 300
FOLLOW_UP = re.compile(r"\b(it|its|that|this|these|those|they|them|their|there|he|him|his|she|her)\b", re.IGNORECASE)


class ChatRefused(Exception):
    """The question cannot be answered now; the message says why."""


class AnswerFailed(Exception):
    """Generation broke on our side (logged); the question was fine."""


@dataclass
class Event:
    kind: str  # "sources", "token", "grounding", "done", "error"
    data: object


def check_can_chat(owner):
    if not Source.objects.for_user(owner).exists():
        raise ChatRefused("Your twin has nothing to answer from yet: add a source (a file or an article URL) first.")
    if not Chunk.objects.for_user(owner).exists():
        raise ChatRefused("Your sources are still being processed (or had no text); try again in a minute.")


def do_ask(owner, question: str, conversation: Conversation | None = None, history: list[dict] = ()) -> Message:
    """Store the question and a pending answer; generation happens in generate_answer_events.

    history: earlier turns brought by the caller (the OpenAI API is stateless), stored in
    the new conversation before the question so the answer sees them as any chat would.
    """
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
        Message.objects.bulk_create(
            Message(conversation=conversation, role=turn["role"], content=turn["content"]) for turn in history
        )
        Message.objects.create(conversation=conversation, role=Message.Role.USER, content=question)
        answer = Message.objects.create(
            conversation=conversation, role=Message.Role.ASSISTANT, status=Message.Status.PENDING
        )
        conversation.save(update_fields=["updated_at"])
    return answer


def _turns_before(answer: Message) -> list[Message]:
    """The conversation up to this answer: finished turns only (a failed answer is not history)."""
    earlier = answer.conversation.messages.filter(id__lt=answer.id).order_by("id")
    return [m for m in earlier if m.role == Message.Role.USER or (m.status == Message.Status.DONE and m.content)]


def history_within_budget(turns: list[Message], count_tokens, budget: int) -> list[dict]:
    """The most recent turns whose text fits the token budget, oldest first."""
    kept, used = [], 0
    for turn in reversed(turns):
        used += count_tokens(turn.content) + 4  # the chat template's role markers
        if used > budget:
            break
        kept.append({"role": turn.role, "content": turn.content})
    return kept[::-1]


def is_follow_up(question: str) -> bool:
    """A question that leans on the one before ("and how long does that take?")."""
    return len(question.split()) < 4 or bool(FOLLOW_UP.search(question))


def _retrieve(owner, question: str, history: list[dict]):
    """(chunks, query, its vector): the owner's best chunks for the question. A follow-up is
    also tried with the previous question in front, and the better-scoring list wins. A
    question on a new topic is not: the old topic would pull its retrieval back."""
    vector = embed_query(question)
    chunks = Chunk.objects.for_user(owner).search(question, k=settings.TWIN_RETRIEVAL_TOP_K, embedding=vector)
    previous = [turn["content"] for turn in history if turn["role"] == Message.Role.USER]
    if previous and is_follow_up(question):
        joined = f"{previous[-1]} {question}"
        joined_vector = embed_query(joined)
        joined_chunks = Chunk.objects.for_user(owner).search(
            joined, k=settings.TWIN_RETRIEVAL_TOP_K, embedding=joined_vector
        )
        if joined_chunks and (not chunks or joined_chunks[0].score > chunks[0].score):
            return joined_chunks, joined, joined_vector
    return chunks, question, vector


def _source_entry(chunk: Chunk) -> dict:
    """A citation: the document, where in it (an article's heading path, code's symbols), the excerpt."""
    document = chunk.clean_document.document
    return {
        "chunk_id": chunk.pk,
        "document_id": document.pk,
        "title": document.title,
        "headings": chunk.metadata.get("headings", []),
        "symbols": chunk.metadata.get("symbols", []),
        "url": document.url if document.url.startswith("http") else "",
        "score": round(chunk.score, 4),
        "excerpt": chunk.text[:EXCERPT_CHARS],
    }


def _cited_first(chunks: list[Chunk], evidence) -> list[Chunk]:
    """The chunks the evidence came from lead the sources, best evidence first."""
    order = []
    for item in evidence:
        if item.chunk_id not in order:
            order.append(item.chunk_id)
    return sorted(chunks, key=lambda c: order.index(c.pk) if c.pk in order else len(order))


@dataclass
class Plan:
    """What answering one question will use, decided before any token is generated."""

    question: str
    history: list[dict]
    chunks: list[Chunk]
    notes: NoteSentences
    evidence: list  # the Evidence sentences put into the prompt
    relevance: float  # the best note sentence's similarity to the question

    @property
    def has_notes(self) -> bool:
        return bool(self.evidence) and self.relevance >= settings.TWIN_NOTES_MIN_SIMILARITY


def plan_answer(owner, answer: Message, count_tokens) -> Plan:
    turns = _turns_before(answer)
    history = history_within_budget(turns[:-1], count_tokens, settings.TWIN_HISTORY_TOKENS)
    return plan_for(owner, turns[-1].content, history)


def plan_for(owner, question: str, history: list[dict] = ()) -> Plan:
    """Retrieval and evidence for a question; `relevance` decides between answering and "no notes"."""
    chunks, query, vector = _retrieve(owner, question, history)
    notes = NoteSentences.from_chunks(chunks, embed)
    evidence = notes.select(query, vector, settings.TWIN_EVIDENCE_SENTENCES)
    relevance = max((e.similarity for e in evidence), default=0.0)
    return Plan(question, history, _cited_first(chunks, evidence), notes, evidence, relevance)


def no_notes_answer() -> str:
    return "I haven't written anything about that, so I'd rather not guess."


def generate_answer_events(answer: Message) -> Iterator[Event]:
    """Generate a pending answer, or replay a finished one (an SSE reconnect is harmless).

    Events: sources, then tokens, then grounding (each sentence checked against the
    notes), then done; or error.
    """
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
            yield Event("grounding", answer)
        yield Event("done", answer)
        return

    owner = answer.conversation.owner
    models = get_models()
    started = time.perf_counter()
    generation, model_version = None, ModelVersion.objects.for_user(owner).production()
    try:
        plan = plan_answer(owner, answer, count_tokens)
        retrieval_ms = int((time.perf_counter() - started) * 1000)
        answer.sources = [_source_entry(chunk) for chunk in plan.chunks] if plan.has_notes else []
        yield Event("sources", answer.sources)

        if plan.has_notes:
            notes = [e.text for e in plan.evidence]
            messages = build_messages(do_ensure_twin(owner).name, plan.question, notes, plan.history)
            stream = models.stream(messages, model_version, evidence=notes, max_sentences=settings.TWIN_MAX_SENTENCES)
            while True:
                try:
                    piece = next(stream)
                except StopIteration as finished:
                    generation = finished.value
                    break
                answer.content += piece
                yield Event("token", piece)
        else:
            answer.content = no_notes_answer()
            yield Event("token", answer.content)
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
    answer.content = answer.content.strip() or "(no answer)"
    if plan.has_notes:
        grounding = check_grounding(answer.content, plan.notes, embed, plan.evidence[0] if plan.evidence else None)
        answer.grounding = _with_titles(grounding.as_dict(), plan.chunks)
    else:
        answer.grounding = {"score": None, "sentences": [], "quote": None, "no_notes": True}
    with transaction.atomic():
        answer.status = Message.Status.DONE
        answer.model_version = model_version if generation else None
        answer.save(update_fields=["content", "status", "sources", "model_version", "grounding"])
        PromptTrace.objects.create(
            owner=owner,
            message=answer,
            question=plan.question,
            retrieved=[{"chunk_id": c.pk, "score": round(c.score, 4)} for c in plan.chunks],
            evidence=[
                {"text": e.text, "chunk_id": e.chunk_id, "similarity": round(e.similarity, 4)} for e in plan.evidence
            ],
            prompt=generation.prompt if generation else "",
            answer=answer.content,
            grounding=answer.grounding,
            model_version=answer.model_version,
            base_model=model_version.base_model.identifier if model_version else settings.TWIN_BASE_MODEL,
            retrieval_ms=retrieval_ms,
            first_token_ms=generation.first_token_ms if generation else 0,
            generation_ms=generation.generation_ms if generation else 0,
            latency_ms=int((time.perf_counter() - started) * 1000),
            prompt_tokens=generation.prompt_tokens if generation else 0,
            tokens_generated=generation.tokens if generation else 0,
        )
    yield Event("grounding", answer)
    yield Event("done", answer)


def _with_titles(grounding: dict, chunks: list[Chunk]) -> dict:
    """Name the document behind each supporting chunk, for the page and the API."""
    titles = {c.pk: (c.clean_document.document_id, c.clean_document.document.title) for c in chunks}
    for item in [*grounding["sentences"], *([grounding["quote"]] if grounding["quote"] else [])]:
        if item.get("chunk_id") in titles:
            item["document_id"], item["title"] = titles[item["chunk_id"]]
    return grounding


def wait_for_answer(answer: Message) -> Message:
    """Run a pending answer to its end (the non-streaming paths)."""
    for event in generate_answer_events(answer):
        if event.kind == "error":
            raise AnswerFailed(event.data)
    answer.refresh_from_db()
    return answer


def do_answer(owner, question: str, conversation: Conversation | None = None) -> Message:
    """Ask and wait for the whole answer (the REST API's non-streaming path)."""
    return wait_for_answer(do_ask(owner, question, conversation))


def serving_description(owner) -> str:
    model_version = ModelVersion.objects.for_user(owner).production()
    if model_version is None:
        return f"{display_name(settings.TWIN_BASE_MODEL)} (base model: no approved adapter yet)"
    return f"{model_version.base_model.name} + your adapter v{model_version.version}"
