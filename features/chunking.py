"""Chunking per category, within the embedding model's window, from one tokenization.

Every chunk is an exact slice of the cleaned text, so newlines and indentation (code)
survive, and together the chunks cover every non-blank character of the text.

How each category is cut (each level is used only where the one above leaves a piece
past the window, and small neighbours are packed back together up to TARGET_TOKENS):
- article: sections by Markdown heading, then paragraphs, then sentences (a fenced
  or indented code block by lines), then words, then characters. One short unit of
  overlap (at most OVERLAP_TOKENS) carries a thought across a cut. Metadata:
  `headings`, the heading path of the section ("Keeping bees" > "Why a roof").
- code: Python by `ast` (each top-level function or class, comments and decorators
  with it; a class past the window by its methods), other languages by blank-line
  blocks, then lines; a chunk starts at the start of a line. No overlap. Metadata: `path`, `symbols`, `lines` (1-based).
- post: kept whole when it fits (most do), else like an article without headings.
  Rule for hashtags, mentions and URLs: they stay in the text as the author wrote them
  (they carry topic and addressee, and the twin should learn to use them); cleaning
  already dropped URL query strings and fragments (tracking, no meaning) and
  normalised styled Unicode letters (NFKC: "𝐛𝐨𝐥𝐝" is "bold"). The chunk's hashtags and
  mentions are listed in its metadata (`hashtags`, `mentions`) for search results.

Tokenize once: the text is tokenized a single time (token offsets, `TokenSpans`), and
the token count of any span is read from the offsets. Spans are cut only at
whitespace or punctuation, where WordPiece restarts, so that count is the tokenizer's
own; a word longer than the window is cut into pieces of at most window - 2
characters, which WordPiece cannot turn into more tokens than characters.
"""

import ast
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

from syntok import segmenter

TARGET_TOKENS = 180
OVERLAP_TOKENS = 48
SPECIAL_TOKENS = 2  # [CLS] and [SEP], which the model adds to every input

SENTENCE_FINAL = (".", "!", "?", "…")
CLOSERS = "\"'”’)]"
PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
# The title runs to the line's last character that is not a space, tab or "#" (the closing "##"
# trimmed); a line of only those keeps one, as the lazy "(.+?)[ \t#]*$" did. Written so that nothing
# is re-read: the lazy form tried the rest of the line after every character ("# a # # # …x": quadratic).
HEADING = re.compile(r"^(#{1,6})[ \t]+((?:[ \t#]*+[^ \t#\n])++|[ \t#])[ \t#]*+$", re.MULTILINE)
HASHTAG = re.compile(r"(?<![\w#])#(\w+)")
MENTION = re.compile(r"(?<![\w@])@(\w+)")
# Code in a file with one of these suffixes is not tried as Python (anything else is, and
# falls back to blocks when it does not parse: uploads of code arrive as .txt or .md).
OTHER_LANGUAGES = (
    ".js",
    ".ts",
    ".jsx",
    ".tsx",
    ".go",
    ".rs",
    ".java",
    ".kt",
    ".c",
    ".h",
    ".cc",
    ".cpp",
    ".hpp",
    ".cs",
    ".rb",
    ".php",
    ".swift",
    ".scala",
    ".sh",
    ".sql",
    ".lua",
    ".r",
    ".m",
    ".pl",
    ".hs",
    ".ex",
    ".clj",
    ".dart",
)


@dataclass(frozen=True)
class Piece:
    start: int
    end: int
    text: str
    token_count: int
    metadata: dict = field(default_factory=dict)


class TokenSpans:
    """Token counts of any span of one text, from a single tokenization's character offsets."""

    def __init__(self, offsets: list[tuple[int, int]]):
        tokens = [(start, end) for start, end in offsets if end > start]
        self.starts = [start for start, _ in tokens]
        self.ends = [end for _, end in tokens]

    def count(self, start: int, end: int) -> int:
        """Tokens lying within [start, end), plus the special tokens."""
        inside = bisect_right(self.ends, end) - bisect_left(self.starts, start)
        return max(inside, 0) + SPECIAL_TOKENS


def _trimmed(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if end > start else None


def _trimmed_lines(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Like _trimmed, but the first line keeps its indentation (code)."""
    span = _trimmed(text, start, end)
    if span:
        line_start = text.rfind("\n", start, span[0]) + 1
        span = (max(line_start, start), span[1])
    return span


def _split_at(text: str, start: int, end: int, separator: re.Pattern, trim=_trimmed) -> list[tuple[int, int]]:
    """The non-blank spans of text[start:end] between matches of separator."""
    spans, cursor = [], start
    for match in separator.finditer(text, start, end):
        spans.append(trim(text, cursor, match.start()))
        cursor = match.end()
    spans.append(trim(text, cursor, end))
    return [span for span in spans if span]


def _lines(text, start, end):
    return _split_at(text, start, end, re.compile(r"\n"))


def _code_lines(text, start, end):
    return _split_at(text, start, end, re.compile(r"\n"), trim=_trimmed_lines)


def _code_blocks(text, start, end):
    return _split_at(text, start, end, PARAGRAPH_BREAK, trim=_trimmed_lines)


def _words(text, start, end):
    return _split_at(text, start, end, re.compile(r"\s+"))


def _sentences(text, start, end):
    block = text[start:end]
    if "```" in block or re.search(r"^(    |\t)\S", block, re.MULTILINE):  # code in an article: by lines
        return _lines(text, start, end)
    return _prose_sentences(text, start, end)


def _prose_sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The sentences of text[start:end], by syntok's rule-based segmenter: a full stop that ends an
    abbreviation ("Dr. Evans", "9 a.m. Monday", "e.g."), a decimal point, an ellipsis followed by
    lower case or a stop inside quotes does not end the sentence, and '"Why?" she asked' is one.
    Cut where each sentence's first token starts, so that every character stays in a span, and only
    after a full stop, "!", "?" or "…" (syntok also ends a sentence at ";": half a sentence states
    half a fact)."""
    starts = [start + sentence[0].offset for paragraph in segmenter.analyze(text[start:end]) for sentence in paragraph]
    spans, cursor = [], start
    for cut in starts[1:]:
        if text[cursor:cut].rstrip().rstrip(CLOSERS).endswith(SENTENCE_FINAL):
            spans.append(_trimmed(text, cursor, cut))
            cursor = cut
    spans.append(_trimmed(text, cursor, end))
    return [span for span in spans if span]


def _paragraphs(text, start, end):
    return _split_at(text, start, end, PARAGRAPH_BREAK)


class Chunker:
    def __init__(self, text: str, tokens: TokenSpans, max_tokens: int, target_tokens: int = TARGET_TOKENS):
        self.text, self.tokens = text, tokens
        self.max_tokens, self.target = max_tokens, min(target_tokens, max_tokens)

    def count(self, span: tuple[int, int]) -> int:
        return self.tokens.count(*span)

    def split(self, span: tuple[int, int], levels: list, overlap: bool) -> list[tuple[int, int]]:
        """span whole if it fits the window, else cut by the first level that cuts it, repacked."""
        if self.count(span) <= self.max_tokens:
            return [span]
        for i, level in enumerate(levels):
            parts = level(self.text, *span)
            if len(parts) > 1:
                pieces = [piece for part in parts for piece in self.split(part, levels[i + 1 :], overlap)]
                return self.pack(pieces, overlap)
        return self._characters(span)

    def _characters(self, span: tuple[int, int]) -> list[tuple[int, int]]:
        """A word past the window (a long URL, text without spaces): fixed runs of characters."""
        size = self.max_tokens - SPECIAL_TOKENS
        return [(start, min(start + size, span[1])) for start in range(span[0], span[1], size)]

    def pack(self, pieces: list[tuple[int, int]], overlap: bool) -> list[tuple[int, int]]:
        """Neighbouring pieces joined up to the target; with overlap, a new chunk repeats the
        previous chunk's last piece when it is short and fits."""
        chunks, units = [], []
        for piece in pieces:
            if units and self.count((units[0][0], piece[1])) <= self.target:
                units.append(piece)
                continue
            if units:
                chunks.append((units[0][0], units[-1][1]))
                tail = self._tail(units[-1]) if overlap else None
                carry = (
                    tail is not None
                    and tail != chunks[-1]
                    and self.count(tail) <= OVERLAP_TOKENS
                    and self.count((tail[0], piece[1])) <= self.target
                )
                units = [tail] if carry else []
            units.append(piece)
        if units:
            chunks.append((units[0][0], units[-1][1]))
        return chunks

    def _tail(self, span: tuple[int, int]) -> tuple[int, int]:
        """What a chunk ending with span repeats in the next: span if short, else its last sentence."""
        if self.count(span) <= OVERLAP_TOKENS:
            return span
        return _sentences(self.text, *span)[-1]

    def piece(self, span: tuple[int, int], metadata: dict) -> Piece:
        return Piece(span[0], span[1], self.text[span[0] : span[1]], self.count(span), metadata)


# --- articles and posts -------------------------------------------------------------


def _sections(text: str) -> list[tuple[tuple[int, int], list[str]]]:
    """(span, heading path) per section; a section starts at its heading line, and a heading
    with nothing under it (a title over a subheading) starts the next section instead."""
    fenced = _fenced_ranges(text)
    headings = [m for m in HEADING.finditer(text) if not any(a <= m.start() < b for a, b in fenced)]
    starts = [0] + [m.start() for m in headings]
    sections, path, pending = [], [], None
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        if i:
            match = headings[i - 1]
            path = [*path[: len(match.group(1)) - 1], match.group(2).strip()]
            if not text[match.end() : end].strip() and i < len(starts) - 1:
                pending = start if pending is None else pending
                continue
        span = _trimmed(text, start if pending is None else pending, end)
        pending = None
        if span:
            sections.append((span, list(path)))
    return sections


def _fenced_ranges(text: str) -> list[tuple[int, int]]:
    """Spans of fenced code blocks, where a line starting with # is a comment, not a heading."""
    ranges, opened = [], None
    for match in re.finditer(r"^[ \t]*```.*$", text, re.MULTILINE):
        if opened is None:
            opened = match.start()
        else:
            ranges.append((opened, match.end()))
            opened = None
    if opened is not None:
        ranges.append((opened, len(text)))
    return ranges


def _article(chunker: Chunker) -> list[Piece]:
    out = []
    for span, headings in _sections(chunker.text):
        for part in chunker.split(span, [_paragraphs, _sentences, _words], overlap=True):
            out.append(chunker.piece(part, {"headings": headings}))
    return out


def _post(chunker: Chunker) -> list[Piece]:
    whole = _trimmed(chunker.text, 0, len(chunker.text))
    if not whole:
        return []
    out = []
    for part in chunker.split(whole, [_paragraphs, _sentences, _words], overlap=True):
        text = chunker.text[part[0] : part[1]]
        tags = {"hashtags": HASHTAG.findall(text), "mentions": MENTION.findall(text)}
        out.append(chunker.piece(part, {key: value for key, value in tags.items() if value}))
    return out


# --- code -----------------------------------------------------------------------------


def _line_starts(text: str) -> list[int]:
    return [0] + [m.end() for m in re.finditer(r"\n", text)]


def _python_units(text: str, body: list, line_starts: list[int], prefix: str, floor: int, limit: int) -> list[tuple]:
    """(span, symbol, node) per statement of body, within [floor, limit): comments and blank
    lines above a node go with it, and whatever follows the last node goes with that one."""
    units, previous_end = [], floor
    for node in body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        start = max(line_starts[first - 1], previous_end) if units else floor  # a class header goes first
        end = line_starts[node.end_lineno] if node.end_lineno < len(line_starts) else len(text)
        symbol = prefix + node.name if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) else None
        units.append(((start, end), symbol, node))
        previous_end = end
    if units:
        (start, _), symbol, node = units[-1]
        units[-1] = ((start, limit), symbol, node)
    return units


def _code_pieces(chunker: Chunker, units: list[tuple], line_starts: list[int]) -> list[tuple[tuple[int, int], list]]:
    """Each unit whole if it fits; a class by its members; anything else by blocks, then lines."""
    pieces = []
    for (start, end), symbol, node in units:
        span = _trimmed_lines(chunker.text, start, end)
        if not span:
            continue
        if chunker.count(span) <= chunker.max_tokens:
            pieces.append((span, [symbol] if symbol else []))
        elif isinstance(node, ast.ClassDef) and node.body:
            members = _python_units(chunker.text, node.body, line_starts, f"{node.name}.", start, end)
            pieces.extend(_code_pieces(chunker, members, line_starts))
        else:
            for part in chunker.split(span, [_code_blocks, _code_lines, _words], overlap=False):
                pieces.append((part, [symbol] if symbol else []))
    return pieces


def _code(chunker: Chunker, path: str) -> list[Piece]:
    text = chunker.text
    line_starts = _line_starts(text)
    pieces = None
    if not path.lower().endswith(OTHER_LANGUAGES):
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):  # not Python after all, or not valid: blocks
            tree = None
        if tree is not None and tree.body:
            pieces = _code_pieces(chunker, _python_units(text, tree.body, line_starts, "", 0, len(text)), line_starts)
    if pieces is None:
        whole = _trimmed_lines(text, 0, len(text))
        parts = chunker.split(whole, [_code_blocks, _code_lines, _words], overlap=False) if whole else []
        pieces = [(part, []) for part in parts]
    # Small neighbours are packed together (a few one-line helpers make one chunk).
    out, group = [], []
    for span, symbols in pieces:
        if group and chunker.count((group[0][0][0], span[1])) <= chunker.target:
            group.append((span, symbols))
            continue
        if group:
            out.append(_code_piece(chunker, group, path, line_starts))
        group = [(span, symbols)]
    if group:
        out.append(_code_piece(chunker, group, path, line_starts))
    return out


def _code_piece(chunker: Chunker, group: list, path: str, line_starts: list[int]) -> Piece:
    span = (group[0][0][0], group[-1][0][1])
    symbols = [s for _, symbols in group for s in symbols]
    lines = [bisect_right(line_starts, span[0]), bisect_right(line_starts, span[1] - 1)]
    return chunker.piece(span, {"path": path, "symbols": symbols, "lines": lines})


# --- entry points ---------------------------------------------------------------------


def chunk_document(
    text: str,
    offsets: list[tuple[int, int]],
    *,
    category: str = "article",
    max_tokens: int,
    path: str = "",
    target_tokens: int = TARGET_TOKENS,
) -> list[Piece]:
    """Chunks of `text` (cleaned), given its token offsets (one tokenization without special tokens)."""
    chunker = Chunker(text, TokenSpans(offsets), max_tokens, target_tokens)
    if category == "code":
        return _code(chunker, path)
    if category == "post":
        return _post(chunker)
    return _article(chunker)


def split_sentences(text: str) -> list[str]:
    """Paragraphs cut into sentences (headings and code blocks whole); the benchmarks' text source."""
    pieces = []
    for start, end in _paragraphs(text, 0, len(text)):
        paragraph = text[start:end]
        if paragraph.startswith("#") or "```" in paragraph:
            pieces.append(paragraph)
        else:
            pieces.extend(" ".join(text[a:b].split()) for a, b in _prose_sentences(text, start, end))
    return pieces
