"""What the audience asked that the notes could not answer ("no notes"), grouped by topic: what
the owner might write about next.

Grouping is average-linkage agglomerative clustering of the questions' embeddings (the same
MiniLM that embeds the notes) under cosine distance, cut where the questions of a group would be
less similar to each other, on average, than TWIN_UNANSWERED_SIMILARITY. Average linkage
keeps a group about one thing (single linkage would chain unrelated questions through
intermediate ones) and needs no number of groups chosen in advance. A group is named by its most
central question: the one with the highest mean similarity to the others.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from django.conf import settings
from django.core.cache import cache

from features.embeddings import embed, model_id

from .audience import member_name, no_notes_answers, with_question


@dataclass
class Question:
    answer_id: int
    conversation_id: int
    text: str
    asked_at: datetime
    asker: str
    revised: bool  # the owner has since written an answer of their own


@dataclass
class Topic:
    name: str
    questions: list[Question] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.questions)


def unanswered_questions(owner, limit: int | None = None) -> list[Question]:
    """The most recent audience questions whose answer was "no notes", newest first."""
    limit = limit or settings.TWIN_UNANSWERED_MAX_QUESTIONS
    answers = (
        with_question(no_notes_answers(owner))
        .select_related("conversation__asker")
        .order_by("-created_at", "-id")[:limit]
    )
    return [
        Question(
            answer_id=a.pk,
            conversation_id=a.conversation_id,
            text=a.question or "",
            asked_at=a.created_at,
            asker=member_name(a.conversation.asker, a.conversation.visitor),
            revised=bool(a.revised_from),
        )
        for a in answers
        if a.question
    ]


def cluster(vectors: np.ndarray, min_similarity: float) -> list[list[int]]:
    """Indexes of the rows grouped by average-linkage clustering of unit vectors, cut at the cosine
    distance 1 - min_similarity; the largest group first (ties: the group of the earliest row)."""
    if len(vectors) == 0:
        return []
    if len(vectors) == 1:
        return [[0]]
    from scipy.cluster.hierarchy import fcluster, linkage

    distances = np.clip(1.0 - vectors @ vectors.T, 0.0, 2.0)  # unit vectors: cosine distance
    condensed = distances[np.triu_indices(len(vectors), k=1)]
    labels = fcluster(linkage(condensed, method="average"), t=1.0 - min_similarity, criterion="distance")
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(label, []).append(index)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))


def central(vectors: np.ndarray, group: list[int]) -> int:
    """The member of the group with the highest mean similarity to the group (the medoid)."""
    similarities = vectors[group] @ vectors[group].T
    return group[int(np.argmax(similarities.mean(axis=1)))]


def _grouping(texts: list[str], min_similarity: float) -> list[tuple[int, list[int]]]:
    """(central index, member indexes) per group; cached: the same questions group the same way."""
    digest = hashlib.sha256("\x1f".join([model_id(), str(min_similarity), *texts]).encode()).hexdigest()
    key = f"chat:unanswered-topics:{digest}"
    grouping = cache.get(key)
    if grouping is None:
        vectors = embed(texts)
        grouping = [(central(vectors, group), group) for group in cluster(vectors, min_similarity)]
        cache.set(key, grouping, timeout=24 * 3600)
    return grouping


def topics(owner, min_similarity: float | None = None) -> list[Topic]:
    """The unanswered questions by topic, the most asked topic first."""
    if min_similarity is None:
        min_similarity = settings.TWIN_UNANSWERED_SIMILARITY
    questions = unanswered_questions(owner)
    if not questions:
        return []
    grouping = _grouping([q.text for q in questions], min_similarity)
    return [Topic(questions[middle].text, [questions[i] for i in group]) for middle, group in grouping]
