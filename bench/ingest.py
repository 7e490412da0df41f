"""Ingestion throughput: the feature pipeline against the bare embedding model.

App: `features.actions.do_build_features` on one document (clean, chunk with
token counting, embed, replace the document's Chunk rows in one transaction).
Baseline: `SentenceTransformer.encode` of the same document's chunk texts in
one call, batch 32, as `embeddings.embed` does.

The two are measured as a pair per document, in alternating order, so both see
the same background load; the headline ratio is the median of the per-document
ratios (pipeline time / encode time). The pipeline's time is also split into
tokenizer calls (chunking, token_count), embedding and the rest (cleaning, SQL),
by wrapping the two `features.embeddings` functions it calls.
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

    originals = {"count_tokens": embeddings.count_tokens, "embed": embeddings.embed}

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
    from features.chunking import chunk_text
    from features.cleaning import clean_text

    text = clean_text(document.raw_text, category=document.category)
    return chunk_text(text, embeddings.count_tokens, max_tokens=embeddings.max_tokens())


def run(quick: bool) -> dict:
    common.setup_django()
    from features import embeddings
    from features.actions import do_build_features
    from features.models import Chunk

    documents_count, words = (16, 700) if quick else (80, 700)
    params = {"documents": documents_count, "words_per_doc": words, "batch_size": BATCH_SIZE}

    with common.scratch_database():
        (owner,) = common.make_owners(1)
        warmup, *documents = make_documents(owner, 1 + documents_count, words, seed=7)

        with timed() as t:
            model = embeddings.get_model()
        log(f"embedding model loaded in {t.seconds:.1f} s")
        do_build_features(warmup)  # warms the tokenizer, the model and the database connection
        model.encode(["warm-up sentence"] * BATCH_SIZE, batch_size=BATCH_SIZE)

        def encode(texts):
            with timed() as t:
                model.encode(texts, batch_size=BATCH_SIZE, normalize_embeddings=True, convert_to_numpy=True)
            return t.seconds

        def pipeline(document):
            with instrumented(stats), timed() as t:
                written = do_build_features(document)
            return t.seconds, written

        stats: dict = {}
        pairs = []
        for i, document in enumerate(documents):
            texts = expected_chunks(document)
            if i % 2 == 0:
                app_s, written = pipeline(document)
                base_s = encode(texts)
            else:
                base_s = encode(texts)
                app_s, written = pipeline(document)
            stored = list(Chunk.objects.filter(clean_document__document=document).values_list("text", flat=True))
            assert written == len(texts) and stored == texts, f"document {document.pk}: chunks differ from expected"
            pairs.append({"chunks": written, "pipeline_s": app_s, "encode_s": base_s})
            if (i + 1) % 10 == 0 or i + 1 == len(documents):
                done = pairs[: i + 1]
                log(
                    f"{i + 1}/{len(documents)} documents: pipeline "
                    f"{sum(p['chunks'] for p in done) / sum(p['pipeline_s'] for p in done):.1f} chunks/s, encode "
                    f"{sum(p['chunks'] for p in done) / sum(p['encode_s'] for p in done):.1f} chunks/s"
                )

        token_counts = list(Chunk.objects.filter(owner=owner).values_list("token_count", flat=True))

    chunks = sum(p["chunks"] for p in pairs)
    pipeline_s = sum(p["pipeline_s"] for p in pairs)
    encode_s = sum(p["encode_s"] for p in pairs)
    other_s = pipeline_s - stats["count_tokens_seconds"] - stats["embed_seconds"]
    ratios = [p["pipeline_s"] / p["encode_s"] for p in pairs]
    per_chunk_app = [1000 * p["pipeline_s"] / p["chunks"] for p in pairs]
    per_chunk_base = [1000 * p["encode_s"] / p["chunks"] for p in pairs]
    rows = [
        row("throughput (totals)", chunks / pipeline_s, chunks / encode_s, "chunks/s", lower_is_better=False),
        row(
            "time per chunk (median pair)",
            median(per_chunk_app),
            median(per_chunk_base),
            "ms",
            ratio=median(ratios),
            note=f"ratio: median of {len(pairs)} per-document pairs",
        ),
        row(
            "embed() inside the pipeline",
            1000 * stats["embed_seconds"] / chunks,
            1000 * encode_s / chunks,
            "ms/chunk",
            note="features.embeddings.embed alone, against bare encode",
        ),
    ]
    notes = [
        f"{chunks} chunks from {len(pairs)} documents of about {words} words; median {median(token_counts):.0f} "
        f"tokens per chunk (incl. CLS/SEP).",
        f"Pipeline time: embedding {stats['embed_seconds']:.1f} s, tokenizer {stats['count_tokens_seconds']:.2f} s "
        f"({stats['count_tokens_calls']} calls, {stats['count_tokens_calls'] / chunks:.1f} per chunk), "
        f"cleaning + SQL + rest {other_s:.2f} s; encode baseline {encode_s:.1f} s. Work other than embedding: "
        f"{1000 * (pipeline_s - stats['embed_seconds']) / chunks:.1f} ms per chunk "
        f"({100 * (pipeline_s - stats['embed_seconds']) / pipeline_s:.1f} % of the pipeline).",
        f"Per-document ratio: p10 {percentile(ratios, 10):.2f}, median {median(ratios):.2f}, "
        f"p90 {percentile(ratios, 90):.2f} (the spread is background load).",
    ]
    return {
        "name": "ingest",
        "description": __doc__.strip().splitlines()[0],
        "params": params,
        "rows": rows,
        "notes": notes,
        "details": {
            "pairs": pairs,
            "instrumentation": stats,
            "other_seconds": other_s,
            "median_chunk_tokens": median(token_counts),
        },
    }
