"""The serving worker's side of chat (queue "serve", chat/tasks.py): retrieval, generation with the
owner's production adapter, the grounding check, and a prompt trace per answer.

Two modes, one twin (the prompt templates are in features/prompts.py, generation in
features/grounding/generate.py, the same functions the evaluation gate measures):
- ask: the question's best note sentences go into a short prompt (features/grounding/evidence.py),
  decoding favours continuing them, and each answer sentence is then checked against the notes
  (features/grounding/check.py). When no note is close enough, the twin says it has no notes on that.
- write: a brief gets new text in the owner's voice (chat/writing.py): a few notes as background,
  sampled with the copy guard, and every number or name the notes do not hold marked.
"""

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from accounts.actions import do_ensure_twin
from features.embeddings import count_tokens, embed
from features.grounding import generate
from features.grounding.check import check_grounding
from features.grounding.config import GroundingConfig
from features.grounding.evidence import NoteSentences
from features.models import Chunk
from training.base_models import display_name
from training.models import ModelVersion

from . import traces, writing
from .events import Event, replay_events, stream_into
from .llm import get_models
from .models import Message
from .retrieval import cited_first, retrieve, searchable, source_entry, with_titles

logger = logging.getLogger(__name__)


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


@dataclass
class Plan:
    """What answering one question will use, decided before any token is generated."""

    question: str
    history: list[dict]
    chunks: list[Chunk]
    notes: NoteSentences
    choice: generate.NotesChoice

    @property
    def has_notes(self) -> bool:
        return self.choice.has_notes

    @property
    def evidence(self) -> list:
        return self.choice.evidence

    @property
    def relevance(self) -> float:
        return self.choice.relevance


def plan_answer(owner, answer: Message, count_tokens, config: GroundingConfig) -> Plan:
    turns = _turns_before(answer)
    history = history_within_budget(turns[:-1], count_tokens, settings.TWIN_HISTORY_TOKENS)
    return plan_for(owner, turns[-1].content, history, config, audience=answer.conversation.is_audience)


def plan_for(
    owner, question: str, history: list[dict] = (), config: GroundingConfig | None = None, *, audience: bool = False
) -> Plan:
    """Retrieval and evidence for a question; `relevance` decides between answering and "no notes".
    For the twin's audience, only the sources the owner shares feed the notes and the citations."""
    config = config or GroundingConfig.from_settings()
    chunks, query, vector = retrieve(owner, question, history, audience=audience)
    notes = NoteSentences.from_chunks(chunks, embed, searchable(owner, audience=audience).lead_ins(chunks))
    choice = generate.choose_notes(notes, query, vector, config)
    return Plan(question, history, cited_first(chunks, choice.evidence), notes, choice)


def generate_answer_events(answer: Message, config: GroundingConfig | None = None) -> Iterator[Event]:
    """Generate a pending answer (ask or write), or replay a finished one (an SSE reconnect is harmless).

    Events: sources, then tokens, then grounding (each sentence checked against the notes, or a
    draft's specifics marked), then done; or error.
    """
    claimed = Message.objects.filter(pk=answer.pk, status=Message.Status.PENDING).update(
        status=Message.Status.STREAMING
    )
    if not claimed:
        answer.refresh_from_db()
        yield from replay_events(answer)
        return
    config = config or GroundingConfig.from_settings()
    if answer.mode == Message.Mode.WRITE and not answer.conversation.is_audience:  # writing is the owner's only
        yield from writing.draft_events(answer, config)
        return
    owner = answer.conversation.owner
    models = get_models()
    started = time.perf_counter()
    generation, model_version = None, ModelVersion.objects.for_user(owner).production()
    try:
        plan = plan_answer(owner, answer, count_tokens, config)
        retrieval_ms = int((time.perf_counter() - started) * 1000)
        answer.sources = [source_entry(chunk) for chunk in plan.chunks] if plan.has_notes else []
        yield Event("sources", answer.sources)
        twin_name = do_ensure_twin(owner).name

        def make(model, tokenizer, **kwargs):
            return generate.answer_stream(
                model, tokenizer, twin_name, plan.question, plan.choice, config, history=plan.history, **kwargs
            )

        stream = models.serve(model_version, make) if plan.has_notes else make(None, None)
        generation = yield from stream_into(answer, stream)
        if not plan.has_notes:
            generation = None  # the model was not asked
    except GeneratorExit:  # the client went away mid-answer: keep what was said, mark it cut short
        traces.fail(answer, "The answer was interrupted.")
        raise
    except Exception:
        logger.exception("answering message %s failed", answer.pk)
        traces.fail(answer, "The twin could not answer just now; please try again.")
        yield Event("error", answer.error)
        return
    answer.content = answer.content.strip() or "(no answer)"
    if generation and model_version:
        answer.notice = traces.adapter_notice(model_version, generation.adapter_problem)
        if answer.notice:
            yield Event("notice", answer.notice)
    if plan.has_notes:
        grounding = check_grounding(answer.content, plan.notes, embed, plan.evidence[0] if plan.evidence else None)
        answer.grounding = with_titles(grounding.as_dict(), plan.chunks)
    else:
        answer.grounding = {"score": None, "sentences": [], "quote": None, "no_notes": True}
    traces.finish(
        answer, owner, model_version, generation, started, retrieval_ms, plan.question, plan.chunks, plan.evidence
    )
    yield Event("grounding", answer)
    yield Event("done", answer)


def serving_description(owner) -> str:
    model_version = ModelVersion.objects.for_user(owner).production()
    if model_version is None:
        return f"{display_name(settings.TWIN_BASE_MODEL)} (base model: no approved adapter yet)"
    problem = cache.get(traces.adapter_problem_key(model_version))
    if problem:
        return (
            f"{model_version.base_model.name} (base model: your adapter v{model_version.version} could not be "
            f"used: {problem}; the error has been reported)"
        )
    return f"{model_version.base_model.name} + your adapter v{model_version.version}"
