"""Evidence: the few sentences of a twin's own writing that answer a question.

A 135M model drowns in three whole 256-token chunks and answers from its prior
instead. Given the question's best sentences instead (a short prompt, inside a
token budget), it can be steered to state them (see chat/steering.py). The same
selection builds the grounded training samples, so training and serving see notes
of the same shape.

Sentences are ranked by embedding similarity to the question plus word overlap
(a light stemmer: "nightly" meets "night"), plus a small bonus when the sentence holds
what the question asks for (a quantity, a reason, a name); lines that are mostly symbols
(a cron line, a shell command) rank below prose.
"""

import re
from dataclasses import dataclass

import numpy as np

from .chunking import split_sentences

MIN_SENTENCE_CHARS = 12
LEXICAL_WEIGHT = 0.3
SYMBOL_PENALTY = 0.5  # a line under PROSE_SHARE letters and spaces
PROSE_SHARE = 0.8
# A question that asks for a quantity, a time or a date wants a sentence that states one.
QUANTITY_QUESTION = re.compile(
    r"\b(how (many|much|long|far|old|often|big|fast|tall|heavy|wide|late|early)|when|"
    r"what (time|year|date|day|month|ratio|size|percentage|number|temperature|limit|age))\b|\blimit\b",
    re.IGNORECASE,
)
# Digits, or number and time words ("one" is left out: it is more often a pronoun).
QUANTITY = re.compile(
    r"\d|\b(two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|"
    r"thousand|dozen|twice|daily|weekly|monthly|yearly|noon|midnight)\b",
    re.IGNORECASE,
)
ANSWER_TYPE_BONUS = 0.3
# The same for the other common answer types: a reason, and a name (a person, place or thing).
REASON_QUESTION = re.compile(r"^\s*why\b|\bwhat (made|makes|was the reason)|\bthe reason\b", re.IGNORECASE)
REASON = re.compile(r"\b(because|so that|since|in order to|which is why|the reason)\b", re.IGNORECASE)
NAME_QUESTION = re.compile(
    r"^\s*(who|whose|where|which)\b|\bwhat (was|is) (the|its|his|her|their) name\b|\bcalled\b", re.IGNORECASE
)
NAME = re.compile(r"(?<=[a-z,;] )[A-Z][a-z]+")  # a capitalised word inside a sentence
ANSWER_TYPES = ((QUANTITY_QUESTION, QUANTITY), (REASON_QUESTION, REASON), (NAME_QUESTION, NAME))
STOPWORDS = frozenset(
    """a an the i me my mine you your yours we our us he she it its they them their of to in on at by for and or
    but is are was were be been am do does did have has had that this these those with as from what when where
    which who whom why how there here so not no""".split()
)


@dataclass
class Evidence:
    text: str
    chunk_id: int
    similarity: float  # embedding cosine to the question
    score: float  # the ranking score (similarity + overlap - symbol penalty)


def stem(word: str) -> str:
    for suffix in ("ing", "ly", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> list[str]:
    """Lower-cased, stemmed words and numbers without stopwords: what overlap is measured on."""
    return [stem(w) for w in re.findall(r"[a-z0-9]+", text.lower().replace("’", "'")) if w not in STOPWORDS]


def overlap(question: str, sentence: str) -> float:
    """The share of the question's content words that the sentence contains."""
    wanted = set(content_words(question))
    return len(wanted & set(content_words(sentence))) / len(wanted) if wanted else 0.0


def prose_share(text: str) -> float:
    return sum(ch.isalpha() or ch == " " for ch in text) / max(1, len(text))


def note_sentences(text: str) -> list[str]:
    """A chunk's sentences, hard-wrapped lines joined; headings and code blocks are not notes."""
    prose = "\n".join(line for line in text.split("\n") if not line.lstrip().startswith("#"))
    return [s for s in split_sentences(prose) if len(s) >= MIN_SENTENCE_CHARS and "```" not in s]


@dataclass
class NoteSentences:
    """The sentences of the retrieved chunks, embedded once: ranked for the prompt, then
    reused by the grounding check after the answer."""

    texts: list[str]
    chunk_ids: list[int]
    vectors: np.ndarray

    @classmethod
    def from_chunks(cls, chunks, embed) -> "NoteSentences":
        """chunks: objects with .pk and .text, best first. Duplicate sentences (chunk overlap) kept once."""
        texts, chunk_ids = [], []
        for chunk in chunks:
            for sentence in note_sentences(chunk.text):
                if sentence not in texts:
                    texts.append(sentence)
                    chunk_ids.append(chunk.pk)
        return cls(texts, chunk_ids, embed(texts))

    def rank(self, question: str, question_vector) -> list[Evidence]:
        """Every sentence scored for the question, best first."""
        if not self.texts:
            return []
        similarities = self.vectors @ np.asarray(question_vector, dtype=np.float32)
        wanted = [pattern for asks, pattern in ANSWER_TYPES if asks.search(question)]
        ranked = []
        for text, chunk_id, similarity in zip(self.texts, self.chunk_ids, similarities, strict=True):
            score = float(similarity) + LEXICAL_WEIGHT * overlap(question, text)
            if prose_share(text) < PROSE_SHARE:
                score -= SYMBOL_PENALTY
            if any(pattern.search(text) for pattern in wanted):
                score += ANSWER_TYPE_BONUS
            ranked.append(Evidence(text, chunk_id, float(similarity), score))
        return sorted(ranked, key=lambda e: -e.score)

    def select(self, question: str, question_vector, limit: int) -> list[Evidence]:
        """The best `limit` sentences, best first: the model copies from the first note most."""
        return self.rank(question, question_vector)[:limit]
