from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import api_view, throttle_classes
from rest_framework.response import Response

from accounts.sharing import shared_twin_or_404

from .actions import do_answer
from .admission import AnswerFailed, ChatRefused
from .models import Conversation, Message
from .throttling import ChatThrottle


def twin_for(request, username: str | None):
    """(owner, asker) for a request that may name a twin shared with the caller: the caller's own twin
    (asker None) when it names none or their own; 404 unless the caller may chat with it, on every request."""
    if not username or username == request.user.get_username():
        return request.user, None
    return shared_twin_or_404(request.user, username), request.user


def conversations_of(owner, asker):
    """The conversations the caller may continue: the owner's own, or the invited asker's with that twin."""
    conversations = Conversation.objects.for_user(owner)
    return conversations.own() if asker is None else conversations.asked_by(asker)


def refusal(detail, http_status: int, retry_after: int | None = None) -> Response:
    """A refused or failed question; busy ones (429, 503) say when to ask again."""
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return Response(detail, status=http_status, headers=headers)


TWIN_PARAMETER = OpenApiParameter(
    "twin", str, description="The username of a twin shared with you: your own conversations with it."
)


class MessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = [
            "id",
            "role",
            "content",
            "status",
            "mode",
            "revised_from",
            "error",
            "notice",
            "sources",
            "grounding",
            "model_version",
            "created_at",
        ]


class ConversationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Conversation
        fields = ["id", "title", "created_at", "updated_at"]


class ConversationDetailSerializer(ConversationSerializer):
    messages = MessageSerializer(many=True, read_only=True)

    class Meta(ConversationSerializer.Meta):
        fields = [*ConversationSerializer.Meta.fields, "messages"]


class ChatRequestSerializer(serializers.Serializer):
    message = serializers.CharField(trim_whitespace=True)
    conversation = serializers.IntegerField(required=False, help_text="Continue this conversation.")
    twin = serializers.CharField(
        required=False,
        help_text="Ask a twin shared with you: its owner's username (absent: your own twin). Its answers come "
        "from the sources its owner shares, in ask mode only.",
    )
    mode = serializers.ChoiceField(
        choices=["auto", "ask", "write"],
        default="auto",
        help_text="ask: answer from your notes; write: new text in your voice (a draft is kept); auto: "
        "a request to write something is written, anything else answered.",
    )


class ChatResponseSerializer(serializers.Serializer):
    conversation = serializers.IntegerField()
    message = MessageSerializer()
    grounding = serializers.JSONField(
        help_text="score (0-1, or null when the answer claims nothing), sentences [{text, supported, support, "
        "chunk_id, document_id, title, evidence}], quote (the best note, when the answer is unsupported), no_notes; "
        "in write mode: mode 'write' and alternatives [{text, specifics, copy_rate}]."
    )
    mode = serializers.ChoiceField(choices=["ask", "write"], help_text="How the twin took the message.")
    draft = serializers.IntegerField(allow_null=True, help_text="In write mode: the draft kept (drafts/{id}/).")


@extend_schema(
    request=ChatRequestSerializer,
    responses={200: ChatResponseSerializer},
    description="429: too many questions, or earlier answers still being made; 503: busy, or the answer "
    "failed. Both carry Retry-After (seconds).",
)
@api_view(["POST"])
@throttle_classes([ChatThrottle])
def chat(request):
    """Ask your twin; the answer comes with the sources it was grounded on."""
    body = ChatRequestSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    owner, asker = twin_for(request, body.validated_data.get("twin"))
    conversation = None
    if "conversation" in body.validated_data:
        conversation = get_object_or_404(conversations_of(owner, asker), pk=body.validated_data["conversation"])
    try:
        answer = do_answer(
            owner, body.validated_data["message"], conversation, body.validated_data["mode"], asker=asker
        )
    except ChatRefused as exc:
        return refusal({"detail": str(exc)}, exc.status_code, exc.retry_after)
    except AnswerFailed as exc:
        return refusal({"detail": str(exc)}, status.HTTP_503_SERVICE_UNAVAILABLE, exc.retry_after)
    return Response(
        {
            "conversation": answer.conversation_id,
            "message": MessageSerializer(answer).data,
            "grounding": answer.grounding,
            "mode": answer.mode,
            "draft": answer.draft.pk if hasattr(answer, "draft") else None,
        }
    )


@extend_schema_view(
    list=extend_schema(parameters=[TWIN_PARAMETER]), retrieve=extend_schema(parameters=[TWIN_PARAMETER])
)
class ConversationViewSet(viewsets.ReadOnlyModelViewSet):
    """Your conversations with your twin; with `?twin=<username>`, yours with a twin shared with you."""

    def get_queryset(self):
        username = self.request.query_params.get("twin")
        if username and username != self.request.user.get_username():
            owner = shared_twin_or_404(self.request.user, username)
            conversations = Conversation.objects.for_user(owner).asked_by(self.request.user)
        else:
            conversations = Conversation.objects.for_user(self.request.user).own()
        return conversations.prefetch_related("messages")

    def get_serializer_class(self):
        return ConversationDetailSerializer if self.action == "retrieve" else ConversationSerializer
