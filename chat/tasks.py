"""The serving worker's tasks (queue "serve"): answers are generated here, never in the web."""

from celery import shared_task

from . import streams
from .actions import fail_abandoned_answers as _fail_abandoned_answers
from .actions import generate_answer_events
from .models import Message


@shared_task(acks_late=False, ignore_result=True)
def generate_answer(message_id: int):
    """Generate one answer and publish its events for the web to follow (chat/streams.py).

    Acknowledged on receipt, unlike the pipeline's tasks: an answer redelivered hours later
    helps nobody. If this process dies mid-answer, its heartbeat stops and the answer is
    marked interrupted (`fail_abandoned_answers`).
    """
    answer = Message.objects.select_related("conversation__owner").filter(pk=message_id).first()
    if answer is None or answer.status != Message.Status.PENDING:
        return  # generated already, or dropped as busy before this worker got to it
    with streams.beating(answer.pk):
        for event in generate_answer_events(answer):
            streams.publish(answer.pk, event.kind, None if event.kind in ("grounding", "done") else event.data)


@shared_task(ignore_result=True)
def fail_abandoned_answers():
    """Beat: no answer stays "pending" or "streaming" once nothing will finish it."""
    return _fail_abandoned_answers()
