"""Drafts over the REST API: write (`POST drafts/`), read, edit (`PATCH`), regenerate, export; and
revising a chat answer (`POST messages/{id}/revise/`). Every lookup is scoped to the caller's twin."""

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action, api_view
from rest_framework.response import Response

from features.prompts import LENGTHS

from .actions import do_edit_draft, do_regenerate_draft, do_revise_answer, do_write
from .admission import ChatRefused
from .api import MessageSerializer, refusal
from .models import Draft, Message
from .throttling import ChatThrottle


class DraftSerializer(serializers.ModelSerializer):
    format = serializers.CharField(source="form", read_only=True)
    status = serializers.CharField(read_only=True)
    conversation = serializers.IntegerField(source="message.conversation_id", read_only=True, default=None)
    sources = serializers.JSONField(source="message.sources", read_only=True, default=list)
    error = serializers.CharField(source="message.error", read_only=True, default="")
    specifics = serializers.JSONField(read_only=True, help_text="Numbers and names the notes do not support.")

    class Meta:
        model = Draft
        fields = [
            "id",
            "brief",
            "format",
            "length",
            "status",
            "text",
            "generated_text",
            "alternatives",
            "specifics",
            "sources",
            "error",
            "conversation",
            "edited_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class DraftRequestSerializer(serializers.Serializer):
    brief = serializers.CharField(help_text="What to write: 'a LinkedIn post about why backups matter'.")
    format = serializers.ChoiceField(choices=Draft.Form.values, default="paragraph")
    length = serializers.ChoiceField(choices=list(LENGTHS), default="medium")
    alternatives = serializers.IntegerField(default=1, min_value=1, max_value=3)


class DraftEditSerializer(serializers.Serializer):
    text = serializers.CharField(help_text="Your version; it becomes a correction for the next refinement.")


class DraftViewSet(mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet):
    """Your drafts: text your twin wrote in your voice. POST a brief to write a new one; it is written
    in the background (`status` pending, running, then done or failed); GET it for the text."""

    serializer_class = DraftSerializer

    def get_queryset(self):
        return Draft.objects.for_user(self.request.user).select_related("message")

    def get_throttles(self):
        return [ChatThrottle()] if self.action in ("create", "regenerate") else super().get_throttles()

    @extend_schema(request=DraftRequestSerializer, responses={202: DraftSerializer})
    def create(self, request):
        body = DraftRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            draft = do_write(request.user, data["brief"], data["format"], data["length"], data["alternatives"])
        except ChatRefused as exc:
            return refusal({"detail": str(exc)}, exc.status_code, exc.retry_after)
        return Response(DraftSerializer(draft).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=DraftEditSerializer, responses={200: DraftSerializer})
    def partial_update(self, request, pk=None):
        body = DraftEditSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            draft = do_edit_draft(self.get_object(), body.validated_data["text"])
        except ChatRefused as exc:
            return refusal({"detail": str(exc)}, exc.status_code)
        return Response(DraftSerializer(draft).data)

    @extend_schema(request=None, responses={202: DraftSerializer})
    @action(detail=True, methods=["post"])
    def regenerate(self, request, pk=None):
        try:
            draft = do_regenerate_draft(self.get_object())
        except ChatRefused as exc:
            return refusal({"detail": str(exc)}, exc.status_code, exc.retry_after)
        return Response(DraftSerializer(draft).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={(200, "text/markdown"): str})
    @action(detail=True, methods=["get"])
    def export(self, request, pk=None):
        return markdown_response(self.get_object())


def markdown_response(draft: Draft) -> HttpResponse:
    response = HttpResponse(draft.as_markdown(), content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="draft-{draft.pk}.md"'
    return response


@extend_schema(request=DraftEditSerializer, responses={200: MessageSerializer})
@api_view(["POST"])
def revise_answer(request, message_id):
    """Replace one of your twin's answers with your own; the pair becomes a correction."""
    answers = Message.objects.for_user(request.user).filter(role=Message.Role.ASSISTANT)
    answer = get_object_or_404(answers.select_related("conversation__owner"), pk=message_id)
    body = DraftEditSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    try:
        answer = do_revise_answer(answer, body.validated_data["text"])
    except ChatRefused as exc:
        return refusal({"detail": str(exc)}, exc.status_code)
    return Response(MessageSerializer(answer).data)
