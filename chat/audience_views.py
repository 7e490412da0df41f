"""The owner's Audience pages: who talked to the twin, each conversation (its answers revisable), the
questions the notes could not answer, and charts of the audience's days. Owner-only: every lookup
goes through the signed-in user's own twin, so an invited user sees only their own (empty) audience."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from . import audience, unanswered
from .actions import do_revise_answer
from .admission import ChatRefused


@login_required
@require_safe
def audience_home(request):
    owner = request.user
    member_key = request.GET.get("member", "")
    conversations = audience.audience_conversations(owner)
    if member_key:
        conversations = audience.conversations_of_member(owner, member_key)
    conversations = list(audience.with_counts(conversations)[:50])
    for found in conversations:
        found.asked_by = audience.asked_by(found)
    context = {
        "members": audience.members(owner),
        "member_key": member_key,
        "conversations": conversations,
        "daily": audience.daily(owner),
        "revision_count": audience.revised_answers(owner).count(),
        "unanswered_count": audience.no_notes_answers(owner).count(),
    }
    return render(request, "audience/audience.html", context)


def _conversation_page(request, conversation, error="", status=200):
    context = {
        "conversation": conversation,
        "asker": audience.asked_by(conversation),
        "chat_messages": conversation.messages.all(),
        "error": error,
    }
    return render(request, "audience/conversation.html", context, status=status)


@login_required
@require_safe
def conversation(request, conversation_id):
    found = audience.audience_conversations(request.user).select_related("asker").get_or_404(conversation_id)
    return _conversation_page(request, found)


@login_required
@require_POST
def revise(request, message_id):
    """The owner's answer in place of the twin's: shown in the conversation, kept as a correction."""
    answer = audience.audience_answer_or_404(request.user, message_id)
    try:
        do_revise_answer(answer, request.POST.get("text", ""))
    except ChatRefused as exc:
        return _conversation_page(request, answer.conversation, error=str(exc), status=exc.status_code)
    return redirect("audience-conversation", conversation_id=answer.conversation_id)


@login_required
@require_safe
def unanswered_page(request):
    return render(request, "audience/unanswered.html", {"topics": unanswered.topics(request.user)})
