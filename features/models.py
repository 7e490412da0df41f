"""The logical feature store: cleaned documents, embedded chunks, versioned datasets."""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.db.models import F, Func, TextField
from django.utils import timezone
from pgvector.django import HnswIndex, VectorField

from core.jobs import Job, JobStatus
from core.ownership import OwnedQuerySet
from ingestion.models import Category, Document, Source

from . import search as hybrid
from .search import OWNER_LEXEMES, TEXT_SEARCH_CONFIG


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
    """Chunks, and the one retrieval function: `Chunk.objects.for_user(user).search(...)`,
    also on a narrower queryset: `Chunk.objects.for_user(user).filter(...).search(...)`."""

    _search_owner = None  # set by for_user; search() refuses a queryset that did not come from it
    _owner_where = None  # for_user's own condition: anything more is a narrower queryset

    def for_user(self, user):
        if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "pk", None):
            return self.none()
        scoped = super().for_user(user)
        # Filters from before for_user count as narrowing: no plain condition to compare with.
        scoped._search_owner, scoped._owner_where = user, None if self.query.where else scoped.query.where.clone()
        return scoped

    def _clone(self):
        # Every chained call (filter, exclude, all, order_by...) clones: the owner goes along.
        clone = super()._clone()
        clone._search_owner, clone._owner_where = self._search_owner, self._owner_where
        return clone

    def _narrowed_to(self) -> tuple[str, tuple] | None:
        """This queryset's own filters beyond the owner's, as a query of chunk ids; None when it has
        none, so that plain retrieval keeps its statement (and plan) unchanged."""
        if self._owner_where is not None and self.query.where == self._owner_where:
            return None
        ids = self.values("pk").query
        ids.clear_ordering(force=False)  # Meta.ordering would join the documents for nothing
        return ids.get_compiler(using=self.db).as_sql()

    def search(
        self, query, k: int = 5, *, category=None, source=None, since=None, until=None, embedding=None
    ) -> list["Chunk"]:
        """The owner's k best chunks for a question, best first, each with `.match` saying why.

        `query` is the question's text (embedded here unless `embedding` is given, and
        matched word by word with full-text search) or an embedding alone (vector
        search only). Filters: `category` ("article", "post", "code"), `source` (a
        source id), `since` / `until` (the document's date; a bare date covers the day).
        Near-duplicates are dropped by MMR. The queryset's own filters apply too (only its
        chunks are candidates). Raises ValueError without for_user().
        """
        from .embeddings import embed_query

        owner = self._search_owner
        if owner is None:
            raise ValueError("retrieval needs an owner: use Chunk.objects.for_user(user).search(...)")
        if self.query.is_empty():  # .none(), or a filter that can match nothing
            return []
        text = query if isinstance(query, str) else None
        if embedding is None:
            embedding = embed_query(text) if text is not None else query
        filters = hybrid.Filters(
            category=category or None,
            source=source,
            since=hybrid.as_datetime(since),
            until=hybrid.as_datetime(until, end_of_day=True),
            within=self._narrowed_to(),
        )
        candidates = hybrid.ranked_candidates(owner.pk, text, embedding, k, filters)
        return hybrid.as_chunks(hybrid.mmr(candidates, k), (Chunk, CleanDocument, Document, Source))

    def audience(self):
        """The chunks of the sources the owner lets the twin's audience draw on (Source.audience)."""
        return self.filter(clean_document__document__source__audience=True)

    def lead_ins(self, chunks) -> dict[int, str]:
        """For each chunk that opens mid-passage with a pronoun ("He pointed out…"): the last
        sentence of the chunk before it, where the person is named. One query, none if no chunk
        needs it."""
        from .grounding.evidence import note_sentences, opens_with_pronoun

        wanted = {}  # (document, index of the chunk before) -> (chunk pk, its opening sentence)
        for chunk in chunks:
            sentences = note_sentences(chunk.text)
            if chunk.index and sentences and opens_with_pronoun(sentences[0]):
                wanted[(chunk.clean_document_id, chunk.index - 1)] = (chunk.pk, sentences[0])
        if not wanted:
            return {}
        positions = models.Q()
        for document_id, index in wanted:
            positions |= models.Q(clean_document_id=document_id, index=index)
        found = {}
        for before in self.filter(positions).only("clean_document_id", "index", "text"):
            pk, opening = wanted[(before.clean_document_id, before.index)]
            sentences = note_sentences(before.text)
            # Chunks overlap: the opening sentence may end the chunk before too.
            cut = sentences.index(opening) if opening in sentences else len(sentences)
            if cut:
                found[pk] = sentences[cut - 1]
        return found


class Chunk(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chunks")
    clean_document = models.ForeignKey(CleanDocument, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField(help_text="Position in the document.")
    text = models.TextField()
    token_count = models.PositiveIntegerField()
    embedding = VectorField(dimensions=settings.TWIN_EMBEDDING_DIM)
    embedding_model = models.CharField(max_length=200)
    metadata = models.JSONField(
        default=dict, blank=True, help_text="Where in the document: heading path (articles), path and symbol (code)."
    )
    # Full-text side of hybrid search, kept in step with `text` by PostgreSQL itself.
    search_vector = models.GeneratedField(
        expression=SearchVector("text", config=TEXT_SEARCH_CONFIG),
        output_field=SearchVectorField(),
        db_persist=True,
    )

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
            ),
            # One key per (owner, word): a word's posting list is this owner's chunks with it, not
            # every tenant's (which the (owner, tsvector) index it replaces intersected with the
            # owner's, at a cost that grew with the word's use across all tenants). The function
            # is created by migration 0010; search.py matches the same expression.
            GinIndex(
                Func(F("owner"), F("search_vector"), function=OWNER_LEXEMES, output_field=ArrayField(TextField())),
                name="chunk_owner_lexeme_gin",
            ),
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


class LexemeCount(models.Model):
    """How many of an owner's chunks contain a word (a stemmed lexeme of Chunk.search_vector).

    Hybrid search weighs each query word by its rarity among the owner's chunks. Counting that
    per search went through the GIN index and the chunk rows (up to DF_CAP of them per word,
    for nothing when the word is common): most of a search's time for a large owner. Kept, with
    ChunkCount, by PostgreSQL triggers on features_chunk (migration 0009), so every write path,
    bulk inserts, COPY and cascading deletes included, keeps it exact within its own transaction.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )  # the unique (owner, lexeme) index serves owner lookups
    lexeme = models.TextField()
    chunks = models.PositiveIntegerField()

    objects = OwnedQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "lexeme"], name="unique_owner_lexeme")]

    def __str__(self):
        return f"{self.lexeme}: {self.chunks}"


class ChunkCount(models.Model):
    """How many chunks an owner has: search's choice of plan (exact scan or HNSW) and the IDF's
    N, without counting the owner's index entries on every search (3,600 of them for a large
    owner at 100k rows). Kept by the same triggers as LexemeCount."""

    owner = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    chunks = models.PositiveIntegerField()

    objects = OwnedQuerySet.as_manager()

    def __str__(self):
        return str(self.chunks)


class DatasetKind(models.TextChoices):
    INSTRUCT = "instruct", "Instruct"
    PREFERENCE = "preference", "Preference (DPO)"


class DatasetVersionQuerySet(OwnedQuerySet):
    def instruct(self):
        return self.filter(kind=DatasetKind.INSTRUCT)

    def preference(self):
        return self.filter(kind=DatasetKind.PREFERENCE)

    def current(self):
        """The version the latest build confirmed: after a revert (A, B, back to A) that is
        A's version again, reused, not B's higher number."""
        return self.order_by("-current_since", "-pk").first()


class DatasetVersion(models.Model):
    """An immutable, content-hashed dataset built from a user's cleaned documents.

    Two kinds, each numbered on its own: instruct (features/datasets.py) and preference
    (features/preference.py: chosen = the author's passage, rejected = a model's answer),
    the latter built from one instruct version.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dataset_versions")
    version = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=DatasetKind.choices, default=DatasetKind.INSTRUCT)
    instruct_dataset = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="preference_versions",
        help_text="Preference datasets: the instruct version their prompts and chosen answers come from.",
    )
    path = models.CharField(max_length=500, help_text="JSONL file under TWIN_DATA_DIR.")
    sha256 = models.CharField(max_length=64)
    train_count = models.PositiveIntegerField()
    test_count = models.PositiveIntegerField()
    document_count = models.PositiveIntegerField()
    lineage = models.JSONField(default=dict, help_text="Documents (id, content hash) and build parameters.")
    created_at = models.DateTimeField(auto_now_add=True)
    current_since = models.DateTimeField(
        default=timezone.now, help_text="When a build last made this the owner's current version of its kind."
    )

    objects = DatasetVersionQuerySet.as_manager()

    class Meta:
        ordering = ["-version", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "kind", "version"], name="unique_dataset_version"),
            models.UniqueConstraint(fields=["owner", "kind", "sha256"], name="unique_dataset_content"),
        ]

    def __str__(self):
        return f"{self.kind} dataset v{self.version}"

    @property
    def instruct_source(self) -> "DatasetVersion":
        """The instruct dataset behind this one: itself, or the one a preference dataset was built from
        (its held-out documents and questions are what the gate measures on)."""
        return self.instruct_dataset if self.kind == DatasetKind.PREFERENCE and self.instruct_dataset else self

    @property
    def file_path(self):
        return settings.TWIN_DATA_DIR / self.path

    @property
    def sample_count(self) -> int:
        return self.train_count + self.test_count

    @property
    def is_preference(self) -> bool:
        return self.kind == DatasetKind.PREFERENCE


class FeatureRun(Job):
    """Clean, chunk and embed a batch of changed documents, then rebuild the dataset."""

    task_name = "features.tasks.run_features"

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
        later = FeatureRun.objects.for_user(self.owner).filter(status=JobStatus.QUEUED, pk__gt=self.pk)
        return later.exists()


class CorrectionQuerySet(OwnedQuerySet):
    def waiting(self):
        """Corrections no refinement dataset holds yet (made or changed since the last one was built)."""
        return self.filter(dataset_version__isnull=True)


class Correction(models.Model):
    """The owner's text chosen over the twin's, for the same prompt: an edited draft or a revised
    answer, written by chat (features.actions.do_record_correction). A refinement run trains on
    them by DPO (do_build_correction_dataset makes them a preference dataset)."""

    class Origin(models.TextChoices):
        DRAFT = "draft", "Edited draft"
        ANSWER = "answer", "Revised answer"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="corrections")
    origin = models.CharField(max_length=8, choices=Origin.choices)
    origin_id = models.PositiveBigIntegerField(help_text="The draft's or the answer's id (in chat).")
    prompt = models.JSONField(help_text="The chat messages the twin answered, in the mode's prompt template.")
    chosen = models.TextField(help_text="The owner's text.")
    rejected = models.TextField(help_text="The twin's text.")
    dataset_version = models.ForeignKey(
        DatasetVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="corrections"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CorrectionQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at"]
        constraints = [models.UniqueConstraint(fields=["owner", "origin", "origin_id"], name="one_correction_each")]

    def __str__(self):
        return f"{self.get_origin_display()} {self.origin_id}"

    def as_pair(self) -> dict:
        """TRL's conversational preference record, as features/preference.py writes them."""
        instruction = next((m["content"] for m in reversed(self.prompt) if m["role"] == "user"), "")
        return {
            "prompt": self.prompt,
            "chosen": [{"role": "assistant", "content": self.chosen}],
            "rejected": [{"role": "assistant", "content": self.rejected}],
            "split": "train",
            "instruction": instruction,
            "document_id": None,
            "title": self.get_origin_display(),
        }
