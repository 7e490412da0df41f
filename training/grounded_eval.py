"""The gate's grounding measure: how well a model answers the twin's held-out questions from notes.

Each question is a grounded (RAFT) sample of a held-out document (features/grounded_samples.py):
a question about one of the author's sentences, with notes that hold it among distractors.
The model answers it the way chat serves (the best notes for the question in the prompt,
steered decoding, a sentence per note), and the grounding check (features/grounding/check.py) scores
each answer: the share of its words in sentences the notes support. `facts` is the share
of answers that state the sentence the question was made from (all of its numbers, most of
its words), as bench/grounding.py counts them.
"""

import re
from dataclasses import dataclass

from features.grounding import generate
from features.grounding.check import check_grounding
from features.grounding.evidence import NoteSentences, content_words

from .samples import DataSplit, every_nth

FACT_SHARE = 0.6


@dataclass
class GroundedQuestion:
    question: str
    notes: list[str]  # the sample's context: the author's sentence among distractors
    fact: str  # the sentence the question was made from


@dataclass
class Note:  # the shape NoteSentences reads chunks in
    pk: int
    text: str


def heldout_questions(records: list[dict], split: DataSplit, count: int) -> list[GroundedQuestion]:
    """Grounded samples made from held-out documents (no run trained on them), spread over them."""
    held = [r for r in records if r.get("kind") == "grounded" and r.get("context") and _made_from_heldout(r, split)]
    return [GroundedQuestion(r["instruction"], r["context"], r["answer"]) for r in every_nth(held, count)]


def _made_from_heldout(record: dict, split: DataSplit) -> bool:
    """Its document is held out, or (a single-document twin) its sentence is in the held-out tail."""
    if record.get("document_id") in split.heldout_document_ids:
        return True
    return any(record["answer"][:200] in text for text in split.heldout_texts)


def states_fact(text: str, fact: str) -> bool:
    numbers = re.findall(r"\d+", fact)
    if any(n not in re.findall(r"\d+", text) for n in numbers):
        return False
    wanted = set(content_words(fact))
    return bool(wanted) and len(wanted & set(content_words(text))) >= FACT_SHARE * len(wanted)


def answer_from_notes(model, tokenizer, twin_name: str, item: GroundedQuestion, embed, config) -> tuple[str, float]:
    """(answer, grounding score) for one question, through the function chat serves
    (features.grounding.generate.answer_stream): the same note choice, similarity floor, lead-in,
    token budget and steering. `config` is the GroundingConfig chat uses."""
    notes = NoteSentences.from_chunks([Note(i, text) for i, text in enumerate(item.notes)], embed)
    choice = generate.choose_notes(notes, item.question, embed([item.question])[0], config)
    answer = generate.run_to_end(generate.answer_stream(model, tokenizer, twin_name, item.question, choice, config))
    if not choice.has_notes:
        return answer.text, 0.0
    score = check_grounding(answer.text, notes, embed).score
    return answer.text, 0.0 if score is None else score


def grounding_metrics(model, tokenizer, twin_name: str, questions: list[GroundedQuestion], embed, config) -> dict:
    """{"grounding": mean score, "facts": share stating the fact, "answers": [...]}, or Nones without questions."""
    if not questions:
        return {"grounding": None, "facts": None, "answers": []}
    answers, scores, facts = [], [], 0
    for item in questions:
        answer, score = answer_from_notes(model, tokenizer, twin_name, item, embed, config)
        answers.append(answer)
        scores.append(score)
        facts += states_fact(answer, item.fact)
    return {
        "grounding": round(sum(scores) / len(scores), 4),
        "facts": round(facts / len(questions), 4),
        "answers": answers,
    }
