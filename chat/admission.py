"""Who may ask now: refusals, the answers in flight, and dropping answers nothing will finish.

A question beyond the user's or the site's answers in flight is refused at once (ChatBusy),
a visitor's (the public page, the widget) beyond its own, its twin's or all visitors' share, or
past the twin's monthly quota (chat/visitors.py),
an answer the serving worker has not started within TWIN_ANSWER_WAIT_SECONDS is dropped as
busy, and one whose worker died (no heartbeat) is marked interrupted, keeping what it said.
"""

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from accounts.models import Publication
from accounts.publication import next_month_start, visitor_answers_this_month
from core import counters
from features.models import Chunk
from ingestion.models import Source

from . import streams
from .models import Message

ADMISSION_LOCK = 7_202_611  # a PostgreSQL advisory lock key: questions are admitted one at a time
BUSY = "Twinsite is busy answering other questions right now; please ask again in a few seconds."
NOT_STARTED = "Twinsite was too busy to start this answer in time; please ask again in a few seconds."
INTERRUPTED = "The answer was interrupted (the process making it stopped); please ask again."
REFUSALS = "chat-refusals"  # the core.counters counter of ChatBusy, by reason (the Operations page, /metrics)
REFUSAL_REASONS = ("busy", "user_limit", "queue_down", "streams")  # those raised here; others are counted too


class ChatRefused(Exception):
    """The question cannot be answered now; the message says why."""

    status_code = 400
    retry_after: int | None = None


class ChatBusy(ChatRefused):
    """Ask again shortly: the site has as many answers in flight as it serves well (503), or
    this user's earlier answers are still being made (429).

    Counted as it is made (it is only ever made to be raised), by reason: "busy" (the site's
    limit), "user_limit" (the user's), or what the raiser names ("queue_down", "streams")."""

    def __init__(self, message: str, status_code: int = 503, reason: str = ""):
        super().__init__(message)
        self.status_code = status_code
        self.retry_after = settings.TWIN_CHAT_RETRY_AFTER_SECONDS
        self.reason = reason or ("busy" if status_code == 503 else "user_limit")
        counters.count(REFUSALS, self.reason)


class AnswerFailed(Exception):
    """Generation broke on our side (logged), or never started; the question was fine."""

    @property
    def retry_after(self) -> int:
        return settings.TWIN_CHAT_RETRY_AFTER_SECONDS


class QuotaReached(ChatRefused):
    """The published twin has given its monthly quota of visitor answers (429 until the month ends)."""

    status_code = 429

    def __init__(self, quota: int):
        resets = next_month_start()
        super().__init__(
            f"This twin has answered all {quota} visitor questions its owner allows this month; "
            f"it answers again from {resets:%B} {resets.day}."
        )
        self.retry_after = max(1, int((resets - timezone.now()).total_seconds()))


def check_can_chat(owner, audience: bool = False):
    """Refuse a question the twin has nothing to answer from; for its audience, nothing shared."""
    if audience:
        if not Chunk.objects.for_user(owner).audience().exists():
            raise ChatRefused("This twin has nothing shared to answer from yet; its owner has not shared a source.")
        return
    if not Source.objects.for_user(owner).exists():
        raise ChatRefused("Your twin has nothing to answer from yet: add a source (a file or an article URL) first.")
    if not Chunk.objects.for_user(owner).exists():
        raise ChatRefused("Your sources are still being processed (or had no text); try again in a minute.")


def why_blocked(owner) -> str:
    """What the chat and Write pages say while the twin cannot answer yet ("" when it can)."""
    try:
        check_can_chat(owner)
    except ChatRefused as exc:
        return str(exc)
    return ""


def admit(owner, asker=None, visitor: str = ""):
    """Refuse a question beyond the user's or the site's answers in flight. The advisory lock,
    held to the end of the asking transaction, makes counting and adding one step.

    The owner's own questions count only the owner's own answers: the twin's audience never takes
    the owner's slots. An invited asker is held to the per-user limit across every twin they ask
    (their own questions to their own twin included). A visitor's question counts against the
    visitor's, the twin's and all visitors' answers in flight (a share of the site's, so that
    visitors can never take it all) and against the twin's monthly quota, checked here under the
    same lock so that it holds."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADMISSION_LOCK])
    in_flight = Message.objects.in_flight()
    if visitor:
        _admit_visitor(in_flight, owner, visitor)
    elif asker is not None:
        theirs = in_flight.asked_by(asker).count()
        if theirs >= settings.TWIN_MAX_PENDING_ANSWERS_PER_USER:
            raise ChatBusy(
                f"Your {theirs} earlier question{'s are' if theirs > 1 else ' is'} still being answered; "
                "ask again once an answer has arrived.",
                status_code=429,
            )
    else:
        mine = in_flight.for_user(owner).own().count()
        if mine >= settings.TWIN_MAX_PENDING_ANSWERS_PER_USER:
            raise ChatBusy(
                f"Your twin is still answering your {mine} earlier question{'s' if mine > 1 else ''}; "
                "ask again once an answer has arrived.",
                status_code=429,
            )
    if in_flight.count() >= settings.TWIN_MAX_ANSWERS_IN_FLIGHT:
        raise ChatBusy(BUSY)


def _admit_visitor(in_flight, owner, visitor: str):
    visitors = in_flight.exclude(conversation__visitor="")
    twins_visitors = visitors.for_user(owner)
    if twins_visitors.filter(conversation__visitor=visitor).count() >= settings.TWIN_MAX_PENDING_ANSWERS_PER_VISITOR:
        raise ChatBusy("The twin is still answering your earlier question; ask again once it has.", status_code=429)
    if twins_visitors.count() >= settings.TWIN_MAX_VISITOR_ANSWERS_PER_TWIN:
        raise ChatBusy("This twin is answering other visitors right now; please ask again in a few seconds.")
    if visitors.count() >= settings.TWIN_MAX_VISITOR_ANSWERS_IN_FLIGHT:
        raise ChatBusy(BUSY)
    quota = Publication.objects.for_user(owner).values_list("monthly_quota", flat=True).first() or 0
    if visitor_answers_this_month(owner) >= quota:
        raise QuotaReached(quota)


def fail_unsent_answer(message_id: int, reason: str):
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
