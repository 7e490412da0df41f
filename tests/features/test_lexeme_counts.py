"""Word and chunk counts for hybrid search (features.LexemeCount, ChunkCount): kept exact by the
database on every write, and the search that reads them answers as the one that counts for itself
(a filtered search)."""

import threading
import time

import pytest
from django.db import connection

from features.models import Chunk, ChunkCount, CleanDocument, LexemeCount
from tests.features.conftest import store_chunks, store_texts, unit_vectors, write_chunks
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


def replace_words(document, words: str):
    write_chunks(document, [f"{words} part {i}" for i in range(4)], unit_vectors(4, len(words)))


@pytest.mark.django_db(transaction=True)
def test_two_writers_of_one_owner_both_commit_and_the_counts_add_up(owner):
    """Feature runs replacing two documents of one owner at once (delete the old chunks, insert the
    new, in one transaction each, as do_build_features does), each new document with the words of
    the other's old one: without the owner's lock each would hold the counts the other needs next
    (a deadlock); with it the second waits for the first, and nothing is lost."""
    from django.db import connections, transaction

    documents = [store_chunks(owner, unit_vectors(1, 1), name=name)[0].clean_document for name in ("a", "b")]
    Chunk.objects.all().delete()
    replace_words(documents[0], "red apples")
    replace_words(documents[1], "green pears")
    started, errors = threading.Barrier(2), []

    def replace(document, words):
        try:
            started.wait(timeout=10)
            with transaction.atomic():
                Chunk.objects.filter(clean_document=document).delete()
                time.sleep(0.3)  # both delete before either inserts, unless one waits for the other
                replace_words(document, words)
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    swapped = zip(documents, ("green pears", "red apples"), strict=True)
    writers = [threading.Thread(target=replace, args=pair) for pair in swapped]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=30)

    assert errors == []
    assert stored(owner) == counted(owner)
    assert stored(owner)["appl"] == stored(owner)["pear"] == 4 and stored(owner)[""] == 8
