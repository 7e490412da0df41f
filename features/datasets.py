"""Instruct datasets built offline from a user's cleaned documents.

No LLM writes the samples (there is none to call offline, and a 135M model would
write worse text than the author). Following the course's back-translation idea,
each sample's answer is a verbatim extract of the author's own text, and its
instruction is a writing brief derived locally from the section heading, the title and the
extract's own key words: the write template (features/prompts.py) answered by the author's
paragraph. Half of them carry two sentences of another passage of the same document as
background, never the answer itself, so the twin learns to write new text beside its notes
rather than to copy them (chat's write mode serves exactly that prompt). The grounded samples
teach answering from notes in the ask template.

The split is by document (`split_by_document`): a document's samples are all train or
all test, so test samples are about text no training sample was cut from.

Record format, one JSON object per line (the contract with training):
    {"kind": "style"|"grounded", "split": "train"|"test", "instruction": str,
     "context": [str, ...], "answer": str, "document_id": int, "title": str}
plus, for "style" (writing) records, "form" ("paragraph") and "words" (the passage's length).
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
TEMPLATES = (  # writing briefs, as an owner would give them on the Write page
    "{topic}",
    "a paragraph on {topic}",
    "why {topic} matters to me",
    "my thoughts on {topic}",
)
BACKGROUND_SENTENCES = 2


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
    return f"{instruction}, especially {word}" if word else instruction


def _background(extracts: list[Extract], by_document: dict[int, list[int]], index: int, rng) -> list[str]:
    """Two sentences of another passage of the same document: notes to write beside, not the answer."""
    others = [i for i in by_document[extracts[index].document_id] if i != index]
    if not others:
        return []
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", extracts[rng.choice(others)].text) if len(s.split()) >= 4]
    return sentences[:BACKGROUND_SENTENCES]


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
    for index, extract in enumerate(extracts):
        context = _background(extracts, by_document, index, rng) if rng.random() < 0.5 else []
        records.append(
            {
                "kind": "style",
                "instruction": instruction_for(extract, rng),
                "form": "paragraph",
                "words": max(40, round(len(extract.text.split()), -1)),
                "context": context,
                "answer": extract.text,
                "document_id": extract.document_id,
                "title": extract.title,
            }
        )
    records.extend(grounded_records(documents, rng))
    rng.shuffle(records)
    return split_by_document(records)


def _document_order(document_id: int) -> float:
    """A document's place in the held-out order: the hash training's split uses too
    (training/samples.py), so the test documents are the first ones training holds out."""
    digest = hashlib.sha256(f"twinsite-heldout:{document_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_by_document(records: list[dict]) -> list[dict]:
    """Mark each record "train" or "test", whole documents at a time: documents in hash order go to
    test until they hold TEST_FRACTION of the records (at least one, never all). With one document
    there is nothing to hold out whole, so its first records (in the given order) are the test split.
    The preference dataset copies each record's split, so both datasets split the same way."""
    target = max(1, round(len(records) * TEST_FRACTION)) if len(records) >= 2 else 0
    per_document = Counter(r["document_id"] for r in records)
    if len(per_document) < 2:
        for i, record in enumerate(records):
            record["split"] = "test" if i < target else "train"
        return records
    test_documents, held = set(), 0
    for document_id in sorted(per_document, key=_document_order):
        if held >= target or len(test_documents) == len(per_document) - 1:
            break
        test_documents.add(document_id)
        held += per_document[document_id]
    for record in records:
        record["split"] = "test" if record["document_id"] in test_documents else "train"
    return records


def with_written_instructions(records: list[dict], write, known_records: list[dict]) -> list[dict]:
    """The style samples' instructions written by `write(passage, title)` (a model, see
    features/generators.py) instead of the local rule, reusing the instruction a previous
    version by the same writer has for the same passage; an unusable reply ("") keeps the rule's."""
    known = {r["answer"]: r["instruction"] for r in known_records if r.get("kind") == "style"}
    for record in records:
        if record["kind"] != "style":
            continue
        if record["answer"] not in known:
            known[record["answer"]] = write(record["answer"], record["title"]) or record["instruction"]
        record["instruction"] = known[record["answer"]]
    return records


def serialise(records: list[dict]) -> tuple[bytes, str]:
    body = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records).encode()
    return body, hashlib.sha256(body).hexdigest()


def read_records(path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
