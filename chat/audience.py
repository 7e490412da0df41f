"""The owner's view of the twin's audience: who talked to it, how well it answered, and when.

An audience conversation is one of the owner's conversations that an invited user (`asker`) or
an anonymous visitor of the published twin (`visitor`) had (`Conversation.objects...audience()`).
Everything here starts from the owner's scoped querysets, so an owner only ever sees their own
twin's audience. A visitor is shown by a tag derived from their id (`Visitor #3fa2c1`), never
the id itself: the widget keeps it in the visitor's browser as the key to their conversations.
"""

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Aggregate, Avg, Count, F, FloatField, Max, Min, OuterRef, Q, Subquery
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, TruncDate
from django.http import Http404
from django.utils import timezone

from accounts.models import TwinAccess
from features.models import Correction

from .models import Conversation, Message, PromptTrace


def visitor_tag(visitor: str) -> str:
    """A stable, short stand-in for a visitor id (which is the visitor's key, not to be shown)."""
    return hashlib.sha256(visitor.encode()).hexdigest()[:12]


def member_key(asker_id: int | None, visitor: str) -> str:
    return f"user-{asker_id}" if asker_id else f"visitor-{visitor_tag(visitor)}"


def member_name(asker, visitor: str) -> str:
    if asker is not None:
        return asker.get_full_name() or asker.username
    return f"Visitor #{visitor_tag(visitor)[:6]}"


def asked_by(conversation: Conversation) -> str:
    return member_name(conversation.asker, conversation.visitor)


def audience_conversations(owner):
    return Conversation.objects.for_user(owner).audience()


def audience_messages(owner):
    return Message.objects.for_user(owner).filter(conversation__in=audience_conversations(owner))


def audience_answer_or_404(owner, answer_id) -> Message:
    """One answer of the owner's audience (any other id, the owner's own answers included: 404)."""
    answers = audience_messages(owner).filter(role=Message.Role.ASSISTANT).select_related("conversation__owner")
    return answers.get_or_404(answer_id)


def conversations_of_member(owner, key: str):
    """The audience conversations of one member (the key that `members` gives); unknown keys: none."""
    conversations = audience_conversations(owner)
    kind, _, value = key.partition("-")
    if kind == "user" and value.isdigit():
        return conversations.filter(asker_id=int(value))
    if kind == "visitor":
        visitors = conversations.exclude(visitor="").values_list("visitor", flat=True).distinct()
        return conversations.filter(visitor__in=[v for v in visitors if visitor_tag(v) == value])
    return conversations.none()


def _score():
    return Cast(KT("grounding__score"), FloatField())  # JSON null (the answer claims nothing): SQL NULL


def _answer(prefix=""):
    """A finished ask-mode answer (a written draft has no grounding score), as a filter."""
    return Q(
        **{
            f"{prefix}role": Message.Role.ASSISTANT,
            f"{prefix}status": Message.Status.DONE,
            f"{prefix}mode": Message.Mode.ASK,
        }
    )


def _answers(prefix=""):
    return Count(f"{prefix}id", filter=_answer(prefix))


def _grounded(prefix=""):
    """Answers whose grounding score reaches TWIN_AUDIENCE_GROUNDED_SCORE (JSON null never does)."""
    reached = Q(**{f"{prefix}grounding__score__gte": settings.TWIN_AUDIENCE_GROUNDED_SCORE})
    return Count(f"{prefix}id", filter=_answer(prefix) & reached)


@dataclass
class Member:
    key: str
    kind: str  # "invited" or "visitor"
    name: str
    user_id: int | None
    access: str  # invited users: "active" or "revoked"; visitors: ""
    conversations: int
    questions: int
    answers: int
    grounded: int
    first_at: datetime
    last_at: datetime

    @property
    def grounded_share(self) -> float | None:
        return round(self.grounded / self.answers, 3) if self.answers else None

    @property
    def grounded_percent(self) -> int | None:
        share = self.grounded_share
        return None if share is None else round(share * 100)


def members(owner) -> list[Member]:
    """Everyone who talked to the twin, the most recent first: invited users by name, visitors by tag."""
    rows = (
        audience_messages(owner)
        .annotate(asker_id=F("conversation__asker_id"), visitor=F("conversation__visitor"))
        .values("asker_id", "visitor")
        .annotate(
            conversations=Count("conversation", distinct=True),
            questions=Count("id", filter=Q(role=Message.Role.USER)),
            answers=_answers(),
            grounded=_grounded(),
            first_at=Min("created_at"),
            last_at=Max("created_at"),
        )
        .order_by("-last_at")
    )
    rows = list(rows)
    users = get_user_model().objects.in_bulk([r["asker_id"] for r in rows if r["asker_id"]])
    active = set(
        TwinAccess.objects.for_user(owner).active().filter(member__in=users).values_list("member_id", flat=True)
    )
    found = []
    for row in rows:
        asker = users.get(row["asker_id"])
        found.append(
            Member(
                key=member_key(row["asker_id"], row["visitor"]),
                kind="invited" if asker else "visitor",
                name=member_name(asker, row["visitor"]),
                user_id=row["asker_id"],
                access=("active" if asker.pk in active else "revoked") if asker else "",
                **{k: row[k] for k in ("conversations", "questions", "answers", "grounded", "first_at", "last_at")},
            )
        )
    return found


def with_counts(conversations):
    """Conversations with their questions, finished answers and grounded answers counted, the latest first
    (ordered here: a grouping query does not take the model's default ordering)."""
    return (
        conversations.select_related("asker")
        .annotate(
            questions=Count("messages", filter=Q(messages__role=Message.Role.USER)),
            answers=_answers("messages__"),
            grounded=_grounded("messages__"),
        )
        .order_by("-updated_at", "-pk")
    )


class Percentile(Aggregate):
    """PostgreSQL's continuous percentile, e.g. the p95 of a column within each group."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


@dataclass
class DailySeries:
    """The audience's days, for the charts: [[day, value], ...] per series (a day with no data has none)."""

    days: list[date]
    questions: list[list]
    first_token_p50: list[list]
    first_token_p95: list[list]
    grounding: list[list]  # the mean grounding score of the day's answers, in percent
    grounded_share: list[list]  # the day's answers that reached TWIN_AUDIENCE_GROUNDED_SCORE, in percent


def daily(owner, days: int | None = None) -> DailySeries:
    days = days or settings.TWIN_AUDIENCE_CHART_DAYS
    today = timezone.localdate()
    first = today - timedelta(days=days - 1)
    since = timezone.make_aware(datetime.combine(first, datetime.min.time()))
    messages = audience_messages(owner).filter(created_at__gte=since).annotate(day=TruncDate("created_at"))
    asked = dict(messages.filter(role=Message.Role.USER).values("day").annotate(n=Count("id")).values_list("day", "n"))
    answers = (
        messages.filter(_answer())
        .annotate(score=_score())
        .values("day")
        .annotate(mean=Avg("score"), answers=_answers(), grounded=_grounded())
        .order_by("day")
    )
    traces = (
        PromptTrace.objects.for_user(owner)
        .filter(message__conversation__in=audience_conversations(owner), created_at__gte=since)
        .exclude(prompt="")  # "no notes": the model was not asked, so there was no first token to wait for
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(p50=Percentile("first_token_ms", 0.5), p95=Percentile("first_token_ms", 0.95))
        .order_by("day")
    )
    span = [first + timedelta(days=i) for i in range(days)]
    traces, answers = list(traces), list(answers)
    return DailySeries(
        days=span,
        questions=[[day, asked.get(day, 0)] for day in span],
        first_token_p50=[[t["day"], round(t["p50"])] for t in traces],
        first_token_p95=[[t["day"], round(t["p95"])] for t in traces],
        grounding=[[a["day"], round(a["mean"] * 100, 1)] for a in answers if a["mean"] is not None],
        grounded_share=[[a["day"], round(100 * a["grounded"] / a["answers"], 1)] for a in answers],
    )


@dataclass
class Revision:
    answer: Message
    question: str
    asker: str
    correction: Correction | None

    @property
    def revised_at(self) -> datetime | None:
        return self.correction.updated_at if self.correction else None


def with_question(answers):
    """Answers with the question each one answered (the last user message before it) as `question`."""
    question = Message.objects.filter(
        conversation=OuterRef("conversation"), role=Message.Role.USER, id__lt=OuterRef("id")
    ).order_by("-id")
    return answers.annotate(question=Subquery(question.values("content")[:1]))


def revised_answers(owner):
    return audience_messages(owner).filter(role=Message.Role.ASSISTANT).exclude(revised_from="")


def no_notes_answers(owner):
    """Audience answers that said "no notes": nothing in the notes was close enough to the question."""
    return audience_messages(owner).filter(role=Message.Role.ASSISTANT, grounding__no_notes=True)


def revisions(owner, answer_ids=None) -> list[Revision]:
    """The audience answers the owner revised (or those of them given), the latest revision first,
    each with its correction."""
    answers = revised_answers(owner)
    if answer_ids is not None:
        answers = answers.filter(pk__in=answer_ids)
    answers = list(with_question(answers).select_related("conversation__asker"))
    corrections = Correction.objects.for_user(owner).filter(
        origin=Correction.Origin.ANSWER, origin_id__in=[a.pk for a in answers]
    )
    by_answer = {c.origin_id: c for c in corrections}
    found = [Revision(a, a.question or "", asked_by(a.conversation), by_answer.get(a.pk)) for a in answers]
    return sorted(found, key=lambda r: (r.revised_at is not None, r.revised_at, r.answer.pk), reverse=True)


def member_or_404(owner, key: str) -> Member:
    for member in members(owner):
        if member.key == key:
            return member
    raise Http404("No such member of your audience.")
