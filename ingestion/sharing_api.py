"""/api/v1/sharing/sources/: which of the owner's sources the twin's audience may draw on."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.response import Response

from .models import Source


class AudienceSourceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Source
        fields = ["id", "name", "kind", "category", "audience"]
        read_only_fields = ["id", "name", "kind", "category"]
        extra_kwargs = {"audience": {"required": True}}


class AudienceSourceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Your sources and whether your twin's audience (invited users, visitors) may draw on each:
    its answers, citations and notes come only from sources with `audience: true`. Private by
    default; PATCH `{"audience": true}` to share one."""

    serializer_class = AudienceSourceSerializer
    http_method_names = ["get", "head", "patch"]

    def get_queryset(self):
        return Source.objects.for_user(self.request.user).order_by("name", "pk")

    @extend_schema(request=AudienceSourceSerializer, responses={200: AudienceSourceSerializer})
    def partial_update(self, request, pk=None):
        source = self.get_object()
        body = AudienceSourceSerializer(source, data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        if "audience" not in body.validated_data:
            raise serializers.ValidationError({"audience": "Say true (shared) or false (private)."})
        return Response(AudienceSourceSerializer(source.set_audience(body.validated_data["audience"])).data)
