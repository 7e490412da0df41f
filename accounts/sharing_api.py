"""The owner's sharing under /api/v1/sharing/: invitations and groups (the sources' audience flag is
ingestion's, /api/v1/sharing/sources/). Everything is the caller's own; another owner's id is a 404."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from .models import AudienceGroup, TwinAccess
from .sharing import (
    SharingRefused,
    do_create_group,
    do_delete_group,
    do_invite,
    do_move_member,
    do_rename_group,
    do_revoke,
)


class InvitationSerializer(serializers.ModelSerializer):
    member = serializers.SlugRelatedField(
        slug_field="username", read_only=True, help_text="The invited user; null until an email invitation signs up."
    )
    active = serializers.SerializerMethodField()

    class Meta:
        model = TwinAccess
        fields = ["id", "member", "email", "group", "created_at", "revoked_at", "active"]
        read_only_fields = fields

    def get_active(self, access) -> bool:
        return access.revoked_at is None


class InvitationCreateSerializer(serializers.Serializer):
    who = serializers.CharField(help_text="A username, or an email address (which may not have an account yet).")
    group = serializers.IntegerField(required=False, allow_null=True, help_text="One of your groups' ids.")


class InvitationMoveSerializer(serializers.Serializer):
    group = serializers.IntegerField(allow_null=True, help_text="One of your groups' ids; null: no group.")


class GroupSerializer(serializers.ModelSerializer):
    members = serializers.SerializerMethodField(help_text="How many people of the group are invited now.")

    class Meta:
        model = AudienceGroup
        fields = ["id", "name", "created_at", "members"]
        read_only_fields = ["id", "created_at", "members"]

    def get_members(self, group) -> int:
        return group.members.filter(revoked_at__isnull=True).count()


class RevokedSerializer(serializers.Serializer):
    revoked = serializers.IntegerField(help_text="How many invitations this revoked.")


def _group_or_404(request, group_id):
    return None if group_id is None else get_object_or_404(AudienceGroup.objects.for_user(request.user), pk=group_id)


def _refused(exc: SharingRefused) -> Response:
    return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)


class InvitationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """People you invited to chat with your twin (revoked ones too, with `revoked_at`). POST invites by
    username or email; PATCH moves one to a group; `revoke/` ends their access on their next request."""

    serializer_class = InvitationSerializer
    http_method_names = ["get", "head", "post", "patch"]

    def get_queryset(self):
        return TwinAccess.objects.for_user(self.request.user).select_related("member")

    @extend_schema(request=InvitationCreateSerializer, responses={201: InvitationSerializer})
    def create(self, request):
        body = InvitationCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        group = _group_or_404(request, body.validated_data.get("group"))
        try:
            access = do_invite(request.user, body.validated_data["who"], group)
        except SharingRefused as exc:
            return _refused(exc)
        return Response(InvitationSerializer(access).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=InvitationMoveSerializer, responses={200: InvitationSerializer})
    def partial_update(self, request, pk=None):
        access = self.get_object()
        body = InvitationMoveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        access = do_move_member(access, _group_or_404(request, body.validated_data["group"]))
        return Response(InvitationSerializer(access).data)

    @extend_schema(request=None, responses={200: InvitationSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        access = self.get_object()
        do_revoke(request.user, access=access)
        access.refresh_from_db()
        return Response(InvitationSerializer(access).data)


def _name(request) -> str:
    """The group name of a request body; a body that is not a JSON object names nothing (400, not 500)."""
    return str(request.data.get("name", "")) if isinstance(request.data, dict) else ""


class GroupViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Your audience groups. POST creates one, PATCH renames it, DELETE removes it (its people stay
    invited, in no group); `revoke/` revokes everyone in it."""

    serializer_class = GroupSerializer
    http_method_names = ["get", "head", "post", "patch", "delete"]

    def get_queryset(self):
        return AudienceGroup.objects.for_user(self.request.user)

    @extend_schema(request=GroupSerializer, responses={201: GroupSerializer})
    def create(self, request):
        try:
            group = do_create_group(request.user, _name(request))
        except SharingRefused as exc:
            return _refused(exc)
        return Response(GroupSerializer(group).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=GroupSerializer, responses={200: GroupSerializer})
    def partial_update(self, request, pk=None):
        group = self.get_object()
        try:
            group = do_rename_group(group, _name(request))
        except SharingRefused as exc:
            return _refused(exc)
        return Response(GroupSerializer(group).data)

    def perform_destroy(self, instance):
        do_delete_group(instance)

    @extend_schema(request=None, responses={200: RevokedSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        return Response({"revoked": do_revoke(request.user, group=self.get_object())})
