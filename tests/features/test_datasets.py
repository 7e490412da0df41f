"""Instruct datasets: deterministic, verbatim answers, a test split, content-hashed JSONL."""

import hashlib
import json
import random

import pytest

from features.actions import do_build_dataset_version
from features.cleaning import clean_text
from features.datasets import MIN_EXTRACT_CHARS, build_records, extracts_from, read_records, serialise
from features.models import DatasetVersion
from ingestion.connectors.base import extract_text
from tests.conftest import add_markdown_source

RECORD_KEYS = {"kind", "split", "instruction", "context", "answer", "document_id", "title"}


def essay(seed: int, sections: int = 4) -> str:
    rng = random.Random(seed)
    words = "garden tomato compost seedling watering mulch greenhouse harvest frost soil spade".split()
    parts = [f"# Garden diary {seed}"]
    for s in range(sections):
        parts.append(f"## Section {s} on {rng.choice(words)}")
        for p in range(3):
            sentence = " ".join(rng.choices(words, k=12))
            parts.append(f"Paragraph {p} of section {s}: I think the {sentence} matters. " * 3)
    return clean_text("\n\n".join(parts))  # datasets are built from cleaned text


DOCUMENTS = [(10 + i, f"Garden diary {i}", essay(i)) for i in range(5)]


def test_build_records_is_deterministic():
    assert build_records(DOCUMENTS) == build_records(DOCUMENTS)
    assert build_records(DOCUMENTS, seed=1) != build_records(DOCUMENTS, seed=0)


def test_records_have_the_contracted_fields():
    records = build_records(DOCUMENTS)

    assert records and all(set(r) == RECORD_KEYS for r in records if r["kind"] == "grounded")
    assert all(set(r) == RECORD_KEYS | {"form", "words"} for r in records if r["kind"] == "style")
    assert all(r["split"] in ("train", "test") for r in records)


def test_every_answer_is_verbatim_text_of_its_document():
    texts = {doc_id: text for doc_id, _, text in DOCUMENTS}

    records = build_records(DOCUMENTS)

    assert all(r["answer"] in texts[r["document_id"]] for r in records)
    assert all(len(r["answer"]) >= MIN_EXTRACT_CHARS for r in records if r["kind"] == "style")


def test_the_split_has_test_samples():
    records = build_records(DOCUMENTS)
    tests = [r for r in records if r["split"] == "test"]

    assert len(records) >= 20
    assert 1 <= len(tests) < len(records) / 2


def test_the_split_holds_out_whole_documents():
    records = build_records(DOCUMENTS)

    splits = {}
    for record in records:
        splits.setdefault(record["document_id"], set()).add(record["split"])
    assert all(len(s) == 1 for s in splits.values())
    test_documents = [doc for doc, s in splits.items() if s == {"test"}]
    assert 1 <= len(test_documents) < len(DOCUMENTS)


def test_two_samples_give_one_test_sample_and_a_single_sample_none():
    paragraph = "A paragraph long enough to be kept as an extract on its own. " * 4
    two = build_records([(1, "Two", f"# One\n\n{paragraph}\n\n# Two\n\n{paragraph}")])
    single = build_records([(1, "Single", paragraph)])

    assert sorted(r["split"] for r in two) == ["test", "train"]
    assert [r["split"] for r in single] == ["train"]


def test_instructions_never_contain_the_extract():
    records = build_records(DOCUMENTS)

    for record in records:
        assert record["answer"] not in record["instruction"]
        assert not any(line in record["instruction"] for line in record["answer"].split("\n\n"))


def test_instructions_never_contain_the_extract_when_the_title_is_the_first_paragraph():
    """A plain text file without a heading takes its first line (a whole paragraph) as title."""
    paragraph = (
        "I keep two hives on the flat roof of our building, and the bees fly over the traffic to find "
        "the linden trees in the park three streets away from here every single July, as long as the weather "
        "holds and the colony has wintered well."
    )
    title, text = extract_text(paragraph, "notes.txt")
    assert title == paragraph and len(paragraph) >= MIN_EXTRACT_CHARS

    records = build_records([(1, title, text)])

    assert records and all(r["answer"] not in r["instruction"] for r in records)


def test_writing_samples_have_background_from_the_same_document_but_never_their_answer():
    """A writing sample is the write template answered by the author's passage; its notes are two
    sentences of another passage of the same document, so the twin learns to write beside its notes,
    not to copy them (the grounded samples teach answering from notes)."""
    records = build_records(DOCUMENTS)
    writing = [r for r in records if r["kind"] == "style"]
    with_context = [r for r in writing if r["context"]]

    assert with_context and len(with_context) < len(writing)
    for record in with_context:
        assert len(record["context"]) <= 2 and all(note not in record["answer"] for note in record["context"])
        document = next(text for doc_id, _, text in DOCUMENTS if doc_id == record["document_id"])
        assert all(note in document for note in record["context"])
    assert all(r["form"] == "paragraph" and r["words"] >= 40 for r in writing)


def test_section_headings_shape_the_instruction():
    records = build_records(DOCUMENTS[:1])

    assert any("section 2 on" in r["instruction"] for r in records)
    assert all("“Garden diary 0”" in r["instruction"] for r in records if r["kind"] == "style")


def test_code_fences_never_become_answers():
    text = "# Tools\n\n```python\n" + "print('hello world')\n" * 30 + "```\n\n" + "Prose about my tools. " * 12

    extracts = extracts_from(1, "Tools", text)

    assert extracts and all("print(" not in e.text for e in extracts)


def test_serialised_jsonl_and_its_sha256_are_stable():
    body, sha = serialise(build_records(DOCUMENTS))

    assert serialise(build_records(DOCUMENTS)) == (body, sha)
    assert hashlib.sha256(body).hexdigest() == sha
    lines = body.decode().splitlines()
    assert len(lines) == len(build_records(DOCUMENTS))
    assert all(json.loads(line)["answer"] for line in lines)


def test_the_hash_changes_when_the_content_does():
    changed = [*DOCUMENTS[:-1], (DOCUMENTS[-1][0], DOCUMENTS[-1][1], DOCUMENTS[-1][2] + "\n\nA new line. " * 30)]

    assert serialise(build_records(changed))[1] != serialise(build_records(DOCUMENTS))[1]


@pytest.mark.django_db
def test_a_dataset_version_file_matches_its_recorded_hash_and_counts(owner):
    add_markdown_source(owner, "garden.md", essay(7))

    dataset = DatasetVersion.objects.get(owner=owner)

    body = dataset.file_path.read_bytes()
    assert hashlib.sha256(body).hexdigest() == dataset.sha256
    records = read_records(dataset.file_path)
    assert sum(r["split"] == "train" for r in records) == dataset.train_count > 0
    assert sum(r["split"] == "test" for r in records) == dataset.test_count > 0
    assert dataset.file_path.name == f"instruct-v1-{dataset.sha256[:12]}.jsonl"


@pytest.mark.django_db
def test_rebuilding_the_same_documents_reuses_the_version(owner):
    add_markdown_source(owner, "garden.md", essay(7))
    first = DatasetVersion.objects.get(owner=owner)

    again, created = do_build_dataset_version(owner)

    assert (again, created) == (first, False)
    assert DatasetVersion.objects.filter(owner=owner).count() == 1


@pytest.mark.django_db
def test_datasets_are_built_from_the_owners_documents_only(owner, other):
    add_markdown_source(owner, "garden.md", essay(7))
    add_markdown_source(other, "other.md", essay(8))

    records = read_records(DatasetVersion.objects.get(owner=owner).file_path)

    assert records and all("Garden diary 8" not in r["answer"] + "".join(r["context"]) for r in records)


def test_grounded_samples_ask_about_a_sentence_and_answer_it_from_the_notes():
    documents = [
        (1, "Sourdough", "I feed my starter at a 1:5:5 ratio by weight. It lives on the counter in winter."),
        (2, "Backups", "Every night at 02:30, cron runs a small shell script. I keep 14 daily dumps on a drive."),
    ]

    grounded = [r for r in build_records(documents) if r["kind"] == "grounded"]

    by_answer = {r["answer"]: r for r in grounded}
    ratio = by_answer["I feed my starter at a 1:5:5 ratio by weight."]
    assert ratio["instruction"] == "You feed your starter at a what ratio by weight?"
    assert ratio["answer"] in ratio["context"] and len(ratio["context"]) == 2
    distractor = next(c for c in ratio["context"] if c != ratio["answer"])
    assert distractor in documents[1][2]  # from the other document
    assert "It lives on the counter in winter." not in by_answer  # no number, cause or name: no question


def test_many_documents_build_in_linear_time():
    import time

    documents = [(i, f"Doc {i}", essay(i % 5, sections=2)) for i in range(400)]
    started = time.perf_counter()
    records = build_records(documents)
    assert len(records) > 800 and time.perf_counter() - started < 20


def test_grounded_questions_are_ones_a_reader_would_ask():
    """The gate's held-out questions come from these: no "What do you say about The?" and no question
    made of the author's own rhetorical question."""
    from features.grounded_samples import fact_sentences, question_for

    text = (
        "It rained for a week. Finally: The Carrow bridge opened in spring and I crossed it daily. "
        "Is it mind-boggling that all of the above inferences come from 3 samples? "
        "I walked with Sarah along the canal every Sunday morning."
    )
    questions = [question_for(s) for s in fact_sentences(text)]

    assert "What do you say about Sarah?" in questions
    assert not any(q.endswith(("about The?", "about Finally?")) for q in questions)
    assert not any("mind-boggling" in q for q in questions)
