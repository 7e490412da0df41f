"""The owner's audience over the REST API (`/api/v1/audience/…`): members, their conversations with
the twin (each with its messages), revisions of their answers, and the unanswered questions by
topic. Owner-scoped like every list (chat/audience.py); reading needs the "read" scope, revising a
full-access token (accounts/permissions.py)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status, viewsets
from rest_framework.response import Response

from . import audience, unanswered
from .actions import do_revise_answer
from .admission import ChatRefused
from .api import ConversationSerializer, MessageSerializer, refusal


class MemberSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="user-{id} or visitor-{tag}: filter conversations/ with ?member=")
    kind = serializers.ChoiceField(choices=["invited", "visitor"])
    name = serializers.CharField(help_text="The invited user's name, or 'Visitor #abc123'.")
    user_id = serializers.IntegerField(allow_null=True)
    access = serializers.CharField(help_text="Invited users: active or revoked; visitors: empty.")
    conversations = serializers.IntegerField()
    questions = serializers.IntegerField()
    answers = serializers.IntegerField(help_text="Finished answers from the notes (ask mode).")
    grounded = serializers.IntegerField(help_text="Answers whose grounding score reached TWIN_AUDIENCE_GROUNDED_SCORE.")
    grounded_share = serializers.FloatField(allow_null=True, help_text="grounded / answers; null: no answers.")
    first_at = serializers.DateTimeField()
    last_at = serializers.DateTimeField()


class AudienceConversationSerializer(ConversationSerializer):
    member = serializers.SerializerMethodField()
    asker = serializers.SerializerMethodField()
    questions = serializers.IntegerField(read_only=True)
    answers = serializers.IntegerField(read_only=True)
    grounded = serializers.IntegerField(read_only=True)

    class Meta(ConversationSerializer.Meta):
        fields = [*ConversationSerializer.Meta.fields, "member", "asker", "questions", "answers", "grounded"]

    def get_member(self, conversation) -> str:
        return audience.member_key(conversation.asker_id, conversation.visitor)

    def get_asker(self, conversation) -> str:
        return audience.asked_by(conversation)


class AudienceConversationDetailSerializer(AudienceConversationSerializer):
    messages = MessageSerializer(many=True, read_only=True)

    class Meta(AudienceConversationSerializer.Meta):
        fields = [*AudienceConversationSerializer.Meta.fields, "messages"]


class RevisionSerializer(serializers.Serializer):
    answer = serializers.IntegerField(source="answer.pk")
    conversation = serializers.IntegerField(source="answer.conversation_id")
    asker = serializers.CharField()
    question = serializers.CharField()
    twin_answer = serializers.CharField(source="answer.revised_from", help_text="What the twin had said.")
    text = serializers.CharField(source="answer.content", help_text="The owner's answer, shown in its place.")
    correction = serializers.IntegerField(source="correction.pk", allow_null=True, default=None)
    waiting = serializers.SerializerMethodField(help_text="Not yet in a refinement dataset.")
    revised_at = serializers.DateTimeField(allow_null=True)

    def get_waiting(self, revision) -> bool:
        return bool(revision.correction and revision.correction.dataset_version_id is None)


class ReviseRequestSerializer(serializers.Serializer):
    answer = serializers.IntegerField(help_text="An answer in one of your audience's conversations.")
    text = serializers.CharField(help_text="Your answer; it replaces the twin's and becomes a correction.")


class QuestionSerializer(serializers.Serializer):
    answer = serializers.IntegerField(source="answer_id")
    conversation = serializers.IntegerField(source="conversation_id")
    question = serializers.CharField(source="text")
    asked_at = serializers.DateTimeField()
    asker = serializers.CharField()
    revised = serializers.BooleanField(help_text="You have since written an answer of your own.")


class TopicSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The topic's most central question.")
    count = serializers.IntegerField()
    questions = QuestionSerializer(many=True)


class MemberList(generics.ListAPIView):
    """Everyone who talked to your twin, the most recent first: invited users and visitors."""

    serializer_class = MemberSerializer

    def get_queryset(self):
        return audience.members(self.request.user)


class AudienceConversationViewSet(viewsets.ReadOnlyModelViewSet):
    """Your audience's conversations with your twin (`?member=` one member's); one with its messages."""

    def get_queryset(self):
        member = self.request.query_params.get("member")
        if self.action == "list" and member:
            conversations = audience.conversations_of_member(self.request.user, member)
        else:
            conversations = audience.audience_conversations(self.request.user)
        return audience.with_counts(conversations).prefetch_related("messages")

    def get_serializer_class(self):
        return AudienceConversationDetailSerializer if self.action == "retrieve" else AudienceConversationSerializer

    @extend_schema(parameters=[OpenApiParameter("member", str, description="A member's key (members/).")])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


class RevisionList(generics.ListCreateAPIView):
    """Your revisions of the answers your twin gave your audience, the latest first."""

    serializer_class = RevisionSerializer

    def get_queryset(self):
        return audience.revisions(self.request.user)

    @extend_schema(
        request=ReviseRequestSerializer,
        responses={201: RevisionSerializer},
        description="Revise an answer your twin gave your audience: your text replaces it and becomes a "
        "correction (a preference pair) for the next refinement. Another id, or your own chat's: 404.",
    )
    def post(self, request):
        body = ReviseRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        answer = audience.audience_answer_or_404(request.user, body.validated_data["answer"])
        try:
            do_revise_answer(answer, body.validated_data["text"])
        except ChatRefused as exc:
            return refusal({"detail": str(exc)}, exc.status_code)
        [revision] = audience.revisions(request.user, answer_ids=[answer.pk])
        return Response(RevisionSerializer(revision).data, status=status.HTTP_201_CREATED)


class UnansweredList(generics.ListAPIView):
    """Your audience's questions that got "no notes", grouped by topic, the most asked first."""

    serializer_class = TopicSerializer

    def get_queryset(self):
        return unanswered.topics(self.request.user)
