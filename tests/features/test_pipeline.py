"""The feature pipeline end to end (eager): document -> clean -> chunks in pgvector -> dataset."""

import numpy as np
import pytest
from django.conf import settings

from features import embeddings
from features.actions import do_build_dataset_version, do_build_features
from features.datasets import read_records
from features.models import Chunk, CleanDocument, DatasetVersion, FeatureRun
from ingestion.actions import do_mark_gone
from ingestion.models import Document
from tests.conftest import add_markdown_source

pytestmark = pytest.mark.django_db


def test_an_upload_becomes_embedded_chunks_and_a_dataset(owner_source, owner):
    document = Document.objects.get(source=owner_source)
    clean = CleanDocument.objects.get(document=document)
    chunks = list(Chunk.objects.filter(clean_document=clean))

    assert "Keeping bees on a city roof" in clean.text
    assert "\n\n" in clean.text  # paragraphs survive cleaning
    assert chunks and all(len(chunk.embedding) == settings.TWIN_EMBEDDING_DIM for chunk in chunks)
    assert all(chunk.owner_id == owner.pk and chunk.token_count <= 256 for chunk in chunks)
    run = FeatureRun.objects.get(owner=owner)
    assert run.status == "succeeded" and run.progress == 100 and run.chunks_written == len(chunks)

    dataset = DatasetVersion.objects.get(owner=owner)
    assert run.dataset_version == dataset
    records = read_records(dataset.file_path)
    assert len(records) == dataset.train_count + dataset.test_count > 0
    words = " ".join(clean.text.split())  # grounded answers are sentences with hard wraps joined
    assert all(" ".join(record["answer"].split()) in words for record in records)  # the author's own words


def test_rebuilding_unchanged_features_writes_nothing(owner_source):
    document = Document.objects.get(source=owner_source)
    chunk_ids = set(Chunk.objects.values_list("pk", flat=True))

    assert do_build_features(document) == 0
    assert set(Chunk.objects.values_list("pk", flat=True)) == chunk_ids


def test_changed_text_replaces_the_chunks(owner_source):
    document = Document.objects.get(source=owner_source)
    document.raw_text = "# Bees\n\nEntirely new text about swarming in May and catching the swarm in a box."
    document.content_hash = "changed"
    document.save()

    written = do_build_features(document)

    texts = list(Chunk.objects.filter(clean_document__document=document).values_list("text", flat=True))
    assert written == len(texts) == 1 and "swarming in May" in texts[0]


def test_a_document_gone_from_its_source_loses_its_features_and_is_not_rebuilt(owner_source, owner):
    document = Document.objects.get(source=owner_source)

    assert do_mark_gone(owner_source, [document.url]) == 1

    document.refresh_from_db()
    assert not CleanDocument.objects.filter(document=document).exists()
    assert not Chunk.objects.filter(owner=owner).exists()
    assert do_build_features(document) == 0  # a feature run queued before it went builds nothing
    assert not CleanDocument.objects.filter(document=document).exists()
    assert do_build_dataset_version(owner) == (None, False)  # nothing left to learn from


def test_a_dataset_version_is_only_added_when_content_changes(owner_source, owner):
    first, created = do_build_dataset_version(owner)
    assert not created and first.version == 1  # the pipeline already built v1 from the same documents

    add_markdown_source(owner, "more.md", "# More bees\n\n" + "Varroa mites need counting every month. " * 20)
    latest = DatasetVersion.objects.filter(owner=owner).first()
    assert latest.version == 2 and latest.sha256 != first.sha256
    assert latest.lineage["documents"] and latest.document_count == 2


def test_embeddings_are_unit_length():
    vector = embeddings.embed_query("bees on a roof")
    assert vector.shape == (settings.TWIN_EMBEDDING_DIM,)
    assert abs(float((vector**2).sum()) - 1.0) < 1e-4


def test_a_burst_of_uploads_builds_one_dataset_version(owner, monkeypatch):
    from features.tasks import run_features

    queued = []
    monkeypatch.setattr("features.tasks.run_features.delay", queued.append)  # the worker is busy
    add_markdown_source(owner, "one.md", "# One\n\n" + "Bees dance to tell the hive where flowers are. " * 10)
    add_markdown_source(owner, "two.md", "# Two\n\n" + "Smoke calms the bees before the hive is opened. " * 10)
    first, second = FeatureRun.objects.filter(owner=owner).order_by("pk")

    run_features(queued[0])
    first.refresh_from_db()
    assert first.status == "succeeded" and "built by a later run" in first.message
    assert not DatasetVersion.objects.filter(owner=owner).exists()

    run_features(queued[1])
    second.refresh_from_db()
    assert DatasetVersion.objects.get(owner=owner) == second.dataset_version
    assert second.dataset_version.document_count == 2


def test_a_repeated_query_is_embedded_once_and_shared_read_only():
    first = embeddings.embed_query("how heavy is a hive in march")
    again = embeddings.embed_query("how heavy is a hive in march")
    assert again is first  # not embedded a second time
    assert not first.flags.writeable  # no caller can change what the next one gets
    assert np.allclose(first, embeddings.embed(["how heavy is a hive in march"])[0])
