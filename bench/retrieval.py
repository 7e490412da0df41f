"""Retrieval at many tenants: Chunk.objects.search against exact search.

Data (as in docs/research/anchors.md section 4): 100 owners, 10 big
ones with 10x the rows of the 90 small ones; synthetic 384-dim unit vectors
clustered around 1,000 anisotropic centres, 30 topics per owner. Rows are
loaded with binary COPY and the HNSW index is built after the load.

App: `Chunk.objects.search(owner, q, k=10)` (ORM, HNSW with relaxed iterative
scan where the planner picks it). Baselines, run for every query in rotating
order with the app:
- exact (ORM): the app's two queries, the nearest-k one ordered by
  `distance + 0`, which keeps the HNSW index out, so the plan is the owner
  index plus a sort: the ratio isolates the plan;
- exact (SQL): `SELECT index ... ORDER BY (embedding <=> q) + 0 LIMIT 10`, the
  raw exact plan without the ORM;
- numpy: exact top-10 over the owner's rows in memory; it is the ground truth
  for recall@10 and an in-process lower bound for latency.
"""

import random
import re

import numpy as np

from . import common
from .common import info_row, log, median, percentile, row, timed

DIM = 384
OWNERS, BIG_OWNERS, BIG_FACTOR = 100, 10, 10
CENTRES, TOPICS_PER_OWNER = 1000, 30
K = 10
CHUNKS_PER_DOC = 10
# quick -> (rows, queries, timed passes). At 50k rows (big owners of 2.6k) the planner still sorts
# every owner's rows; at 100k (big owners of 5.3k) it takes HNSW for them, the path worth measuring.
SIZES = {True: (10_000, 100, 3), False: (100_000, 200, 3)}
EXACT_SQL = (
    "SELECT clean_document_id, index FROM features_chunk "
    "WHERE owner_id = %s ORDER BY (embedding <=> %s::vector) + 0 LIMIT %s"
)
HNSW_DDL = (
    "CREATE INDEX chunk_embedding_hnsw ON features_chunk "
    "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
)


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


def text_pool(size: int = 200) -> list[str]:
    """Chunk-sized texts (about 700 characters) cut from the demo writing."""
    rng = random.Random(5)
    sentences = common.corpus_sentences()
    pool = []
    for _ in range(size):
        text = ""
        while len(text) < 700:
            text += rng.choice(sentences) + " "
        pool.append(text.strip())
    return pool


def load(owners, vectors: list[np.ndarray]) -> tuple[dict, list[list[tuple[int, int]]]]:
    """Documents of CHUNKS_PER_DOC chunks with realistic text sizes, chunk rows by binary COPY.

    The HNSW index is dropped for the load and built afterwards, as for a restore.
    Returns the timings and, per owner, the (clean_document_id, index) key of each row.
    """
    from pgvector.psycopg import register_vector

    from features.models import CleanDocument
    from ingestion.models import Document, Source

    pool = text_pool()
    sources = Source.objects.bulk_create(Source(owner=o, kind=Source.Kind.UPLOAD, name="bench") for o in owners)
    layout = []  # (owner, source, first row, document text)
    for owner, source, matrix in zip(owners, sources, vectors, strict=True):
        for first in range(0, len(matrix), CHUNKS_PER_DOC):
            texts = [pool[(first + j) % len(pool)] for j in range(min(CHUNKS_PER_DOC, len(matrix) - first))]
            layout.append((owner, source, first, texts))
    documents = Document.objects.bulk_create(
        (
            Document(
                owner=o,
                source=s,
                title=f"bench {o.pk}-{first}",
                url=f"upload://bench/{first}",
                raw_text="\n\n".join(texts),
                content_hash=f"{o.pk}-{first}",
            )
            for o, s, first, texts in layout
        ),
        batch_size=500,
    )
    cleaned = CleanDocument.objects.bulk_create(
        (
            CleanDocument(owner=o, document=d, category="article", title=d.title, text=d.raw_text, raw_hash="")
            for (o, _, _, _), d in zip(layout, documents, strict=True)
        ),
        batch_size=500,
    )
    keys = {o.pk: [] for o in owners}
    matrices = {o.pk: m for o, m in zip(owners, vectors, strict=True)}
    timings = {}
    with common.raw_connection() as conn:
        register_vector(conn)
        conn.execute("DROP INDEX chunk_embedding_hnsw")
        columns = "owner_id, clean_document_id, index, text, token_count, embedding, embedding_model"
        with timed() as t, conn.cursor() as cursor:
            with cursor.copy(f"COPY features_chunk ({columns}) FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "int8", "int4", "text", "int4", "vector", "varchar"])
                for (owner, _, first, texts), doc in zip(layout, cleaned, strict=True):
                    for j, text in enumerate(texts):
                        vector = matrices[owner.pk][first + j]
                        copy.write_row([owner.pk, doc.pk, j, text, 180, vector, "synthetic"])
                        keys[owner.pk].append((doc.pk, j))
        timings["copy_s"] = t.seconds
        conn.commit()
        conn.execute("SET maintenance_work_mem = '1GB'")
        with timed() as t:
            conn.execute(HNSW_DDL)
        timings["hnsw_build_s"] = t.seconds
        conn.execute("ANALYZE")
        conn.commit()
    return timings, [keys[o.pk] for o in owners]


def exact_orm(owner, embedding):
    """Chunk.objects.search's two queries, the first ordered so the HNSW index cannot be used."""
    from django.db.models import F
    from pgvector.django import CosineDistance

    from features.models import WIDE_COLUMNS, Chunk

    nearest = dict(
        Chunk.objects.filter(owner=owner)
        .annotate(distance=CosineDistance("embedding", list(map(float, embedding))))
        .order_by(F("distance") + 0)
        .values_list("pk", "distance")[:K]
    )
    rows = list(Chunk.objects.filter(pk__in=nearest).select_related("clean_document__document").defer(*WIDE_COLUMNS))
    return sorted(rows, key=lambda chunk: nearest[chunk.pk])


def joined_search(owner, embedding):
    """Diagnostic, not a baseline: the rejected one-query form (top k joined to documents in
    one SELECT). The planner takes HNSW for big owners there, but scans every tenant's
    documents before the LIMIT for small ones."""
    from django.db import connection, transaction
    from pgvector.django import CosineDistance

    from features.models import WIDE_COLUMNS, Chunk

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        rows = list(
            Chunk.objects.filter(owner=owner)
            .annotate(distance=CosineDistance("embedding", list(map(float, embedding))))
            .select_related("clean_document__document")
            .defer(*WIDE_COLUMNS)
            .order_by("distance")[:K]
        )
    return sorted(rows, key=lambda chunk: chunk.distance)


def exact_sql(owner, embedding) -> list[tuple[int, int]]:
    from django.db import connection

    literal = "[" + ",".join(map(repr, map(float, embedding))) + "]"
    with connection.cursor() as cursor:
        cursor.execute(EXACT_SQL, [owner.pk, literal, K])
        return [tuple(r) for r in cursor.fetchall()]


def app_plan(owner, embedding) -> str:
    """EXPLAIN of the app's nearest-k query (the one that may use HNSW), with its iterative-scan setting."""
    from django.db import connection, transaction
    from pgvector.django import CosineDistance

    from features.models import Chunk

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        plan = (
            Chunk.objects.filter(owner=owner)
            .annotate(distance=CosineDistance("embedding", list(map(float, embedding))))
            .order_by("distance")
            .values_list("pk", "distance")[:K]
            .explain()
        )
    return re.sub(r"'\[[^\]]*\]'", "'[…]'", plan)


def run(quick: bool) -> dict:
    common.setup_django()
    from features.models import Chunk

    total, queries, passes = SIZES[quick]
    small = round(total / (OWNERS - BIG_OWNERS + BIG_OWNERS * BIG_FACTOR))
    sizes = [small * BIG_FACTOR] * BIG_OWNERS + [small] * (OWNERS - BIG_OWNERS)
    params = {"rows": sum(sizes), "owners": OWNERS, "big_owner_rows": sizes[0], "small_owner_rows": small}
    params |= {"queries": queries, "timed_passes": passes, "k": K}
    rng = np.random.default_rng(2024)
    vectors = synthetic_vectors(sizes, rng)

    with common.scratch_database():
        owners = common.make_owners(OWNERS)
        build, keys = load(owners, vectors)
        log(f"{sum(sizes)} rows: COPY {build['copy_s']:.1f} s, HNSW build {build['hnsw_build_s']:.1f} s")

        # Half the queries on big owners, half on small ones: a stored vector plus a little noise.
        picker = random.Random(2024)
        plan = []
        for q in range(queries):
            o = picker.randrange(BIG_OWNERS) if q % 2 == 0 else picker.randrange(BIG_OWNERS, OWNERS)
            stored = vectors[o][picker.randrange(len(vectors[o]))]
            plan.append((o, normalise(stored + rng.normal(scale=0.03, size=DIM))))

        def truth(o, query):
            scores = vectors[o] @ query
            top = np.argpartition(-scores, K - 1)[:K]
            return [keys[o][j] for j in top[np.argsort(-scores[top])]]

        methods = {
            "app": lambda o, q: [(c.clean_document_id, c.index) for c in Chunk.objects.search(owners[o], q, k=K)],
            "exact_orm": lambda o, q: [(c.clean_document_id, c.index) for c in exact_orm(owners[o], q)],
            "exact_sql": lambda o, q: exact_sql(owners[o], q),
            "numpy": truth,
            # diagnostic: the one-query alternative, timed alongside
            "joined": lambda o, q: [(c.clean_document_id, c.index) for c in joined_search(owners[o], q)],
        }
        samples = {name: [[] for _ in plan] for name in methods}
        answers = {name: [None] * len(plan) for name in methods}
        for p in range(1 + passes):  # pass 0 is the warm-up
            for i, (o, query) in enumerate(plan):
                names = list(methods)
                shift = (i + p) % len(names)
                for name in names[shift:] + names[:shift]:  # rotate who goes first
                    with timed() as t:
                        answer = methods[name](o, query)
                    if p:
                        samples[name][i].append(1000 * t.seconds)
                    answers[name][i] = answer
            if p:
                log(f"pass {p}/{passes}: app p50 {median([s[-1] for s in samples['app']]):.2f} ms")

        plans = {
            kind: app_plan(owners[o], vectors[o][0]) for kind, o in (("big owner", 0), ("small owner", OWNERS - 1))
        }

    latency = {name: [median(s) for s in per_query] for name, per_query in samples.items()}
    big = [i for i, (o, _) in enumerate(plan) if o < BIG_OWNERS]
    small_q = [i for i, (o, _) in enumerate(plan) if o >= BIG_OWNERS]

    def recall(name, subset):
        hits = [len(set(answers[name][i]) & set(answers["numpy"][i])) / K for i in subset]
        return sum(hits) / len(hits)

    def p(name, q, subset=None):
        values = latency[name] if subset is None else [latency[name][i] for i in subset]
        return percentile(values, q)

    everything = range(len(plan))
    rows = [
        row("latency p50", p("app", 50), p("exact_orm", 50), "ms", note="vs exact plan, same ORM query"),
        row("latency p95", p("app", 95), p("exact_orm", 95), "ms", note="vs exact plan, same ORM query"),
        row("latency p50, big owners", p("app", 50, big), p("exact_orm", 50, big), "ms", note=f"{sizes[0]} rows"),
        row(
            "latency p50, small owners", p("app", 50, small_q), p("exact_orm", 50, small_q), "ms", note=f"{small} rows"
        ),
        row("latency p50 vs raw SQL", p("app", 50), p("exact_sql", 50), "ms", note="exact SQL, ids only"),
        info_row("recall@10", recall("app", everything), recall("exact_sql", everything), "", "baseline: exact SQL"),
        info_row("recall@10, big owners", recall("app", big), recall("exact_sql", big), "", "baseline: exact SQL"),
    ]
    short = sum(len(answers["app"][i]) < K for i in everything)
    uses_hnsw = {kind: "chunk_embedding_hnsw" in text for kind, text in plans.items()}
    notes = [
        f"{sum(sizes)} rows, {OWNERS} owners ({BIG_OWNERS} with {sizes[0]} rows, the rest {small}); "
        f"COPY {build['copy_s']:.1f} s, HNSW build {build['hnsw_build_s']:.1f} s.",
        f"{queries} queries (half on big owners), {passes} timed passes after a warm-up; latency per query is the "
        "median of its passes, client side, including the ORM and round trips.",
        "App plan uses HNSW: " + ", ".join(f"{kind} {used}" for kind, used in uses_hnsw.items()) + ".",
        f"numpy exact top-10 in memory: p50 {p('numpy', 50):.3f} ms (lower bound, no database).",
        f"Diagnostic, the one-query alternative (top {K} joined to documents in one SELECT): "
        f"big owners p50 {p('joined', 50, big):.2f} ms, recall {recall('joined', big):.3f}; small owners p50 "
        f"{p('joined', 50, small_q):.2f} ms against the app's {p('app', 50, small_q):.2f} "
        f"(raw exact SQL {p('exact_sql', 50, small_q):.2f}).",
        f"Queries where the app returned fewer than {K} rows: {short}.",
    ]
    return {
        "name": "retrieval",
        "description": __doc__.strip().splitlines()[0],
        "params": params,
        "rows": rows,
        "notes": notes,
        "details": {
            "build": build,
            "plans": plans,
            "percentiles_ms": {
                name: {q: p(name, q) for q in (50, 95, 99)}
                | {"big_p50": p(name, 50, big), "small_p50": p(name, 50, small_q)}
                for name in methods
            },
            "recall": {name: recall(name, everything) for name in methods if name != "numpy"},
        },
    }
