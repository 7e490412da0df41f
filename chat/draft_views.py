"""The Write page and the owner's drafts: write, read, edit, copy, export, regenerate, delete."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from features.prompts import LENGTHS

from .actions import do_edit_draft, do_regenerate_draft, do_write
from .admission import ChatRefused, why_blocked
from .drafts_api import markdown_response
from .models import Draft
from .serving import serving_description
from .throttling import ChatThrottle


def _get_draft_for_user(request, draft_id) -> Draft:
    return get_object_or_404(Draft.objects.for_user(request.user).select_related("message"), pk=draft_id)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def write(request):
    """A brief, a format, a length and 1 to 3 alternatives; the draft streams on its own page."""
    error, status = "", 200
    if request.method == "POST":
        wait = ChatThrottle().seconds_to_wait(request)  # the chat's budget: a draft costs what an answer does
        try:
            if wait:
                raise ChatRefused(f"You have asked for a lot in a short time; please wait {wait} seconds.")
            draft = do_write(
                request.user,
                request.POST.get("brief", ""),
                request.POST.get("format", "paragraph"),
                request.POST.get("length", "medium"),
                int(request.POST.get("alternatives") or 1),
            )
            return redirect("draft", draft_id=draft.pk)
        except (ChatRefused, ValueError) as exc:
            error = str(exc) if isinstance(exc, ChatRefused) else "Ask for 1 to 3 alternatives."
            status = getattr(exc, "status_code", 400)
    context = {
        "forms": Draft.Form.choices,
        "lengths": Draft.Length.choices,
        "posted": request.POST if request.method == "POST" else {},
        "drafts": Draft.objects.for_user(request.user).select_related("message")[:10],
        "serving": serving_description(request.user),
        "blocked": why_blocked(request.user),
        "error": error,
    }
    return render(request, "chat/write.html", context, status=status)


@login_required
@require_safe
def draft_list(request):
    drafts = Draft.objects.for_user(request.user).select_related("message")
    return render(request, "chat/drafts.html", {"drafts": drafts})


@login_required
@require_safe
def draft(request, draft_id):
    draft = _get_draft_for_user(request, draft_id)
    return render(request, "chat/draft.html", {"draft": draft, "answer": draft.message, "words": LENGTHS})


@login_required
@require_POST
def edit(request, draft_id):
    draft = _get_draft_for_user(request, draft_id)
    try:
        do_edit_draft(draft, request.POST.get("text", ""))
        messages.success(request, "Saved. Your edit will teach the twin at its next refinement.")
    except ChatRefused as exc:
        messages.error(request, str(exc))
    return redirect("draft", draft_id=draft.pk)


@login_required
@require_POST
def regenerate(request, draft_id):
    draft = _get_draft_for_user(request, draft_id)
    try:
        do_regenerate_draft(draft)
    except ChatRefused as exc:
        messages.error(request, str(exc))
    return redirect("draft", draft_id=draft.pk)


@login_required
@require_safe
def export(request, draft_id):
    return markdown_response(_get_draft_for_user(request, draft_id))


@login_required
@require_POST
def delete(request, draft_id):
    _get_draft_for_user(request, draft_id).delete()
    messages.success(request, "Draft deleted.")
    return redirect("drafts")
