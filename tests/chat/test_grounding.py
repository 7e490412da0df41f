"""Grounded answers: evidence selection, steering, the grounding check, "no notes", history."""

import numpy as np
import pytest
from django.conf import settings
from django.test import override_settings

from chat.actions import do_answer, do_ask
from chat.models import Message, PromptTrace
from chat.serving import history_within_budget
from features.embeddings import embed, embed_query
from features.grounding.check import check_grounding
from features.grounding.evidence import NoteSentences

pytestmark = pytest.mark.django_db


class Note:
    def __init__(self, pk, text):
        self.pk, self.text = pk, text


BACKUPS = Note(
    1,
    "Every night at 02:30, cron runs a small shell script that calls pg_dump for each database.\n\n"
    "30 2 * * * /usr/local/bin/pg-nightly.sh >> /var/log/pg-nightly.log 2>&1\n\n"
    "I keep 14 daily dumps and 8 weekly dumps\non a second drive.",  # a hard-wrapped line, as in Markdown
)
GARDEN = Note(2, "I grow tomatoes against the south wall. The basil never survives July.")


def notes_for(*chunks):
    return NoteSentences.from_chunks(chunks, embed)


def test_the_sentence_that_states_a_time_is_chosen_over_a_cron_line():
    question = "What time do your nightly PostgreSQL backups run?"
    best = notes_for(BACKUPS, GARDEN).select(question, embed_query(question), 1)[0]
    assert best.text.startswith("Every night at 02:30") and best.chunk_id == 1


def test_a_quantity_question_prefers_the_sentence_with_a_number():
    question = "How many dumps do you keep?"
    best = notes_for(BACKUPS, GARDEN).select(question, embed_query(question), 1)[0]
    assert "14 daily dumps" in best.text


def test_a_supported_sentence_names_its_note_and_an_invented_number_is_flagged():
    notes = notes_for(BACKUPS, GARDEN)
    answer = "I keep 14 daily dumps and 8 weekly dumps. I also keep 90 monthly dumps in the cloud."

    grounding = check_grounding(answer, notes, embed)

    first, second = grounding.sentences
    assert first.supported and first.chunk_id == 1 and "14 daily dumps" in first.evidence
    assert second.supported is False and second.chunk_id is None
    assert grounding.unsupported == [second]
    assert 0.3 < grounding.score < 0.7


def test_an_unsupported_answer_carries_the_best_note_as_a_quote():
    notes = notes_for(BACKUPS, GARDEN)
    question = "How many dumps do you keep?"
    best = notes.select(question, embed_query(question), 1)[0]

    grounding = check_grounding("Frozen bread is a way of life for sailors.", notes, embed, best)

    assert grounding.score == 0.0
    assert grounding.quote == {"text": best.text, "chunk_id": 1}


def test_a_supported_answer_has_no_quote_and_small_talk_is_neutral():
    notes = notes_for(BACKUPS)
    grounding = check_grounding("Sure. Every night at 02:30, cron runs a small shell script.", notes, embed, None)
    assert [s.supported for s in grounding.sentences] == [None, True]
    assert grounding.score == 1.0 and grounding.quote is None


def test_an_answer_is_stored_with_its_grounding_and_evidence(owner_source, owner):
    answer = do_answer(owner, "How much honey does a hive give in July?")

    assert answer.grounding["sentences"] and answer.grounding["score"] is not None
    trace = PromptTrace.objects.get(message=answer)
    assert trace.grounding == answer.grounding
    assert any("twelve kilograms" in e["text"] for e in trace.evidence)
    assert len(trace.evidence) == settings.TWIN_EVIDENCE_SENTENCES  # the best sentences, not whole chunks
    assert "I check the weight of each hive" not in trace.prompt or "twelve kilograms" in trace.prompt


def test_a_question_outside_the_notes_gets_no_notes_instead_of_an_invention(owner_source, owner):
    answer = do_answer(owner, "What is your favourite film about space pirates?")

    assert answer.status == "done"
    assert answer.content == "I haven't written anything about that, so I'd rather not guess."
    assert answer.grounding["no_notes"] is True
    trace = PromptTrace.objects.get(message=answer)
    assert trace.prompt == "" and trace.tokens_generated == 0  # the model was not asked to make something up


@override_settings(TWIN_NOTES_MIN_SIMILARITY=-1.0)
def test_the_threshold_is_what_decides(owner_source, owner):
    answer = do_answer(owner, "What is your favourite film about space pirates?")
    assert not answer.grounding.get("no_notes") and PromptTrace.objects.get(message=answer).prompt


def test_earlier_turns_go_into_the_prompt(owner_source, owner):
    first = do_answer(owner, "Where do you keep your hives?")
    second = do_answer(owner, "How much honey do they give in July?", first.conversation)

    prompt = PromptTrace.objects.get(message=second).prompt
    assert prompt.index("Where do you keep your hives?") < prompt.index(first.content[:20])
    assert prompt.index(first.content[:20]) < prompt.index("How much honey do they give in July?")


def test_a_failed_answer_is_not_history(owner_source, owner):
    failed = do_ask(owner, "Where do you keep your hives?")
    Message.objects.filter(pk=failed.pk).update(status=Message.Status.FAILED, content="half an ans")
    second = do_answer(owner, "How much honey do they give?", failed.conversation)
    assert "half an ans" not in PromptTrace.objects.get(message=second).prompt


def test_history_keeps_the_most_recent_turns_within_the_budget():
    turns = [Message(role="user", content=f"question {i} " + "word " * 20) for i in range(6)]
    kept = history_within_budget(turns, lambda text: len(text.split()), budget=60)
    assert [t["content"].split()[1] for t in kept] == ["4", "5"]


def test_steering_makes_even_a_random_model_state_the_note(owner_source, owner):
    """The tiny test model is random: what it states comes from the decoding, which is the point."""
    answer = do_answer(owner, "How much honey does a hive give in July?")

    assert "about twelve kilograms" in answer.content
    assert answer.grounding["score"] == 1.0 and answer.grounding["quote"] is None
    assert answer.grounding["sentences"][0]["title"] == "Keeping bees on a city roof"


@override_settings(TWIN_COPY_BONUS=0.0, TWIN_START_BONUS=0.0)
def test_without_steering_the_random_model_is_flagged_and_the_note_is_quoted(owner_source, owner):
    answer = do_answer(owner, "How much honey does a hive give in July?")

    assert "twelve kilograms" not in answer.content
    assert answer.grounding["score"] < 0.5
    assert "twelve kilograms" in answer.grounding["quote"]["text"]


def test_a_follow_up_is_retrieved_with_the_question_before_it_and_a_new_topic_is_not(owner_source, owner):
    first = do_answer(owner, "Why do you tilt the hives forward?")
    follow_up = do_answer(owner, "How far do you tilt them?", first.conversation)
    new_topic = do_answer(owner, "What do you think of the opera in Vienna?", first.conversation)

    assert any("two centimetres" in e["text"] for e in PromptTrace.objects.get(message=follow_up).evidence)
    assert new_topic.grounding.get("no_notes") is True


def equal_embed(texts):
    """Every text equally close to every other: only word overlap and the answer-type cue rank."""
    return np.full((len(texts), 4), 0.5, dtype=np.float32)


@pytest.mark.parametrize(
    ("question", "plain", "typed"),
    [
        ("Why do you tilt the hives?", "I tilt the hives in autumn.", "I tilt the hives because damp must drain."),
        ("Who tunes the piano?", "The piano is tuned in spring.", "The piano is tuned by Agnes Moller."),
        ("How far is the walk?", "The walk is steep and rocky.", "The walk is 11 km and steep."),
        ("Why do you warm the room?", "I warm it up in the morning.", "Cold honey is thick, so it clings to the comb."),
        ("What do you call the big hive?", "The big hive is in the corner.", "I call the big hive Dividend."),
        ("At what time did it start?", "It started with 6 clients.", "It started at 11:40 in the rain."),
        ("How hot should the cream be?", "The cream costs 3 euros.", "The cream should be at 60 degrees."),
        # A short sentence with a price is prose, not a symbol line ("£" and "," once cost it 0.5).
        ("What did you pay for the bike?", "I paid for the bike in cash.", "It cost me £1,340."),
        ("How long did the firing last?", "The firing was hard work.", "It lasted 62 hours."),
    ],
)
def test_the_sentence_holding_what_the_question_asks_for_ranks_first(question, plain, typed):
    notes = NoteSentences.from_chunks([Note(5, f"{plain}\n{typed}")], equal_embed)
    assert notes.select(question, np.full(4, 0.5, dtype=np.float32), 1)[0].text == typed


@pytest.mark.parametrize(
    ("question", "plain", "typed"),
    [
        # A measure named by its noun asks for a quantity as "how many" does.
        ("What humidity did the meter show?", "The meter hung by the door.", "It read 82 per cent."),
        ("What were you paying for the beans?", "I roast the beans on Fridays.", "I was paying £17 a kilo."),
        ("Why do you use paste?", "I keep the paste in a jar.", "The answer is that it comes off with water."),
        # "since" telling when is no reason.
        (
            "Why do you carry a fork?",
            "I have carried my fork since I was nineteen.",
            "A fork never drifts, so I trust it.",
        ),
    ],
)
def test_the_answer_type_outweighs_a_shared_word_and_the_better_chunk(question, plain, typed):
    """Two chunks, so that neither sentence follows the other: the typed one, from the later chunk,
    sharing no more of the question's words, still wins on what it holds."""
    notes = NoteSentences.from_chunks([Note(5, plain), Note(6, typed)], equal_embed)
    assert notes.select(question, np.full(4, 0.5, dtype=np.float32), 1)[0].text == typed


def test_a_sentence_of_the_best_chunk_beats_a_slightly_closer_one_from_a_later_chunk():
    def embed_closer_second(texts):  # the second chunk's sentence is 0.01 closer to the question
        return np.array([[1.0, 0.0], [0.9, 0.1]], dtype=np.float32)[: len(texts)]

    chunks = [Note(5, "The hives face west."), Note(6, "The hives face east.")]
    notes = NoteSentences.from_chunks(chunks, embed_closer_second)
    assert notes.rank("Which way do the hives face?", np.array([0.5, 0.6], dtype=np.float32))[0].chunk_id == 5


def test_a_sentence_that_asks_ranks_below_the_one_that_answers():
    notes = NoteSentences.from_chunks([Note(5, "Why not carbon? Steel takes the sting out of potholes.")], equal_embed)
    ranked = notes.rank("Why steel rather than carbon?", np.full(4, 0.5, dtype=np.float32))
    assert ranked[0].text == "Steel takes the sting out of potholes."


def embed_by_opening(rows: dict[str, list[float]]):
    """An embedder that gives each sentence the vector of the opening it starts with."""

    def embed_texts(texts):
        return np.array([next(v for k, v in rows.items() if t.startswith(k)) for t in texts], dtype=np.float32)

    return embed_texts


def test_the_sentence_after_the_one_that_sets_the_topic_gains_on_an_unrelated_one():
    """ "Tuesday was my slowest day. The bin lorries block Alder Street." The answer follows the
    sentence that restates the question, and is less like the question than chance sentences."""

    # question direction is (1, 0): topic 0.9, answer 0.3, other 0.4
    embed_topic_first = embed_by_opening({"Tuesday": [0.9, 0.44], "The bin": [0.3, 0.95], "I grow": [0.4, 0.92]})
    chunks = [Note(5, "Tuesday was my slowest day. The bin lorries block Alder Street."), Note(6, "I grow leeks.")]
    notes = NoteSentences.from_chunks(chunks, embed_topic_first)
    ranked = notes.rank("What made Tuesday slow?", np.array([1.0, 0.0], dtype=np.float32))
    assert [e.text[:7] for e in ranked] == ["Tuesday", "The bin", "I grow "]


def test_the_answer_after_a_reported_question_ranks_above_the_question():
    """ "People ask why…" restates the question as "Why not…?" does; the answer is the sentence after it."""
    notes = NoteSentences.from_chunks([Note(5, "People ask why I tilt the hives. Damp must drain out.")], equal_embed)
    ranked = notes.rank("Why tilt the hives?", np.full(4, 0.5, dtype=np.float32))
    assert ranked[0].text == "Damp must drain out."


def test_the_answer_after_a_reported_question_beats_a_closer_unrelated_sentence():
    # question direction is (1, 0): the reported question 0.9, its answer 0.2, an unrelated sentence 0.4
    embed_question_first = embed_by_opening({"People": [0.9, 0.44], "It comes": [0.2, 0.98], "I grow": [0.4, 0.92]})
    chunks = [Note(5, "People often ask why I use paste. It comes off with warm water."), Note(6, "I grow leeks.")]
    notes = NoteSentences.from_chunks(chunks, embed_question_first)
    ranked = notes.rank("Why do you use paste?", np.array([1.0, 0.0], dtype=np.float32))
    assert [e.text[:8] for e in ranked] == ["People o", "It comes", "I grow l"]


def test_titles_and_bylines_are_not_notes():
    """ "Who wrote Moby-Dick?" came close to "By Cyril Oakenshaw", which answers nothing."""
    notes = notes_for(Note(7, "Why semaphores fail safe\nBy Cyril Oakenshaw\n\nThe arm falls to danger by gravity."))
    assert notes.texts == ["The arm falls to danger by gravity."]


def test_a_title_in_title_case_is_not_a_note_at_any_length():
    """A plain-text post keeps its title as its first line; "the Corn Exchange grand" questions
    landed on it. A list line without a full stop is still a note."""
    text = "The Grand in the Corn Exchange\n\nBy Ambrose Tillet\n\nI tune it at 440 hertz.\n\n- Saturday: 164 cups sold"
    assert notes_for(Note(9, text)).texts == ["I tune it at 440 hertz.", "- Saturday: 164 cups sold"]


PLONGEUR = "The answer came from our plongeur, a retired fisherman called Gilles Armand."
POINTED_OUT = "He pointed out that every tray I had opened at twelve minutes had collapsed."


def test_a_note_that_opens_with_he_comes_after_the_sentence_that_names_him():
    notes = NoteSentences.from_chunks([Note(8, f"Choux rises on steam. {PLONGEUR} {POINTED_OUT}")], equal_embed)
    question = "Who worked out why the opened trays collapsed?"
    chosen = notes.select(question, np.full(4, 0.5, dtype=np.float32), 2)
    assert [e.text for e in chosen] == [PLONGEUR, POINTED_OUT]


def test_a_question_that_does_not_ask_who_keeps_its_two_best_notes():
    """The sentence that names "he" would push the second best note out, and with it the fact."""
    named = "I start them at Old Gideon."
    tree = "He is the tree everyone comes to see, a perry pear at the top of the orchard."
    year = "The tithe records show he was planted in 1887."

    # question direction is (1, 0): tree 0.9, year 0.3, named 0.2
    embed_tree_first = embed_by_opening({"I start": [0.2, 0.98], "He is": [0.9, 0.44], "The tithe": [0.3, 0.95]})
    notes = NoteSentences.from_chunks([Note(8, f"{named} {tree} {year}")], embed_tree_first)
    question_vector = np.array([1.0, 0.0], dtype=np.float32)
    chosen = notes.select("In what year was your old perry pear planted?", question_vector, 2)
    assert [e.text for e in chosen] == [tree, year]
    chosen = notes.select("Which tree does everyone come to see?", question_vector, 2)
    assert [e.text for e in chosen] == [named, tree]


def test_the_sentence_before_a_chunk_that_opens_with_he_comes_from_the_chunk_before(owner):
    """Chunks overlap or split at a sentence: the name is only in the chunk before, which
    retrieval did not return."""
    from features.models import Chunk
    from tests.features.conftest import store_texts

    before, after = store_texts(owner, [f"Choux rises on steam. {PLONGEUR} {POINTED_OUT}", f"{POINTED_OUT} Of course."])
    scoped = Chunk.objects.for_user(owner)
    assert scoped.lead_ins([before]) == {}  # it opens with no pronoun: no query at all
    assert scoped.lead_ins([after]) == {after.pk: PLONGEUR}
    notes = NoteSentences.from_chunks([after], equal_embed, scoped.lead_ins([after]))
    question = "Who worked out why the opened trays collapsed?"
    assert [e.text for e in notes.select(question, np.full(4, 0.5, dtype=np.float32), 2)] == [PLONGEUR, POINTED_OUT]


def test_the_answer_has_room_for_long_notes():
    """Copying a long first note used the whole budget before the second note (the fact was there)."""
    from chat.llm import get_models
    from features.grounding.config import GroundingConfig
    from features.grounding.generate import answer_budget

    models = get_models()
    models.prepare(None)
    config = GroundingConfig(max_new_tokens=40)

    def tokens(text):
        return len(models.tokenizer(text, add_special_tokens=False)["input_ids"])

    def budget(notes):
        return answer_budget(models.tokenizer, notes, config)

    short = ["I keep 14 daily dumps.", "Backups run at 02:30."]
    assert budget(short) == 40
    long = [" ".join(["the filters were blocked again"] * 8), "I changed them after 38 hours."]
    assert 40 < budget(long) == tokens(" ".join(long)) + 16 < 80
    assert budget([" ".join(["the filters were blocked again"] * 30)]) == 80
