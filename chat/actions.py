"""Asking a twin: retrieval over the owner's chunks, the shared prompt template,
generation with the owner's production adapter, and a prompt trace per answer.

Serving: `do_ask` stores the question and a pending answer and sends it to the serving
worker (queue "serve", chat/tasks.py), which runs `generate_answer_events` and publishes
each event to Redis (chat/streams.py). The browser (SSE), the REST API and the
OpenAI-compatible endpoint follow those events (`follow_answer`) and render them in their
own format; no web request thread ever generates. Waits are bounded: a question beyond
the user's or the site's answers in flight is refused as busy at once, an answer the
serving worker has not started within TWIN_ANSWER_WAIT_SECONDS is dropped as busy, and
one whose worker died (no heartbeat) is marked interrupted.

Grounding (the design is in the module docstrings it calls): the question's best
sentences from the retrieved chunks go into a short prompt (features/evidence.py),
decoding favours continuing them (training/steering.py), and each answer sentence is
then checked against the notes (features/grounding.py). When no note is close enough
to the question, the twin says it has no notes on that instead of inventing.
"""

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from accounts.actions import do_ensure_twin
from core.queue import QueueUnavailable, send_on_commit
from features.embeddings import count_tokens, embed, embed_query
from features.evidence import NoteSentences
from features.grounding import check_grounding
from features.models import Chunk
from ingestion.models import Source
from training.base_models import display_name
from training.models import ModelVersion
from training.prompts import build_messages

from . import streams
from .llm import get_models
from .models import Conversation, Message, PromptTrace

logger = logging.getLogger(__name__)
EXCERPT_CHARS = 300
FOLLOW_UP = re.compile(r"\b(it|its|that|this|these|those|they|them|their|there|he|him|his|she|her)\b", re.IGNORECASE)
ADMISSION_LOCK = 7_202_611  # a PostgreSQL advisory lock key: questions are admitted one at a time
FOLLOW_POLL_MS = 1000
BUSY = "Twinsite is busy answering other questions right now; please ask again in a few seconds."
NOT_STARTED = "Twinsite was too busy to start this answer in time; please ask again in a few seconds."
INTERRUPTED = "The answer was interrupted (the process making it stopped); please ask again."


class ChatRefused(Exception):
    """The question cannot be answered now; the message says why."""

    status_code = 400
    retry_after: int | None = None


class ChatBusy(ChatRefused):
    """Ask again shortly: the site has as many answers in flight as it serves well (503), or
    this user's earlier answers are still being made (429)."""

    def __init__(self, message: str, status_code: int = 503):
        super().__init__(message)
        self.status_code = status_code
        self.retry_after = settings.TWIN_CHAT_RETRY_AFTER_SECONDS


class AnswerFailed(Exception):
    """Generation broke on our side (logged), or never started; the question was fine."""

    @property
    def retry_after(self) -> int:
        return settings.TWIN_CHAT_RETRY_AFTER_SECONDS


@dataclass
class Event:
    kind: str  # "sources", "token", "notice", "grounding", "done", "error"
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
    fail_abandoned_answers()
    try:
        with transaction.atomic():
            _admit(owner)
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
            send_on_commit("chat.tasks.generate_answer", answer.pk, on_failure=partial(_fail_unsent_answer, answer.pk))
    except QueueUnavailable as exc:  # the answer is stored failed with the reason; the question was fine
        raise ChatBusy(str(exc)) from exc
    return answer


def _admit(owner):
    """Refuse a question beyond the user's or the site's answers in flight. The advisory lock,
    held to the end of the asking transaction, makes counting and adding one step."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADMISSION_LOCK])
    in_flight = Message.objects.in_flight()
    mine = in_flight.for_user(owner).count()
    if mine >= settings.TWIN_MAX_PENDING_ANSWERS_PER_USER:
        raise ChatBusy(
            f"Your twin is still answering your {mine} earlier question{'s' if mine > 1 else ''}; "
            "ask again once an answer has arrived.",
            status_code=429,
        )
    if in_flight.count() >= settings.TWIN_MAX_ANSWERS_IN_FLIGHT:
        raise ChatBusy(BUSY)


def _fail_unsent_answer(message_id: int, reason: str):
    """No answer waits "pending" for a task that was never sent."""
    Message.objects.filter(pk=message_id, status=Message.Status.PENDING).update(
        status=Message.Status.FAILED, error=reason
    )


def fail_abandoned_answers(answers=None) -> int:
    """Mark failed the answers that will never finish (all in flight, or these): pending past
    TWIN_ANSWER_WAIT_SECONDS (the serving queue is backed up, or no worker runs), or streaming
    with no heartbeat (the process making them died). A worker that starts a dropped answer
    later finds it failed and skips it. Returns how many were failed."""
    answers = Message.objects.in_flight() if answers is None else answers
    waited_since = timezone.now() - timedelta(seconds=settings.TWIN_ANSWER_WAIT_SECONDS)
    dropped = answers.filter(status=Message.Status.PENDING, created_at__lt=waited_since).update(
        status=Message.Status.FAILED, error=NOT_STARTED
    )
    streaming = list(answers.filter(status=Message.Status.STREAMING).values_list("pk", flat=True))
    interrupted = 0
    for pk in set(streaming) - streams.alive(streaming):
        said = "".join(data for _, kind, data in streams.read(pk, "0", block_ms=None) if kind == "token")
        interrupted += Message.objects.filter(pk=pk, status=Message.Status.STREAMING).update(
            status=Message.Status.FAILED, error=INTERRUPTED, content=said
        )
    return dropped + interrupted


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
    notes = NoteSentences.from_chunks(chunks, embed, Chunk.objects.for_user(owner).lead_ins(chunks))
    evidence = notes.select(query, vector, settings.TWIN_EVIDENCE_SENTENCES)
    # The closest note of all, not of the chosen ones: the choice also weighs answer types and
    # the sentence before, and "do my notes cover this?" should not move with it.
    relevance = notes.closest(vector)
    return Plan(question, history, _cited_first(chunks, evidence), notes, evidence, relevance)


# An answer that ran out of tokens mid-sentence ends with CUT_MARK, so that "…and it" reads as cut.
SENTENCE_ENDS = (".", "!", "?", '"', "”", ")", "…")
CUT_MARK = "…"


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
        yield from replay_events(answer)
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
            if generation.cut_short and not answer.content.rstrip().endswith(SENTENCE_ENDS):
                answer.content = answer.content.rstrip() + CUT_MARK  # says it was cut, not that it ended
                yield Event("token", CUT_MARK)
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
    if generation and model_version:
        answer.notice = _adapter_notice(model_version, generation.adapter_problem)
        if answer.notice:
            yield Event("notice", answer.notice)
    if plan.has_notes:
        grounding = check_grounding(answer.content, plan.notes, embed, plan.evidence[0] if plan.evidence else None)
        answer.grounding = _with_titles(grounding.as_dict(), plan.chunks)
    else:
        answer.grounding = {"score": None, "sentences": [], "quote": None, "no_notes": True}
    with transaction.atomic():
        answer.status = Message.Status.DONE
        answer.model_version = model_version if generation and not answer.notice else None
        answer.save(update_fields=["content", "status", "sources", "model_version", "grounding", "notice"])
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
            cut_short=bool(generation and generation.cut_short),
        )
    yield Event("grounding", answer)
    yield Event("done", answer)


def replay_events(answer: Message) -> Iterator[Event]:
    """A finished answer's events from the database (a reconnect, a late follower)."""
    yield Event("sources", answer.sources)
    if answer.status == Message.Status.FAILED:
        yield Event("error", answer.error)
        return
    if answer.content:
        yield Event("token", answer.content)
        if answer.notice:
            yield Event("notice", answer.notice)
        yield Event("grounding", answer)
    yield Event("done", answer)


def follow_answer(answer: Message) -> Iterator[Event]:
    """The events of an answer as the serving worker publishes them; a finished one replayed.

    Never waits unbounded: when nothing arrives, the answer is checked, and one that the
    serving worker did not start in time, or whose worker died, ends here with an error.
    """
    answer.refresh_from_db()
    if answer.status not in Message.IN_FLIGHT:
        yield from replay_events(answer)
        return
    after, finished_seen = "0", False
    while True:
        entries = streams.read(answer.pk, after, FOLLOW_POLL_MS)
        for entry_id, kind, data in entries:
            after = entry_id
            if kind in ("grounding", "done"):
                answer.refresh_from_db()
                data = answer
            yield Event(kind, data)
            if kind in ("done", "error"):
                return
        if entries:
            continue
        fail_abandoned_answers(Message.objects.filter(pk=answer.pk))
        answer.refresh_from_db()
        if answer.status in Message.IN_FLIGHT:
            continue
        if after == "0":  # finished before any event came: dropped as busy, or its stream is gone
            yield from replay_events(answer)
            return
        if finished_seen:
            yield from _final_events(answer)
            return
        finished_seen = True  # its last events are published right after it is saved: one more read


@dataclass
class StreamSlot:
    """One of the owner's open answer streams (each holds a web thread while it lasts)."""

    user_id: int
    slot: str

    def follow(self, answer: Message) -> Iterator[Event]:
        """follow_answer, the slot given back when it ends or the client goes away (the server closes it)."""
        try:
            yield from follow_answer(answer)
        finally:
            self.release()

    def release(self):
        streams.close_slot(self.user_id, self.slot)


def reserve_stream(owner) -> StreamSlot:
    """A slot for one more answer stream; ChatBusy (429) beyond TWIN_MAX_STREAMS_PER_USER."""
    limit = settings.TWIN_MAX_STREAMS_PER_USER
    slot = streams.open_slot(owner.pk, limit, settings.TWIN_STREAM_SLOT_SECONDS)
    if slot is None:
        raise ChatBusy(
            f"You have {limit} answers streaming already; wait for one to finish (or close its tab).", status_code=429
        )
    return StreamSlot(owner.pk, slot)


def _final_events(answer: Message) -> Iterator[Event]:
    if answer.status == Message.Status.FAILED:
        yield Event("error", answer.error)
    else:
        yield Event("grounding", answer)
        yield Event("done", answer)


def _adapter_problem_key(model_version) -> str:
    return f"chat:adapter-problem:{model_version.pk}:{model_version.sha256}"


def _adapter_notice(model_version, problem: str) -> str:
    """The answer's notice when the production adapter could not serve; remembered for the chat page."""
    if not problem:
        cache.delete(_adapter_problem_key(model_version))
        return ""
    cache.set(_adapter_problem_key(model_version), problem, timeout=24 * 3600)
    return (
        f"Your approved adapter v{model_version.version} could not be used: {problem}. The base model "
        "answered instead; the error has been reported."
    )


def _with_titles(grounding: dict, chunks: list[Chunk]) -> dict:
    """Name the document behind each supporting chunk, for the page and the API."""
    titles = {c.pk: (c.clean_document.document_id, c.clean_document.document.title) for c in chunks}
    for item in [*grounding["sentences"], *([grounding["quote"]] if grounding["quote"] else [])]:
        if item.get("chunk_id") in titles:
            item["document_id"], item["title"] = titles[item["chunk_id"]]
    return grounding


def wait_for_answer(answer: Message) -> Message:
    """Follow a pending answer to its end (the non-streaming paths)."""
    for event in follow_answer(answer):
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
    problem = cache.get(_adapter_problem_key(model_version))
    if problem:
        return (
            f"{model_version.base_model.name} (base model: your adapter v{model_version.version} could not be "
            f"used: {problem}; the error has been reported)"
        )
    return f"{model_version.base_model.name} + your adapter v{model_version.version}"
