"""Multi-step writes of the feature pipeline, shared by tasks, views and commands."""

import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Max

from ingestion.models import Document

from . import embeddings
from .chunking import chunk_document
from .cleaning import clean_text
from .datasets import build_records, serialise
from .models import Chunk, CleanDocument, DatasetVersion, FeatureRun


def do_queue_feature_run(owner_id: int, document_ids: list[int]) -> FeatureRun:
    from .tasks import run_features

    run = FeatureRun.objects.create(owner_id=owner_id, document_ids=sorted(set(document_ids)))
    transaction.on_commit(lambda: run_features.delay(run.pk))
    return run


def do_build_features(document: Document) -> int:
    """Clean, chunk and embed one document; return the number of chunks written.

    Idempotent: a document whose raw text and embedding model have not changed is
    skipped. Embedding happens before the transaction, and old chunks are replaced
    in one transaction, so a failure leaves the previous chunks searchable.
    """
    model_id = embeddings.model_id()
    if document.gone_at is not None:
        return 0  # gone from its source: the twin no longer learns from it
    existing = CleanDocument.objects.filter(document=document).first()
    if (
        existing
        and existing.raw_hash == document.content_hash
        and existing.chunks.filter(embedding_model=model_id).exists()
    ):
        return 0
    text = clean_text(document.raw_text, category=document.category)
    pieces = chunk_document(
        text,
        embeddings.token_offsets(text),
        category=document.category,
        max_tokens=embeddings.max_tokens(),
        path=document.url.removeprefix("upload://"),
    )
    vectors = embeddings.embed([piece.text for piece in pieces])
    with transaction.atomic():
        # Locked, so a document marked gone meanwhile waits for this to commit and then has
        # its features dropped (do_drop_gone_features), never the other way round.
        if not Document.objects.select_for_update().filter(pk=document.pk, gone_at__isnull=True).exists():
            return 0  # deleted, or gone from its source, while we were embedding
        clean_doc, _ = CleanDocument.objects.update_or_create(
            document=document,
            defaults={
                "owner_id": document.owner_id,
                "category": document.category,
                "title": document.title,
                "text": text,
                "raw_hash": document.content_hash,
            },
        )
        clean_doc.chunks.all().delete()
        Chunk.objects.bulk_create(
            Chunk(
                owner_id=document.owner_id,
                clean_document=clean_doc,
                index=i,
                text=piece.text,
                token_count=piece.token_count,
                metadata=piece.metadata,
                embedding=vector,
                embedding_model=model_id,
            )
            for i, (piece, vector) in enumerate(zip(pieces, vectors, strict=True))
        )
    return len(pieces)


def do_drop_gone_features(owner_id: int, document_ids: list[int]) -> int:
    """Documents gone from their source: their cleaned text and chunks go (the document row
    stays, marked gone, and is rebuilt if it comes back), so search and chat stop citing
    them, and a feature run rebuilds the dataset without them. Returns the documents dropped."""
    dropped = CleanDocument.objects.filter(
        owner_id=owner_id, document_id__in=document_ids, document__gone_at__isnull=False
    )
    _, deleted = dropped.delete()
    count = deleted.get(CleanDocument._meta.label, 0)
    if count:
        do_queue_feature_run(owner_id, [])
    return count


def do_reembed_stale(owner=None, progress=None) -> tuple[int, int]:
    """Re-embed every document whose chunks were embedded by another model than the current one
    (a new TWIN_EMBEDDING_MODEL, or an int8 export); returns (documents, chunks written)."""
    current = embeddings.model_id()
    stale = Chunk.objects.exclude(embedding_model=current)
    if owner is not None:
        stale = stale.for_user(owner)
    document_ids = sorted(set(stale.values_list("clean_document__document_id", flat=True)))
    written = 0
    for i, document in enumerate(Document.objects.filter(pk__in=document_ids).order_by("pk")):
        if progress:
            progress(i, len(document_ids), document)
        written += do_build_features(document)
    return len(document_ids), written


def do_build_dataset_version(owner) -> tuple[DatasetVersion | None, bool]:
    """Build the owner's instruct dataset; a new version only when its content changed."""
    documents = list(
        CleanDocument.objects.for_user(owner)
        .filter(document__gone_at__isnull=True)
        .exclude(text="")
        .order_by("document_id")
        .values_list("document_id", "title", "text", "raw_hash")
    )
    records = build_records([(doc_id, title, text) for doc_id, title, text, _ in documents])
    if not records:
        return None, False
    body, sha = serialise(records)
    with transaction.atomic():
        get_user_model().objects.select_for_update().get(pk=owner.pk)  # one version number at a time
        existing = DatasetVersion.objects.for_user(owner).filter(kind="instruct", sha256=sha).first()
        if existing:
            return existing, False
        version = (DatasetVersion.objects.for_user(owner).aggregate(v=Max("version"))["v"] or 0) + 1
        relative = f"datasets/{owner.pk}/instruct-v{version}-{sha[:12]}.jsonl"
        _write_atomically(settings.TWIN_DATA_DIR / relative, body)
        dataset = DatasetVersion.objects.create(
            owner=owner,
            version=version,
            path=relative,
            sha256=sha,
            train_count=sum(r["split"] == "train" for r in records),
            test_count=sum(r["split"] == "test" for r in records),
            document_count=len(documents),
            lineage={
                "documents": [{"id": doc_id, "raw_hash": raw_hash} for doc_id, _, _, raw_hash in documents],
                "builder": "verbatim-extracts-v1",
            },
        )
    return dataset, True


def _write_atomically(path, body: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(body)
    os.replace(tmp, path)
