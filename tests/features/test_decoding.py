"""The decoding processor on hand-made scores: what it favours, what it forbids, and what it leaves alone."""

import torch

from features.grounding.decoding import EvidenceSteering, StopAfterSentences, count_sentence_ends

PROMPT = [90, 91, 10, 11, 12, 13, 92]  # the prompt quotes the evidence 10 11 12 13


def scores_after(generated, **options):
    steering = EvidenceSteering([[10, 11, 12, 13]], len(PROMPT), **{"copy_bonus": 5.0, **options})
    ids = torch.tensor([PROMPT + generated])
    return steering(ids, torch.zeros(1, 100))[0]


def test_the_token_that_continues_the_evidence_gets_the_bonus():
    scores = scores_after([10, 11])
    assert scores[12] > 5.0 and scores[13] == 0.0 and scores[50] == 0.0


def test_a_longer_match_gets_a_larger_bonus():
    assert scores_after([10, 11, 12])[13] > scores_after([12])[13] > 0


def test_the_prompt_does_not_count_as_repetition():
    """transformers' own penalties would forbid copying the notes quoted in the prompt."""
    scores = scores_after([])
    assert (scores == 0).all()  # nothing generated yet: no penalty on the evidence tokens


def test_the_answer_may_not_repeat_its_own_four_gram():
    scores = scores_after([40, 41, 42, 43, 40, 41, 42])
    assert scores[43] == -float("inf")


# Two sentences, each tokenized mid-text and at the start of the answer; the best one first.
# Token 99 ends a sentence.
NOTES = [[10, 11, 12, 13, 14], [15, 11, 12, 13, 14], [20, 21, 22, 23, 24], [25, 21, 22, 23, 24]]


def opening_scores(generated):
    steering = EvidenceSteering(NOTES, len(PROMPT), copy_bonus=0.0, start_bonus=3.0, sentence_ends=frozenset({99}))
    return steering(torch.tensor([PROMPT + generated]), torch.zeros(1, 100))[0]


def test_the_answer_opens_like_the_best_note_and_not_mid_sentence():
    start, later = opening_scores([]), opening_scores([50])
    assert start[10] == start[15] == 3.0 and start[20] == start[25] == 0.0
    assert (later == 0).all()


def test_a_sentence_that_opens_like_a_note_is_held_to_the_notes_first_words():
    """ "One" (of "One came from a swarm…") went on "One of the other colonies": the start bonus
    carries the note's next tokens until OPENING_TOKENS, then copying is left to the copy bonus."""
    assert opening_scores([10])[11] == 3.0
    assert opening_scores([10, 11])[12] == 3.0
    assert (opening_scores([10, 11, 12]) == 0).all()  # three tokens in: the opening is done
    assert (opening_scores([10, 50]) == 0).all()  # it left the note: nothing to hold it to
    assert opening_scores([10, 11, 12, 13, 14, 99, 20])[21] == 3.0  # the second sentence too


def test_after_a_sentence_from_the_best_note_the_next_opens_like_the_second_note():
    scores = opening_scores([10, 11, 12, 13, 14, 99])
    assert scores[20] == scores[25] == 3.0 and scores[10] == 0.0


def test_after_a_sentence_of_its_own_the_answer_is_steered_to_the_best_note_again():
    scores = opening_scores([50, 51, 52, 53, 99])
    assert scores[10] == scores[15] == 3.0 and scores[20] == 0.0


def test_sentence_ends_ignore_decimals_and_abbreviation_like_dots():
    assert count_sentence_ends("I keep 1.5 kg. Then I stop.") == 2
    assert count_sentence_ends("Version 2.") == 0  # "2." may become "2.5"
    assert count_sentence_ends("It works! Does it?") == 2


def test_stopping_after_two_sentences():
    class Tokenizer:
        def decode(self, ids, skip_special_tokens=True):
            return " ".join({1: "One.", 2: "Two.", 3: "three"}[i] for i in ids.tolist())

    stop = StopAfterSentences(Tokenizer(), prompt_length=1, sentences=2)
    assert not stop(torch.tensor([[0, 1, 3]]), None)
    assert stop(torch.tensor([[0, 1, 2]]), None)


def test_a_note_that_repeats_itself_may_be_copied_but_not_repeated_again():
    """ "…by a larger one and then by a larger one still": the ban on repeating a four-gram must not
    cut the copy short, nor let the answer say it more often than the note does."""
    note = [10, 11, 12, 13, 10, 11, 12, 13, 14]
    steering = EvidenceSteering([note], len(PROMPT), copy_bonus=5.0)

    def next_scores(generated):
        return steering(torch.tensor([PROMPT + generated]), torch.zeros(1, 100))[0]

    assert next_scores([10, 11, 12, 13, 10, 11, 12])[13] > 5.0
    assert next_scores([10, 11, 12, 13, 10, 11, 12, 13, 10, 11, 12])[13] == -float("inf")


# Two notes (each in its two tokenizations) that share the four-gram 5 6 7 8, as ", and it was"
# may be in both; token 99 ends a sentence.
SHARING = [[30, 5, 6, 7, 8, 31], [32, 5, 6, 7, 8, 31], [40, 5, 6, 7, 8, 41], [42, 5, 6, 7, 8, 41]]


def sharing_scores(generated):
    steering = EvidenceSteering(SHARING, len(PROMPT), copy_bonus=5.0, start_bonus=3.0, sentence_ends=frozenset({99}))
    return steering(torch.tensor([PROMPT + generated]), torch.zeros(1, 100))[0]


def test_a_four_gram_the_notes_share_does_not_mark_the_second_note_as_said():
    """The second sentence opens like the second note after the first note was said, although the
    first holds a four-gram of it (the second note, which held the fact, was never reached)."""
    scores = sharing_scores([30, 5, 6, 7, 8, 31, 99])
    assert scores[40] == scores[42] == 3.0 and scores[30] == 0.0


def test_a_four_gram_in_each_of_two_notes_may_be_copied_from_each():
    """Said once with the first note, the shared four-gram may be said again with the second (the copy
    of the second note had been cut at it), but not a third time."""
    assert sharing_scores([30, 5, 6, 7, 8, 31, 99, 40, 5, 6, 7])[8] > 5.0
    assert sharing_scores([30, 5, 6, 7, 8, 31, 99, 40, 5, 6, 7, 8, 41, 99, 5, 6, 7])[8] == -float("inf")


# Two notes that open alike (tokens 60 61), as "The signal that…" and "The difficulty…" did; token 99
# ends a sentence and token 2 ends the answer.
ALIKE = [[60, 61, 62, 63, 64, 65], [60, 61, 62, 63, 64, 65], [60, 70, 71, 72, 73, 74], [60, 70, 71, 72, 73, 74]]


def alike_scores(generated):
    steering = EvidenceSteering(
        ALIKE, len(PROMPT), copy_bonus=0.0, start_bonus=3.0, sentence_ends=frozenset({99}), end_ids=(2,)
    )
    return steering(torch.tensor([PROMPT + generated]), torch.zeros(1, 100))[0]


def test_the_answer_may_not_end_while_a_note_is_unsaid():
    """With three notes the base model ended after the first ("The butter block is 500 g…"): the
    fact ("about 13 degrees") was in the third."""
    assert alike_scores([60, 61, 62, 63, 64, 65, 99])[2] == -float("inf")
    assert alike_scores([60, 61, 62, 63, 64, 65, 99, 60, 70, 71, 72, 73, 74, 99])[2] == 0.0  # all said
    assert alike_scores([])[2] == 0.0  # nothing generated yet: no reason to forbid it


def test_a_sentence_opening_like_two_notes_is_held_to_the_unsaid_one():
    """The second sentence began "The" and was held to the said note ("The signal that taught you
    this properly was indeed…") instead of the unsaid one that held the fact."""
    scores = alike_scores([60, 61, 62, 63, 64, 65, 99, 60])
    assert scores[70] == 3.0 and scores[61] == 0.0
