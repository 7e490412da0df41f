from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from .forms import SearchForm
from .models import Chunk, DatasetKind, DatasetVersion

MAX_K = 50


class MatchSerializer(serializers.Serializer):
    relevance = serializers.FloatField(help_text="Fused score (reciprocal rank fusion) results are ordered by.")
    vector_rank = serializers.IntegerField(allow_null=True, help_text="Place by meaning (cosine), if in that list.")
    similarity = serializers.FloatField(help_text="Cosine similarity to the query.")
    text_rank = serializers.IntegerField(allow_null=True, help_text="Place by words (full-text), if in that list.")
    text_score = serializers.FloatField(allow_null=True)
    matched_terms = serializers.ListField(child=serializers.CharField(), help_text="Query words found in the chunk.")


class SearchResultSerializer(serializers.Serializer):
    chunk_id = serializers.IntegerField(source="pk")
    document_id = serializers.IntegerField(source="clean_document.document_id")
    title = serializers.CharField(source="clean_document.title")
    url = serializers.CharField(source="clean_document.document.url")
    source_id = serializers.IntegerField(source="clean_document.document.source_id")
    source = serializers.CharField(source="clean_document.document.source.name")
    category = serializers.CharField(source="clean_document.category")
    heading = serializers.ListField(
        child=serializers.CharField(), source="metadata.headings", default=list, help_text="Heading path."
    )
    symbols = serializers.ListField(
        child=serializers.CharField(), source="metadata.symbols", default=list, help_text="Code: functions, classes."
    )
    score = serializers.FloatField(help_text="Cosine similarity to the query.")
    text = serializers.CharField()
    why = MatchSerializer(source="match")


@extend_schema(
    parameters=[
        OpenApiParameter("q", str, required=True),
        OpenApiParameter("k", int, default=5),
        OpenApiParameter("category", str, enum=["article", "post", "code"]),
        OpenApiParameter("source", int, description="One of your source ids."),
        OpenApiParameter("since", str, description="YYYY-MM-DD: documents dated on or after."),
        OpenApiParameter("until", str, description="YYYY-MM-DD: documents dated on or before."),
    ],
    responses=inline_serializer(
        "SearchResults", {"query": serializers.CharField(), "results": SearchResultSerializer(many=True)}
    ),
)
@api_view(["GET", "HEAD"])  # HEAD as GET, like every other read of the API (viewsets add it themselves)
def search(request):
    """Hybrid search over your own chunks (meaning and words, fused; near-duplicates dropped), best first."""
    form = SearchForm(request.query_params, user=request.user)
    if not form.is_valid():
        raise ValidationError(form.errors)
    try:
        k = min(max(int(request.query_params.get("k", 5)), 1), MAX_K)
    except ValueError:
        raise ValidationError({"k": ["k must be a whole number."]}) from None
    query = form.cleaned_data["q"]
    results = Chunk.objects.for_user(request.user).search(query, k=k, **form.search_filters())
    return Response({"query": query, "results": SearchResultSerializer(results, many=True).data})


class DatasetVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = DatasetVersion
        fields = [
            "id",
            "version",
            "kind",
            "instruct_dataset",
            "sha256",
            "train_count",
            "test_count",
            "document_count",
            "lineage",
            "created_at",
        ]
        extra_kwargs = {"instruct_dataset": {"help_text": "Preference datasets: the instruct dataset built from."}}


@extend_schema_view(
    list=extend_schema(parameters=[OpenApiParameter("kind", str, enum=[k.value for k in DatasetKind])]),
)
class DatasetVersionViewSet(viewsets.ReadOnlyModelViewSet):
    """Your versioned datasets (immutable, content-hashed): instruct, and preference (DPO) pairs
    built from an instruct version (`{id}/preference/`, training/api.py). `?kind=` lists one kind."""

    serializer_class = DatasetVersionSerializer

    def get_queryset(self):
        datasets = DatasetVersion.objects.for_user(self.request.user)
        kind = self.request.query_params.get("kind")
        if self.action == "list" and kind:
            if kind not in DatasetKind.values:
                raise ValidationError({"kind": [f"kind must be one of: {', '.join(DatasetKind.values)}."]})
            datasets = datasets.filter(kind=kind)
        return datasets
