"""Style and copying measures for the evaluation gate: Burrows' Delta and an 8-gram copy rate.

Burrows' Delta compares texts by their use of the most frequent words (function
words mostly: "the", "of", "which"...), the classic authorship signal that topic
does not drive. Each word's relative frequency is turned into a z-score with the
mean and standard deviation it has across short segments of the author's own
writing, and Delta is the mean absolute difference of two texts' z-scores. Here
the generated text of one model is pooled (many short generations are too short
to measure alone) and compared with the author's held-out text: lower is closer.
"""

import math
from collections import Counter

from features.words import words

MFW = 100  # most frequent words
SEGMENT_WORDS = 200
COPY_N = 8


def _frequencies(tokens: list[str], vocabulary: list[str]) -> list[float]:
    counts = Counter(tokens)
    total = max(1, len(tokens))
    return [counts[w] / total for w in vocabulary]


class DeltaSpace:
    """The author's most frequent words and their per-segment mean and spread."""

    def __init__(self, author_texts: list[str], mfw: int = MFW, segment_words: int = SEGMENT_WORDS):
        tokens = [w for text in author_texts for w in words(text)]
        self.vocabulary = [w for w, _ in Counter(tokens).most_common(mfw)]
        segments = [tokens[i : i + segment_words] for i in range(0, len(tokens), segment_words)]
        segments = [s for s in segments if len(s) >= segment_words // 2] or [tokens]
        rows = [_frequencies(s, self.vocabulary) for s in segments]
        n = len(rows)
        self.means = [sum(col) / n for col in zip(*rows, strict=True)] if rows and self.vocabulary else []
        self.stds = []
        for j, mean in enumerate(self.means):
            variance = sum((row[j] - mean) ** 2 for row in rows) / max(1, n - 1)
            self.stds.append(math.sqrt(variance) or 1e-6)
        self.segments = n

    def z_scores(self, text: str) -> list[float]:
        freqs = _frequencies(words(text), self.vocabulary)
        return [(f - m) / s for f, m, s in zip(freqs, self.means, self.stds, strict=True)]

    def delta(self, text: str, reference: str) -> float | None:
        """Burrows' Delta between two texts (pooled); None when either has no words to measure."""
        if not self.vocabulary or not words(text) or not words(reference):
            return None
        a, b = self.z_scores(text), self.z_scores(reference)
        return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


def ngrams(tokens: list[str], n: int = COPY_N) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def training_ngrams(texts: list[str], n: int = COPY_N) -> set[tuple[str, ...]]:
    out: set[tuple[str, ...]] = set()
    for text in texts:
        out |= ngrams(words(text), n)
    return out


def copy_rate(generations: list[str], seen: set[tuple[str, ...]], n: int = COPY_N) -> float | None:
    """Share of the generated n-grams (word level, counted per generation) found verbatim in training text."""
    total = copied = 0
    for text in generations:
        grams = [tuple(g) for g in _windows(words(text), n)]
        total += len(grams)
        copied += sum(g in seen for g in grams)
    return copied / total if total else None


def _windows(tokens: list[str], n: int):
    return (tokens[i : i + n] for i in range(len(tokens) - n + 1))
