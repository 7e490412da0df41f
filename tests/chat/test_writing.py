"""Write mode: drafts in the owner's voice, the copy guard, specifics, edits that become corrections."""

import pytest
import torch

from chat.actions import do_ask, do_edit_draft, do_revise_answer, do_write
from chat.admission import ChatRefused
from chat.models import Draft, Message
from chat.writing import writing_request
from features.grounding.check import unsupported_specifics
from features.grounding.decoding import CopyGuard, CorpusIndex, copyable_token_ids
from features.models import Correction
from training.stylometry import copy_rate, training_ngrams

CORPUS = (
    "the bees fly over the traffic and find linden trees in the park three streets away from our roof "
    "and every evening they come back heavy with pollen"
)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from training import base_models

    return AutoTokenizer.from_pretrained(base_models.resolve("tiny"))


def test_the_copy_guard_forbids_completing_an_8_gram_of_the_corpus(tokenizer):
    """A decoder that copies greedily (the corpus's next token always wins) cannot copy 8 tokens in a row."""
    ids = tokenizer(CORPUS, add_special_tokens=False)["input_ids"]
    guard = CopyGuard(CorpusIndex(tokenizer, [CORPUS], 8), 0, frozenset())
    generated = ids[:7]
    for position in range(7, 20):
        scores = torch.zeros(1, len(tokenizer))
        scores[0, ids[position]] = 10.0  # the model wants to go on copying
        chosen = int(guard(torch.tensor([generated]), scores).argmax())
        generated.append(chosen)
    grams = {tuple(ids[k : k + 8]) for k in range(len(ids) - 7)}
    assert not any(tuple(generated[k : k + 8]) in grams for k in range(len(generated) - 7))
    # without the guard the same decoder recites the corpus
    assert copy_rate([tokenizer.decode(ids[:20])], training_ngrams([CORPUS])) == 1.0


def test_the_copy_guard_counts_words_as_the_copy_measure_does(tokenizer):
    """The corpus's words in another case and punctuation are other tokens but the same words: a
    decoder that wants to recite them gets no 8 of them in a row. Seen on Bierce's DATARY: the
    token guard alone let "high ecclesiastic official of the Roman Catholic Church whose important
    function" through, because the corpus has "Church, whose"."""
    corpus = (
        "DATARY, n. A high ecclesiastic official of the Roman Catholic Church, whose important function "
        "is to brand the Pope's bulls with the words Datum Romae."
    )
    wanted = tokenizer(
        " a high ecclesiastic official of the roman catholic church whose important function is to brand the "
        "pope's bulls with the words",
        add_special_tokens=False,
    )["input_ids"]
    filler = tokenizer(" and", add_special_tokens=False)["input_ids"][0]

    def recite(index):
        prompt, generated = [filler], []
        guard = CopyGuard(index, len(prompt), copyable_token_ids(tokenizer))
        for token in wanted:  # each step the model wants the corpus's next word, else " and"
            scores = torch.zeros(1, len(tokenizer))
            scores[0, filler], scores[0, token] = 5.0, 10.0
            generated.append(int(guard(torch.tensor([prompt + generated]), scores).argmax()))
        return tokenizer.decode(generated)

    index = CorpusIndex(tokenizer, [corpus], 8)
    assert copy_rate([recite(index)], training_ngrams([corpus])) == 0.0
    index.words_after.clear()  # the token table alone
    assert copy_rate([recite(index)], training_ngrams([corpus])) > 0.3


@pytest.mark.parametrize(
    ("corpus", "said", "capital"),
    [
        (
            "Upon the hill the lonely lantern burns\nAnd all the village turns",
            "Upon the hill the lonely lantern burns\n",
            "And",
        ),
        ("We walk the dog along the quay. Then the rain comes", "We walk the dog along the quay.", " Then"),
    ],
)
def test_a_capital_that_begins_a_line_or_a_sentence_is_no_name(tokenizer, corpus, said, capital):
    """Names may be copied, but a capital after a line break or a full stop begins a line or a
    sentence: exempting those let Bierce's verses through a line at a time."""
    guard = CopyGuard(CorpusIndex(tokenizer, [corpus], 8), 0, copyable_token_ids(tokenizer))
    token = tokenizer(capital, add_special_tokens=False)["input_ids"][0]
    assert token in copyable_token_ids(tokenizer)
    scores = torch.zeros(1, len(tokenizer))
    guard(torch.tensor([tokenizer(said, add_special_tokens=False)["input_ids"]]), scores)
    assert scores[0, token] == -float("inf")


def test_a_common_word_in_capitals_is_no_name(tokenizer):
    """With " with" banned, sampling moved to " With" (Bierce's adapter: "the thing With deviltry did
    so accord , That He'd"): a word the corpus writes in lower case is banned in any case."""
    corpus = "we walk the dog along the quay with the wind behind us and with the rain"
    guard = CopyGuard(CorpusIndex(tokenizer, [corpus], 8), 0, copyable_token_ids(tokenizer))
    scores = torch.zeros(1, len(tokenizer))
    guard(torch.tensor([tokenizer("we walk the dog along the quay", add_special_tokens=False)["input_ids"]]), scores)
    for variant in (" with", " With", " WITH"):
        assert scores[0, tokenizer(variant, add_special_tokens=False)["input_ids"][0]] == -float("inf"), variant


def test_numbers_and_names_may_still_be_copied(tokenizer):
    text = "we sold 40 jars to Gerald at the market"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    copyable = copyable_token_ids(tokenizer)
    guard = CopyGuard(CorpusIndex(tokenizer, [text], 4), 0, copyable)
    for position in range(3, len(ids)):
        scores = torch.zeros(1, len(tokenizer))
        guard(torch.tensor([ids[:position]]), scores)
        allowed = scores[0, ids[position]] != -float("inf")
        assert allowed == (ids[position] in copyable), tokenizer.decode([ids[position]])


def test_a_draft_never_says_a_4_gram_twice(tokenizer):
    guard = CopyGuard(None, 0, frozenset())
    said = tokenizer(" I keep my bees. I keep my", add_special_tokens=False)["input_ids"]
    scores = torch.zeros(1, len(tokenizer))
    guard(torch.tensor([said]), scores)
    assert scores[0, tokenizer(" bees", add_special_tokens=False)["input_ids"][0]] == -float("inf")


def test_specifics_the_notes_do_not_hold_are_marked():
    found = unsupported_specifics(
        "In 2019 I moved the hives to Leeds with Sarah Jones. We sold 40 jars.", ["We sold 40 jars in the park."]
    )
    assert [(f["text"], f["kind"]) for f in found] == [("2019", "number"), ("Leeds", "name"), ("Sarah Jones", "name")]


@pytest.mark.parametrize(
    "text,write",
    [
        ("Write a short LinkedIn post about why backups matter to you.", True),
        ("Draft a reply to this email: can we meet Tuesday?", True),
        ("A blog paragraph about winter cycling", True),
        ("What did you write about backups?", False),
        ("Why do you write small tools?", False),
        ("Tell me about yourself.", False),
    ],
)
def test_a_writing_request_is_recognised(text, write):
    assert writing_request(text) is write


def test_a_chat_request_to_write_is_written_and_kept_as_a_draft(owner, owner_source):
    answer = do_ask(owner, "Write a short post about keeping bees on a roof.")
    answer.refresh_from_db()
    assert answer.mode == Message.Mode.WRITE and answer.status == Message.Status.DONE
    draft = Draft.objects.for_user(owner).get()
    assert draft.message == answer and draft.status == Draft.Status.DONE
    assert draft.text and draft.text == draft.generated_text == answer.grounding["alternatives"][0]["text"]


def test_write_asks_for_alternatives_and_keeps_each(owner, owner_source):
    draft = do_write(owner, "why I tilt my hives forward", form="post", length="short", alternatives=2)
    draft.refresh_from_db()
    assert draft.status == Draft.Status.DONE and len(draft.alternatives) == 2
    assert all(alt["text"] and "copy_rate" in alt and "specifics" in alt for alt in draft.alternatives)
    corpus = training_ngrams([c.text for c in owner.clean_documents.all()])
    assert all(copy_rate([alt["text"]], corpus) in (None, 0.0) for alt in draft.alternatives)


def test_a_draft_copied_from_the_corpus_fails_the_copy_measure(owner, owner_source):
    """The measure the guard is held to: a recital scores 1.0, so a draft that copied would show it."""
    document = owner.clean_documents.get().text
    recital = " ".join(document.split()[10:40])
    assert copy_rate([recital], training_ngrams([document])) == 1.0


@pytest.mark.parametrize(
    "brief,form,length,alternatives",
    [("", "post", "short", 1), ("x", "sonnet", "short", 1), ("x", "post", "epic", 1), ("x", "post", "short", 4)],
)
def test_bad_write_requests_are_refused_and_store_nothing(owner, owner_source, brief, form, length, alternatives):
    with pytest.raises(ChatRefused):
        do_write(owner, brief, form, length, alternatives)
    assert not Draft.objects.exists() and not Message.objects.exists()


def test_an_edited_draft_becomes_a_correction_and_a_second_edit_replaces_it(owner, owner_source):
    draft = do_write(owner, "why bees need linden trees", form="paragraph")
    draft.refresh_from_db()
    twin_text = draft.generated_text
    do_edit_draft(draft, "Linden trees feed my bees in July; that is why I keep the hives on this roof.")
    correction = Correction.objects.for_user(owner).get()
    assert correction.origin == "draft" and correction.origin_id == draft.pk
    assert correction.rejected == twin_text and correction.chosen.startswith("Linden trees feed my bees")
    assert correction.prompt[-1]["role"] == "user" and "why bees need linden trees" in correction.prompt[-1]["content"]
    do_edit_draft(draft, "My own second try.")
    assert Correction.objects.for_user(owner).get().chosen == "My own second try."
    draft.refresh_from_db()
    assert draft.text == "My own second try." and draft.generated_text == twin_text


def test_a_revised_answer_becomes_a_correction(owner, owner_source):
    answer = do_ask(owner, "How much honey does a hive give?", mode="ask")
    answer.refresh_from_db()
    said = answer.content
    do_revise_answer(answer, "About twelve kilograms in a good July.")
    answer.refresh_from_db()
    assert answer.content == "About twelve kilograms in a good July." and answer.revised_from == said
    correction = Correction.objects.for_user(owner).get()
    assert correction.origin == "answer" and correction.rejected == said
    assert "How much honey" in correction.prompt[-1]["content"]
