"""Retrieval per owner size: hybrid and vector search against exact search, with recall@10.

Data: owners of three size classes, as tenants really are skewed: per 100k rows, 10
large owners of 6,000 chunks, 30 medium of 1,000 and 60 tiny of about 170. Vectors
are synthetic 384-dim unit vectors clustered around 1,000 anisotropic centres, 30
topics per owner; chunk texts are cut from the demo writing (so the generated
tsvector and its GIN index are real). Rows are loaded with binary COPY (the search
counts' triggers run as on any insert) and the HNSW and GIN indexes are built after
the load.

App, through `Chunk.objects.for_user(owner).search(...)` with the query's vector
given (the embedding model is not what is measured here):
- hybrid: the query text (four words of the target chunk) and its vector;
- vector: the vector alone.
Baseline, run for every query in rotating order with the app: the raw exact SQL
(`ORDER BY (embedding <=> q) + 0 LIMIT 10`, ids only) for the same owner. numpy's
exact top-10 over the owner's rows is the ground truth for recall@10.
Diagnostic: hybrid with the plan forced (always exact, always HNSW) on medium and
large owners, which is how EXACT_SEARCH_MAX_ROWS and HNSW_FILTER_COST were chosen.

    .venv/bin/python -m bench.run_all --only retrieval           # 100k rows, 100 owners
    .venv/bin/python -m bench.retrieval --million                # 1M rows, 1,000 owners (slow to build)
"""

import argparse
import random
import re
import sys
from contextlib import contextmanager

import numpy as np

from . import common
from .common import info_row, log, percentile, row, timed

DIM = 384
CENTRES, TOPICS_PER_OWNER = 1000, 30
K = 10
CHUNKS_PER_DOC = 10
# Per 100k rows: (owners, chunks each) for each size class; other sizes scale the owner counts.
CLASSES = {"tiny": (60, 167), "medium": (30, 1000), "large": (10, 6000)}
# rows -> (queries per class, timed passes)
SIZES = {10_000: (30, 2), 100_000: (60, 2), 1_000_000: (60, 2)}
EXACT_SQL = (
    "SELECT clean_document_id, index FROM features_chunk "
    "WHERE owner_id = %s ORDER BY (embedding <=> %s::vector) + 0 LIMIT %s"
)
HNSW_DDL = (
    "CREATE INDEX chunk_embedding_hnsw ON features_chunk "
    "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
)
GIN_DDL = (
    "CREATE INDEX chunk_owner_lexeme_gin ON features_chunk USING gin (features_owner_lexemes(owner_id, search_vector))"
)
WORD = re.compile(r"[A-Za-z]{5,}")


def normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def synthetic_vectors(sizes: list[int], rng: np.random.Generator) -> list[np.ndarray]:
    """Per owner, unit vectors drawn around that owner's topics (centres shared between owners)."""
    shared = normalise(rng.normal(size=DIM))
    centres = normalise(0.5 * shared + rng.normal(scale=1 / np.sqrt(DIM), size=(CENTRES, DIM)))
    vectors = []
    for size in sizes:
        topics = rng.choice(CENTRES, size=TOPICS_PER_OWNER, replace=False)
        picks = rng.choice(topics, size=size)
        vectors.append(normalise(centres[picks] + rng.normal(scale=0.05, size=(size, DIM))))
    return vectors


def text_pool(size: int = 997) -> list[str]:
    """Chunk-sized texts (about 700 characters) cut from the demo writing (a prime count, so
    an owner's chunks rarely repeat a text)."""
    rng = random.Random(5)
    sentences = common.corpus_sentences()
    pool = []
    for _ in range(size):
        text = ""
        while len(text) < 700:
            text += rng.choice(sentences) + " "
        pool.append(text.strip())
    return pool


def load(owners, vectors: list[np.ndarray], pool: list[str]) -> tuple[dict, list[list[tuple[int, int, int]]]]:
    """Documents of CHUNKS_PER_DOC chunks, chunk rows by binary COPY, then the indexes.

    Returns the timings and, per owner, each row's (clean_document_id, index, text number).
    """
    from pgvector.psycopg import register_vector
    from psycopg.types.json import Jsonb

    from features.models import CleanDocument
    from ingestion.models import Document, Source

    sources = Source.objects.bulk_create(Source(owner=o, kind=Source.Kind.UPLOAD, name="bench") for o in owners)
    layout, offset = [], 0  # (owner, source, first row, text numbers)
    for owner, source, matrix in zip(owners, sources, vectors, strict=True):
        for first in range(0, len(matrix), CHUNKS_PER_DOC):
            numbers = [(offset + first + j) % len(pool) for j in range(min(CHUNKS_PER_DOC, len(matrix) - first))]
            layout.append((owner, source, first, numbers))
        offset += len(matrix)
    documents = Document.objects.bulk_create(
        (
            Document(
                owner=o,
                source=s,
                title=f"bench {o.pk}-{first}",
                url=f"upload://bench/{first}",
                raw_text="",
                content_hash=f"{o.pk}-{first}",
            )
            for o, s, first, _ in layout
        ),
        batch_size=2000,
    )
    cleaned = CleanDocument.objects.bulk_create(
        (
            CleanDocument(owner=o, document=d, category="article", title=d.title, text="", raw_hash="")
            for (o, _, _, _), d in zip(layout, documents, strict=True)
        ),
        batch_size=2000,
    )
    keys = {o.pk: [] for o in owners}
    matrices = {o.pk: m for o, m in zip(owners, vectors, strict=True)}
    timings = {}
    with common.raw_connection() as conn:
        register_vector(conn)
        conn.execute("DROP INDEX chunk_embedding_hnsw")
        conn.execute("DROP INDEX chunk_owner_lexeme_gin")
        columns = "owner_id, clean_document_id, index, text, token_count, embedding, embedding_model, metadata"
        with timed() as t, conn.cursor() as cursor:
            with cursor.copy(f"COPY features_chunk ({columns}) FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "int8", "int4", "text", "int4", "vector", "varchar", "jsonb"])
                empty = Jsonb({})
                for (owner, _, first, numbers), doc in zip(layout, cleaned, strict=True):
                    for j, number in enumerate(numbers):
                        vector = matrices[owner.pk][first + j]
                        copy.write_row([owner.pk, doc.pk, j, pool[number], 180, vector, "synthetic", empty])
                        keys[owner.pk].append((doc.pk, j, number))
        timings["copy_s"] = t.seconds  # includes the generated tsvector and the search counts' trigger
        conn.commit()
        # The 1M-row graph (vectors and neighbour lists) is about 1.8 GB; a build that outgrows
        # maintenance_work_mem goes on much slower.
        conn.execute("SET maintenance_work_mem = '4GB'")
        with timed() as t:
            conn.execute(HNSW_DDL)
        timings["hnsw_build_s"] = t.seconds
        with timed() as t:
            conn.execute(GIN_DDL)
        timings["gin_build_s"] = t.seconds
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")  # all-visible pages: index-only counts, as on a settled table
    return timings, [keys[o.pk] for o in owners]


def exact_sql(owner, embedding) -> list[tuple[int, int]]:
    from django.db import connection

    literal = "[" + ",".join(map(repr, map(float, embedding))) + "]"
    with connection.cursor() as cursor:
        cursor.execute(EXACT_SQL, [owner.pk, literal, K])
        return [tuple(r) for r in cursor.fetchall()]


@contextmanager
def forced_plan(plan: str):
    from features import search

    saved = search.EXACT_SEARCH_MAX_ROWS, search.HNSW_FILTER_COST
    search.EXACT_SEARCH_MAX_ROWS, search.HNSW_FILTER_COST = (10**9, 0) if plan == "exact" else (0, 0)
    try:
        yield
    finally:
        search.EXACT_SEARCH_MAX_ROWS, search.HNSW_FILTER_COST = saved


def run(quick: bool, rows: int | None = None) -> dict:
    common.setup_django()
    from features.models import Chunk

    total = rows or (10_000 if quick else 100_000)
    queries_per_class, passes = SIZES[total]
    scale = total / 100_000
    classes = {name: (max(1, round(count * scale)), size) for name, (count, size) in CLASSES.items()}
    owner_class, sizes = [], []
    for name, (count, size) in classes.items():
        owner_class += [name] * count
        sizes += [size] * count
    params = {"rows": sum(sizes), "owners": len(sizes), "classes": classes, "k": K}
    params |= {"queries_per_class": queries_per_class, "timed_passes": passes}
    rng = np.random.default_rng(2024)
    vectors = synthetic_vectors(sizes, rng)
    pool = text_pool()

    with common.scratch_database():
        owners = common.make_owners(len(sizes))
        build, keys = load(owners, vectors, pool)
        log(
            f"{sum(sizes)} rows over {len(sizes)} owners: COPY {build['copy_s']:.1f} s, "
            f"HNSW {build['hnsw_build_s']:.1f} s, GIN {build['gin_build_s']:.1f} s"
        )

        # Per class, queries on random owners: a stored vector plus a little noise, and four
        # words of that chunk's text.
        picker = random.Random(2024)
        plan = []
        for name in classes:
            members = [o for o, c in enumerate(owner_class) if c == name]
            for _ in range(queries_per_class):
                o = picker.choice(members)
                j = picker.randrange(len(vectors[o]))
                words = WORD.findall(pool[keys[o][j][2]])
                text = " ".join(picker.sample(words, min(4, len(words))))
                plan.append((name, o, text, normalise(vectors[o][j] + rng.normal(scale=0.03, size=DIM))))

        def truth(o, query):
            scores = vectors[o] @ query
            top = np.argpartition(-scores, K - 1)[:K]
            return [keys[o][j][:2] for j in top[np.argsort(-scores[top])]]

        def app(o, text, query):
            found = Chunk.objects.for_user(owners[o]).search(text, k=K, embedding=query)
            return [(c.clean_document_id, c.index) for c in found]

        def forced(kind):
            def method(o, text, query):
                with forced_plan(kind):
                    return app(o, text, query)

            return method

        methods = {
            "hybrid": app,
            "vector": lambda o, text, q: app(o, None, q),
            "exact_sql": lambda o, text, q: exact_sql(owners[o], q),
            "numpy": lambda o, text, q: truth(o, q),
            "hybrid_exact": forced("exact"),  # diagnostics: medium and large owners only
            "hybrid_hnsw": forced("hnsw"),
        }
        samples = {name: [[] for _ in plan] for name in methods}
        answers = {name: [None] * len(plan) for name in methods}
        backend = common.backend_pid()
        cpu = {(name, cls): [0.0, 0.0, 0] for name in methods for cls in classes}  # client s, server s, calls
        for p in range(1 + passes):  # pass 0 is the warm-up
            for i, (cls, o, text, query) in enumerate(plan):
                names = [n for n in methods if cls != "tiny" or not n.startswith("hybrid_")]
                shift = (i + p) % len(names)
                for name in names[shift:] + names[:shift]:  # rotate who goes first
                    with common.cpu_timed(backend) as c, timed() as t:
                        answer = methods[name](o, None if name == "vector" else text, query)
                    if p:
                        samples[name][i].append(1000 * t.seconds)
                        cpu[name, cls][0] += c.client
                        cpu[name, cls][1] += c.server
                        cpu[name, cls][2] += 1
                    answers[name][i] = answer
            log(f"pass {p}/{passes} done")

    latency = {name: [min(s) if s else None for s in per_query] for name, per_query in samples.items()}
    subsets = {name: [i for i, q in enumerate(plan) if q[0] == name] for name in classes}

    def p(name, q, subset):
        return percentile([latency[name][i] for i in subset if latency[name][i] is not None], q)

    def recall(name, subset):
        return overlap(answers, subset, name, "numpy")

    def cpu_ms(method, cls):
        client, server, calls = cpu[method, cls]
        return 1000 * client / max(1, calls), 1000 * server / max(1, calls)

    result_rows, figures = [], {}
    for name, subset in subsets.items():
        size = classes[name][1]
        for method in ("hybrid", "vector"):
            for q in (50, 95):
                result_rows.append(
                    row(
                        f"{method} p{q}, {name} owners",
                        p(method, q, subset),
                        p("exact_sql", q, subset),
                        "ms",
                        note=f"{size} rows/owner; vs exact SQL",
                    )
                )
        result_rows.append(info_row(f"vector recall@10, {name}", recall("vector", subset), 1.0, "", "vs exact"))
        figures[name] = {
            method: {"p50": p(method, 50, subset), "p95": p(method, 95, subset), "cpu_ms": cpu_ms(method, name)}
            for method in methods
        } | {
            "recall_vector": recall("vector", subset),
            "recall_hybrid_vs_vector_truth": recall("hybrid", subset),
        }
    notes = [
        f"{sum(sizes)} rows, {len(sizes)} owners: "
        + ", ".join(f"{count} {name} of {size}" for name, (count, size) in classes.items())
        + f"; COPY {build['copy_s']:.1f} s (with the generated tsvector and the search counts), "
        f"HNSW build {build['hnsw_build_s']:.1f} s, GIN build {build['gin_build_s']:.1f} s.",
        f"{queries_per_class} queries per class, {passes} timed passes after a warm-up; a query's latency is its "
        "fastest timed pass, client side, with the ORM, both round trips and MMR.",
        "Plan diagnostic (hybrid p50 / p95, ms): "
        + "; ".join(
            f"{name}: exact {p('hybrid_exact', 50, s):.2f} / {p('hybrid_exact', 95, s):.2f}, "
            f"HNSW {p('hybrid_hnsw', 50, s):.2f} / {p('hybrid_hnsw', 95, s):.2f} "
            f"(same results as exact: {overlap(answers, s, 'hybrid_hnsw', 'hybrid_exact'):.2f})"
            for name, s in subsets.items()
            if name != "tiny"
        ),
        "CPU per query (client + database server, ms; what a query costs on an idle machine, whatever the "
        "load): "
        + "; ".join(
            f"{name}: "
            + ", ".join(
                f"{method} {cpu_ms(method, name)[0]:.2f} + {cpu_ms(method, name)[1]:.2f}"
                for method in ("hybrid", "vector", "exact_sql")
            )
            for name in classes
        )
        + ".",
        "Hybrid results are not meant to equal the vector top-10 (text hits are fused in); their overlap with "
        "it per class: " + ", ".join(f"{n} {recall('hybrid', s):.2f}" for n, s in subsets.items()) + ".",
    ]
    return {
        "name": "retrieval" if total <= 100_000 else "retrieval-1m",
        "description": __doc__.strip().splitlines()[0],
        "params": params,
        "rows": result_rows,
        "notes": notes,
        "details": {"build": build, "per_class": figures},
    }


def overlap(answers, subset, name, reference) -> float:
    """The share of `reference`'s top-K that `name` also returned, averaged over the queries."""
    hits = [len(set(answers[name][i]) & set(answers[reference][i])) / K for i in subset]
    return sum(hits) / len(hits)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10k rows, 10 owners")
    parser.add_argument("--million", action="store_true", help="1M rows over 1,000 owners")
    args = parser.parse_args(argv)
    rows = 1_000_000 if args.million else None
    result = run(quick=args.quick, rows=rows) | {"quick": args.quick, "environment": common.environment()}
    common.write_and_print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
