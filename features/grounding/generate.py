"""The one generation function that chat serves and the evaluation gate measures.

`stream_generation` takes a loaded model and tokenizer (chat's shared base model with the
twin's adapter, or the gate's candidate) and the messages of one prompt template, and streams
the text. In ask mode decoding is steered toward the notes (decoding.EvidenceSteering), stops
after a sentence per note and gets a budget that grows with long notes; in write mode it is
sampled, with no copy bonus, and the copy guard (decoding.CopyGuard) forbids continuing any
long n-gram of the owner's corpus. Both callers get the same Generation back, so what the gate
reports is what a user is served.
"""

import time
from collections.abc import Iterator
from dataclasses import dataclass

from features.prompts import build_messages, build_write_messages, render_prompt

from .config import GroundingConfig

NOTE_BUDGET_MARGIN = 16  # tokens for the words around the copied notes ("I think", "Yes,")
# An answer that ran out of tokens mid-sentence ends with CUT_MARK, so that "…and it" reads as cut.
SENTENCE_ENDS = (".", "!", "?", '"', "”", ")", "…")
CUT_MARK = "…"


@dataclass
class Generation:
    prompt: str
    prompt_tokens: int = 0
    text: str = ""
    tokens: int = 0
    first_token_ms: int = 0
    generation_ms: int = 0  # from the start of generation to its last token
    adapter_problem: str = ""  # why the base model answered instead of the adapter asked for
    cut_short: bool = False  # the token budget ended it, not the model or the sentence limit

    @property
    def needs_cut_mark(self) -> bool:
        return self.cut_short and not self.text.rstrip().endswith(SENTENCE_ENDS)


NO_NOTES = "I haven't written anything about that, so I'd rather not guess."


@dataclass
class NotesChoice:
    """The notes chosen for a question, and whether they are close enough to answer from."""

    evidence: list  # Evidence, best first
    relevance: float  # the closest note sentence's similarity to the question
    min_similarity: float

    @property
    def has_notes(self) -> bool:
        return bool(self.evidence) and self.relevance >= self.min_similarity

    @property
    def texts(self) -> list[str]:
        return [e.text for e in self.evidence]


def choose_notes(notes, query: str, vector, config: GroundingConfig) -> NotesChoice:
    """The best config.evidence_sentences of the notes (evidence.NoteSentences) for a question.
    `relevance` is the closest note of all, not of the chosen ones: the choice also weighs answer
    types and the sentence before, and "do my notes cover this?" should not move with it."""
    evidence = notes.select(query, vector, config.evidence_sentences)
    return NotesChoice(evidence, notes.closest(vector), config.min_similarity)


def answer_stream(model, tokenizer, twin_name: str, question: str, choice: NotesChoice, config, **kwargs):
    """Ask mode, as chat serves it and the gate measures it: the notes' prompt, steered decoding,
    or the no-notes sentence when no note is close enough (the model is not asked)."""
    if not choice.has_notes:
        yield NO_NOTES
        return Generation(prompt="", text=NO_NOTES)
    messages = build_messages(twin_name, question, choice.texts, kwargs.pop("history", ()))
    return (
        yield from stream_generation(model, tokenizer, messages, config, mode="ask", evidence=choice.texts, **kwargs)
    )


def write_stream(model, tokenizer, twin_name: str, brief: str, config, *, form="paragraph", words=120, notes=(), **kw):
    """Write mode, as chat serves it and the gate and bench/writing measure it."""
    messages = build_write_messages(twin_name, brief, form, words, notes)
    return (
        yield from stream_generation(
            model, tokenizer, messages, config, mode="write", max_new_tokens=write_budget(words), **kw
        )
    )


def answer_budget(tokenizer, evidence: list[str], config: GroundingConfig) -> int:
    """config.max_new_tokens, or room for the notes themselves (up to twice that): an answer
    that copies a 100-word first note runs out before the second one, which often holds the fact."""
    needed = len(tokenizer(" ".join(evidence), add_special_tokens=False)["input_ids"]) + NOTE_BUDGET_MARGIN
    return min(2 * config.max_new_tokens, max(config.max_new_tokens, needed))


def write_budget(words: int) -> int:
    """Tokens for a draft of about `words` words (SmolLM2 spends about 1.35 tokens a word on prose)."""
    return int(words * 1.6) + 16


def stream_generation(
    model,
    tokenizer,
    messages: list[dict],
    config: GroundingConfig,
    *,
    mode: str = "ask",
    evidence: list[str] = (),
    guard=None,
    max_new_tokens: int | None = None,
    seed: int | None = None,
    adapter_problem: str = "",
    batcher=None,
    adapter: str | None = None,
) -> Iterator[str]:
    """Yield the text piece by piece; the Generation is the generator's return value.

    mode "ask": steered toward `evidence` (the notes), a sentence per note. mode "write":
    sampled, `guard` (a CorpusIndex, or None) bans continuing the owner's corpus.

    Decoding is batching.Batcher's: the serving worker's shared one (`batcher`, with the twin's
    `adapter` name), where this answer is one row among those in flight, or a private one for
    this answer alone (the gate, the benches). Both decode the same way, token for token.
    """
    from transformers import TextIteratorStreamer

    from .batching import Batcher, Request
    from .decoding import steered_decoding, write_decoding

    prompt = render_prompt(tokenizer, messages)
    prompt_ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"].to(model.device)
    prompt_length = prompt_ids.shape[1]
    sampling = {}
    if mode == "write":
        max_new_tokens = max_new_tokens or write_budget(120)
        processors, stopping = write_decoding(tokenizer, prompt_length, config, guard)
        if config.write_temperature > 0:
            sampling = {"temperature": config.write_temperature, "top_p": config.write_top_p, "seed": seed}
    else:
        max_new_tokens = max_new_tokens or answer_budget(tokenizer, list(evidence), config)
        processors, stopping = steered_decoding(
            tokenizer,
            list(evidence),
            prompt_length,
            copy_bonus=config.copy_bonus,
            start_bonus=config.start_bonus,
            max_sentences=config.max_sentences,
        )
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=False, skip_special_tokens=True, timeout=300)
    request = Request(
        prompt_ids, processors, stopping, max_new_tokens, end_token_ids(model, tokenizer), streamer, adapter, **sampling
    )
    result = Generation(prompt=prompt, prompt_tokens=prompt_length, adapter_problem=adapter_problem)
    started = time.perf_counter()
    (batcher or Batcher(model, max_rows=1)).submit(request)
    try:
        for piece in streamer:
            piece = storable(piece)
            if not piece:
                continue
            if not result.text:
                result.first_token_ms = int((time.perf_counter() - started) * 1000)
            result.text += piece
            yield piece
    finally:
        request.cancelled.set()  # the client went away, or we are done: the row leaves the batch
        request.finished.wait()
    result.generation_ms = int((time.perf_counter() - started) * 1000)
    if request.failure:
        raise request.failure
    new = request.new_tokens
    result.cut_short = len(new) >= max_new_tokens and int(new[-1]) not in request.eos_ids
    result.tokens = len(tokenizer(result.text, add_special_tokens=False)["input_ids"])
    return result


def storable(piece: str) -> str:
    """Generated text as PostgreSQL can keep it: a model may emit the NUL byte (a tiny random one
    did, and saving its draft failed), which no text column holds."""
    return piece.replace("\x00", "")


def end_token_ids(model, tokenizer) -> frozenset[int]:
    """The tokens that end an answer: the model's generation config's, as model.generate reads them."""
    ends = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if ends is None:
        ends = tokenizer.eos_token_id
    return frozenset([ends] if isinstance(ends, int) else (ends or []))


def run_to_end(stream) -> Generation:
    """A stream (answer_stream, write_stream) to its end: the whole Generation (the gate, the benches)."""
    while True:
        try:
            next(stream)
        except StopIteration as finished:
            generation = finished.value
            break
    if generation.needs_cut_mark:
        generation.text = generation.text.rstrip() + CUT_MARK
    return generation
