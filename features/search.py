"""Hybrid retrieval: pgvector cosine and PostgreSQL full-text search, fused, deduplicated.

Why hybrid: an embedding of a question smooths away what makes a passage unique (a
rare word, a number, a code symbol), so vector search alone can miss the one chunk
that names it. Full-text search finds it by the word itself. The two ranked lists are
fused by reciprocal rank fusion (RRF: 1/(60 + rank) summed over lists), which needs
no score calibration between cosine and ts_rank.

Why one statement: the app's cost was the path around the query, not the index, so
the owner's row count, both candidate lists, the fusion, the cosine of every result,
the pairwise similarities MMR needs and the rows to show (chunk, document, source)
come back in one round trip, from a statement prepared once per connection (`_fetch`).

The plan is chosen, not left to the planner's guess (see `_statement`): an owner with
few rows (after filters) is answered by an exact scan of the owner's rows, a large
one by the HNSW index with iterative scan, so the owner filter still fills the list.

Counts are read, not counted: the owner's chunks and each word's chunks (the plan, the
IDF) come from features_chunkcount and features_lexemecount, which triggers keep exact
(LexemeCount). Counting them on every search was most of a large owner's search. A
filtered search counts among its own chunks, as before.
"""

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import numpy as np
from django.db import connection, transaction
from django.db.models.base import ModelState
from django.utils import timezone
from psycopg.adapt import Loader
from psycopg.pq import Format

# No import of the models: they import this module (TEXT_SEARCH_CONFIG, the search itself), and
# what it gives back is rows and model instances of the classes the caller names (`as_chunks`).
TEXT_SEARCH_CONFIG = "english"  # Chunk.search_vector is generated with the same configuration
# The GIN index's keys: "<owner id> <lexeme>" for each word of a chunk (migration 0010).
OWNER_LEXEMES = "features_owner_lexemes"
RRF_K = 60
CANDIDATES_PER_LIST = 40  # per list, before fusion
# Up to this many candidate rows an exact scan beats HNSW (bench/retrieval.py measures both).
EXACT_SEARCH_MAX_ROWS = 2000
# ...and up to sqrt(HNSW_FILTER_COST x table rows): a filtered HNSW scan visits about
# (list length / owner's share of the table) index entries, an exact scan each of the owner's
# rows, so the crossover grows with the table. 128 = 3.2 (an HNSW visit costs 3.2 row
# distances, measured at 100k rows) x 40 (the list). 100k rows: 3,600; 1M rows: 11,300.
HNSW_FILTER_COST = 128
HNSW_EF_SEARCH = 100
# A text hit counts only with at least this share of the best hit's score: sharing one common
# word with the question is no evidence, and would lift every such chunk in the fusion.
TEXT_MIN_SHARE = 0.3
DF_CAP = 200  # document-frequency counting stops here; commoner words are left out of text search
# MMR: relevance against redundancy, but only a near-duplicate counts as redundant: two
# different passages on one topic both earn their place, the same paragraph twice does not.
MMR_LAMBDA = 0.5
NEAR_DUPLICATE_SIMILARITY = 0.92


@dataclass
class Match:
    """Why a chunk was returned: its place in each list and the query words it contains."""

    relevance: float  # the fused RRF score results are ordered by
    vector_rank: int | None
    similarity: float  # cosine similarity to the question
    text_rank: int | None
    text_score: float | None
    matched_terms: list[str] = field(default_factory=list)
    plan: str = ""  # "exact" or "hnsw": how the vector list was found

    @property
    def summary(self) -> str:
        parts = []
        if self.vector_rank:
            parts.append(f"meaning #{self.vector_rank} (similarity {self.similarity:.2f})")
        if self.text_rank:
            parts.append(f"words #{self.text_rank}: {', '.join(self.matched_terms)}")
        return "; ".join(parts)


DOCUMENTS_OF_OWNER = (
    "SELECT cd.id FROM features_cleandocument cd JOIN ingestion_document d ON d.id = cd.document_id "
    "WHERE cd.owner_id = %s"
)


@dataclass(frozen=True)
class Filters:
    category: str | None = None
    source: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    # A query of chunk ids (SQL with %s placeholders, its parameters): the chunks of a filtered
    # queryset, `for_user(user).filter(...).search(...)`. The owner is compared on its own anyway.
    within: tuple[str, tuple] | None = None

    def sql(self, owner_id: int) -> tuple[str, list]:
        """A clause restricting chunks to matching documents and to `within` ("" when there are no filters)."""
        clause, params = "", []
        if self.within is not None:
            subquery, subquery_params = self.within
            clause, params = f" AND c.id IN ({subquery})", list(subquery_params)
        documents, document_params = self._documents(owner_id)
        return clause + documents, params + document_params

    def _documents(self, owner_id: int) -> tuple[str, list]:
        conditions, params = [], []
        if self.category:
            conditions.append("cd.category = %s")
            params.append(self.category)
        if self.source is not None:
            conditions.append("d.source_id = %s")
            params.append(self.source)
        if self.since is not None:
            conditions.append("d.fetched_at >= %s")
            params.append(self.since)
        if self.until is not None:
            conditions.append("d.fetched_at < %s")
            params.append(self.until)
        if not conditions:
            return "", []
        where = " AND ".join(conditions)
        clause = f" AND c.clean_document_id IN ({DOCUMENTS_OF_OWNER} AND {where})"
        return clause, [owner_id, *params]


def as_datetime(value, *, end_of_day=False) -> datetime | None:
    """A date filter as an aware datetime; a bare date means the whole day (until: exclusive next day)."""
    if value is None or isinstance(value, datetime):
        return value if value is None or timezone.is_aware(value) else timezone.make_aware(value)
    if isinstance(value, date):
        moment = datetime.combine(value, time.min)
        if end_of_day:
            moment += timedelta(days=1)
        return timezone.make_aware(moment)
    raise TypeError(f"a date filter must be a date or datetime, not {type(value).__name__}")


def vector_literal(embedding) -> str:
    vector = np.asarray(embedding, dtype=np.float32)
    return "[" + ",".join(map(repr, vector.tolist())) + "]"


def _statement(with_text: bool, clause: str) -> str:
    """The whole search as one statement: candidate count, both lists, fusion, rows to show.

    Both vector plans are in it, each behind a one-time filter on the owner's candidate
    count, so only one runs: an exact scan (`+ 0` on the distance keeps the HNSW index out:
    the owner index finds the rows, a top-N sort orders them, every distance computed) up to
    EXACT_SEARCH_MAX_ROWS rows (more in a large table: HNSW_FILTER_COST), else the HNSW index
    with iterative scan (`+ 0` on the owner keeps the owner index out, whose sort plan the
    planner underestimates for a large owner).
    The owner is compared as bigint: as an integer literal it could not use the owner column
    of the (owner, tsvector) GIN index, and every text match scanned all owners' postings.
    """
    exact = "(c.embedding <=> %(vector)s::vector) + 0"
    vector_hits = f"""
        vector_hits AS (
            SELECT id, distance, row_number() OVER (ORDER BY distance, id) AS rank FROM (
                (SELECT c.id, c.embedding <=> %(vector)s::vector AS distance FROM features_chunk c
                 WHERE (SELECT exact FROM candidates) AND c.owner_id = %(owner)s::bigint{clause}
                 ORDER BY {exact} LIMIT %(n)s)
                UNION ALL
                (SELECT c.id, c.embedding <=> %(vector)s::vector AS distance FROM features_chunk c
                 WHERE NOT (SELECT exact FROM candidates) AND c.owner_id + 0 = %(owner)s::bigint{clause}
                 ORDER BY c.embedding <=> %(vector)s::vector LIMIT %(n)s)) s)"""  # noqa: S608 (module constants only; values are parameters)
    if with_text:
        # Each query word weighs by its rarity among this owner's chunks (BM25's IDF, capped): a
        # rare word, a number or a code symbol outweighs common words, which is what vector search
        # misses. Words in DF_CAP or more chunks say little about which passage is meant and are
        # left to the vector side (which also bounds the scan).
        # The counts come from features_lexemecount (kept by triggers, see LexemeCount): a common
        # word costs one index lookup instead of a scan of DF_CAP rows. A filtered search counts
        # among the chunks it may return, so it counts them itself, one scan per word that also
        # lists the word's chunks. Either way a chunk's score is the sum of the IDFs of the words
        # it contains, added up from the words' lists of chunks.
        # A word's chunks come from the GIN index on (owner, word) keys: its posting list is just
        # this owner's chunks with the word. The owner is compared on its own too, `+ 0` keeping
        # the owner index out (ANDing its bitmap of all the owner's rows only costs).
        lexemes = f"tsvector_to_array(to_tsvector('{TEXT_SEARCH_CONFIG}', %(text)s))"
        chunks_of = f"""SELECT c.id FROM features_chunk c
                WHERE {OWNER_LEXEMES}(c.owner_id, c.search_vector) @> ARRAY[(%(owner)s::bigint)::text || ' ' || l]
                AND c.owner_id + 0 = %(owner)s::bigint{clause}"""  # noqa: S608 (module constants only; values are parameters)
        idf = "ln(1 + (greatest((SELECT rows FROM candidates) - df, 0) + 0.5) / (df + 0.5))"
        if clause:
            counted = f"""counted AS MATERIALIZED (
            SELECT l, ids, cardinality(ids) AS df FROM q, unnest(q.lexemes) l,
            LATERAL (SELECT array_agg(id) AS ids FROM ({chunks_of} LIMIT {DF_CAP}) s) y),
        terms AS MATERIALIZED (SELECT l, ids, {idf} AS idf FROM counted WHERE df > 0 AND df < {DF_CAP})"""  # noqa: S608 (module constants only; values are parameters)
        else:
            counted = f"""counted AS MATERIALIZED (
            SELECT l, coalesce((SELECT f.chunks FROM features_lexemecount f
                WHERE f.owner_id = %(owner)s::bigint AND f.lexeme = l), 0) AS df FROM q, unnest(q.lexemes) l),
        terms AS MATERIALIZED (
            SELECT l, ids, {idf} AS idf FROM counted, LATERAL (SELECT array_agg(id) AS ids FROM ({chunks_of}) s) y
            WHERE df > 0 AND df < {DF_CAP})"""  # noqa: S608 (module constants only; values are parameters)
        query = f"q AS MATERIALIZED (SELECT {lexemes} AS lexemes),\n        {counted}"
        text_hits = f"""
        text_hits AS (
            SELECT id, score, row_number() OVER (ORDER BY score DESC, id) AS rank FROM (
                SELECT id, score, max(score) OVER () AS best FROM (
                    SELECT id, sum(idf) AS score FROM terms, unnest(terms.ids) id
                    GROUP BY id ORDER BY score DESC, id LIMIT %(n)s) s) scored
            WHERE score >= {TEXT_MIN_SHARE} * best)"""  # noqa: S608 (module constants only; values are parameters)
    else:
        query = "q AS MATERIALIZED (SELECT '{}'::text[] AS lexemes)"
        text_hits = "text_hits AS (SELECT NULL::bigint AS id, NULL::float AS score, NULL::bigint AS rank WHERE false)"
    # The owner's candidate count, capped past the exact-scan limit: the plan and the IDF's N. A
    # plain search reads it from features_chunkcount (kept by triggers, see ChunkCount); a
    # filtered one counts its own candidates (an index-only scan of up to the limit's rows).
    exact_max = """exact_max AS MATERIALIZED (
            SELECT greatest(%(exact_max)s, sqrt(%(hnsw_cost)s * greatest(reltuples, 0)))::bigint AS rows
            FROM pg_class WHERE oid = 'features_chunk'::regclass)"""
    if clause:
        candidates = f"""{exact_max},
        candidates AS MATERIALIZED (SELECT count(*) AS rows, count(*) <= (SELECT rows FROM exact_max) AS exact
            FROM (SELECT 1 FROM features_chunk c WHERE c.owner_id = %(owner)s::bigint{clause}
                  LIMIT (SELECT rows + 1 FROM exact_max)) s)"""  # noqa: S608 (module constants only; values are parameters)
    else:
        candidates = f"""{exact_max},
        candidates AS MATERIALIZED (SELECT least(n, rows + 1) AS rows, n <= rows AS exact FROM exact_max,
            (SELECT coalesce((SELECT chunks FROM features_chunkcount WHERE owner_id = %(owner)s::bigint), 0) AS n) x)"""  # noqa: S608 (constants only)
    columns = ", ".join(f"{table}.{column}" for table, names in SHOWN_COLUMNS for column in names)
    return f"""
        WITH {candidates}, {query}, {vector_hits}, {text_hits},
        fused AS (
            SELECT coalesce(v.id, t.id) AS id, v.rank AS vector_rank, t.rank AS text_rank, t.score AS text_score,
                   coalesce(1.0 / ({RRF_K} + v.rank), 0) + coalesce(1.0 / ({RRF_K} + t.rank), 0) AS relevance
            FROM vector_hits v FULL JOIN text_hits t ON v.id = t.id
            ORDER BY relevance DESC, id LIMIT %(m)s),
        top AS MATERIALIZED (
            SELECT f.*, c.embedding, c.search_vector FROM fused f JOIN features_chunk c ON c.id = f.id)
        SELECT t.relevance, t.vector_rank, t.text_rank, t.text_score,
               t.embedding <=> %(vector)s::vector AS distance,
               CASE WHEN (SELECT exact FROM candidates) THEN 'exact' ELSE 'hnsw' END,
               ARRAY(SELECT l FROM unnest(q.lexemes) l WHERE l = ANY(tsvector_to_array(t.search_vector))),
               ARRAY(SELECT (1 - (t.embedding <=> o.embedding))::real FROM top o ORDER BY o.relevance DESC, o.id),
               {columns}
        FROM top t JOIN features_chunk c ON c.id = t.id
             JOIN features_cleandocument cd ON cd.id = c.clean_document_id
             JOIN ingestion_document d ON d.id = cd.document_id
             JOIN ingestion_source s ON s.id = d.source_id, q
        ORDER BY t.relevance DESC, t.id"""  # noqa: S608 (module constants only; values are parameters)


# What a result carries (the wide columns stay in the database: the vector, whole documents).
SHOWN_COLUMNS = (
    ("c", ("id", "owner_id", "clean_document_id", "index", "text", "token_count", "embedding_model", "metadata")),
    ("cd", ("id", "owner_id", "document_id", "category", "title", "raw_hash", "cleaned_at")),
    ("d", ("id", "owner_id", "source_id", "category", "title", "url", "content_hash", "fetched_at", "created_at")),
    ("s", ("id", "owner_id", "kind", "name", "url", "category", "created_at", "last_synced_at")),
)
# Session settings of every database connection (set when it opens, features/receivers.py):
# the HNSW scan keeps going until the owner filter has filled the list (iterative scan), and
# no JIT: compiling takes longer than any search. They touch nothing but HNSW scans, JIT and
# prepared statements.
SESSION_SETTINGS = {
    "jit": "off",
    # Prepared statements (only search prepares: Django binds client-side) keep one generic plan
    # instead of planning each run (1-1.3 ms a search); the one-time filters in the statement choose
    # the vector plan at run time, so a generic plan loses nothing.
    "plan_cache_mode": "force_generic_plan",
    "hnsw.iterative_scan": "relaxed_order",
    "hnsw.ef_search": str(HNSW_EF_SEARCH),
}
PREPARE_THRESHOLD = 5  # psycopg's default; the search statement itself is prepared at once


def _prepared(owner_id: int, text: str | None, embedding, k: int, filters: Filters) -> tuple[str, dict]:
    clause, filter_params = filters.sql(owner_id)
    # The clause appears in several places; named parameters keep its values in place.
    params = {"vector": np.asarray(embedding, dtype=np.float32), "owner": owner_id, "text": text}
    params |= {"n": max(CANDIDATES_PER_LIST, k), "m": max(2 * k, 10)}
    params |= {"exact_max": EXACT_SEARCH_MAX_ROWS, "hnsw_cost": HNSW_FILTER_COST}
    names = iter(range(len(filter_params)))
    clause = PLACEHOLDER.sub(lambda found: found[0] if found[0] == "%%" else f"%(f{next(names)})s", clause)
    params |= {f"f{i}": value for i, value in enumerate(filter_params)}
    return _statement(bool(text and text.strip()), clause), params


PLACEHOLDER = re.compile("%%|%s")  # a positional parameter; "%%" is a literal percent sign


class _JsonbText(Loader):
    """jsonb in binary results as its text (a version byte, then the JSON), as Django's cursors
    load it: as_chunks parses the metadata of the chosen chunks only."""

    format = Format.BINARY

    def load(self, data) -> str:
        return bytes(data[1:]).decode()


def _fetch(sql: str, params: dict) -> list[tuple]:
    """Run the statement prepared once per connection, in one round trip.

    Why not Django's cursor: it binds parameters client-side, so PostgreSQL parsed and planned
    the statement (with the 4.6 kB query vector spelled out four times) on every search: 2.5 ms
    of client and 1.5 ms of server CPU per query, more than the search itself for most owners
    (bench/retrieval.py). Here psycopg binds server-side and prepares the statement, and the
    query vector goes as 1.5 kB of binary floats (the `::vector` casts give it its type).
    """
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:  # Django turns preparing off; its own cursors never prepare anyway
        raw.prepare_threshold = PREPARE_THRESHOLD
    cursor = _search_cursor(raw)
    # Binary results: psycopg's C loaders instead of Django's text timestamptz loader (pure Python,
    # 0.4 ms for a search's 100 timestamps). They give the session's zone, UTC (settings.USE_TZ),
    # as datetime.timezone.utc: what Django's loader gives.
    cursor.execute(sql, params, prepare=True, binary=True)
    return cursor.fetchall()


def _search_cursor(raw):
    """One cursor per database connection, with the search's own adapters (the vector dumper, jsonb
    as text), kept on Django's connection object until it reconnects: a new cursor copies the
    adapters and looks up a loader for each of the 45 result columns again, 0.2-0.3 ms of client
    CPU per search."""
    import psycopg
    from pgvector.psycopg.vector import VectorBinaryDumper

    kept = getattr(connection, "twin_search_cursor", None)
    if kept is not None and kept.connection is raw and not kept.closed:
        return kept
    cursor = psycopg.Cursor(raw)
    cursor.adapters.register_dumper(np.ndarray, VectorBinaryDumper)  # this cursor only
    cursor.adapters.register_loader("jsonb", _JsonbText)
    connection.twin_search_cursor = cursor
    return cursor


def ranked_candidates(owner_id: int, text: str | None, embedding, k: int, filters: Filters) -> list[tuple]:
    """Fused candidates, best first: (Match, similarities to every candidate, row values)."""
    sql, params = _prepared(owner_id, text, embedding, k, filters)
    found = _fetch(sql, params)
    words = re.findall(r"\w+", (text or "").lower())
    out = []
    for relevance, vector_rank, text_rank, text_score, distance, plan, lexemes, similarities, *values in found:
        match = Match(
            relevance=float(relevance),
            vector_rank=vector_rank,
            similarity=1.0 - float(distance),
            text_rank=text_rank,
            text_score=None if text_score is None else float(text_score),
            matched_terms=[_query_word(lexeme, words) for lexeme in lexemes],
            plan=plan,
        )
        out.append((match, np.asarray(similarities, dtype=np.float32), values))
    return out


def explain(owner_id: int, text: str | None, embedding, k: int = 10, filters: Filters | None = None) -> str:
    """EXPLAIN ANALYZE of the search statement under its settings (tests and the benchmark)."""
    sql, params = _prepared(owner_id, text, embedding, k, filters or Filters())
    params["vector"] = vector_literal(params["vector"])  # Django's cursor binds client-side, as text
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def _query_word(lexeme: str, words: list[str]) -> str:
    """The question's own word for a stemmed lexeme ("retri" -> "retries"), for display."""
    return next((w for w in words if w.startswith(lexeme)), lexeme)


def mmr(candidates: list[tuple], k: int) -> list[tuple]:
    """Maximal marginal relevance over the fused candidates, redundancy counted only for near-duplicates.

    Each candidate's redundancy (its highest similarity to a chosen one, when a near-duplicate) is
    kept up to date as candidates are chosen, instead of recomputed over every chosen one for
    every candidate in every round."""
    if not candidates:
        return []
    top = candidates[0][0].relevance
    relevance = [MMR_LAMBDA * (match.relevance / top) for match, _, _ in candidates]
    redundancy = [0.0] * len(candidates)
    chosen, remaining = [], list(range(len(candidates)))
    while remaining and len(chosen) < k:
        best = max(remaining, key=lambda i: (relevance[i] - (1 - MMR_LAMBDA) * redundancy[i], -i))
        chosen.append(best)
        remaining.remove(best)
        for i in remaining:
            similarity = candidates[i][1][best]
            if similarity >= NEAR_DUPLICATE_SIMILARITY and similarity > redundancy[i]:
                redundancy[i] = similarity
    return [candidates[i] for i in chosen]


def _loaded(model, names: tuple, row, alias: str) -> object:
    """What `model.from_db` builds (a saved instance, the other columns deferred), without
    `__init__`'s walk over every field: a search builds 40 instances, and that walk was 0.5 ms
    of the search's client CPU. Nothing listens to these models' post_init (no ImageField)."""
    instance = model.__new__(model)
    instance.__dict__.update(zip(names, row, strict=True))
    instance._state = ModelState()
    instance._state.adding, instance._state.db = False, alias
    return instance


def _attach(child, name: str, parent):
    """`child.<name> = parent` for a loaded pair whose foreign key already matches: the related
    caches only (also the reverse one of a one-to-one), without the descriptor's checks."""
    field = type(child)._meta.get_field(name)
    child._state.fields_cache[field.cache_name] = parent
    if field.one_to_one:
        parent._state.fields_cache[field.remote_field.cache_name] = child


def as_chunks(candidates: list[tuple], models: tuple) -> list:
    """Chunk instances with their document and source attached (no further queries), and
    `.match`; the columns left out (the vector, whole texts) load lazily if ever read.
    `models`: the classes of SHOWN_COLUMNS' tables, in its order (chunk, clean document,
    document, source)."""
    results, alias = [], connection.alias
    for match, _, values in candidates:
        instances, offset = [], 0
        for model, (_, names) in zip(models, SHOWN_COLUMNS, strict=True):
            row = values[offset : offset + len(names)]
            offset += len(names)
            instances.append(_loaded(model, names, row, alias))
        chunk, clean, document, source = instances
        if isinstance(chunk.metadata, str):  # jsonb comes as text (_JsonbText), parsed for the chosen only
            chunk.metadata = json.loads(chunk.metadata)
        _attach(document, "source", source)
        _attach(clean, "document", document)
        _attach(chunk, "clean_document", clean)
        chunk.match, chunk.distance = match, 1.0 - match.similarity
        results.append(chunk)
    return results
