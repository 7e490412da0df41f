"""Write mode on the serving worker: new text in the owner's voice for a brief.

The adapter writes with the brief's closest notes as background (no copy bonus), sampled,
and the copy guard (features/grounding/decoding.CopyGuard) forbids completing any
`copy_guard_ngram`-token run of the owner's corpus, numbers and names excepted: composition,
not collage. Each alternative's numbers and names that neither the notes nor the brief hold are
marked (features/grounding/check.unsupported_specifics), and its copy rate (word 8-grams found
in the corpus) is stored with it.
"""

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator

from django.db.models import Count, Max

from accounts.actions import do_ensure_twin
from features.embeddings import embed
from features.grounding import generate
from features.grounding.check import unsupported_specifics
from features.grounding.decoding import CorpusIndex
from features.grounding.evidence import NoteSentences
from features.models import CleanDocument
from features.prompts import LENGTHS
from training.models import ModelVersion
from training.stylometry import copy_rate, training_ngrams

from . import traces
from .events import Event, stream_into
from .llm import get_models
from .models import Draft, Message
from .retrieval import cited_first, retrieve, source_entry

logger = logging.getLogger(__name__)
# A request to write something: an imperative writing verb, or "a post/paragraph/email… about".
WRITE_VERB = re.compile(r"^\s*(please\s+|can you\s+|could you\s+)?(write|draft|compose|rewrite|pen)\b", re.IGNORECASE)
WRITE_FORM = re.compile(
    # Possessive blanks: with "\s*(a|an|the)?\s*" two runs shared the leading blanks, every split tried (quadratic).
    r"^\s*+(a|an|the)?\s*+(short\s++|long\s++)?(linkedin\s++|blog\s++|social\s++)?"
    r"(post|paragraph|email|reply|thread|tweet|essay|article|intro|introduction|opening)\s++(about|on)\b",
    re.IGNORECASE,
)
ALTERNATIVE_BREAK = "\n\n---\n\n"
MAX_CORPUS_INDEXES = 8


def writing_request(text: str) -> bool:
    """Does this chat message ask for new text rather than ask a question?"""
    return bool(WRITE_VERB.search(text) or WRITE_FORM.search(text))


class CorpusIndexes:
    """Per owner, the copy guard's index of their corpus, rebuilt when their documents change."""

    def __init__(self):
        self.lock = threading.Lock()
        self.cache: OrderedDict[int, tuple[tuple, CorpusIndex, set]] = OrderedDict()

    def get(self, owner, tokenizer, n: int) -> tuple[CorpusIndex, set]:
        documents = CleanDocument.objects.for_user(owner)
        stamp = (n, *documents.aggregate(count=Count("id"), latest=Max("cleaned_at")).values())
        with self.lock:
            cached = self.cache.get(owner.pk)
            if cached and cached[0] == stamp:
                self.cache.move_to_end(owner.pk)
                return cached[1], cached[2]
            texts = list(documents.values_list("text", flat=True))
            entry = (stamp, CorpusIndex(tokenizer, texts, n), training_ngrams(texts))
            self.cache[owner.pk] = entry
            while len(self.cache) > MAX_CORPUS_INDEXES:
                self.cache.popitem(last=False)
            return entry[1], entry[2]


corpus_indexes = CorpusIndexes()


def background_notes(owner, brief: str, config) -> tuple[list, list]:
    """(chunks, evidence): the brief's closest note sentences, when any is close enough to help."""
    chunks, query, vector = retrieve(owner, brief, [])
    notes = NoteSentences.from_chunks(chunks, embed)
    choice = generate.choose_notes(notes, query, vector, config.but(evidence_sentences=config.write_notes))
    if not choice.has_notes:
        return [], []
    return cited_first(chunks, choice.evidence), choice.evidence


def draft_events(answer: Message, config) -> Iterator[Event]:
    """Write the draft of a write-mode answer (claimed by the caller): sources, the tokens of each
    alternative, then the checked draft (the "grounding" event) and done; or error."""
    owner = answer.conversation.owner
    draft = Draft.objects.filter(message=answer).first() or Draft(owner=owner, brief="", message=answer)
    brief = draft.brief or answer.conversation.messages.filter(role=Message.Role.USER).last().content
    words = LENGTHS.get(draft.length, LENGTHS["medium"])
    models = get_models()
    started = time.perf_counter()
    model_version = ModelVersion.objects.for_user(owner).production()
    generation = None
    try:
        chunks, evidence = background_notes(owner, brief, config)
        notes = [e.text for e in evidence]
        retrieval_ms = int((time.perf_counter() - started) * 1000)
        answer.sources = [source_entry(chunk) for chunk in chunks]
        yield Event("sources", answer.sources)
        twin_name = do_ensure_twin(owner).name
        texts = []
        for number in range(max(1, draft.alternatives_wanted)):
            if number:
                answer.content += ALTERNATIVE_BREAK
                yield Event("token", ALTERNATIVE_BREAK)
            before = len(answer.content)

            def make(model, tokenizer, **kwargs):
                index, _ = corpus_indexes.get(owner, tokenizer, config.copy_guard_ngram)
                return generate.write_stream(
                    model, tokenizer, twin_name, brief, config, form=draft.form, words=words, notes=notes,
                    guard=index, **kwargs,
                )  # fmt: skip

            generation = yield from stream_into(answer, models.serve(model_version, make))
            texts.append(answer.content[before:].strip())
    except GeneratorExit:
        traces.fail(answer, "The draft was interrupted.")
        raise
    except Exception:
        logger.exception("writing message %s failed", answer.pk)
        traces.fail(answer, "The twin could not write just now; please try again.")
        yield Event("error", answer.error)
        return
    _, corpus_grams = corpus_indexes.get(owner, models.tokenizer, config.copy_guard_ngram)
    alternatives = [
        {
            "text": text,
            "specifics": unsupported_specifics(text, [*notes, brief]),
            "copy_rate": round(copy_rate([text], corpus_grams) or 0.0, 4),
        }
        for text in texts
    ]
    answer.content = answer.content.strip() or "(no draft)"
    answer.notice = traces.adapter_notice(model_version, generation.adapter_problem) if model_version else ""
    if answer.notice:
        yield Event("notice", answer.notice)
    answer.grounding = {"mode": "write", "score": None, "sentences": [], "quote": None, "alternatives": alternatives}
    if draft.pk:
        draft.alternatives, draft.generated_text = alternatives, alternatives[0]["text"]
        draft.text, draft.edited_at = draft.generated_text, None
        draft.save(update_fields=["alternatives", "generated_text", "text", "edited_at", "updated_at"])
    traces.finish(answer, owner, model_version, generation, started, retrieval_ms, brief, chunks, evidence)
    yield Event("grounding", answer)
    yield Event("done", answer)
