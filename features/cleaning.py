"""Text cleaning for the feature store.

Unlike the book's reference code, this keeps paragraph breaks (chunking and dataset
extracts split on them) and code indentation, and keeps punctuation. It removes what
is noise to both the embedder and the fine-tune: control and zero-width characters,
Markdown link and image syntax, leftover HTML tags, runs of blank lines and spaces,
and, in posts, URL query strings and fragments (see features/chunking.py for the rule
on hashtags, mentions and URLs). NFKC turns styled Unicode letters into plain ones.
"""

import re
import unicodedata

ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
# Linear time on any input (documents are up to 500k characters): no part of a match may
# contain the character that starts the next attempt ("[" or "<"), so each attempt stops
# where the next one begins and every character is scanned by at most one attempt or two.
# Link targets may hold one level of parentheses, e.g. [Ant](https://en.wikipedia.org/wiki/Ant_(disambiguation)).
# The price: labels and targets with square brackets (nested links, IPv6 hosts) are left as written.
_TARGET = r"\((?:[^()\[\]]|\([^()\[\]]*\))*\)"
MARKDOWN_IMAGE = re.compile(r"!\[([^\[\]]*)\]" + _TARGET)
MARKDOWN_LINK = re.compile(r"\[([^\[\]]+)\]" + _TARGET)
HTML_TAG = re.compile(r"</?[a-zA-Z][^<>]{0,200}>")
SPACES = re.compile(r"[ \t\u00a0]+")
BLANK_LINES = re.compile(r"\n{3,}")
# A URL's query string and fragment. The host and path stop before another "http(s)://x" in the same
# run ("http://http://…" was read to its end from every "http", quadratic); that later URL then
# matches instead, and since it ends where the first would have, the same tail is dropped.
URL_TAIL = re.compile(r"(https?://(?:(?!https?://[^\s?#])[^\s?#])++)[?#]\S*+")


def _clean_line(line: str, keep_indent: bool) -> str:
    line = line.rstrip()
    if keep_indent:
        indent = len(line) - len(line.lstrip(" \t"))
        return line[:indent] + SPACES.sub(" ", line[indent:])
    return SPACES.sub(" ", line).strip()


def clean_text(text: str, *, category: str = "article") -> str:
    text = unicodedata.normalize("NFKC", text).translate(ZERO_WIDTH)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    if category == "post":  # tracking parameters carry no meaning and eat the window
        text = URL_TAIL.sub(lambda m: m.group(1), text)
    if category != "code":
        text = MARKDOWN_IMAGE.sub(lambda m: m.group(1), text)
        text = MARKDOWN_LINK.sub(lambda m: m.group(1), text)
        text = HTML_TAG.sub("", text)
    keep_indent = category == "code"
    in_fence = False
    lines = []
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        lines.append(_clean_line(line, keep_indent or in_fence))
    return BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
