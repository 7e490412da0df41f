"""Unanswered questions: what the audience asked that got "no notes", grouped by topic."""

import numpy as np
import pytest

from chat import unanswered
from features.embeddings import embed
from tests.audience import NO_NOTES, exchange, grounded

pytestmark = pytest.mark.django_db

BEES_WINTER = [
    "How do your bees survive the winter?",
    "What do you feed the bees in winter?",
    "Do you wrap the hives when it gets cold in winter?",
]
SOURDOUGH = ["How often do you feed your sourdough starter?", "What flour do you use for sourdough bread?"]
SAILING = ["What kind of sails do you use?"]


def test_average_linkage_cuts_at_the_similarity_threshold():
    a, b, c = np.eye(3)
    near_a = (a + 0.2 * b) / np.linalg.norm(a + 0.2 * b)  # cosine 0.98 to a
    vectors = np.stack([a, c, near_a, b])

    assert unanswered.cluster(vectors, 0.5) == [[0, 2], [1], [3]]  # a and near_a; c and b alone
    assert unanswered.cluster(vectors, 0.99) == [[0], [1], [2], [3]]
    assert unanswered.cluster(vectors[:1], 0.5) == [[0]] and unanswered.cluster(vectors[:0], 0.5) == []


def test_a_group_is_named_by_its_most_central_question():
    vectors = embed(BEES_WINTER)

    middle = unanswered.central(vectors, [0, 1, 2])

    similarity = vectors @ vectors.T
    assert middle == int(np.argmax(similarity.mean(axis=1)))


def test_questions_without_notes_are_grouped_by_topic_the_most_asked_first(owner, other):
    for question in BEES_WINTER + SOURDOUGH + SAILING:
        exchange(owner, question, "I have no notes on that.", visitor="v1", grounding=NO_NOTES)
    exchange(owner, "How much honey in July?", visitor="v1", grounding=grounded(1.0))  # answered: not listed
    exchange(owner, "What do you feed the bees in winter, then?", grounding=NO_NOTES)  # the owner's own
    exchange(other, "How long is your boat?", visitor="v2", grounding=NO_NOTES)  # another twin's

    topics = unanswered.topics(owner)

    grouped = [sorted(q.text for q in t.questions) for t in topics]
    assert grouped == [sorted(BEES_WINTER), sorted(SOURDOUGH), SAILING]
    assert topics[0].name in BEES_WINTER and topics[1].name in SOURDOUGH and topics[2].name == SAILING[0]
    assert topics[0].name == "How do your bees survive the winter?"  # closest to the other two (0.86, 0.68)
    assert all(q.asker.startswith("Visitor #") for t in topics for q in t.questions)


def test_the_page_shows_the_topics_and_links_each_question(owner_client, owner):
    answer = exchange(owner, SOURDOUGH[0], "I have no notes on that.", visitor="v1", grounding=NO_NOTES)

    content = owner_client.get("/audience/unanswered/").content.decode()

    assert "How often do you feed your sourdough starter? <span" in content  # the topic's name
    assert f"/audience/conversations/{answer.conversation_id}/#answer-{answer.pk}" in content


def test_a_question_the_owner_answered_since_says_so(owner_client, owner):
    answer = exchange(owner, SOURDOUGH[0], "I have no notes on that.", visitor="v1", grounding=NO_NOTES)
    owner_client.post(f"/audience/answers/{answer.pk}/revise/", {"text": "Every morning, with rye."})

    [topic] = unanswered.topics(owner)

    assert topic.questions[0].revised is True
    assert "you answered it" in owner_client.get("/audience/unanswered/").content.decode()
