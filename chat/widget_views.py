"""The published twin's public page (/t/<slug>/) and the widget's endpoints (/widget/<widget_key>/…).

Cookie-less by design: these views never read or set the session (nor the CSRF cookie), so
a page that embeds the widget cannot make a visitor's browser act with the owner's session,
and what the widget is allowed comes only from the widget key and the visitor id in each
request. That is also why they are csrf_exempt: CSRF protects cookie-authenticated requests,
and here no cookie authenticates anything; the widget's fetches send none
(`credentials: "omit"`). Browsers are held to the owner's allow-list by CORS and, for
requests that CORS would only stop from being read (a "simple" POST), by the Origin check
here, made before anything is done.
"""

import json
from functools import wraps

from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from accounts.actions import do_ensure_twin
from accounts.models import Publication
from accounts.publication import origin_allowed, site_origin

from .admission import ChatBusy, ChatRefused
from .models import Message
from .views import sse_response
from .visitors import (
    UNPUBLISHED,
    do_visitor_ask,
    reserve_visitor_stream,
    seconds_to_wait,
    still_published,
    valid_visitor,
    visitor_answer,
    visitor_conversations,
)

NOT_ALLOWED = "This site may not use this twin's widget: its owner has not allowed it."


def _json(data, status=200, retry_after: int | None = None) -> JsonResponse:
    response = JsonResponse(data, status=status)
    response["Cache-Control"] = "no-store"
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


def widget_endpoint(view):
    """Find the publication by its key, refuse an origin not on its allow-list (403, and no CORS header:
    the browser shows the page nothing), and let an allowed one read the answer. Never credentials."""

    @wraps(view)
    def wrapper(request, widget_key, *args, **kwargs):
        publication = Publication.objects.select_related("owner").filter(widget_key=widget_key).first()
        if publication is None:
            return _json({"detail": "No twin is published with this widget key."}, 404)
        origin = request.headers.get("Origin")
        if not origin_allowed(publication, origin, site_origin(request)):
            return _json({"detail": NOT_ALLOWED}, 403)
        if publication.enabled:
            response = view(request, publication, *args, **kwargs)
        else:
            response = _json({"detail": UNPUBLISHED}, 404)
        if origin:
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Expose-Headers"] = "Retry-After"
        patch_vary_headers(response, ["Origin"])
        return response

    return wrapper


def _sources(sources: list[dict]) -> list[dict]:
    return [{"title": s.get("title", ""), "url": s.get("url", "")} for s in sources or []]


def _message(message: Message) -> dict:
    return {
        "id": message.pk,
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "error": message.error,
        "sources": _sources(message.sources),
    }


@require_safe
def public_page(request, slug):
    """The twin's public "Ask my twin" page: the widget, served by this site (no account, no cookie)."""
    publication = get_object_or_404(Publication.objects.select_related("owner"), slug=slug, enabled=True)
    context = {
        "twin_name": do_ensure_twin(publication.owner).name,
        "widget_key": publication.widget_key,
        "script": static("widget/twin-widget.js"),
    }
    return render(request, "chat/public_page.html", context)


@csrf_exempt
@require_POST
@widget_endpoint
def ask(request, publication):
    """A visitor's question: JSON {visitor, message, conversation?} (sent as text/plain, so that no
    preflight is needed); 202 with the answer's stream to follow."""
    try:
        body = json.loads(request.body or b"{}")
        visitor = valid_visitor(body.get("visitor") if isinstance(body, dict) else None)
    except (ValueError, ChatRefused) as exc:
        return _json({"detail": str(exc) if isinstance(exc, ChatRefused) else "The body must be JSON."}, 400)
    wait = seconds_to_wait(request, visitor)
    if wait:
        return _json(
            {"detail": f"You have asked many questions in a short time; please wait {wait} seconds."}, 429, wait
        )
    try:
        answer = do_visitor_ask(publication, visitor, body.get("message", ""), body.get("conversation"))
    except ChatRefused as exc:
        return _json({"detail": str(exc)}, exc.status_code, exc.retry_after)
    stream = reverse("widget-stream", args=[publication.widget_key, answer.pk]) + f"?visitor={visitor}"
    return _json({"conversation": answer.conversation_id, "answer": answer.pk, "stream": stream}, 202)


@csrf_exempt
@require_safe
@widget_endpoint
def conversation(request, publication):
    """The visitor's latest conversation with the twin (?visitor=), to show again on their next visit."""
    try:
        visitor = valid_visitor(request.GET.get("visitor"))
    except ChatRefused as exc:
        return _json({"detail": str(exc)}, 400)
    if wait := seconds_to_wait(request):
        return _json({"detail": f"Too many requests; please wait {wait} seconds."}, 429, wait)
    latest = visitor_conversations(publication, visitor).first()
    messages = [_message(m) for m in latest.messages.all()] if latest else []
    twin = do_ensure_twin(publication.owner).name
    return _json({"twin": twin, "conversation": latest.pk if latest else None, "messages": messages})


def _sse(event: str, data) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def _sse_of(event) -> str:
    if event.kind == "sources":
        return _sse("sources", _sources(event.data))
    if event.kind in ("grounding", "done"):
        answer = event.data
        grounding = answer.grounding or {}
        data = {"content": answer.content, "score": grounding.get("score"), "no_notes": bool(grounding.get("no_notes"))}
        return _sse(event.kind, data)
    return _sse(event.kind, event.data)  # token, notice, error, revoked: text


@csrf_exempt
@require_safe
@widget_endpoint
def stream(request, publication, message_id):
    """Server-sent events (JSON data) of one of the visitor's answers: sources, tokens, grounding, done;
    or error, or "revoked" when the twin is unpublished or its key rotated meanwhile."""
    visitor = request.GET.get("visitor", "")
    answer = visitor_answer(publication, visitor, message_id) if visitor else None
    if answer is None:
        return _json({"detail": "No such answer."}, 404)
    if wait := seconds_to_wait(request):
        return _json({"detail": f"Too many requests; please wait {wait} seconds."}, 429, wait)
    try:
        slot = reserve_visitor_stream(visitor)
    except ChatBusy as exc:
        return _json({"detail": str(exc)}, exc.status_code, exc.retry_after)
    return sse_response(slot.follow(answer, still_published(publication)), _sse_of)
