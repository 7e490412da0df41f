"""What the serving worker stores when an answer or a draft is done: the message, its prompt trace,
and the notice shown when the owner's adapter could not serve."""

import time

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from .models import Message, PromptTrace


def finish(answer, owner, model_version, generation, started, retrieval_ms, question, chunks, evidence):
    """Store the finished answer and its prompt trace together."""
    with transaction.atomic():
        answer.status = Message.Status.DONE
        answer.model_version = model_version if generation and not answer.notice else None
        answer.save(update_fields=["content", "status", "sources", "model_version", "grounding", "notice"])
        PromptTrace.objects.create(
            owner=owner,
            message=answer,
            question=question,
            retrieved=[{"chunk_id": c.pk, "score": round(c.score, 4)} for c in chunks],
            evidence=[{"text": e.text, "chunk_id": e.chunk_id, "similarity": round(e.similarity, 4)} for e in evidence],
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


def adapter_problem_key(model_version) -> str:
    return f"chat:adapter-problem:{model_version.pk}:{model_version.sha256}"


def adapter_notice(model_version, problem: str) -> str:
    """The answer's notice when the production adapter could not serve; remembered for the chat page."""
    if not problem:
        cache.delete(adapter_problem_key(model_version))
        return ""
    cache.set(adapter_problem_key(model_version), problem, timeout=24 * 3600)
    return (
        f"Your approved adapter v{model_version.version} could not be used: {problem}. The base model "
        "answered instead; the error has been reported."
    )


def fail(answer, error: str):
    """The answer (or draft) failed: keep what it said so far, with the reason."""
    answer.status, answer.error = Message.Status.FAILED, error
    answer.save(update_fields=["status", "error", "content", "sources"])
