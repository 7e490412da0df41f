import json
import time

from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import api_view, throttle_classes
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle

from .actions import AnswerFailed, ChatRefused, do_answer, do_ask, stream_answer, wait_for_answer
from .models import Conversation, Message


class ChatThrottle(UserRateThrottle):
    scope = "chat"


class MessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = ["id", "role", "content", "status", "error", "sources", "model_version", "created_at"]


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
    return Response({"conversation": answer.conversation_id, "message": MessageSerializer(answer).data})


class ConversationViewSet(viewsets.ReadOnlyModelViewSet):
    """Your conversations with your twin."""

    def get_queryset(self):
        return Conversation.objects.for_user(self.request.user).prefetch_related("messages")

    def get_serializer_class(self):
        return ConversationDetailSerializer if self.action == "retrieve" else ConversationSerializer


def _openai_error(message: str, http_status: int = 400) -> Response:
    return Response({"error": {"message": message, "type": "invalid_request_error"}}, status=http_status)


def _last_user_text(messages) -> str:
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # content parts: keep the text ones
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return content if isinstance(content, str) else ""
    return ""


@extend_schema(request=dict, responses=dict)
@api_view(["POST"])
@throttle_classes([ChatThrottle])
def openai_chat_completions(request):
    """OpenAI-compatible chat completions: any OpenAI client can talk to your twin with a Twinsite token.

    The last user message is the question; retrieval supplies the context. Earlier
    turns are not used yet. `stream: true` answers with server-sent chunks.
    """
    if not isinstance(request.data, dict):
        return _openai_error("The request body must be a JSON object.")
    question = _last_user_text(request.data.get("messages"))
    if not question.strip():
        return _openai_error("`messages` must contain a user message with text.")
    try:
        answer = do_ask(request.user, question)
    except ChatRefused as exc:
        return _openai_error(str(exc))
    completion_id, created = f"chatcmpl-{answer.pk}", int(time.time())
    model = request.data.get("model") or "twinsite-twin"

    def chunk(delta: dict, finish_reason=None) -> str:
        payload = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
        return f"data: {json.dumps(payload)}\n\n"

    if request.data.get("stream") is True:  # JSON true only: the string "false" must not stream

        def events():
            yield chunk({"role": "assistant"})
            for event in stream_answer(answer):
                if event.kind == "token":
                    yield chunk({"content": event.data})
                elif event.kind == "error":
                    yield f"data: {json.dumps({'error': {'message': event.data}})}\n\n"
            yield chunk({}, "stop")
            yield "data: [DONE]\n\n"

        return StreamingHttpResponse(events(), content_type="text/event-stream")

    try:
        answer = wait_for_answer(answer)
    except AnswerFailed as exc:
        return _openai_error(str(exc), status.HTTP_503_SERVICE_UNAVAILABLE)
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
                {"index": 0, "message": {"role": "assistant", "content": answer.content}, "finish_reason": "stop"}
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "sources": answer.sources,
        }
    )
