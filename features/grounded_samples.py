"""Retrieval-augmented fine-tuning (RAFT) samples: answer a question from the notes.

Each sample is a question about one of the author's own sentences, the notes the
chat prompt would carry (that sentence among distractor sentences from other
documents, the same dash-line shape as serving), and the answer: the sentence itself,
in the author's words and in the first person. Trained on these, an adapter learns to
state the fact it was handed instead of free-associating around it.

The questions are made offline from the sentence, without a model: pronouns turned
to the second person, and a number, a cause or the sentence's key words turned into
what is asked ("I keep 14 daily dumps" -> "How many daily dumps do you keep?" is
beyond a rule, but "You keep how many daily dumps?" is not).
"""

import re

from .grounding.evidence import content_words, note_sentences

MAX_SAMPLES_PER_DOCUMENT = 8
MIN_WORDS, MAX_WORDS = 6, 45
SECOND_PERSON = {
    "i": "you", "me": "you", "my": "your", "mine": "yours", "myself": "yourself",
    "we": "you", "us": "you", "our": "your", "ours": "yours", "ourselves": "yourselves",
    "am": "are", "i'm": "you're", "i've": "you've", "i'd": "you'd", "i'll": "you'll", "we're": "you're",
}  # fmt: skip
NUMBER = re.compile(r"\b\d+(?:[:.,]\d+)*%?")
CAUSE = re.compile(r"\s(?:because|so that|since)\s", re.IGNORECASE)
# A name: a capitalised word after a lowercase word or a comma, as in "with Sarah" or "in Leeds". After
# a full stop, a colon or a quote a capital only opens a clause: "The", "Finally" are no names, and
# the gate once asked "What do you say about The?".
PROPER_NOUN = re.compile(r"(?<=[a-z,] )[A-Z][a-z]{2,}")


def to_second_person(text: str) -> str:
    def swap(match):
        word = match.group(0)
        swapped = SECOND_PERSON.get(word.lower(), word)
        return swapped.capitalize() if word[0].isupper() and word.lower() != "i" else swapped

    return re.sub(r"\b[A-Za-z']+\b", swap, text)


def is_fact(sentence: str) -> bool:
    """A sentence worth asking about: it states a number, a cause or a name."""
    words = sentence.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS or sentence.rstrip().endswith("?"):
        return False  # the author's own questions ("Is it mind-boggling that…?") state nothing to ask about
    return bool(NUMBER.search(sentence) or CAUSE.search(sentence) or PROPER_NOUN.search(sentence))


def question_for(sentence: str) -> str:
    sentence = sentence.rstrip(".!?")
    cause = CAUSE.search(sentence)
    if cause:
        clause = to_second_person(sentence[: cause.start()]).strip()
        clause = re.sub(r"^(You|you) (?!are|were|had|have|can|could|will|would)", "do you ", clause)
        return _sentence_case(f"Why {clause}?")
    number = NUMBER.search(sentence)
    if number:
        before = to_second_person(sentence[: number.start()]).strip()
        after = to_second_person(sentence[number.end() :].split(",")[0]).strip()
        return _sentence_case(f"{before} what {after}".strip() + "?")
    name = PROPER_NOUN.search(sentence)
    if name:
        return f"What do you say about {name.group(0)}?"
    keywords = list(dict.fromkeys(w for w in re.findall(r"[A-Za-z][A-Za-z'-]{3,}", sentence) if content_words(w)))
    return f"What can you tell me about {' and '.join(keywords[:3])}?"


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:]


def fact_sentences(text: str) -> list[str]:
    sentences = [s for paragraph in re.split(r"\n\s*\n", text) for s in note_sentences(paragraph)]
    return [s for s in sentences if is_fact(s)][:MAX_SAMPLES_PER_DOCUMENT]


def grounded_records(documents: list[tuple[int, str, str]], rng) -> list[dict]:
    """documents: (document_id, title, cleaned text). Records in the instruct dataset's format."""
    facts = {doc_id: (title, fact_sentences(text)) for doc_id, title, text in documents}
    with_facts = [doc_id for doc_id, (_, sentences) in facts.items() if sentences]
    records = []
    for doc_id, (title, sentences) in facts.items():
        others = [d for d in with_facts if d != doc_id]
        for sentence in sentences:
            context = [sentence]
            if others:  # serving puts the best note first, mostly: so do 70 % of the samples
                distractor = rng.choice(facts[rng.choice(others)][1])
                context.insert(0 if rng.random() < 0.3 else 1, distractor)
            records.append(
                {
                    "kind": "grounded",
                    "instruction": question_for(sentence),
                    "context": context,
                    "answer": sentence,
                    "document_id": doc_id,
                    "title": title,
                }
            )
    return records
