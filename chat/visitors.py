"""Anonymous visitors of a published twin (the public page /t/<slug>/ and the embeddable widget).

A visitor has no account: the browser makes up a random id and keeps it (localStorage), and
that id is all that reaches the visitor's conversations, which stay the twin owner's rows
(`Conversation(owner=<twin owner>, visitor=<id>)`): the owner reads them and pays for them.
What protects the owner: throttles per visitor id and per address, the visitor share of the
answers in flight and the twin's monthly quota (chat/admission.py), and the publication being
checked on every request, open streams included (unpublishing or a new key ends them).
"""

import math
import re
import time

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import Publication
from accounts.throttling import client_ip

from .actions import do_ask
from .admission import ChatBusy, ChatRefused, why_blocked
from .following import StreamSlot
from .models import Conversation, Message
from .streams import open_slot

VISITOR_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
UNPUBLISHED = "This twin is no longer published here."


class VisitorThrottle(SimpleRateThrottle):
    """One of the widget's rates (scope), counted for one identity (a visitor id, an address)."""

    def __init__(self, scope: str, ident: str):
        self.scope, self.ident = scope, ident
        super().__init__()

    def get_rate(self):
        return settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][self.scope]  # read when used: tests change it

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.ident}


def seconds_to_wait(request, visitor: str | None = None) -> int:
    """0 when the caller may go on (counted), else the seconds to wait. A question counts against its
    visitor id and its address; a read (visitor None) against the address's read budget."""
    ip = client_ip(request)
    throttles = (
        [VisitorThrottle("widget_visitor", visitor), VisitorThrottle("widget_ip", ip)]
        if visitor is not None
        else [VisitorThrottle("widget_read", ip)]
    )
    for throttle in throttles:
        if not throttle.allow_request(request, None):
            return max(1, math.ceil(throttle.wait() or 60))
    return 0


def published(widget_key: str) -> Publication | None:
    return Publication.objects.select_related("owner").filter(widget_key=widget_key, enabled=True).first()


def valid_visitor(value) -> str:
    if not isinstance(value, str) or not VISITOR_ID.match(value):
        raise ChatRefused("A visitor id (16 to 64 letters, digits, - or _) is required.")
    return value


def visitor_conversations(publication: Publication, visitor: str):
    """The visitor's own conversations with this twin, and nobody else's (no id: none; never the owner's own)."""
    if not isinstance(visitor, str) or not VISITOR_ID.match(visitor):
        return Conversation.objects.none()
    return Conversation.objects.for_user(publication.owner).filter(visitor=visitor)


def visitor_answer(publication: Publication, visitor: str, message_id) -> Message | None:
    if not str(message_id).isdigit():
        return None
    answers = Message.objects.filter(conversation__in=visitor_conversations(publication, visitor))
    return answers.filter(pk=int(message_id), role=Message.Role.ASSISTANT).first()


def do_visitor_ask(publication: Publication, visitor: str, question: str, conversation_id=None) -> Message:
    """A visitor's question to the published twin: a new conversation of theirs, or one of theirs continued."""
    conversation = None
    if conversation_id not in (None, ""):
        if str(conversation_id).isdigit():
            conversation = visitor_conversations(publication, visitor).filter(pk=int(conversation_id)).first()
        if conversation is None:
            raise ChatRefused("That conversation is not yours.")
    if why_blocked(publication.owner):  # the owner's to-do ("add a source"), not the visitor's
        raise ChatRefused("This twin cannot answer questions yet; please come back later.")
    return do_ask(publication.owner, question, conversation, visitor=visitor)


def still_published(publication: Publication, every_seconds: float = 1.0):
    """For an open stream: "" while the publication is on with the same key, else why it ended.
    Asked of the database at most once a second (tokens come many times a second)."""
    checked = {"at": time.monotonic()}  # the request has just looked it up

    def allowed() -> str:
        if time.monotonic() - checked["at"] < every_seconds:
            return ""
        checked["at"] = time.monotonic()
        on = Publication.objects.filter(pk=publication.pk, enabled=True, widget_key=publication.widget_key).exists()
        return "" if on else UNPUBLISHED

    return allowed


def reserve_visitor_stream(visitor: str) -> StreamSlot:
    """A slot for one more of this visitor's answer streams (not the owner's): 429 beyond the limit."""
    limit, key = settings.TWIN_MAX_STREAMS_PER_VISITOR, f"visitor-{visitor}"
    slot = open_slot(key, limit, settings.TWIN_STREAM_SLOT_SECONDS)
    if slot is None:
        raise ChatBusy(f"You have {limit} answers streaming already; wait for one to finish.", status_code=429)
    return StreamSlot(key, slot)
