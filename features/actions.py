"""Multi-step writes of the feature pipeline, shared by tasks, views and commands."""

import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from ingestion.models import Document

from . import embeddings
from .chunking import chunk_document
from .cleaning import clean_text
from .datasets import build_records, read_records, serialise, with_written_instructions
from .generators import endpoint_generator
from .models import Chunk, CleanDocument, Correction, DatasetKind, DatasetVersion, FeatureRun
from .preference import build_pairs, earlier_answers, preference_prompts, prompt_key


def do_queue_feature_run(owner_id: int, document_ids: list[int]) -> FeatureRun:
    run = FeatureRun.objects.create(owner_id=owner_id, document_ids=sorted(set(document_ids)))
    run.send_when_committed()
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
    dropped = CleanDocument.objects.for_user(get_user_model().objects.get(pk=owner_id)).filter(
        document_id__in=document_ids, document__gone_at__isnull=False
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
    """Build the owner's instruct dataset; a new version only when its content changed.

    With an OpenAI-compatible endpoint configured, it writes the style samples' instructions
    (reusing those of the previous version for unchanged passages); an endpoint failure
    raises GeneratorError before anything is written.
    """
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
    builder = "verbatim-extracts-v1"
    generator = endpoint_generator()
    if generator is not None:
        builder = f"{builder}+instructions-by:{generator.name}"
        previous = DatasetVersion.objects.for_user(owner).instruct().filter(lineage__builder=builder).first()
        known = _readable_records(previous)
        records = with_written_instructions(records, generator.instruction_for, known)
    lineage = {
        "documents": [{"id": doc_id, "raw_hash": raw_hash} for doc_id, _, _, raw_hash in documents],
        "builder": builder,
    }
    return _store_dataset_version(owner, DatasetKind.INSTRUCT, records, len(documents), lineage)


def do_build_preference_version(
    instruct: DatasetVersion, *, messages_for, answer, generator: str, report=None, batch_size: int = 8
) -> tuple[DatasetVersion | None, bool]:
    """Pair the instruct version's passages with `answer`'s replies (features/preference.py).

    messages_for(record) -> the chat messages to ask with (the record's mode's template); answer(list of messages) ->
    replies, in order; generator: what wrote them (lineage, and the key for reusing the
    replies of the previous version by the same generator, so only new prompts cost time);
    report(percent, message, pairs_generated=n): progress, for the job that asked (training's
    PreferenceRun). Nothing is written before every reply is in.
    """
    report = report or (lambda percent, message, **fields: None)
    samples = preference_prompts(read_records(instruct.file_path), settings.TWIN_PREFERENCE_MAX_PAIRS)
    prompts = [messages_for(sample) for sample in samples]
    previous = DatasetVersion.objects.for_user(instruct.owner).preference().filter(lineage__generator=generator)
    known = earlier_answers(_readable_records(previous.first()))
    answers = [known.get(prompt_key(messages)) for messages in prompts]
    missing = [i for i, reply in enumerate(answers) if reply is None]
    for done in range(0, len(missing), batch_size):
        batch = missing[done : done + batch_size]
        report(
            95 * done / len(missing),
            f"Answering prompt {done + 1}-{done + len(batch)} of {len(missing)} ({len(samples) - len(missing)} reused)",
            pairs_generated=done,
        )
        for i, reply in zip(batch, answer([prompts[i] for i in batch]), strict=True):
            answers[i] = reply
    report(97, "Writing the preference dataset", pairs_generated=len(missing))
    pairs = build_pairs(samples, prompts, answers)
    if not pairs:
        return None, False
    lineage = {
        "documents": instruct.lineage.get("documents", []),
        "instruct_dataset": {"id": instruct.pk, "version": instruct.version, "sha256": instruct.sha256},
        "generator": generator,
        "reused_answers": len(samples) - len(missing),
        "builder": "author-vs-model-v1",
    }
    return _store_dataset_version(
        instruct.owner, DatasetKind.PREFERENCE, pairs, instruct.document_count, lineage, instruct_dataset=instruct
    )


def _readable_records(dataset: DatasetVersion | None) -> list[dict]:
    """A previous version's records, to reuse what a model wrote for them (none if its file is gone)."""
    if dataset is None:
        return []
    try:
        return read_records(dataset.file_path)
    except FileNotFoundError:
        return []


def _store_dataset_version(
    owner, kind: str, records: list[dict], document_count: int, lineage: dict, instruct_dataset=None
) -> tuple[DatasetVersion, bool]:
    """Write the records as the next version of this kind, or return the version with the same content."""
    body, sha = serialise(records)
    with transaction.atomic():
        get_user_model().objects.select_for_update().get(pk=owner.pk)  # one version number at a time
        same_kind = DatasetVersion.objects.for_user(owner).filter(kind=kind)
        existing = same_kind.filter(sha256=sha).first()
        if existing:
            if same_kind.current() != existing:  # back to earlier content: that version is current again
                existing.current_since = timezone.now()
                existing.save(update_fields=["current_since"])
            return existing, False
        version = (same_kind.aggregate(v=Max("version"))["v"] or 0) + 1
        relative = f"datasets/{owner.pk}/{kind}-v{version}-{sha[:12]}.jsonl"
        _write_atomically(settings.TWIN_DATA_DIR / relative, body)
        dataset = DatasetVersion.objects.create(
            owner=owner,
            version=version,
            kind=kind,
            instruct_dataset=instruct_dataset,
            path=relative,
            sha256=sha,
            train_count=sum(r["split"] == "train" for r in records),
            test_count=sum(r["split"] == "test" for r in records),
            document_count=document_count,
            lineage=lineage,
        )
    return dataset, True


def _write_atomically(path, body: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(body)
    os.replace(tmp, path)


def do_record_correction(owner, prompt: list[dict], *, chosen: str, rejected: str, origin: str, origin_id: int):
    """Keep the owner's text over the twin's as a preference pair; a later edit of the same draft or
    answer replaces its pair (and waits for the next refinement again)."""
    correction, _ = Correction.objects.update_or_create(
        owner=owner,
        origin=origin,
        origin_id=origin_id,
        defaults={"prompt": prompt, "chosen": chosen, "rejected": rejected, "dataset_version": None},
    )
    return correction


def do_build_correction_dataset(owner) -> DatasetVersion:
    """Every correction of the owner as a preference dataset (the next refinement trains on all of
    them: each is a standing preference), tied to the current instruct dataset, whose held-out
    documents the gate measures on. ValueError when there is nothing to train on."""
    corrections = list(Correction.objects.for_user(owner).order_by("pk"))
    instruct = DatasetVersion.objects.for_user(owner).instruct().current()
    if not corrections:
        raise ValueError("There are no corrections yet: edit a draft or revise an answer first.")
    if instruct is None:
        raise ValueError("There is no dataset yet: add a source and wait for it to be processed.")
    lineage = {
        "instruct_dataset": {"id": instruct.pk, "version": instruct.version, "sha256": instruct.sha256},
        "corrections": [c.pk for c in corrections],
        "builder": "owner-corrections-v1",
    }
    pairs = [c.as_pair() for c in corrections]
    dataset, _ = _store_dataset_version(
        owner, DatasetKind.PREFERENCE, pairs, instruct.document_count, lineage, instruct_dataset=instruct
    )
    Correction.objects.for_user(owner).filter(pk__in=[c.pk for c in corrections]).update(dataset_version=dataset)
    return dataset
