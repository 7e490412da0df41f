"""Ingestion throughput: the whole feature pipeline, on both embedding backends, against bare PyTorch encode.

App: `features.actions.do_build_features` on one document (clean, chunk from one
tokenization, embed, replace the document's Chunk rows in one transaction), once
with the ONNX Runtime backend and once with the PyTorch (sentence-transformers)
backend, each on its own copy of the document.
Baseline: `SentenceTransformer.encode` (PyTorch) of the same document's chunk
texts in one call, batch 32.

The three are measured per document in rotating order, so all see the same
background load; the headline ratios are medians of the per-document ratios
(pipeline time / encode time; below 1: faster than bare PyTorch). The pipeline's
time is also split into the one tokenization, embedding and the rest (cleaning,
SQL), by wrapping the `features.embeddings` functions it calls.
"""

import random
import time
from contextlib import contextmanager

from . import common
from .common import log, median, percentile, row, timed

BATCH_SIZE = 32


@contextmanager
def instrumented(stats: dict):
    """Count and time the tokenizer and embedding calls made through features.embeddings."""
    from features import embeddings

    originals = {"token_offsets": embeddings.token_offsets, "embed": embeddings.embed}

    def wrap(name):
        original = originals[name]

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                stats[f"{name}_seconds"] += time.perf_counter() - start
                stats[f"{name}_calls"] += 1

        return wrapper

    for name in originals:
        stats.setdefault(f"{name}_seconds", 0.0)
        stats.setdefault(f"{name}_calls", 0)
        setattr(embeddings, name, wrap(name))
    try:
        yield stats
    finally:
        for name, original in originals.items():
            setattr(embeddings, name, original)


@contextmanager
def backend(models: dict, name: str):
    """The pipeline's embeddings on one backend's already-loaded model."""
    from features import embeddings

    original = embeddings.get_model
    embeddings.get_model = lambda: models[name]
    try:
        yield
    finally:
        embeddings.get_model = original


def make_documents(owner, count: int, words: int, seed: int):
    from ingestion.models import Document, Source, content_hash

    rng = random.Random(seed)
    sentences = common.corpus_sentences()
    source = Source.objects.create(owner=owner, kind=Source.Kind.UPLOAD, name="bench corpus")
    documents = []
    for i in range(count):
        text = common.synthetic_document(rng, sentences, f"Bench document {i}", words)
        documents.append(
            Document(
                owner=owner,
                source=source,
                title=f"Bench document {i}",
                url=f"upload://bench/{i}",
                raw_text=text,
                content_hash=content_hash(text),
            )
        )
    return Document.objects.bulk_create(documents)


def expected_chunks(document) -> list[str]:
    """The chunk texts the pipeline will write, computed outside the timed region."""
    from features import embeddings
    from features.chunking import chunk_document
    from features.cleaning import clean_text

    text = clean_text(document.raw_text, category=document.category)
    pieces = chunk_document(
        text, embeddings.token_offsets(text), category=document.category, max_tokens=embeddings.max_tokens()
    )
    return [piece.text for piece in pieces]


def run(quick: bool) -> dict:
    common.setup_django()
    from sentence_transformers import SentenceTransformer

    from features import embeddings
    from features.actions import do_build_features
    from features.models import Chunk

    documents_count, words = (16, 700) if quick else (80, 700)
    params = {"documents": documents_count, "words_per_doc": words, "batch_size": BATCH_SIZE}

    with common.scratch_database():
        with timed() as t:
            manifest = embeddings.export_onnx(log=log)
        log(f"ONNX export ready in {t.seconds:.1f} s (variant {manifest['variant']})")
        from features.onnx_embeddings import OnnxEncoder

        models = {
            "onnx": OnnxEncoder(embeddings.onnx_dir(), manifest["variant"]),
            "torch": SentenceTransformer(embeddings.embedding_model_path(), device="cpu"),
        }
        torch_model = models["torch"]
        owners = common.make_owners(2)
        copies = {
            name: make_documents(owner, 1 + documents_count, words, seed=7)
            for name, owner in zip(models, owners, strict=True)
        }
        for name in models:  # warms the tokenizer, the models and the database connection
            with backend(models, name):
                do_build_features(copies[name][0])
        torch_model.encode(["warm-up sentence"] * BATCH_SIZE, batch_size=BATCH_SIZE)

        def encode(texts):
            with timed() as t:
                torch_model.encode(texts, batch_size=BATCH_SIZE, normalize_embeddings=True, convert_to_numpy=True)
            return t.seconds

        stats = {name: {} for name in models}

        def pipeline(name, document):
            with backend(models, name), instrumented(stats[name]), timed() as t:
                written = do_build_features(document)
            return t.seconds, written

        rows_out = []
        for i in range(documents_count):
            docs = {name: copies[name][1 + i] for name in models}
            texts = expected_chunks(docs["torch"])
            steps = [("encode", None), ("onnx", docs["onnx"]), ("torch", docs["torch"])]
            shift = i % len(steps)
            timings = {}
            for name, document in steps[shift:] + steps[:shift]:  # rotate who goes first
                if name == "encode":
                    timings["encode_s"] = encode(texts)
                else:
                    timings[f"{name}_s"], written = pipeline(name, document)
                    stored = list(
                        Chunk.objects.filter(clean_document__document=document).values_list("text", flat=True)
                    )
                    assert written == len(texts) and stored == texts, f"{name}: chunks differ from expected"
            rows_out.append({"chunks": len(texts), **timings})
            if (i + 1) % 8 == 0 or i + 1 == documents_count:
                done = rows_out[: i + 1]
                n = sum(p["chunks"] for p in done)
                log(
                    f"{i + 1}/{documents_count} documents: "
                    + ", ".join(f"{key[:-2]} {n / sum(p[key] for p in done):.1f} chunks/s" for key in timings)
                )
        token_counts = list(Chunk.objects.filter(owner=owners[0]).values_list("token_count", flat=True))

    chunks = sum(p["chunks"] for p in rows_out)
    encode_s = sum(p["encode_s"] for p in rows_out)
    rows = []
    for name, label in (("onnx", "ONNX Runtime"), ("torch", "PyTorch")):
        total = sum(p[f"{name}_s"] for p in rows_out)
        ratios = [p[f"{name}_s"] / p["encode_s"] for p in rows_out]
        rows.append(
            row(f"pipeline, {label} (totals)", chunks / total, chunks / encode_s, "chunks/s", lower_is_better=False)
        )
        rows.append(
            row(
                f"pipeline, {label} (median pair)",
                median([1000 * p[f"{name}_s"] / p["chunks"] for p in rows_out]),
                median([1000 * p["encode_s"] / p["chunks"] for p in rows_out]),
                "ms/chunk",
                ratio=median(ratios),
                note=f"median of {len(rows_out)} per-document ratios; speed-up {1 / median(ratios):.2f}x",
            )
        )
    notes = [
        f"{chunks} chunks from {len(rows_out)} documents of about {words} words (each backend on its own copy); "
        f"median {median(token_counts):.0f} tokens per chunk (incl. CLS/SEP). Baseline: bare PyTorch encode.",
        f"ONNX variant {manifest['variant']}: cosine to PyTorch on the demo writing fp32 min "
        f"{manifest['fp32_min_cosine']:.4f}, int8 min {manifest['int8_min_cosine']:.4f} (int8 is used only at >= "
        f"{manifest['min_cosine_required']}).",
    ]
    for name in models:
        s_ = stats[name]
        total = sum(p[f"{name}_s"] for p in rows_out)
        notes.append(
            f"{name} pipeline: embedding {s_['embed_seconds']:.1f} s, tokenization for chunking "
            f"{s_['token_offsets_seconds']:.2f} s ({s_['token_offsets_calls']} calls, one per document), rest "
            f"(cleaning, SQL) {total - s_['embed_seconds'] - s_['token_offsets_seconds']:.2f} s of {total:.1f} s; "
            f"per-document ratio p10 {percentile([p[f'{name}_s'] / p['encode_s'] for p in rows_out], 10):.2f}, "
            f"p90 {percentile([p[f'{name}_s'] / p['encode_s'] for p in rows_out], 90):.2f}."
        )
    return {
        "name": "ingest",
        "description": __doc__.strip().splitlines()[0],
        "params": params,
        "rows": rows,
        "notes": notes,
        "details": {"documents": rows_out, "instrumentation": stats, "manifest": manifest},
    }
