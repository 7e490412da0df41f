"""The grounding benchmark's question sets (bench/grounding*/) are well formed: a fact that is
not in its document would count every answer as a miss, and a miss as the model's fault."""

import pytest

from bench.grounding import DEMO_DIR, DEV2_DIR, DEV3_DIR, DEV_DIR, EVAL_DIR, evaluation_set, read_questions

SETS = {"held-out": EVAL_DIR, "dev": DEV_DIR, "dev2": DEV2_DIR, "dev3": DEV3_DIR}
# dev3 predates the near misses: its 16 off-topic questions mix both kinds.
SIZES = {"held-out": (8, 16), "dev": (8, 16), "dev2": (8, 16), "dev3": (16, 0)}


@pytest.mark.parametrize("label", SETS)
def test_each_fact_is_in_the_document_that_answers_it(label):
    _, corpus, questions, offtopic, near_misses = evaluation_set(label, SETS[label])
    documents = {path.name: path.read_text() for path in corpus.iterdir()}
    assert len(questions) == 48 and (len(offtopic), len(near_misses)) == SIZES[label]
    assert all(q.endswith("?") for q in offtopic + near_misses)
    assert not set(near_misses) & {question for question, _, _ in questions}
    assert {name for _, name, _ in questions} == set(documents)
    for question, name, fact in questions:
        assert question.endswith("?"), question
        assert fact in documents[name], (question, fact)


def test_the_demo_questions_name_demo_documents():
    names = {path.name for path in (DEMO_DIR / "corpus").iterdir()}
    questions = read_questions(DEMO_DIR / "questions.txt")
    assert len(questions) == 8
    assert {name for _, name, _ in questions} <= names
