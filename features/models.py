"""The logical feature store: cleaned documents, embedded chunks, versioned datasets."""

from django.conf import settings
from django.db import connection, models, transaction
from pgvector.django import CosineDistance, HnswIndex, VectorField

from ingestion.models import Category, Document
from twinsite.jobs import Job, JobStatus
from twinsite.ownership import OwnedQuerySet


class CleanDocument(models.Model):
    """A document's cleaned text: what fine-tuning reads and chunks are cut from."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="clean_documents")
    document = models.OneToOneField(Document, on_delete=models.CASCADE, related_name="clean")
    category = models.CharField(max_length=16, choices=Category.choices)
    title = models.CharField(max_length=500)
    text = models.TextField()
    raw_hash = models.CharField(max_length=64, help_text="Content hash of the raw text it was cleaned from.")
    cleaned_at = models.DateTimeField(auto_now=True)

    objects = OwnedQuerySet.as_manager()

    def __str__(self):
        return self.title


class ChunkQuerySet(OwnedQuerySet):
    def search(self, owner, embedding, k: int = 5) -> list["Chunk"]:
        """The owner's k nearest chunks by cosine distance; the owner is required.

        Two short queries: the nearest k on the chunk table alone (small owners: the
        owner index and an exact sort; large ones: HNSW with iterative scan, so the
        owner filter still leaves k rows), then those k rows with their documents.
        One joined query would scan every tenant's documents before its LIMIT.
        """
        if owner is None or not getattr(owner, "pk", None):
            raise ValueError("retrieval needs an owner")
        distance = CosineDistance("embedding", list(map(float, embedding)))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            nearest = dict(
                self.filter(owner=owner)
                .annotate(distance=distance)
                .order_by("distance")
                .values_list("pk", "distance")[:k]
            )
        rows = list(
            self.model.objects.filter(pk__in=nearest)
            .select_related("clean_document__document")
            .defer(*WIDE_COLUMNS)
            .order_by()
        )
        for row in rows:
            row.distance = nearest[row.pk]
        return sorted(rows, key=lambda chunk: chunk.distance)  # relaxed order may swap neighbours


# Never read by callers of search(): the vector and whole documents (up to 500k characters).
WIDE_COLUMNS = ("embedding", "clean_document__text", "clean_document__document__raw_text")


class Chunk(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chunks")
    clean_document = models.ForeignKey(CleanDocument, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField(help_text="Position in the document.")
    text = models.TextField()
    token_count = models.PositiveIntegerField()
    embedding = VectorField(dimensions=settings.TWIN_EMBEDDING_DIM)
    embedding_model = models.CharField(max_length=200)

    objects = ChunkQuerySet.as_manager()

    class Meta:
        ordering = ["clean_document", "index"]
        constraints = [models.UniqueConstraint(fields=["clean_document", "index"], name="unique_chunk_position")]
        indexes = [
            HnswIndex(
                name="chunk_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            )
        ]

    def __str__(self):
        return f"{self.clean_document} #{self.index}"

    @property
    def document(self):
        return self.clean_document.document

    @property
    def score(self) -> float | None:
        distance = getattr(self, "distance", None)
        return None if distance is None else 1.0 - distance


class DatasetVersion(models.Model):
    """An immutable, content-hashed instruct dataset built from a user's cleaned documents."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dataset_versions")
    version = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, default="instruct")
    path = models.CharField(max_length=500, help_text="JSONL file under TWIN_DATA_DIR.")
    sha256 = models.CharField(max_length=64)
    train_count = models.PositiveIntegerField()
    test_count = models.PositiveIntegerField()
    document_count = models.PositiveIntegerField()
    lineage = models.JSONField(default=dict, help_text="Documents (id, content hash) and build parameters.")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "version"], name="unique_dataset_version"),
            models.UniqueConstraint(fields=["owner", "kind", "sha256"], name="unique_dataset_content"),
        ]

    def __str__(self):
        return f"{self.kind} dataset v{self.version}"

    @property
    def file_path(self):
        return settings.TWIN_DATA_DIR / self.path

    @property
    def sample_count(self) -> int:
        return self.train_count + self.test_count


class FeatureRun(Job):
    """Clean, chunk and embed a batch of changed documents, then rebuild the dataset."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="feature_runs")
    document_ids = models.JSONField(default=list)
    chunks_written = models.PositiveIntegerField(default=0)
    dataset_version = models.ForeignKey(DatasetVersion, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta(Job.Meta):
        pass

    def __str__(self):
        return f"Feature run {self.pk} ({self.status})"

    def later_run_queued(self) -> bool:
        """Another run of this owner waits in the queue and will rebuild the dataset anyway."""
        later = FeatureRun.objects.filter(owner_id=self.owner_id, status=JobStatus.QUEUED, pk__gt=self.pk)
        return later.exists()
