"""The grounding check: is each sentence of an answer supported by the twin's own notes?

Runs offline with the packaged embedding model, after generation (so it costs no
time to first token). A sentence is supported by a note sentence when

- every number it states appears in that note (an invented "14" is never supported), and
- most of its content words are in the note, or it says the same thing in other
  words (embedding similarity): support = max over notes of the mean of the two.

Sentences with fewer than two content words ("Sure.", "Thanks!") are neutral: they
claim nothing and do not count toward the score. The score is the share of the
answer's content words that stand in supported sentences.
"""

import re
from dataclasses import asdict, dataclass, field

import numpy as np

from features.chunking import split_sentences

from .evidence import NoteSentences, content_words

SUPPORT_THRESHOLD = 0.6
NUMBER = re.compile(r"\d+(?:[.:,]\d+)*")


@dataclass
class SentenceCheck:
    text: str
    supported: bool | None  # None: neutral, claims nothing
    support: float
    chunk_id: int | None = None
    evidence: str = ""


@dataclass
class Grounding:
    score: float | None  # None when the answer claims nothing checkable
    sentences: list[SentenceCheck] = field(default_factory=list)
    quote: dict | None = None  # {"text", "chunk_id"}: the best note, shown when the answer is unsupported

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def unsupported(self) -> list[SentenceCheck]:
        return [s for s in self.sentences if s.supported is False]


def numbers_in(text: str) -> set[str]:
    return set(NUMBER.findall(text))


def _support(sentence: str, words: set[str], numbers: set[str], note: str, similarity: float) -> float:
    if not numbers <= numbers_in(note):
        return 0.0
    lexical = len(words & set(content_words(note))) / len(words)
    return (lexical + max(0.0, similarity)) / 2


def check_grounding(answer: str, notes: NoteSentences, embed, best_note=None) -> Grounding:
    """best_note: the top-ranked Evidence for the question, quoted when the answer is unsupported."""
    sentences = [s for line in answer.split("\n") for s in split_sentences(line)]
    claims = [(s, set(content_words(s))) for s in sentences]
    checkable = [s for s, words in claims if len(words) >= 2]
    vectors = embed(checkable) if checkable and notes.texts else np.zeros((0, 0))
    row_of = {sentence: row for row, sentence in enumerate(checkable)}
    checks, supported_weight, total_weight = [], 0, 0
    for sentence, words in claims:
        if len(words) < 2:
            checks.append(SentenceCheck(sentence, None, 0.0))
            continue
        best, best_index = 0.0, None
        if notes.texts:
            similarities = notes.vectors @ vectors[row_of[sentence]]
            numbers = numbers_in(sentence)
            for index, note in enumerate(notes.texts):
                support = _support(sentence, words, numbers, note, float(similarities[index]))
                if support > best:
                    best, best_index = support, index
        supported = best >= SUPPORT_THRESHOLD
        check = SentenceCheck(sentence, supported, round(best, 3))
        if best_index is not None and supported:
            check.chunk_id, check.evidence = notes.chunk_ids[best_index], notes.texts[best_index]
        checks.append(check)
        total_weight += len(words)
        supported_weight += len(words) if supported else 0
    score = round(supported_weight / total_weight, 3) if total_weight else None
    grounding = Grounding(score, checks)
    if best_note is not None and (score is None or score < 0.5):
        grounding.quote = {"text": best_note.text, "chunk_id": best_note.chunk_id}
    return grounding


# A capitalised word (or a run of them) that does not open a sentence: a name, a place, a product.
NAME_RUN = re.compile(r"(?<![.!?:\n\"“] )(?<!^)(?<![.!?:\n]\s)\b([A-Z][a-z]+(?:[ -][A-Z][a-z]+)*)")
NOT_NAMES = frozenset({"I", "I'm", "I've", "I'd", "I'll"})


def unsupported_specifics(text: str, sources: list[str]) -> list[dict]:
    """The numbers and names a draft states that none of the sources (its notes, its brief) holds:
    [{"text", "kind": "number" | "name", "start"}], in order. A small model invents such specifics
    freely ("in 2014", "my friend Sarah"); the page marks them for the owner to check."""
    held = " ".join(sources)
    held_numbers, held_lower = numbers_in(held), held.lower()
    found = []
    for match in NUMBER.finditer(text):
        if match.group() not in held_numbers:
            found.append({"text": match.group(), "kind": "number", "start": match.start()})
    for match in NAME_RUN.finditer(text):
        name = match.group(1)
        if name not in NOT_NAMES and name.lower() not in held_lower:
            found.append({"text": name, "kind": "name", "start": match.start(1)})
    return sorted(found, key=lambda item: item["start"])
