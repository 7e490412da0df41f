from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, authentication_classes, permission_classes, throttle_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle

from .actions import do_issue_api_token


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)
    name = serializers.CharField(max_length=100, required=False, default="API token")


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Shown once; store it now.")
    name = serializers.CharField()
    id = serializers.IntegerField()


class TokenThrottle(AnonRateThrottle):
    """Per client address: the caller stays anonymous until the password checks out."""

    scope = "token"


@extend_schema(request=TokenRequestSerializer, responses={201: TokenResponseSerializer})
@api_view(["POST"])
@authentication_classes([])
@permission_classes([AllowAny])
@throttle_classes([TokenThrottle])
def obtain_token(request):
    """Exchange a username and password for a new API token."""
    body = TokenRequestSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    user = authenticate(request, username=body.validated_data["username"], password=body.validated_data["password"])
    if user is None:
        return Response({"detail": "Wrong username or password."}, status=status.HTTP_400_BAD_REQUEST)
    token, raw = do_issue_api_token(user, body.validated_data["name"])
    return Response({"token": raw, "name": token.name, "id": token.pk}, status=status.HTTP_201_CREATED)
