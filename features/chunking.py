"""Chunking that respects the embedding model's window.

Chunks pack whole sentences (a heading stays with the paragraph under it) up to a
target size, with one sentence of overlap, and never exceed the window: the book's
reference code cut 2,000-character chunks that MiniLM silently truncated at 256
tokens. Sentences longer than the window are split by words, and words longer than it
(a long URL, text without spaces) by characters.
"""

import re
from collections.abc import Callable

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9])")
TARGET_TOKENS = 180


def split_sentences(text: str) -> list[str]:
    pieces = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if paragraph.startswith("#") or "```" in paragraph:
            pieces.append(paragraph)  # headings and code blocks are kept whole
            continue
        pieces.extend(s.strip() for s in SENTENCE_END.split(paragraph.replace("\n", " ")) if s.strip())
    return pieces


def _split_word(word: str, count: Callable[[str], int], limit: int) -> list[str]:
    """A "word" past the window (a long URL, text without spaces such as Chinese): cut by characters."""
    parts = []
    while word:
        fits, too_long = 1, len(word) + 1  # the longest prefix that fits, by bisection
        while too_long - fits > 1:
            middle = (fits + too_long) // 2
            fits, too_long = (middle, too_long) if count(word[:middle]) <= limit else (fits, middle)
        parts.append(word[:fits])
        word = word[fits:]
    return parts


def _split_long(sentence: str, count: Callable[[str], int], limit: int) -> list[str]:
    parts, current = [], []
    for word in sentence.split():
        if current and count(" ".join([*current, word])) > limit:
            parts.append(" ".join(current))
            current = []
        if not current and count(word) > limit:
            *whole, word = _split_word(word, count, limit)
            parts.extend(whole)
        current.append(word)
    if current:
        parts.append(" ".join(current))
    return parts


def chunk_text(
    text: str, count_tokens: Callable[[str], int], *, max_tokens: int, target_tokens: int = TARGET_TOKENS
) -> list[str]:
    """Split text into chunks of at most max_tokens tokens as counted by count_tokens."""
    target = min(target_tokens, max_tokens)
    units = []
    for sentence in split_sentences(text):
        if count_tokens(sentence) > max_tokens:
            units.extend(_split_long(sentence, count_tokens, max_tokens))
        else:
            units.append(sentence)

    chunks, current = [], []
    for unit in units:
        candidate = "\n".join([*current, unit]) if current else unit
        if current and count_tokens(candidate) > target:
            chunks.append("\n".join(current))
            overlap = current[-1]  # one unit of overlap keeps a thought from being cut in two
            current = [overlap] if count_tokens(f"{overlap}\n{unit}") <= max_tokens else []
        current.append(unit)
    if current:
        chunks.append("\n".join(current))
    # Joining can merge word pieces differently than counted; never hand over an oversized chunk.
    safe = []
    for chunk in chunks:
        safe.extend(_split_long(chunk, count_tokens, max_tokens) if count_tokens(chunk) > max_tokens else [chunk])
    return safe
