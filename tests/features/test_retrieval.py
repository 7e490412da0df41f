"""Chunk.objects.for_user(user).search with an embedding: owner-scoped, best first, as good as exact search."""

import numpy as np
import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection

from accounts.models import User
from features import search
from features.models import Chunk
from tests.conftest import make_user
from tests.features.conftest import store_chunks, unit_vectors

pytestmark = pytest.mark.django_db


def exact_top_k(chunks, vectors: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    order = np.argsort(-(vectors @ query), kind="stable")[:k]
    return [chunks[i].pk for i in order]


def test_search_returns_the_owners_chunks_best_first_with_scores(owner):
    vectors = unit_vectors(20, seed=1)
    chunks = store_chunks(owner, vectors)
    query = vectors[7]

    results = Chunk.objects.for_user(owner).search(query, k=5)

    assert [c.pk for c in results] == exact_top_k(chunks, vectors, query, 5)
    assert results[0].pk == chunks[7].pk and results[0].score == pytest.approx(1.0, abs=1e-5)
    scores = [c.score for c in results]
    assert scores == sorted(scores, reverse=True)
    assert scores == pytest.approx([float(vectors[i] @ query) for i in np.argsort(-(vectors @ query))[:5]], abs=1e-5)


def test_search_never_returns_another_owners_chunk_even_an_exact_match(owner, other):
    mine = store_chunks(owner, unit_vectors(10, seed=2))
    query = unit_vectors(1, seed=3)[0]
    theirs = store_chunks(other, np.stack([query, query, query]))

    results = Chunk.objects.for_user(owner).search(query, k=20)

    assert {c.pk for c in results} == {c.pk for c in mine}
    assert all(c.owner_id == owner.pk for c in results)
    assert {c.pk for c in Chunk.objects.for_user(other).search(query, k=2)} < {c.pk for c in theirs}


def test_search_for_an_owner_without_chunks_returns_nothing(owner, other):
    store_chunks(other, unit_vectors(5, seed=4))

    assert Chunk.objects.for_user(owner).search(unit_vectors(1, seed=5)[0], k=5) == []


@pytest.mark.parametrize("nobody", [None, AnonymousUser(), User(username="unsaved")])
def test_search_requires_an_owner(nobody, other):
    store_chunks(other, unit_vectors(5, seed=6))

    with pytest.raises(ValueError, match="retrieval needs an owner"):
        Chunk.objects.for_user(nobody).search(unit_vectors(1, seed=7)[0], k=5)


def test_search_refuses_without_for_user(other):
    store_chunks(other, unit_vectors(5, seed=6))

    by_hand = Chunk.objects.filter(owner=other)
    for unscoped in (Chunk.objects, by_hand, by_hand.filter(index=1), Chunk.objects.all().filter(owner=other)):
        with pytest.raises(ValueError, match="retrieval needs an owner"):
            unscoped.search(unit_vectors(1, seed=7)[0], k=5)


def test_a_filtered_queryset_searches_only_its_own_chunks(owner, other):
    vectors = unit_vectors(30, seed=11)
    store_chunks(owner, vectors[:10], name="hives.md")
    wanted = store_chunks(owner, vectors[10:20], name="queens.md")
    store_chunks(other, vectors[20:], name="queens.md")  # another user's source of the same name
    source = wanted[0].clean_document.document.source

    for query in (vectors[0], "chunk"):  # nearest to a chunk of hives.md; words every chunk has
        results = (
            Chunk.objects.for_user(owner)
            .filter(clean_document__document__source=source)
            .search(query, k=5, embedding=vectors[0])
        )
        assert len(results) == 5 and {c.pk for c in results} <= {c.pk for c in wanted}

    # Chained further (exclude, order_by): the owner goes along and every filter still applies.
    narrower = Chunk.objects.for_user(owner).exclude(index__lt=5).order_by("-index")
    assert {c.index for c in narrower.search(vectors[0], k=20)} == {5, 6, 7, 8, 9}
    assert Chunk.objects.for_user(owner).filter(index=99).search(vectors[0], k=5) == []
    assert Chunk.objects.for_user(owner).none().search(vectors[0], k=5) == []


def test_a_filtered_search_never_reaches_another_users_chunks(owner, other):
    vectors = unit_vectors(20, seed=12)
    mine = store_chunks(owner, vectors[:10])
    theirs = store_chunks(other, vectors[10:])
    their_source = theirs[0].clean_document.document.source

    by_their_source = Chunk.objects.for_user(owner).filter(clean_document__document__source=their_source)
    assert by_their_source.search(vectors[15], k=5) == []
    widened = Chunk.objects.for_user(owner) | Chunk.objects.all()  # an OR cannot widen retrieval either
    assert {c.pk for c in widened.search(vectors[15], k=20)} == {c.pk for c in mine}


def test_a_filtered_search_past_the_exact_threshold_walks_the_hnsw_index(many_tenants, monkeypatch):
    monkeypatch.setattr("features.search.EXACT_SEARCH_MAX_ROWS", 10)
    monkeypatch.setattr("features.search.HNSW_FILTER_COST", 0)
    owner, chunks, vectors = many_tenants[4]
    odd = Chunk.objects.for_user(owner).filter(index__in=range(1, len(chunks), 2))

    results = odd.search(vectors[0], k=10)

    assert len(results) == 10 and all(c.index % 2 == 1 for c in results)  # iterative scan filled the list
    assert results[0].match.plan == "hnsw"
    odd_chunks = chunks[1::2]
    expected = exact_top_k(odd_chunks, vectors[1::2], vectors[0], 10)
    assert len({c.pk for c in results} & set(expected)) >= 9


def test_search_results_carry_their_document_without_extra_queries(owner, django_assert_num_queries):
    store_chunks(owner, unit_vectors(5, seed=8), name="hives.md")

    results = Chunk.objects.for_user(owner).search(unit_vectors(1, seed=9)[0], k=3)

    with django_assert_num_queries(0):
        titles = {c.document.title for c in results}

    assert titles == {"hives.md"}


@pytest.fixture
def many_tenants() -> list[tuple[User, list[Chunk], np.ndarray]]:
    """30 owners with 40 random unit vectors each: 1,200 chunks in one HNSW index."""
    tenants = []
    for i in range(30):
        owner, vectors = make_user(f"tenant{i:02d}"), unit_vectors(40, seed=100 + i)
        tenants.append((owner, store_chunks(owner, vectors), vectors))
    return tenants


def test_search_matches_exact_top_k_at_many_tenants(many_tenants):
    for owner, chunks, vectors in many_tenants[::3]:
        for query in unit_vectors(5, seed=owner.pk):
            expected = exact_top_k(chunks, vectors, query, 10)

            assert [c.pk for c in Chunk.objects.for_user(owner).search(query, k=10)] == expected


def hnsw_used(owner, query) -> bool:
    """Whether the statement's HNSW branch ran (the other one is skipped by its one-time filter)."""
    plan = search.explain(owner.pk, "chunk", query)
    line = next(line for line in plan.splitlines() if "chunk_embedding_hnsw" in line)
    return "never executed" not in line


def test_small_owners_get_an_exact_scan_and_large_ones_the_hnsw_index(many_tenants, monkeypatch):
    owner, _, vectors = many_tenants[4]
    # A test table is small enough for the planner to scan it rather than walk the index; on a
    # large table (bench/retrieval.py) it takes the index. Here the index is made the only way.
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    assert not hnsw_used(owner, vectors[0])  # 40 rows: every distance computed
    assert Chunk.objects.for_user(owner).search(vectors[0], k=3)[0].match.plan == "exact"

    monkeypatch.setattr("features.search.EXACT_SEARCH_MAX_ROWS", 10)
    monkeypatch.setattr("features.search.HNSW_FILTER_COST", 0)
    assert hnsw_used(owner, vectors[0])
    assert Chunk.objects.for_user(owner).search(vectors[0], k=3)[0].match.plan == "hnsw"


def test_every_connection_is_set_up_for_search_and_nothing_else(owner):
    store_chunks(owner, unit_vectors(5, seed=8))
    Chunk.objects.for_user(owner).search("chunk", k=3, embedding=unit_vectors(1, seed=9)[0])

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('hnsw.ef_search'), current_setting('hnsw.iterative_scan'), "
            "current_setting('jit'), current_setting('plan_cache_mode'), current_setting('enable_sort')"
        )
        assert cursor.fetchone() == ("100", "relaxed_order", "off", "force_generic_plan", "on")


def test_search_through_the_hnsw_index_still_fills_k_with_the_owners_nearest(many_tenants, monkeypatch):
    """Past the exact-scan threshold search walks the HNSW index and filters by owner; iterative
    scan must keep going until k of this owner's chunks are found."""
    monkeypatch.setattr("features.search.EXACT_SEARCH_MAX_ROWS", 10)
    monkeypatch.setattr("features.search.HNSW_FILTER_COST", 0)
    owner, chunks, vectors = many_tenants[4]

    found = 0
    queries = unit_vectors(10, seed=7)
    for query in queries:
        results = Chunk.objects.for_user(owner).search(query, k=10)
        assert len(results) == 10 and all(c.owner_id == owner.pk for c in results)
        found += len({c.pk for c in results} & set(exact_top_k(chunks, vectors, query, 10)))

    assert found / (10 * len(queries)) >= 0.9


def test_the_hnsw_cosine_index_exists_on_the_chunk_table():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'features_chunk'")
        indexes = dict(cursor.fetchall())

    assert "chunk_embedding_hnsw" in indexes
    definition = indexes["chunk_embedding_hnsw"].lower()
    assert "using hnsw" in definition and "vector_cosine_ops" in definition and "m='16'" in definition
