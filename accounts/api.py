from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action, api_view, authentication_classes, permission_classes, throttle_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from .actions import MAX_TOKEN_DAYS, TokenRefused, do_delete_account, do_issue_api_token, password_checks_out
from .models import ApiToken
from .throttling import TokenThrottle


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)
    name = serializers.CharField(max_length=100, required=False, default="API token")
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ApiToken.Scope.choices),
        required=False,
        default=list,
        help_text="Empty or absent: full access. read: GET requests; chat: chat and OpenAI completions; "
        "review: approve or reject model versions (staff).",
    )
    expires_in_days = serializers.IntegerField(
        min_value=1, max_value=MAX_TOKEN_DAYS, required=False, help_text="Absent: the token never expires."
    )


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "key_prefix", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at"]
        read_only_fields = fields


class TokenResponseSerializer(ApiTokenSerializer):
    token = serializers.CharField(help_text="Shown once; store it now.")

    class Meta(ApiTokenSerializer.Meta):
        fields = ["token", *ApiTokenSerializer.Meta.fields]
        read_only_fields = fields


@extend_schema(
    request=TokenRequestSerializer,
    responses={201: TokenResponseSerializer, 400: OpenApiResponse(description="Wrong credentials or a bad request")},
)
@api_view(["POST"])
@authentication_classes([])
@permission_classes([AllowAny])
@throttle_classes([TokenThrottle])
def obtain_token(request):
    """Exchange a username and password for a new API token, optionally scoped and expiring."""
    body = TokenRequestSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    data = body.validated_data
    # The Django request, not DRF's wrapper: the login lockout (axes) flags it for its middleware.
    user = authenticate(request._request, username=data["username"], password=data["password"])
    if user is None:
        return Response({"detail": "Wrong username or password."}, status=status.HTTP_400_BAD_REQUEST)
    try:
        token, raw = do_issue_api_token(
            user, data["name"], scopes=data["scopes"], expires_in_days=data.get("expires_in_days")
        )
    except TokenRefused as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    return Response({"token": raw, **ApiTokenSerializer(token).data}, status=status.HTTP_201_CREATED)


class ApiTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Your API tokens (never their values). Revoking one stops it at once."""

    serializer_class = ApiTokenSerializer

    def get_queryset(self):
        return ApiToken.objects.for_user(self.request.user)

    @extend_schema(request=None, responses=ApiTokenSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        token = self.get_object()
        token.revoke()
        return Response(ApiTokenSerializer(token).data)


class DeleteAccountSerializer(serializers.Serializer):
    password = serializers.CharField(
        style={"input_type": "password"}, trim_whitespace=False, help_text="Your current password, again."
    )

    def validate_password(self, password):
        request = self.context["request"]
        if not password_checks_out(request, request.user, password):
            raise serializers.ValidationError("That is not your password; nothing was deleted.")
        return password


class HubDeletionSerializer(serializers.Serializer):
    repo_id = serializers.CharField()
    deleted = serializers.BooleanField()
    error = serializers.CharField(help_text="Why it could not be deleted (staff delete it by hand).")


class AccountDeletedSerializer(serializers.Serializer):
    detail = serializers.CharField()
    hub_repository = HubDeletionSerializer(
        allow_null=True, help_text="Your twin's Hugging Face Hub repository, deleted too; null: no Hub is configured."
    )


@extend_schema(request=DeleteAccountSerializer, responses={200: AccountDeletedSerializer})
@api_view(["POST"])
def delete_account(request):
    """Delete your account: every row and file of your twin, for good, and its Hugging Face Hub
    repository (the answer says whether that worked; the account is deleted either way).
    Needs your password and a full-access token."""
    body = DeleteAccountSerializer(data=request.data, context={"request": request})
    body.is_valid(raise_exception=True)
    hub = do_delete_account(request.user)
    detail = "Your account, your twin and all their data and files are deleted."
    if hub is not None:
        detail += " " + hub.message
    return Response({"detail": detail, "hub_repository": hub.as_dict() if hub else None})
