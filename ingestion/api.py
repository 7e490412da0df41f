from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404  # a malformed id is a 404, not a 500
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from .actions import (
    SourceRefused,
    do_add_source,
    do_cancel_sync,
    do_delete_source,
    do_reprocess_source,
    do_sync_source,
)
from .connectors import CONNECTORS, recognise
from .models import CrawlRun, Document, Source


class CrawlRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = CrawlRun
        fields = [
            "id",
            "status",
            "progress",
            "message",
            "error",
            "documents_created",
            "documents_updated",
            "documents_unchanged",
            "documents_failed",
            "documents_skipped",
            "documents_gone",
            "requests_made",
            "failures",
            "created_at",
            "started_at",
            "finished_at",
        ]


class SourceSerializer(serializers.ModelSerializer):
    last_run = CrawlRunSerializer(read_only=True)

    class Meta:
        model = Source
        fields = [
            "id",
            "kind",
            "name",
            "url",
            "category",
            "options",
            "recrawl_hours",
            "failure_streak",
            "retry_after",
            "created_at",
            "last_synced_at",
            "last_run",
        ]


class SourceCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=[(kind, f"{c.label}: {c.help_text}") for kind, c in CONNECTORS.items()],
        required=False,
        help_text="Recognised from `url` or `file` when left out.",
    )
    url = serializers.CharField(required=False, help_text="A page, blog, feed, profile or repository address.")
    file = serializers.FileField(required=False, help_text="A file or archive (multipart).")
    category = serializers.CharField(required=False, default="article")
    recrawl_hours = serializers.IntegerField(required=False, allow_null=True)


class DocumentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Document
        fields = [
            "id",
            "source",
            "category",
            "title",
            "url",
            "content_hash",
            "fetched_at",
            "published_at",
            "gone_at",
            "word_count",
        ]


class DocumentDetailSerializer(DocumentSerializer):
    class Meta(DocumentSerializer.Meta):
        fields = [*DocumentSerializer.Meta.fields, "metadata", "raw_text"]


def _form_errors(form) -> dict:
    return {field: [str(e) for e in errors] for field, errors in form.errors.items()}


class SourceViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Your sources. POST a `url` (JSON) or a `file` (multipart), with a `kind` or without
    (it is recognised); it is synced in the background, and `last_run` shows the progress."""

    serializer_class = SourceSerializer
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        return Source.objects.for_user(self.request.user).with_last_run()

    @extend_schema(request=SourceCreateSerializer, responses={201: SourceSerializer})
    def create(self, request):
        if not hasattr(request.data, "get"):
            return Response(
                {"detail": "Send a JSON object with `url`, or a multipart form with `file`."},
                status=status.HTTP_400_BAD_REQUEST,
            )
        data = {key: request.data.get(key) for key in request.data if key != "file"}
        data.setdefault("category", "article")
        upload = request.FILES.get("file")
        kind = data.get("kind") or ""
        if not isinstance(kind, str):  # a list or an object is no connector's name: refused below
            kind = "?"
        connector = (
            CONNECTORS.get(kind)
            if kind
            else recognise(url=str(data.get("url") or ""), filename=getattr(upload, "name", ""))
        )
        if connector is None:
            known = ", ".join(CONNECTORS)
            return Response(
                {"kind": [f"Give a `url` or a `file` and, if it is not recognised, a `kind`: one of {known}."]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        form = connector.form_class(data, {"file": upload} if upload else {})
        if not form.is_valid():
            return Response(_form_errors(form), status=status.HTTP_400_BAD_REQUEST)
        try:
            source = do_add_source(request.user, connector.kind, form.cleaned_data)
        except SourceRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(SourceSerializer(source).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        do_delete_source(instance)

    @extend_schema(request=None, responses={202: CrawlRunSerializer})
    @action(detail=True, methods=["post"])
    def sync(self, request, pk=None):
        """Crawl the source again (returns the queued or running crawl); 400 when the storage quota is used up."""
        try:
            run = do_sync_source(get_object_or_404(self.get_queryset(), pk=pk))
        except SourceRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(CrawlRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={200: CrawlRunSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel the running or queued sync; what it stored is kept. 409 when none is running."""
        run = do_cancel_sync(get_object_or_404(self.get_queryset(), pk=pk))
        if run is None:
            return Response({"detail": "No sync is running."}, status=status.HTTP_409_CONFLICT)
        return Response(CrawlRunSerializer(run).data)

    @extend_schema(request=None, responses={202: None})
    @action(detail=True, methods=["post"])
    def reprocess(self, request, pk=None):
        """Send the source's documents through the feature pipeline again (retry after a failed run)."""
        count = do_reprocess_source(get_object_or_404(self.get_queryset(), pk=pk))
        return Response({"documents": count}, status=status.HTTP_202_ACCEPTED)


class DocumentViewSet(viewsets.ReadOnlyModelViewSet):
    """Raw documents fetched from your sources (filter with ?source=<id>)."""

    def get_queryset(self):
        documents = Document.objects.for_user(self.request.user)
        if self.request.query_params.get("source", "").isdigit():
            documents = documents.filter(source_id=self.request.query_params["source"])
        return documents

    def get_serializer_class(self):
        return DocumentDetailSerializer if self.action == "retrieve" else DocumentSerializer
