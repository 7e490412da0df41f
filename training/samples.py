"""What a run trains and validates on: held-out documents, raw-text windows, Q&A samples, packing.

Two kinds of training sequence, mixed:
- style: windows of the author's own cleaned text, loss on every token (continued
  pretraining: the voice);
- Q&A: instruction records in the chat prompt template, loss on the answer only.
Short Q&A samples are packed end to end into full-length sequences, so a batch is
not mostly padding.

Whole documents are held out (never trained on, not even as Q&A answers) so the
evaluation gate measures perplexity and style on text the adapter never saw. The
order is a hash of the document id, so documents mostly stay on the same side as
the twin grows and versions are compared on the same held-out text.
"""

import hashlib
import random
import re
from dataclasses import dataclass

from features.prompts import record_messages, render_prompt

IGNORE_INDEX = -100
HELDOUT_FRACTION = 0.15
SINGLE_DOCUMENT_TAIL = 0.2  # with one document, its last paragraphs are held out instead


@dataclass
class DataSplit:
    train_texts: list[str]
    heldout_texts: list[str]
    heldout_document_ids: list[int]

    def as_dict(self) -> dict:
        return {
            "heldout_document_ids": self.heldout_document_ids,
            "train_documents": len(self.train_texts),
            "heldout_words": sum(len(t.split()) for t in self.heldout_texts),
            "train_words": sum(len(t.split()) for t in self.train_texts),
        }


def _unit_hash(document_id: int) -> float:
    digest = hashlib.sha256(f"twinsite-heldout:{document_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_documents(documents: list[tuple[int, str]]) -> DataSplit:
    """documents: (document_id, cleaned text). Held out: documents in the order of their id's hash
    until they hold HELDOUT_FRACTION of the words (at least one, never all); with a single
    document, its last paragraphs."""
    documents = [(doc_id, text) for doc_id, text in documents if text.strip()]
    if not documents:
        return DataSplit([], [], [])
    if len(documents) == 1:
        doc_id, text = documents[0]
        paragraphs = re.split(r"\n\s*\n", text.strip())
        cut = max(1, round(len(paragraphs) * (1 - SINGLE_DOCUMENT_TAIL))) if len(paragraphs) > 1 else 1
        head, tail = "\n\n".join(paragraphs[:cut]), "\n\n".join(paragraphs[cut:])
        if not tail:  # one paragraph: split it by characters at a word boundary
            cut_at = text.rfind(" ", 0, int(len(text) * (1 - SINGLE_DOCUMENT_TAIL))) + 1
            head, tail = text[:cut_at], text[cut_at:]
        return DataSplit([head], [tail], [])
    total_words = sum(len(text.split()) for _, text in documents)
    heldout, words = set(), 0
    for doc_id, text in sorted(documents, key=lambda d: _unit_hash(d[0])):
        if words >= HELDOUT_FRACTION * total_words or len(heldout) == len(documents) - 1:
            break
        heldout.add(doc_id)
        words += len(text.split())
    return DataSplit(
        [text for doc_id, text in documents if doc_id not in heldout],
        [text for doc_id, text in documents if doc_id in heldout],
        sorted(heldout),
    )


def text_windows(tokenizer, texts: list[str], max_len: int, min_len: int = 16) -> list[dict]:
    """Each text tokenized (ending with EOS) and cut into windows of max_len tokens; labels = ids."""
    windows = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        for start in range(0, len(ids), max_len):
            piece = ids[start : start + max_len]
            if len(piece) >= min_len:
                windows.append({"input_ids": piece, "labels": list(piece)})
    return windows


def encode(tokenizer, twin_name: str, record: dict, max_len: int) -> dict:
    """Token ids with labels on the answer only; context is dropped first when too long."""
    for context in (record.get("context") or [], []):
        prompt = render_prompt(tokenizer, record_messages(twin_name, record, context))
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        if len(prompt_ids) <= max_len // 2:
            break
    answer_ids = tokenizer(record["answer"] + tokenizer.eos_token + "\n", add_special_tokens=False)["input_ids"]
    answer_ids = answer_ids[: max(1, max_len - len(prompt_ids))]
    return {"input_ids": prompt_ids + answer_ids, "labels": [IGNORE_INDEX] * len(prompt_ids) + answer_ids}


def pack(samples: list[dict], max_len: int) -> list[dict]:
    """Samples into sequences of at most max_len tokens, best fit, longest first.

    Filling the sequences in the samples' own order left a quarter of each one empty
    (Q&A samples of 55 to 167 tokens, mean 92: two fit in 256, a third rarely did), so
    a packed batch held barely more real tokens than a padded one (bench/training.py).
    Each sample goes into the fullest sequence that still has room for it.

    A sample never straddles two sequences; each keeps its own labels, so the loss
    is still on answers only. Samples attend to earlier ones in the same sequence
    (no block mask on CPU attention), which is the usual cost of packing and
    harmless with an EOS between samples. The run shuffles sequences afterwards (mix).
    """
    by_fill: list[list[dict]] = [[] for _ in range(max_len + 1)]  # open sequences by their length
    for sample in sorted(samples, key=lambda s: -len(s["input_ids"])):
        ids, labels = sample["input_ids"][:max_len], sample["labels"][:max_len]
        fill = next((f for f in range(max_len - len(ids), 0, -1) if by_fill[f]), 0)
        sequence = by_fill[fill].pop() if fill else {"input_ids": [], "labels": []}
        sequence["input_ids"] = sequence["input_ids"] + ids
        sequence["labels"] = sequence["labels"] + labels
        by_fill[len(sequence["input_ids"])].append(sequence)
    return [sequence for level in by_fill for sequence in level]


def mix(style: list[dict], qa: list[dict], style_fraction: float, seed: int) -> list[dict]:
    """All style windows plus as many Q&A sequences as keep style at `style_fraction` of the
    whole (Q&A answers are extracts of the same text: they should not drown the voice)."""
    rng = random.Random(seed)
    qa = list(qa)
    rng.shuffle(qa)
    if style_fraction >= 1 or not qa:
        chosen = list(style)
    elif style_fraction <= 0 or not style:
        chosen = qa
    else:
        keep = min(len(qa), max(1, round(len(style) * (1 - style_fraction) / style_fraction)))
        chosen = list(style) + qa[:keep]
    rng.shuffle(chosen)
    return chosen


def every_nth(items: list, count: int) -> list:
    """At most `count` items, taken at a regular stride from the start: spread over a list that is
    ordered by document rather than the first few of one document."""
    return items[:: max(1, len(items) // count)][:count] if items else []


def not_heldout(record: dict, split: DataSplit) -> bool:
    """A Q&A record may train only if neither its answer nor its context comes from held-out text."""
    if record.get("document_id") in split.heldout_document_ids:
        return False
    return not any(
        piece[:200] in text for piece in [record["answer"], *record.get("context", [])] for text in split.heldout_texts
    )


@dataclass
class TrainingData:
    sequences: list[dict]
    validation: list[dict]
    style_count: int
    qa_count: int
    real_tokens: int


def build_training_data(tokenizer, twin_name: str, split: DataSplit, records: list[dict], hp) -> TrainingData:
    style = text_windows(tokenizer, split.train_texts, hp.max_seq_len)
    qa = [
        encode(tokenizer, twin_name, r, hp.max_seq_len)
        for r in records
        if r.get("split", "train") == "train" and not_heldout(r, split)
    ]
    if hp.packing:
        qa = pack(qa, hp.max_seq_len)
    sequences = mix(style, qa, hp.style_fraction, hp.seed)
    return TrainingData(
        sequences=sequences,
        validation=text_windows(tokenizer, split.heldout_texts, hp.max_seq_len),
        style_count=sum(1 for s in sequences if IGNORE_INDEX not in s["labels"][:1]),
        qa_count=sum(1 for s in sequences if IGNORE_INDEX in s["labels"][:1]),
        real_tokens=sum(len(s["input_ids"]) for s in sequences),
    )
