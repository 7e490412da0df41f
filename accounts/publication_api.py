"""/api/v1/sharing/publication/: the owner's public page and widget (GET, PUT, PATCH; POST rotate-key/)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.response import Response

from .models import Publication
from .publication import (
    PublicationRefused,
    do_ensure_publication,
    do_rotate_widget_key,
    do_update_publication,
    embed_snippet,
    site_origin,
    visitor_answers_this_month,
)


class PublicationSerializer(serializers.ModelSerializer):
    allowed_origins = serializers.ListField(
        child=serializers.CharField(max_length=200),
        required=False,
        help_text="Sites that may embed the widget (https://blog.example); this site's public page always may.",
    )
    public_url = serializers.SerializerMethodField()
    embed_snippet = serializers.SerializerMethodField(help_text="The <script> tag to paste into your site.")
    answers_this_month = serializers.SerializerMethodField(help_text="Visitor answers counted against the quota.")

    class Meta:
        model = Publication
        fields = [
            "enabled",
            "slug",
            "allowed_origins",
            "monthly_quota",
            "widget_key",
            "public_url",
            "embed_snippet",
            "answers_this_month",
            "updated_at",
        ]
        read_only_fields = ["widget_key", "updated_at"]
        extra_kwargs = {"slug": {"validators": []}}  # uniqueness: do_update_publication says it plainly

    def get_public_url(self, publication) -> str:
        return f"{site_origin(self.context['request'])}/t/{publication.slug}/"

    def get_embed_snippet(self, publication) -> str:
        return embed_snippet(publication, site_origin(self.context["request"]))

    def get_answers_this_month(self, publication) -> int:
        return visitor_answers_this_month(publication.owner)


@extend_schema(request=PublicationSerializer, responses={200: PublicationSerializer})
@api_view(["GET", "HEAD", "PUT", "PATCH"])
def publication(request):
    """Your twin's public page and widget: publish or unpublish, its address, allowed sites, monthly quota."""
    publication = do_ensure_publication(request.user)
    if request.method in ("PUT", "PATCH"):
        body = PublicationSerializer(publication, data=request.data, partial=request.method == "PATCH")
        body.is_valid(raise_exception=True)
        try:
            do_update_publication(publication, **body.validated_data)
        except PublicationRefused as exc:
            raise serializers.ValidationError({"detail": str(exc)}) from exc
    return Response(PublicationSerializer(publication, context={"request": request}).data)


@extend_schema(request=None, responses={200: PublicationSerializer})
@api_view(["POST"])
def rotate_key(request):
    """A new widget key: every page embedding the old one stops working at its next request."""
    publication = do_rotate_widget_key(do_ensure_publication(request.user))
    return Response(PublicationSerializer(publication, context={"request": request}).data)
