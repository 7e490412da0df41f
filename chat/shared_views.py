"""Invited users talking to a twin shared with them: the list of those twins, and a chat with one.

Every request asks accounts.sharing first (shared_twin_or_404): a revoked invitation is a 404 on
the next request, and an open answer stream re-asks while it lasts (chat/following.py). An invited
user's conversations are the twin owner's rows naming them as `asker`; they reach only their own,
answered in ask mode from the sources the owner shares.
"""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from accounts.sharing import shared_twin_or_404, shared_twins

from .actions import do_ask
from .admission import ChatBusy, ChatRefused
from .following import access_check, reserve_stream
from .models import Conversation, Message
from .throttling import ChatThrottle
from .views import sse_of, sse_response


def _asked(request, owner):
    """The caller's own conversations with the owner's twin (after the access check)."""
    return Conversation.objects.for_user(owner).asked_by(request.user)


@login_required
@require_safe
def twin_list(request):
    return render(request, "chat/shared_twins.html", {"twins": shared_twins(request.user)})


def _page(request, owner, conversation=None, error="", status=200):
    context = {
        "twin_owner": owner,
        "conversation": conversation,
        "chat_messages": conversation.messages.all() if conversation else [],
        "conversations": _asked(request, owner)[:30],
        "error": error,
    }
    return render(request, "chat/shared_chat.html", context, status=status)


@login_required
@require_safe
def twin_chat(request, username, conversation_id=None):
    owner = shared_twin_or_404(request.user, username)
    if owner == request.user:
        return redirect("chat")  # the owner's own chat has everything (write mode, revisions)
    conversation = _asked(request, owner).get_or_404(conversation_id) if conversation_id is not None else None
    return _page(request, owner, conversation)


@login_required
@require_POST
def twin_send(request, username):
    owner = shared_twin_or_404(request.user, username)
    conversation = (
        _asked(request, owner).get_or_404(request.POST["conversation"]) if request.POST.get("conversation") else None
    )
    wait = ChatThrottle().seconds_to_wait(request)  # the asker's own budget, as on their own twin
    try:
        if wait:
            raise ChatBusy(f"You have asked many questions in a short time; please wait {wait} seconds.", 429)
        answer = do_ask(owner, request.POST.get("message", ""), conversation, mode="ask", asker=request.user)
    except ChatRefused as exc:
        template = "chat/_error.html" if request.htmx else None
        response = (
            render(request, template, {"error": str(exc)}, status=exc.status_code)
            if template
            else _page(request, owner, conversation, str(exc), exc.status_code)
        )
        if exc.retry_after or wait:
            response["Retry-After"] = str(wait or exc.retry_after)
        return response
    if not request.htmx:
        return redirect("twin-conversation", username=owner.username, conversation_id=answer.conversation_id)
    question = answer.conversation.messages.filter(role=Message.Role.USER).last()
    response = render(request, "chat/_exchange.html", {"question": question, "answer": answer, "twin_owner": owner})
    response["HX-Push-Url"] = f"/twins/{owner.username}/chat/{answer.conversation_id}/"
    return response


@login_required
@require_safe
def twin_stream(request, username, message_id):
    """The answer's server-sent events, as on the owner's chat; access is re-checked while it streams,
    and a revocation ends it with an error event."""
    owner = shared_twin_or_404(request.user, username)
    answers = Message.objects.for_user(owner).filter(role=Message.Role.ASSISTANT, conversation__asker=request.user)
    answer = get_object_or_404(answers, pk=message_id)
    try:
        followed = reserve_stream(request.user).follow(answer, access_check(request.user, owner))
    except ChatBusy as exc:
        return HttpResponse(str(exc), status=exc.status_code, headers={"Retry-After": str(exc.retry_after)})
    return sse_response(followed, lambda event: sse_of(event, owner))
