from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404  # a malformed id is a 404, not a 500
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from .actions import SourceRefused, do_add_article_source, do_add_upload_source, do_delete_source, do_sync_source
from .connectors.article.forms import ArticleSourceForm
from .connectors.upload.forms import UploadSourceForm
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
            "created_at",
            "started_at",
            "finished_at",
        ]


class SourceSerializer(serializers.ModelSerializer):
    last_run = CrawlRunSerializer(read_only=True)

    class Meta:
        model = Source
        fields = ["id", "kind", "name", "url", "category", "created_at", "last_synced_at", "last_run"]


class SourceCreateSerializer(serializers.Serializer):
    url = serializers.CharField(required=False, help_text="An article URL (or send `file` as multipart).")
    file = serializers.FileField(required=False, help_text="A Markdown, text or HTML file.")
    category = serializers.CharField(required=False, default="article")


class DocumentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Document
        fields = ["id", "source", "category", "title", "url", "content_hash", "fetched_at", "word_count"]


class DocumentDetailSerializer(DocumentSerializer):
    class Meta(DocumentSerializer.Meta):
        fields = [*DocumentSerializer.Meta.fields, "raw_text"]


def _form_errors(form) -> dict:
    return {field: [str(e) for e in errors] for field, errors in form.errors.items()}


class SourceViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Your sources. POST a `url` (JSON) or a `file` (multipart) to add one; it is ingested in the background."""

    serializer_class = SourceSerializer
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        return Source.objects.for_user(self.request.user).prefetch_related("crawl_runs")

    @extend_schema(request=SourceCreateSerializer, responses={201: SourceSerializer})
    def create(self, request):
        if not isinstance(request.data, dict):
            return Response(
                {"detail": "Send a JSON object with `url`, or a multipart form with `file`."},
                status=status.HTTP_400_BAD_REQUEST,
            )
        category = request.data.get("category", "article")
        if "file" in request.FILES:
            form = UploadSourceForm({"category": category}, {"file": request.FILES["file"]})
            add = lambda data: do_add_upload_source(request.user, data["file"], category=data["category"])  # noqa: E731
        else:
            form = ArticleSourceForm({"url": request.data.get("url", ""), "category": category})
            add = lambda data: do_add_article_source(request.user, data["url"], category=data["category"])  # noqa: E731
        if not form.is_valid():
            return Response(_form_errors(form), status=status.HTTP_400_BAD_REQUEST)
        try:
            source = add(form.cleaned_data)
        except SourceRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(SourceSerializer(source).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        do_delete_source(instance)

    @extend_schema(request=None, responses={202: CrawlRunSerializer})
    @action(detail=True, methods=["post"])
    def sync(self, request, pk=None):
        """Crawl the source again (returns the queued or running crawl)."""
        run = do_sync_source(get_object_or_404(self.get_queryset(), pk=pk))
        return Response(CrawlRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class DocumentViewSet(viewsets.ReadOnlyModelViewSet):
    """Raw documents fetched from your sources (filter with ?source=<id>)."""

    def get_queryset(self):
        documents = Document.objects.for_user(self.request.user)
        if self.request.query_params.get("source", "").isdigit():
            documents = documents.filter(source_id=self.request.query_params["source"])
        return documents

    def get_serializer_class(self):
        return DocumentDetailSerializer if self.action == "retrieve" else DocumentSerializer
