"""The serving worker's tasks (queue "serve"): answers are generated here, never in the web.

A serving worker's process loads the base model, its tokenizer and the embedder as soon as it
starts (`warm_serving_models`), so that the first answer after a (re)start does not pay the load.
"""

import logging
import threading

from celery import current_app, shared_task
from celery.signals import worker_init, worker_process_init

from features.embeddings import embed_query

from . import streams
from .admission import fail_abandoned_answers as _fail_abandoned_answers
from .llm import get_models
from .models import Message
from .serving import generate_answer_events

logger = logging.getLogger(__name__)
SERVE_QUEUE = "serve"


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


@worker_process_init.connect
def _warm_if_serving(**kwargs):
    """In each pool process of a worker that consumes the serve queue, as it starts. A thread does
    the loading: the signal must return within a few seconds (worker_proc_alive_timeout), and the
    first answer waits on the model's lock until the load is done instead of loading it again."""
    if SERVE_QUEUE in (current_app.amqp.queues.consume_from or {}):
        threading.Thread(target=warm_serving_models, name="warm-serving-models", daemon=True).start()


@worker_init.connect
def _warm_if_serving_in_threads(sender=None, **kwargs):
    """A serve worker with a threads pool (the Procfile's: its threads are the batch's rows) has no
    pool processes: it loads the models in its own process as it starts."""
    threads = "thread" in str(getattr(sender, "pool_cls", "")).lower()
    if threads and SERVE_QUEUE in (current_app.amqp.queues.consume_from or {}):
        threading.Thread(target=warm_serving_models, name="warm-serving-models", daemon=True).start()


def warm_serving_models():
    """Load what every answer needs: the base model and tokenizer (no adapter: that is per twin)
    and the embedder. A failure is logged; the first answer then loads (and reports) it."""
    try:
        models = get_models()
        with models.lock:
            models.prepare(None)
        embed_query("warm up")
    except Exception:
        logger.exception("could not load the serving models at start; the first answer will try again")
        return
    logger.info("serving models loaded: %s", models.base_identifier)
