"""Chunking time per 1,000 documents, per category, against the one tokenization it starts from.

App: what `do_build_features` does to a document before embedding it: `clean_text`,
the one tokenization (`embeddings.token_offsets`, the packaged MiniLM's fast
tokenizer with offsets) and `chunk_document` (sections, paragraphs, sentences,
packing, overlap; `ast` for Python).
Baseline: that tokenization alone, on the same cleaned text: chunking can cost no
less, so the ratio says what cutting and packing add on top of reading the text once.

Documents, per category: articles of about 700 words (Markdown headings and
paragraphs of demo-corpus sentences), Python modules (this repository's own source
files, cycled) and posts (one to three corpus sentences). App and baseline run per
document in alternating order; CPU seconds (this process: all of the work is in it, on
one thread), so that neighbours on a shared machine do not count, scaled to 1,000 documents.

    .venv/bin/python -m bench.run_all --only chunking            # 1,000 documents per category
"""

import random
import time
from contextlib import contextmanager
from types import SimpleNamespace

from . import common
from .common import log, row


@contextmanager
def cpu_timed():
    """CPU time of this process (all of it is in-process, single-threaded): on a shared machine
    wall time measures the neighbours as much as the code."""
    timer = SimpleNamespace(seconds=0.0)
    start = time.process_time()
    try:
        yield timer
    finally:
        timer.seconds = time.process_time() - start


WORDS_PER_ARTICLE = 700


def documents(category: str, count: int, rng: random.Random, sentences: list[str]) -> list[tuple[str, str]]:
    """(path, raw text) per document."""
    if category == "article":
        return [
            (f"article-{i}.md", common.synthetic_document(rng, sentences, f"Article {i}", WORDS_PER_ARTICLE))
            for i in range(count)
        ]
    if category == "code":
        sources = sorted(p for p in common.ROOT.glob("*/*.py") if ".venv" not in p.parts and p.stat().st_size > 2000)
        return [
            (str(path.relative_to(common.ROOT)), path.read_text())
            for path in (sources[i % len(sources)] for i in range(count))
        ]
    return [(f"post-{i}.txt", " ".join(rng.choice(sentences) for _ in range(rng.randint(1, 3)))) for i in range(count)]


def run(quick: bool) -> dict:
    common.setup_django()
    from features import embeddings
    from features.chunking import chunk_document
    from features.cleaning import clean_text

    count = 200 if quick else 1000
    rng = random.Random(11)
    sentences = common.corpus_sentences()
    window = embeddings.max_tokens()  # loads the tokenizer once, outside the timings
    embeddings.token_offsets("warm-up text")

    rows, details = [], {}
    for category in ("article", "code", "post"):
        docs = documents(category, count, rng, sentences)
        app_s = base_s = 0.0
        chunks = tokens = 0
        for i, (path, raw) in enumerate(docs):
            cleaned = clean_text(raw, category=category)
            for step in ("app", "base") if i % 2 == 0 else ("base", "app"):  # alternate who goes first
                with cpu_timed() as t:
                    if step == "app":
                        text = clean_text(raw, category=category)
                        out = chunk_document(
                            text, embeddings.token_offsets(text), category=category, max_tokens=window, path=path
                        )
                    else:
                        out = embeddings.token_offsets(cleaned)
                if step == "app":
                    app_s += t.seconds
                    chunks += len(out)
                else:
                    base_s += t.seconds
                    tokens += len(out)
        scale = 1000 / count
        details[category] = {"documents": count, "chunks": chunks, "tokens": tokens, "app_s": app_s, "base_s": base_s}
        log(f"{category}: {count} documents, {chunks} chunks, {app_s:.2f} s chunking vs {base_s:.2f} s tokenizing")
        rows.append(
            row(
                f"chunking per 1,000 documents, {category}",
                app_s * scale,
                base_s * scale,
                "CPU s",
                note=f"clean + tokenize once + chunk, vs the tokenization alone; {chunks / count:.1f} chunks/doc",
            )
        )
    notes = [
        f"{count} documents per category: articles of about {WORDS_PER_ARTICLE} words, Python modules of this "
        "repository (cycled), posts of 1-3 sentences. Times are totals scaled to 1,000 documents.",
        "Tokens per document (mean): "
        + ", ".join(f"{c} {d['tokens'] / d['documents']:.0f}" for c, d in details.items())
        + ". The embedding itself is not included (bench/ingest.py measures the whole pipeline).",
    ]
    return {
        "name": "chunking",
        "description": __doc__.strip().splitlines()[0],
        "params": {"documents_per_category": count, "words_per_article": WORDS_PER_ARTICLE},
        "rows": rows,
        "notes": notes,
        "details": details,
    }
