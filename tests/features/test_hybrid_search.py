"""Hybrid search with the real embedding model: rare words found, filters, near-duplicates, why."""

import datetime

import pytest
from django.utils import timezone

from features.models import Chunk
from ingestion.models import Document
from tests.features.conftest import store_texts

pytestmark = pytest.mark.django_db

INVOICES = [
    "I send every invoice as a PDF on the first working day of the month.",
    "Invoices to new clients carry a thirty day payment term and my bank details.",
    "An invoice number follows the year and a running count, so the sequence never repeats.",
    "Late invoices get one friendly reminder after a week and a phone call after two.",
    "My accountant files the invoices by client and by quarter for the tax return.",
    "I keep a spreadsheet listing which invoices are paid and which are still open.",
    "Clients abroad pay invoices in euros and the bank converts them at a poor rate.",
    "Every invoice lists the hours worked, the hourly rate and the VAT separately.",
    "Writing invoices is the part of freelancing I like least, so I batch them.",
    "I number draft invoices differently so they never get mixed up with sent ones.",
    "Invoice templates live in a shared folder so my partner can send them when I travel.",
]
ROOFER = (
    "The roofer finally came on Tuesday after three weeks of rain. He climbed up with two ladders, replaced "
    "the cracked slates above the bathroom, cleared the gutters full of moss and pointed out that the chimney "
    "flashing would need work before winter. We drank tea in the garden while the dog barked at his van. The "
    "leak over the bathroom is gone and the ceiling is drying out slowly; I will repaint it in spring. I paid "
    "him by bank transfer, reference 90217."
)
CODE = [
    "def load_settings(path):\n    with open(path) as handle:\n        return json.load(handle)",
    "def retry(call, attempts=3):\n    for attempt in range(attempts):\n        try:\n            return call()\n"
    "        except OSError:\n            time.sleep(2 ** attempt)",
    "class Cache:\n    def __init__(self):\n        self.entries = {}\n\n    def get(self, key):\n"
    "        return self.entries.get(key)",
    "def parse_frobnitz_header(raw):\n    version, _, rest = raw.partition(b':')\n    return int(version), rest",
]


@pytest.fixture
def ledger(owner):
    chunks = store_texts(owner, [*INVOICES[:6], ROOFER, *INVOICES[6:]], name="ledger.md")
    return chunks, next(c for c in chunks if "90217" in c.text)


def test_a_number_only_the_passage_names_is_found_where_vector_search_misses_it(owner, ledger):
    """The roofer's paragraph is about a roof; only its last word answers the question."""
    from features.embeddings import embed_query

    _, roofer = ledger
    question = "Which invoice had the number 90217?"

    vector_only = Chunk.objects.for_user(owner).search(embed_query(question), k=5)
    hybrid = Chunk.objects.for_user(owner).search(question, k=5)

    assert roofer.pk not in [c.pk for c in vector_only]
    found = next(c for c in hybrid if c.pk == roofer.pk)
    # Fused with its last place by meaning, after the two chunks that say both "invoice" and "number".
    assert hybrid.index(found) <= 2
    assert found.match.text_rank == 1 and found.match.matched_terms == ["90217"]


def test_a_code_symbol_finds_its_function(owner):
    store_texts(owner, INVOICES, name="ledger.md")
    code = store_texts(owner, CODE, name="tools.py", category="code")

    results = Chunk.objects.for_user(owner).search("what does parse_frobnitz_header return?", k=3)

    assert results[0].pk == code[3].pk
    assert "frobnitz" in results[0].match.matched_terms


def test_each_result_says_why_it_matched(owner, ledger):
    results = Chunk.objects.for_user(owner).search("late invoices and reminders", k=3)

    top = results[0]
    assert "reminder" in top.text
    assert top.match.vector_rank and top.match.text_rank
    assert set(top.match.matched_terms) >= {"late", "invoices", "reminders"}
    assert top.score == pytest.approx(top.match.similarity) and 0 < top.score <= 1
    relevances = [r.match.relevance for r in results]
    assert relevances == sorted(relevances, reverse=True)
    assert "meaning #" in top.match.summary and "words #" in top.match.summary


def test_a_question_of_stopwords_falls_back_to_vector_search(owner, ledger):
    results = Chunk.objects.for_user(owner).search("what is it?", k=3)

    assert len(results) == 3
    assert all(r.match.text_rank is None and r.match.vector_rank for r in results)


def test_near_duplicates_are_dropped(owner):
    paragraph = "Every invoice lists the hours worked, the hourly rate and the VAT separately."
    store_texts(owner, INVOICES, name="ledger.md")
    store_texts(owner, [paragraph + " ", "I repaint the ceiling every spring."], name="copy.md")

    results = Chunk.objects.for_user(owner).search("what does an invoice list: hours, rate, VAT?", k=4)

    assert sum(r.text.strip() == paragraph for r in results) == 1
    assert len(results) == 4


def test_filters_by_category_source_and_date(owner, other):
    ledger = store_texts(owner, INVOICES, name="ledger.md")
    code = store_texts(owner, CODE, name="tools.py", category="code")
    store_texts(other, CODE, name="theirs.py", category="code")
    old = timezone.now() - datetime.timedelta(days=400)
    Document.objects.filter(pk=ledger[0].clean_document.document_id).update(fetched_at=old)
    search = Chunk.objects.for_user(owner).search
    code_ids, ledger_ids = {c.pk for c in code}, {c.pk for c in ledger}

    assert {c.pk for c in search("invoice", k=20, category="code")} == code_ids
    assert {c.pk for c in search("invoice", k=20, category="article")} == ledger_ids
    assert {c.pk for c in search("retry", k=20, source=ledger[0].clean_document.document.source_id)} == ledger_ids
    assert {c.pk for c in search("invoice", k=20, until=(old + datetime.timedelta(days=1)).date())} == ledger_ids
    assert {c.pk for c in search("invoice", k=20, since=timezone.now().date())} == code_ids
    assert search("invoice", k=5, since=timezone.now().date() + datetime.timedelta(days=1)) == []


def test_a_filter_before_or_after_for_user_narrows_the_search(owner):
    ledger = store_texts(owner, INVOICES, name="ledger.md")
    code = store_texts(owner, CODE, name="tools.py", category="code")
    in_code = {"clean_document": code[0].clean_document}

    before = Chunk.objects.filter(**in_code).for_user(owner).search("invoice retry", k=20)
    after = Chunk.objects.for_user(owner).filter(**in_code).search("invoice retry", k=20)
    everything = Chunk.objects.for_user(owner).all().search("invoice retry", k=20)

    assert {c.pk for c in before} == {c.pk for c in after} == {c.pk for c in code}
    assert {c.pk for c in everything} == {c.pk for c in code + ledger}


@pytest.mark.django_db(transaction=True)
def test_search_after_the_database_connection_was_replaced(owner):
    """The search keeps one cursor per database connection: a new connection gets its own."""
    from django.db import connection

    store_texts(owner, INVOICES, name="ledger.md")
    first = Chunk.objects.for_user(owner).search("late invoices", k=3)
    connection.close()
    again = Chunk.objects.for_user(owner).search("late invoices", k=3)

    assert [c.pk for c in again] == [c.pk for c in first] and len(first) == 3
