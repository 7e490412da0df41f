"""The web side of serving: following an answer's events as the serving worker publishes them.

The browser (SSE), the REST API and the OpenAI-compatible endpoint follow those events and
render them in their own format; no web request thread ever generates. Waits are bounded: an
answer the serving worker has not started in time, or whose worker died, ends with an error.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.conf import settings

from accounts.sharing import may_chat

from . import streams
from .admission import AnswerFailed, ChatBusy, ChatRefused, fail_abandoned_answers
from .events import Event, final_events, replay_events
from .models import Message

FOLLOW_POLL_MS = 1000
ACCESS_REVOKED = "Your access to this twin was revoked; its owner no longer shares it with you."


class AccessRevoked(ChatRefused):
    """The twin's owner revoked the caller's access while the answer was on its way."""

    status_code = 403


def access_check(asker, owner) -> Callable[[], str] | None:
    """For an invited asker, what a follower re-asks while the answer comes: "" while they may still
    read it, else why not (None: the owner's own)."""
    if asker is None or asker.pk == owner.pk:
        return None
    return lambda: "" if may_chat(asker, owner) else ACCESS_REVOKED


def follow_answer(answer: Message, allowed: Callable[[], str] | None = None) -> Iterator[Event]:
    """The events of an answer as the serving worker publishes them; a finished one replayed.

    Never waits unbounded: when nothing arrives, the answer is checked, and one that the
    serving worker did not start in time, or whose worker died, ends here with an error.
    allowed: asked after every read (at least once a second) while the answer is followed live;
    a non-empty reason (access revoked, the twin unpublished) ends the stream with a "revoked" event.
    An answer not started within a poll waits in line: "queue" events say its place (1: next),
    and a "queue" event of 0, before its first event, says it has left the line.
    """
    answer.refresh_from_db()
    if allowed and (reason := allowed()):
        yield Event("revoked", reason)
        return
    if answer.status not in Message.IN_FLIGHT:
        yield from replay_events(answer)
        return
    after, finished_seen, place = "0", False, 0
    while True:
        entries = streams.read(answer.pk, after, FOLLOW_POLL_MS)
        if allowed and (reason := allowed()):
            yield Event("revoked", reason)
            return
        if entries and place:
            place = 0
            yield Event("queue", 0)
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
        if answer.status == Message.Status.PENDING and place != (now := place_in_line(answer)):
            place = now  # not started within a poll: the serving workers are busy, it waits in line
            yield Event("queue", place)
        if answer.status in Message.IN_FLIGHT:
            continue
        if place:
            place = 0
            yield Event("queue", 0)
        if after == "0":  # finished before any event came: dropped as busy, or its stream is gone
            yield from replay_events(answer)
            return
        if finished_seen:
            yield from final_events(answer)
            return
        finished_seen = True  # its last events are published right after it is saved: one more read


@dataclass
class StreamSlot:
    """One of the owner's open answer streams (each holds a web thread while it lasts)."""

    user_id: int | str
    slot: str

    def follow(self, answer: Message, allowed: Callable[[], str] | None = None) -> Iterator[Event]:
        """follow_answer, the slot given back when it ends or the client goes away (the server closes it)."""
        try:
            yield from follow_answer(answer, allowed)
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
            f"You have {limit} answers streaming already; wait for one to finish (or close its tab).",
            status_code=429,
            reason="streams",
        )
    return StreamSlot(owner.pk, slot)


def place_in_line(answer: Message) -> int:
    """1 for the answer that a serving worker starts next, 2 for the one after it… 0 once started.
    The line is site-wide, oldest first, as the serve queue hands answers out."""
    waiting = Message.objects.filter(role=Message.Role.ASSISTANT, status=Message.Status.PENDING)
    if not waiting.filter(pk=answer.pk).exists():
        return 0
    return waiting.filter(pk__lte=answer.pk).count()


def wait_for_answer(answer: Message, allowed: Callable[[], str] | None = None) -> Message:
    """Follow a pending answer to its end (the non-streaming paths)."""
    for event in follow_answer(answer, allowed):
        if event.kind == "revoked":
            raise AccessRevoked(event.data)
        if event.kind == "error":
            raise AnswerFailed(event.data)
    answer.refresh_from_db()
    return answer
