"""Retrieval for chat: the owner's best chunks for a question or a brief, and how they are cited."""

import re

from django.conf import settings

from features.embeddings import embed_query
from features.models import Chunk

EXCERPT_CHARS = 300
FOLLOW_UP = re.compile(r"\b(it|its|that|this|these|those|they|them|their|there|he|him|his|she|her)\b", re.IGNORECASE)


def is_follow_up(question: str) -> bool:
    """A question that leans on the one before ("and how long does that take?")."""
    return len(question.split()) < 4 or bool(FOLLOW_UP.search(question))


def searchable(owner, *, audience: bool = False):
    """The chunks an answer may draw on: all the owner's, or for the twin's audience (invited users,
    visitors) only those of the sources the owner shares with it."""
    chunks = Chunk.objects.for_user(owner)
    return chunks.audience() if audience else chunks


def retrieve(owner, question: str, history: list[dict], *, audience: bool = False):
    """(chunks, query, its vector): the owner's best chunks for the question (for an audience, of the
    shared sources only). A follow-up is also tried with the previous question in front, and the
    better-scoring list wins. A question on a new topic is not: the old topic would pull its retrieval back."""
    vector = embed_query(question)
    chunks = searchable(owner, audience=audience).search(question, k=settings.TWIN_RETRIEVAL_TOP_K, embedding=vector)
    previous = [turn["content"] for turn in history if turn["role"] == "user"]
    if previous and is_follow_up(question):
        joined = f"{previous[-1]} {question}"
        joined_vector = embed_query(joined)
        joined_chunks = searchable(owner, audience=audience).search(
            joined, k=settings.TWIN_RETRIEVAL_TOP_K, embedding=joined_vector
        )
        if joined_chunks and (not chunks or joined_chunks[0].score > chunks[0].score):
            return joined_chunks, joined, joined_vector
    return chunks, question, vector


def source_entry(chunk: Chunk) -> dict:
    """A citation: the document, where in it (an article's heading path, code's symbols), the excerpt."""
    document = chunk.clean_document.document
    return {
        "chunk_id": chunk.pk,
        "document_id": document.pk,
        "title": document.title,
        "headings": chunk.metadata.get("headings", []),
        "symbols": chunk.metadata.get("symbols", []),
        "url": document.url if document.url.startswith("http") else "",
        "score": round(chunk.score, 4),
        "excerpt": chunk.text[:EXCERPT_CHARS],
    }


def cited_first(chunks: list[Chunk], evidence) -> list[Chunk]:
    """The chunks the evidence came from lead the sources, best evidence first."""
    order = []
    for item in evidence:
        if item.chunk_id not in order:
            order.append(item.chunk_id)
    return sorted(chunks, key=lambda c: order.index(c.pk) if c.pk in order else len(order))


def with_titles(grounding: dict, chunks: list[Chunk]) -> dict:
    """Name the document behind each supporting chunk, for the page and the API."""
    titles = {c.pk: (c.clean_document.document_id, c.clean_document.document.title) for c in chunks}
    for item in [*grounding["sentences"], *([grounding["quote"]] if grounding["quote"] else [])]:
        if item.get("chunk_id") in titles:
            item["document_id"], item["title"] = titles[item["chunk_id"]]
    return grounding
