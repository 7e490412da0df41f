from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import api_view, throttle_classes
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle

from .actions import AnswerFailed, ChatRefused, do_answer
from .models import Conversation, Message


class ChatThrottle(UserRateThrottle):
    scope = "chat"


class MessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = ["id", "role", "content", "status", "error", "sources", "grounding", "model_version", "created_at"]


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


class ChatResponseSerializer(serializers.Serializer):
    conversation = serializers.IntegerField()
    message = MessageSerializer()
    grounding = serializers.JSONField(
        help_text="score (0-1, or null when the answer claims nothing), sentences [{text, supported, support, "
        "chunk_id, document_id, title, evidence}], quote (the best note, when the answer is unsupported), no_notes."
    )


@extend_schema(request=ChatRequestSerializer, responses={200: ChatResponseSerializer})
@api_view(["POST"])
@throttle_classes([ChatThrottle])
def chat(request):
    """Ask your twin; the answer comes with the sources it was grounded on."""
    body = ChatRequestSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    conversation = None
    if "conversation" in body.validated_data:
        conversation = get_object_or_404(
            Conversation.objects.for_user(request.user), pk=body.validated_data["conversation"]
        )
    try:
        answer = do_answer(request.user, body.validated_data["message"], conversation)
    except ChatRefused as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    except AnswerFailed as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
    return Response(
        {
            "conversation": answer.conversation_id,
            "message": MessageSerializer(answer).data,
            "grounding": answer.grounding,
        }
    )


class ConversationViewSet(viewsets.ReadOnlyModelViewSet):
    """Your conversations with your twin."""

    def get_queryset(self):
        return Conversation.objects.for_user(self.request.user).prefetch_related("messages")

    def get_serializer_class(self):
        return ConversationDetailSerializer if self.action == "retrieve" else ConversationSerializer
