"""Instruct datasets built offline from a user's cleaned documents.

No LLM writes the samples (there is none to call offline, and a 135M model would
write worse text than the author). Following the course's back-translation idea,
each sample's answer is a verbatim extract of the author's own text, and its
instruction is derived locally from the section heading, the title and the
extract's own key words. Half the samples carry the extract (and a distractor from
another document) as retrieved context, so the twin learns both its voice and to
answer from context with the same prompt template chat uses.

Record format, one JSON object per line (the contract with training):
    {"kind": "style"|"grounded", "split": "train"|"test", "instruction": str,
     "context": [str, ...], "answer": str, "document_id": int, "title": str}
"""

import hashlib
import json
import random
import re
from collections import Counter
from dataclasses import dataclass

from .grounded_samples import grounded_records

MIN_EXTRACT_CHARS = 200
MAX_EXTRACT_CHARS = 900
TEST_FRACTION = 0.1
MAX_TITLE_CHARS = 80  # in instructions
STOPWORDS = frozenset(
    """a about above after again all also am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here
    hers him his how i if in into is it its itself just like me more most my myself no nor not now of off on once
    only or other our ours out over own same she should so some such than that the their them then there these
    they this those through to too under until up very was we were what when where which while who whom why will
    with would you your yours one two get got make made much many every thing things really still even well back
    first last time year years day days way know think going want need use used""".split()
)
TEMPLATES = (
    "Write a paragraph about {topic}.",
    "What do you think about {topic}?",
    "Tell me about {topic}.",
    "Explain {topic} in your own words.",
)


@dataclass
class Extract:
    document_id: int
    title: str
    heading: str
    text: str


def extracts_from(document_id: int, title: str, text: str) -> list[Extract]:
    """Pack consecutive paragraphs into extracts, remembering the section heading."""
    out, heading, buffer = [], "", []

    def flush():
        joined = "\n\n".join(buffer).strip()
        if len(joined) >= MIN_EXTRACT_CHARS:
            out.append(Extract(document_id, title, heading, joined))
        buffer.clear()

    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip()
        if not paragraph or paragraph.startswith("```"):
            continue
        if paragraph.startswith("#"):
            flush()
            heading = paragraph.lstrip("#").strip()
            continue
        if buffer and len("\n\n".join(buffer)) + len(paragraph) > MAX_EXTRACT_CHARS:
            flush()
        buffer.append(paragraph[: MAX_EXTRACT_CHARS * 2])
    flush()
    return out


def key_word(text: str, exclude: str) -> str:
    """The extract's most repeated content word (5+ letters, seen twice), if any."""
    words = re.findall(r"[a-z][a-z'-]{4,}", text.lower())
    skip = STOPWORDS | set(re.findall(r"[a-z'-]+", exclude.lower()))
    common = Counter(w for w in words if w not in skip).most_common(1)
    return common[0][0] if common and common[0][1] >= 2 else ""


def short_title(title: str) -> str:
    """The title cut at a word boundary: a text file without a heading takes its whole first
    paragraph as title, and the instruction must not hand the model its answer."""
    if len(title) <= MAX_TITLE_CHARS:
        return title
    return title[:MAX_TITLE_CHARS].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def instruction_for(extract: Extract, rng: random.Random) -> str:
    title = short_title(extract.title)
    if extract.heading and extract.heading.lower() != extract.title.lower():
        heading = extract.heading
        if not heading[:2].isupper():  # keep acronyms ("API design") as written
            heading = heading[0].lower() + heading[1:]
        topic = f"{heading} in “{title}”"
    else:
        topic = f"“{title}”"
    instruction = rng.choice(TEMPLATES).format(topic=topic)
    word = key_word(extract.text, f"{extract.heading} {extract.title}")
    return f"{instruction[:-1]}, especially {word}{instruction[-1]}" if word else instruction


def _distractor(extracts: list[Extract], by_document: dict[int, list[int]], document_id: int, rng) -> Extract | None:
    """An extract from another document, in constant time (a rejection draw, then a fallback)."""
    if len(by_document) < 2:
        return None
    for _ in range(8):
        candidate = extracts[rng.randrange(len(extracts))]
        if candidate.document_id != document_id:
            return candidate
    other = rng.choice([d for d in by_document if d != document_id])
    return extracts[rng.choice(by_document[other])]


def build_records(documents: list[tuple[int, str, str]], seed: int = 0) -> list[dict]:
    """documents: (document_id, title, cleaned text). Deterministic for the same input.

    Two kinds of record: "style" (an extract of the author's text, sometimes with it as
    context) and "grounded" (a question answered from a note: features/grounded_samples.py).
    """
    extracts = [e for doc_id, title, text in documents for e in extracts_from(doc_id, title, text)]
    by_document: dict[int, list[int]] = {}
    for index, extract in enumerate(extracts):
        by_document.setdefault(extract.document_id, []).append(index)
    rng = random.Random(seed)
    records = []
    for extract in extracts:
        context = []
        if rng.random() < 0.5:
            other = _distractor(extracts, by_document, extract.document_id, rng)
            context = [extract.text] + ([other.text] if other else [])
            rng.shuffle(context)
        records.append(
            {
                "kind": "style",
                "instruction": instruction_for(extract, rng),
                "context": context,
                "answer": extract.text,
                "document_id": extract.document_id,
                "title": extract.title,
            }
        )
    records.extend(grounded_records(documents, rng))
    rng.shuffle(records)
    test_count = max(1, round(len(records) * TEST_FRACTION)) if len(records) >= 2 else 0
    for i, record in enumerate(records):
        record["split"] = "test" if i < test_count else "train"
    return records


def serialise(records: list[dict]) -> tuple[bytes, str]:
    body = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records).encode()
    return body, hashlib.sha256(body).hexdigest()


def read_records(path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
