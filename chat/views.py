from contextlib import closing

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils.html import escape
from django.views.decorators.http import require_POST, require_safe

from .actions import do_ask, do_revise_answer
from .admission import ChatBusy, ChatRefused, why_blocked
from .following import reserve_stream
from .models import Conversation, Message
from .serving import serving_description
from .throttling import ChatThrottle


def _get_conversation_for_user(request, conversation_id) -> Conversation:
    # The owner's own: an audience's conversations are read on the audience page, never continued here.
    return Conversation.objects.for_user(request.user).own().get_or_404(conversation_id)  # also a posted form field


def _get_answer_for_user(request, message_id) -> Message:
    answers = Message.objects.for_user(request.user).filter(role=Message.Role.ASSISTANT)
    return get_object_or_404(answers.select_related("conversation__owner"), pk=message_id)


def _chat_page(request, conversation=None, error="", status=200):
    blocked = why_blocked(request.user)
    context = {
        "conversation": conversation,
        "chat_messages": conversation.messages.all() if conversation else [],
        "conversations": Conversation.objects.for_user(request.user).own()[:30],
        "serving": serving_description(request.user),
        "blocked": blocked,
        "error": error,
        "revisable": True,
    }
    return render(request, "chat/chat.html", context, status=status)


@login_required
@require_safe
def chat_home(request):
    return _chat_page(request)


@login_required
@require_safe
def conversation(request, conversation_id):
    return _chat_page(request, _get_conversation_for_user(request, conversation_id))


def _refused(request, conversation, message: str, status: int, retry_after: int | None = None):
    """The reason in the page's error box (htmx) or on the chat page; busy ones say when to ask again."""
    if request.htmx:
        response = render(request, "chat/_error.html", {"error": message}, status=status)
    else:
        response = _chat_page(request, conversation, error=message, status=status)
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


@login_required
@require_POST
def send(request):
    conversation = None
    if request.POST.get("conversation"):
        conversation = _get_conversation_for_user(request, request.POST["conversation"])
    wait = ChatThrottle().seconds_to_wait(request)  # the same budget as the API's
    if wait:
        message = f"You have asked many questions in a short time; please wait {wait} seconds."
        return _refused(request, conversation, message, 429, wait)
    try:
        answer = do_ask(
            request.user, request.POST.get("message", ""), conversation, mode=request.POST.get("mode", "auto")
        )
    except ChatRefused as exc:
        return _refused(request, conversation, str(exc), exc.status_code, exc.retry_after)
    if not request.htmx:
        return redirect("conversation", conversation_id=answer.conversation_id)
    question = answer.conversation.messages.filter(role=Message.Role.USER).last()
    response = render(request, "chat/_exchange.html", {"question": question, "answer": answer})
    response["HX-Push-Url"] = f"/chat/{answer.conversation_id}/"
    return response


def sse(event: str, html: str) -> str:
    data = "\n".join(f"data: {line}" for line in html.split("\n"))
    return f"event: {event}\n{data}\n\n"


def sse_of(event, twin_owner=None) -> str:
    """One event as SSE; for an invited user (twin_owner set) citations link to no owner-only page."""
    if event.kind == "sources":
        return sse("sources", render_to_string("chat/_sources.html", {"sources": event.data, "twin_owner": twin_owner}))
    if event.kind == "token":
        return sse("token", escape(event.data))
    if event.kind == "queue":
        return sse("queue", render_to_string("chat/_queue.html", {"place": event.data}))
    if event.kind == "notice":
        return sse("notice", render_to_string("chat/_notice.html", {"notice": event.data}))
    if event.kind == "grounding":
        written = event.data.mode == Message.Mode.WRITE and event.data.grounding.get("alternatives")
        partial = "chat/_written.html" if written else "chat/_grounding.html"
        return sse(
            "grounding", render_to_string(partial, {"answer": event.data, "oob": True, "twin_owner": twin_owner})
        )
    if event.kind in ("error", "revoked"):  # revoked: the owner ended an invited user's access mid-answer
        return sse("error", render_to_string("chat/_error.html", {"error": event.data})) + sse("done", "")
    return sse("done", "")


@login_required
@require_safe
def stream(request, message_id):
    """Server-sent events for one answer, as the serving worker makes it: sources, tokens,
    the grounding check, then done (or error)."""
    answer = _get_answer_for_user(request, message_id)
    try:
        followed = reserve_stream(request.user).follow(answer)
    except ChatBusy as exc:
        return HttpResponse(str(exc), status=exc.status_code, headers={"Retry-After": str(exc.retry_after)})

    return sse_response(followed, sse_of)


def sse_response(followed, render) -> StreamingHttpResponse:
    """An answer's followed events as server-sent events, each rendered by `render` (the chat page's
    HTML partials, the widget's JSON)."""

    def events():
        with closing(followed):  # its stream slot goes back even when the client leaves mid-answer
            for event in followed:
                yield render(event)

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # let nginx pass tokens through as they come
    return response


@login_required
@require_POST
def revise(request, message_id):
    """The owner's own answer in place of the twin's; it becomes a correction for the next refinement."""
    answer = _get_answer_for_user(request, message_id)
    try:
        do_revise_answer(answer, request.POST.get("text", ""))
    except ChatRefused as exc:
        return _refused(request, answer.conversation, str(exc), exc.status_code)
    if answer.conversation.asker_id or answer.conversation.visitor:  # not on the owner's own chat page
        return redirect("audience-conversation", conversation_id=answer.conversation_id)
    return redirect("conversation", conversation_id=answer.conversation_id)
