"""Word and chunk counts for hybrid search (features.LexemeCount, ChunkCount): kept exact by the
database on every write, and the search that reads them answers as the one that counts for itself
(a filtered search)."""

import pytest
from django.db import connection

from features.models import Chunk, ChunkCount, CleanDocument, LexemeCount
from tests.features.conftest import store_texts
from tests.features.test_hybrid_search import CODE, INVOICES, ROOFER

pytestmark = pytest.mark.django_db


def counted(owner) -> dict[str, int]:
    """The word counts recomputed from the chunks themselves, and the chunk count as the empty word."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT l, count(*) FROM features_chunk, unnest(tsvector_to_array(search_vector)) l "
            "WHERE owner_id = %s GROUP BY l",
            [owner.pk],
        )
        counts = dict(cursor.fetchall())
    chunks = Chunk.objects.filter(owner=owner).count()
    return counts | {"": chunks} if chunks else counts


def stored(owner) -> dict[str, int]:
    """What the triggers keep, in the same shape (a lexeme is never empty)."""
    counts = dict(LexemeCount.objects.for_user(owner).values_list("lexeme", "chunks"))
    chunks = ChunkCount.objects.for_user(owner).values_list("chunks", flat=True).first()
    return counts | {"": chunks} if chunks is not None else counts


def test_counts_follow_inserts_updates_and_deletes(owner, other):
    ledger = store_texts(owner, INVOICES, name="ledger.md")
    code = store_texts(owner, CODE, name="tools.py", category="code")
    store_texts(other, [ROOFER], name="roof.md")
    assert stored(owner) == counted(owner) and stored(owner)["invoic"] == len(INVOICES)
    assert stored(owner)[""] == len(INVOICES) + len(CODE)
    assert stored(other) == counted(other) and "invoic" not in stored(other)

    Chunk.objects.filter(pk=ledger[0].pk).update(text="The roofer sent an invoice for the slates, reference 90217.")
    assert stored(owner) == counted(owner) and stored(owner)["90217"] == 1

    Chunk.objects.filter(pk=code[3].pk).delete()
    assert "frobnitz" not in stored(owner)  # a word no chunk has any more leaves the table
    CleanDocument.objects.filter(pk=ledger[0].clean_document_id).delete()  # cascades to its chunks
    assert stored(owner) == counted(owner) and "invoic" not in stored(owner)
    assert stored(owner)[""] == len(CODE) - 1
    CleanDocument.objects.filter(pk=code[0].clean_document_id).delete()
    assert stored(owner) == counted(owner) == {}  # no chunks: no rows left either
    assert stored(other) == counted(other)


def test_an_unfiltered_search_ranks_as_a_search_that_counts_for_itself(owner):
    """A filter that keeps every chunk takes the counting path: the same results, for the same reasons."""
    store_texts(owner, [*INVOICES[:6], ROOFER, *INVOICES[6:]], name="ledger.md")
    store_texts(owner, CODE, name="tools.py", category="code")
    everything = Chunk.objects.for_user(owner).filter(pk__gt=0)

    for question in ("Which invoice had the number 90217?", "late invoices and reminders", "parse_frobnitz_header"):
        from_counts = Chunk.objects.for_user(owner).search(question, k=8)
        counting = everything.search(question, k=8)
        assert [c.pk for c in from_counts] == [c.pk for c in counting]
        assert [c.match for c in from_counts] == [c.match for c in counting]
        assert any(c.match.text_rank for c in from_counts)


def test_a_filtered_search_still_respects_its_filter(owner):
    """Counted among the filtered chunks: the ledger's invoices neither show up nor weigh."""
    ledger = store_texts(owner, INVOICES, name="ledger.md")
    code = store_texts(owner, CODE, name="tools.py", category="code")

    results = Chunk.objects.for_user(owner).filter(clean_document=code[0].clean_document).search("invoice retry", k=10)

    assert {c.pk for c in results} == {c.pk for c in code}
    assert results[0].pk == code[1].pk and results[0].match.text_rank == 1
    assert not {c.pk for c in results} & {c.pk for c in ledger}
