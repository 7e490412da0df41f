from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from .embeddings import embed_query
from .models import Chunk, DatasetVersion

MAX_K = 50


class SearchResultSerializer(serializers.Serializer):
    chunk_id = serializers.IntegerField(source="pk")
    document_id = serializers.IntegerField(source="clean_document.document_id")
    title = serializers.CharField(source="clean_document.title")
    url = serializers.CharField(source="clean_document.document.url")
    score = serializers.FloatField()
    text = serializers.CharField()


@extend_schema(
    parameters=[OpenApiParameter("q", str, required=True), OpenApiParameter("k", int, default=5)],
    responses=inline_serializer(
        "SearchResults", {"query": serializers.CharField(), "results": SearchResultSerializer(many=True)}
    ),
)
@api_view(["GET"])
def search(request):
    """Semantic search over your own chunks (cosine similarity, best first)."""
    query = request.query_params.get("q", "").strip()
    if not query:
        raise ValidationError({"q": ["Give a query with ?q=."]})
    try:
        k = min(max(int(request.query_params.get("k", 5)), 1), MAX_K)
    except ValueError:
        raise ValidationError({"k": ["k must be a whole number."]}) from None
    results = Chunk.objects.search(request.user, embed_query(query[:1000]), k=k)
    return Response({"query": query, "results": SearchResultSerializer(results, many=True).data})


class DatasetVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = DatasetVersion
        fields = [
            "id",
            "version",
            "kind",
            "sha256",
            "train_count",
            "test_count",
            "document_count",
            "lineage",
            "created_at",
        ]


class DatasetVersionViewSet(viewsets.ReadOnlyModelViewSet):
    """Your versioned instruct datasets (immutable, content-hashed)."""

    serializer_class = DatasetVersionSerializer

    def get_queryset(self):
        return DatasetVersion.objects.for_user(self.request.user)
