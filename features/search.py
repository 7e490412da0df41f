"""Hybrid retrieval: pgvector cosine and PostgreSQL full-text search, fused, deduplicated.

Why hybrid: an embedding of a question smooths away what makes a passage unique (a
rare word, a number, a code symbol), so vector search alone can miss the one chunk
that names it. Full-text search finds it by the word itself. The two ranked lists are
fused by reciprocal rank fusion (RRF: 1/(60 + rank) summed over lists), which needs
no score calibration between cosine and ts_rank.

Why one statement: the app's cost was the path around the query, not the index, so
both candidate lists, the fusion, the cosine of every result and the pairwise
similarities MMR needs come back in one round trip; a second one loads the rows.

The plan is chosen, not left to the planner's guess (see `ranked_candidates`): an owner with
few rows (after filters) is answered by an exact scan of the owner's rows, a large
one by the HNSW index with iterative scan, so the owner filter still fills the list.
"""

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from .models import TEXT_SEARCH_CONFIG as TEXT_CONFIG

RRF_K = 60
CANDIDATES_PER_LIST = 40  # per list, before fusion
# Above this many candidate rows, HNSW beats an exact scan (bench/retrieval.py measures both).
EXACT_SEARCH_MAX_ROWS = 2000
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

    def sql(self, owner_id: int) -> tuple[str, list]:
        """A clause restricting chunks to matching documents ("" when there are no filters)."""
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


def count_rows(owner_id: int, filters: Filters) -> int:
    """The owner's candidate rows (after filters), counted up to EXACT_SEARCH_MAX_ROWS + 1.

    It picks the plan and is the N of the IDF. Counting stops at the threshold, so it costs
    an index-only scan of at most EXACT_SEARCH_MAX_ROWS + 1 entries whatever the owner's size.
    """
    clause, params = filters.sql(owner_id)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM features_chunk c WHERE c.owner_id = %s{clause} LIMIT %s) s",  # noqa: S608
            [owner_id, *params, EXACT_SEARCH_MAX_ROWS + 1],
        )
        return cursor.fetchone()[0]


def _statement(plan: str, with_text: bool, clause: str) -> str:
    # `+ 0` keeps the HNSW index out of the exact plan: the owner index finds the rows, a
    # top-N sort orders them, every distance computed (recall 1).
    order = "(c.embedding <=> %(vector)s::vector) + 0" if plan == "exact" else "c.embedding <=> %(vector)s::vector"
    vector_hits = f"""
        vector_hits AS (
            SELECT id, distance, row_number() OVER (ORDER BY distance, id) AS rank FROM (
                SELECT c.id, c.embedding <=> %(vector)s::vector AS distance FROM features_chunk c
                WHERE c.owner_id = %(owner)s{clause} ORDER BY {order} LIMIT %(n)s) s)"""  # noqa: S608 (module constants only; values are parameters)
    if with_text:
        # Each query word weighs by its rarity among this owner's chunks (BM25's IDF, counted through
        # the GIN index, capped): a rare word, a number or a code symbol outweighs common words,
        # which is what vector search misses. Words in DF_CAP or more chunks say little about
        # which passage is meant and are left to the vector side (which also bounds the scan).
        # A lexeme becomes a one-word tsquery by quoting: quote and backslash doubled.
        quoted = "(chr(39) || replace(replace(l, chr(92), repeat(chr(92), 2)), chr(39), repeat(chr(39), 2)) || chr(39))"
        query = f"""q AS MATERIALIZED (SELECT tsvector_to_array(to_tsvector('{TEXT_CONFIG}', %(text)s)) AS lexemes),
        counted AS MATERIALIZED (
            SELECT l, tq, (SELECT count(*) FROM (SELECT 1 FROM features_chunk c
                WHERE c.owner_id = %(owner)s AND c.search_vector @@ tq{clause} LIMIT {DF_CAP}) s) AS df
            FROM q, unnest(q.lexemes) l, LATERAL (SELECT {quoted}::tsquery AS tq) x),
        terms AS MATERIALIZED (
            SELECT l, tq, ln(1 + (greatest(%(rows)s - df, 0) + 0.5) / (df + 0.5)) AS idf
            FROM counted WHERE df > 0 AND df < {DF_CAP}),
        textq AS MATERIALIZED (SELECT string_agg(tq::text, ' | ')::tsquery AS tq FROM terms)"""  # noqa: S608 (module constants only; values are parameters)
        text_hits = f"""
        text_hits AS (
            SELECT id, score, row_number() OVER (ORDER BY score DESC, id) AS rank FROM (
                SELECT id, score, max(score) OVER () AS best FROM (
                    SELECT c.id, (SELECT sum(idf) FROM terms WHERE c.search_vector @@ terms.tq) AS score
                    FROM features_chunk c, textq
                    WHERE c.owner_id = %(owner)s AND c.search_vector @@ textq.tq{clause}
                    ORDER BY score DESC, c.id LIMIT %(n)s) s) scored
            WHERE score >= {TEXT_MIN_SHARE} * best)"""  # noqa: S608 (module constants only; values are parameters)
    else:
        query = "q AS MATERIALIZED (SELECT '{}'::text[] AS lexemes)"
        text_hits = "text_hits AS (SELECT NULL::bigint AS id, NULL::float AS score, NULL::bigint AS rank WHERE false)"
    return f"""
        WITH {query}, {vector_hits}, {text_hits},
        fused AS (
            SELECT coalesce(v.id, t.id) AS id, v.rank AS vector_rank, t.rank AS text_rank, t.score AS text_score,
                   coalesce(1.0 / ({RRF_K} + v.rank), 0) + coalesce(1.0 / ({RRF_K} + t.rank), 0) AS relevance
            FROM vector_hits v FULL JOIN text_hits t ON v.id = t.id
            ORDER BY relevance DESC, id LIMIT %(m)s),
        top AS MATERIALIZED (
            SELECT f.*, c.embedding, c.search_vector FROM fused f JOIN features_chunk c ON c.id = f.id)
        SELECT t.id, t.relevance, t.vector_rank, t.text_rank, t.text_score,
               t.embedding <=> %(vector)s::vector AS distance,
               ARRAY(SELECT l FROM unnest(q.lexemes) l WHERE l = ANY(tsvector_to_array(t.search_vector))),
               ARRAY(SELECT (1 - (t.embedding <=> o.embedding))::real FROM top o ORDER BY o.relevance DESC, o.id)
        FROM top t, q ORDER BY t.relevance DESC, t.id"""  # noqa: S608 (module constants only; values are parameters)


def ranked_candidates(owner_id: int, text: str | None, embedding, k: int, filters: Filters) -> list[tuple]:
    """Fused candidates, best first: (id, Match, similarities to every candidate)."""
    clause, filter_params = filters.sql(owner_id)
    rows = count_rows(owner_id, filters)
    # The plan is chosen here, not by the planner: exact for a small candidate set, else HNSW.
    plan = "exact" if rows <= EXACT_SEARCH_MAX_ROWS else "hnsw"
    n = max(CANDIDATES_PER_LIST, k)
    # The clause appears in both lists; named parameters keep its values in place.
    named_clause = clause
    params = {"vector": vector_literal(embedding), "owner": owner_id, "n": n, "m": max(2 * k, 10), "text": text}
    params["rows"] = rows
    for i, value in enumerate(filter_params):
        named_clause = named_clause.replace("%s", f"%(f{i})s", 1)
        params[f"f{i}"] = value
    sql = _statement(plan, bool(text and text.strip()), named_clause)
    with transaction.atomic(), connection.cursor() as cursor:
        # A plan with enable_sort off is costed past jit_above_cost: JIT compiling would take
        # seconds for a millisecond query.
        local = "SET LOCAL jit = off"
        if plan == "hnsw":
            # Iterative scan keeps walking the graph until the owner filter has left n rows;
            # enable_sort off keeps the planner from an owner-index-and-sort plan it underestimates.
            local += (
                f"; SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL hnsw.ef_search = {HNSW_EF_SEARCH}"
                "; SET LOCAL enable_sort = off"
            )
        cursor.execute(local)
        cursor.execute(sql, params)
        found = cursor.fetchall()
    words = re.findall(r"\w+", (text or "").lower())
    out = []
    for pk, relevance, vector_rank, text_rank, text_score, distance, lexemes, similarities in found:
        match = Match(
            relevance=float(relevance),
            vector_rank=vector_rank,
            similarity=1.0 - float(distance),
            text_rank=text_rank,
            text_score=None if text_score is None else float(text_score),
            matched_terms=[_query_word(lexeme, words) for lexeme in lexemes],
        )
        out.append((pk, match, np.asarray(similarities, dtype=np.float32)))
    return out


def _query_word(lexeme: str, words: list[str]) -> str:
    """The question's own word for a stemmed lexeme ("retri" -> "retries"), for display."""
    return next((w for w in words if w.startswith(lexeme)), lexeme)


def mmr(candidates: list[tuple], k: int) -> list[tuple]:
    """Maximal marginal relevance over the fused candidates, redundancy counted only for near-duplicates."""
    if not candidates:
        return []
    top = candidates[0][1].relevance
    chosen, remaining = [], list(range(len(candidates)))
    while remaining and len(chosen) < k:

        def gain(i):
            relevance = candidates[i][1].relevance / top
            redundancy = max((candidates[i][2][j] for j in chosen), default=0.0)
            return MMR_LAMBDA * relevance - (1 - MMR_LAMBDA) * (
                redundancy if redundancy >= NEAR_DUPLICATE_SIMILARITY else 0.0
            )

        best = max(remaining, key=lambda i: (gain(i), -i))
        chosen.append(best)
        remaining.remove(best)
    return [candidates[i] for i in chosen]
