"""The OpenAI wire format: `POST /v1/chat/completions`, streaming and not, so that any
OpenAI client can talk to a twin with a Twinsite token.

The whole `messages` list is used: the last user message is the question, the turns
before it are the conversation's history (stored with the new conversation, so the
answer is generated exactly as a multi-turn web chat would be), and the twin's own
prompt stays in charge (a client's system message is kept in the history as a user
turn would be, never as the system prompt: notes and voice come from the twin).
"""

import json
import time
from contextlib import closing

from django.conf import settings
from django.http import Http404, StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import api_view, throttle_classes
from rest_framework.response import Response

from accounts.quotas import QuotaReached, check_storage

from .actions import do_ask
from .admission import AnswerFailed, ChatRefused
from .api import refusal, twin_for
from .following import AccessRevoked, access_check, reserve_stream, wait_for_answer
from .throttling import ChatThrottle

# The model name picks the mode: "twin-write" writes new text in the owner's voice (a draft is kept),
# "twin-ask" answers from the notes, any other name ("twin", "gpt-4o"…) lets the twin decide.
# "twin:<username>" (or "twin-ask:<username>", or a `twin` field) asks a twin shared with the caller.
MODEL_MODES = {"twin-write": "write", "twin-ask": "ask"}
TWIN_MODELS = ("twin", *MODEL_MODES)


def model_target(model, twin_field) -> tuple[str, str | None]:
    """(mode, username of the twin asked, None for the caller's own) from `model` and the `twin` field."""
    model = model if isinstance(model, str) else ""
    name, _, username = model.partition(":") if model.split(":", 1)[0] in TWIN_MODELS else (model, "", "")
    if isinstance(twin_field, str) and twin_field:
        username = twin_field
    return MODEL_MODES.get(name, "auto"), username or None


ROLES = {"user": "user", "assistant": "assistant", "system": "user", "developer": "user"}


def _error(message: str, http_status: int = 400, retry_after: int | None = None) -> Response:
    kind = {429: "rate_limit_error", 503: "server_error"}.get(http_status, "invalid_request_error")
    return refusal({"error": {"message": message, "type": kind}}, http_status, retry_after)


def _text_of(content) -> str:
    if isinstance(content, list):  # content parts: keep the text ones
        content = " ".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type", "text") == "text"
        )
    return content.strip() if isinstance(content, str) else ""


def parse_messages(messages) -> tuple[str, list[dict]]:
    """(question, earlier turns) from an OpenAI `messages` list; ValueError says what is wrong."""
    if not isinstance(messages, list) or not messages:
        raise ValueError("`messages` must be a list that ends with a user message.")
    turns = []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise ValueError(
                "Each message needs a role (system, developer, user or assistant); the last, a user message."
            )
        text = _text_of(message.get("content"))
        if text:
            turns.append({"role": ROLES[message["role"]], "content": text})
    if not turns or messages[-1].get("role") != "user" or turns[-1]["role"] != "user":
        raise ValueError("The last message must be a user message with text.")
    history = turns[:-1]
    check_history_limits(history)
    return turns[-1]["content"], history


def check_history_limits(history: list[dict]):
    """The earlier turns are stored with the conversation: bounded in count and size (ValueError)."""
    most, longest = settings.TWIN_MAX_HISTORY_MESSAGES, settings.TWIN_MAX_HISTORY_CHARS
    if len(history) > most:
        raise ValueError(f"At most {most} earlier messages are accepted; this request has {len(history)}.")
    chars = sum(len(turn["content"]) for turn in history)
    if chars > longest:
        raise ValueError(f"The earlier messages may total {longest} characters; these total {chars}.")


def _chunk(completion_id: str, created: int, model: str, delta: dict, finish_reason=None, **extra) -> str:
    payload = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        **extra,
    }
    return f"data: {json.dumps(payload)}\n\n"


def _finish_reason(answer) -> str:
    """What OpenAI clients expect: "length" when the token budget cut the answer short, else "stop"."""
    trace = getattr(answer, "trace", None)
    return "length" if trace and trace.cut_short else "stop"


@extend_schema(request=dict, responses=dict)
@api_view(["POST"])
@throttle_classes([ChatThrottle])
def chat_completions(request):
    """OpenAI-compatible chat completions: any OpenAI client can talk to your twin with a Twinsite token.

    The last user message is the question and earlier messages are the conversation so
    far; retrieval supplies the notes. `stream: true` answers with server-sent chunks.
    `model: "twin-write"` writes new text in your voice for the last message (a brief; a draft is
    kept), `model: "twin-ask"` answers it from your notes, any other model name lets the twin decide.
    `model: "twin:<username>"` (or a `twin` field) asks a twin shared with you, in ask mode, from the
    sources its owner shares; 404 when it is not (or no longer) shared with you.
    Besides the standard fields, the answer carries `sources`, `grounding`, `mode` and `draft`.
    """
    if not isinstance(request.data, dict):
        return _error("The request body must be a JSON object.")
    mode, username = model_target(request.data.get("model"), request.data.get("twin"))
    try:
        owner, asker = twin_for(request, username)
    except Http404:
        return _error(f"No twin “{username}” is shared with you.", status.HTTP_404_NOT_FOUND)
    slot = None
    try:
        if request.data.get("stream") is True:  # JSON true only: the string "false" must not stream
            slot = reserve_stream(request.user)  # before asking: a refused stream leaves no answer behind
        question, history = parse_messages(request.data.get("messages"))
        # The history is stored: it counts against the twin owner's storage quota like a document.
        check_storage(owner, adding=sum(len(turn["content"].encode()) for turn in history))
        answer = do_ask(owner, question, history=history, mode=mode, asker=asker)
    except (ValueError, ChatRefused, QuotaReached) as exc:
        if slot:
            slot.release()
        if isinstance(exc, ChatRefused):
            return _error(str(exc), exc.status_code, exc.retry_after)
        return _error(str(exc))
    completion_id, created = f"chatcmpl-{answer.pk}", int(time.time())
    model = request.data.get("model") if isinstance(request.data.get("model"), str) else "twinsite-twin"

    allowed = access_check(asker, owner)  # an invited caller's access, re-asked while the answer comes
    if slot:
        followed = slot.follow(answer, allowed)

        def events():
            yield _chunk(completion_id, created, model, {"role": "assistant"})
            notice, finish_reason = "", "stop"
            with closing(followed):  # its slot goes back even when the client leaves mid-answer
                for event in followed:
                    if event.kind == "token":
                        yield _chunk(completion_id, created, model, {"content": event.data})
                    elif event.kind == "notice":
                        notice = event.data
                    elif event.kind in ("error", "revoked"):
                        yield f"data: {json.dumps({'error': {'message': event.data}})}\n\n"
                    elif event.kind == "done":
                        finish_reason = _finish_reason(event.data)
            yield _chunk(completion_id, created, model, {}, finish_reason, **({"notice": notice} if notice else {}))
            yield "data: [DONE]\n\n"

        response = StreamingHttpResponse(events(), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        return response

    try:
        answer = wait_for_answer(answer, allowed)
    except AccessRevoked as exc:
        return _error(str(exc), exc.status_code)
    except AnswerFailed as exc:
        return _error(str(exc), status.HTTP_503_SERVICE_UNAVAILABLE, exc.retry_after)
    trace = getattr(answer, "trace", None)
    prompt_tokens = trace.prompt_tokens if trace else 0
    completion_tokens = trace.tokens_generated if trace else 0
    return Response(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer.content},
                    "finish_reason": _finish_reason(answer),
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "sources": answer.sources,
            "grounding": answer.grounding,
            "notice": answer.notice,
            "mode": answer.mode,
            "draft": answer.draft.pk if hasattr(answer, "draft") else None,
        }
    )
