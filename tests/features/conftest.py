"""Fixtures for feature-store tests: chunks with chosen vectors, written straight to the table."""

import numpy as np
import pytest
from django.conf import settings

from features.models import Chunk, CleanDocument
from ingestion.models import Document, Source


def unit_vectors(count: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, settings.TWIN_EMBEDDING_DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def store_chunks(owner, vectors: np.ndarray, name: str = "vectors") -> list[Chunk]:
    """One document of len(vectors) chunks for owner, without running the embedding model."""
    source = Source.objects.create(owner=owner, kind=Source.Kind.UPLOAD, name=name)
    document = Document.objects.create(
        owner=owner, source=source, title=name, url=f"upload://{name}", raw_text=name, content_hash=f"{owner.pk}-{name}"
    )
    clean = CleanDocument.objects.create(owner=owner, document=document, category="article", title=name, text=name)
    return write_chunks(clean, [f"{owner.username} chunk {i}" for i in range(len(vectors))], vectors)


def write_chunks(clean: CleanDocument, texts: list[str], vectors: np.ndarray) -> list[Chunk]:
    """Chunks of these texts and vectors into a cleaned document, numbered from 0."""
    return Chunk.objects.bulk_create(
        Chunk(
            owner_id=clean.owner_id,
            clean_document=clean,
            index=i,
            text=text,
            token_count=5,
            embedding=vector,
            embedding_model="test",
        )
        for i, (text, vector) in enumerate(zip(texts, vectors, strict=True))
    )


@pytest.fixture
def chunk_store(db):
    return store_chunks


def store_texts(owner, texts: list[str], name: str = "notes.md", category: str = "article", source=None) -> list[Chunk]:
    """One document whose chunks are `texts`, embedded with the real model (no chunking)."""
    from features import embeddings

    source = source or Source.objects.create(owner=owner, kind=Source.Kind.UPLOAD, name=name, category=category)
    body = "\n\n".join(texts)
    document = Document.objects.create(
        owner=owner,
        source=source,
        category=category,
        title=name,
        url=f"upload://{name}",
        raw_text=body,
        content_hash=f"{owner.pk}-{source.pk}-{name}",
    )
    clean = CleanDocument.objects.create(owner=owner, document=document, category=category, title=name, text=body)
    return Chunk.objects.bulk_create(
        Chunk(
            owner=owner,
            clean_document=clean,
            index=i,
            text=text,
            token_count=embeddings.count_tokens(text),
            embedding=vector,
            embedding_model=embeddings.model_id(),
        )
        for i, (text, vector) in enumerate(zip(texts, embeddings.embed(texts), strict=True))
    )
