"""Evidence: the few sentences of a twin's own writing that answer a question.

A 135M model drowns in three whole 256-token chunks and answers from its prior
instead. Given the question's best sentences instead (a short prompt, inside a
token budget), it can be steered to state them (see training/steering.py). The same
selection builds the grounded training samples, so training and serving see notes
of the same shape.

Sentences are ranked by embedding similarity to the question plus word overlap
(a light stemmer: "nightly" meets "night"), plus a small bonus when the sentence holds
what the question asks for (a quantity, a price, a distance, a duration, a reason, a name),
plus a share of the similarity of the sentence before it (the answer often follows the sentence
that restates the question), a larger share when that sentence asks ("People often ask why I…");
lines that are mostly symbols (a cron line, a shell command) and sentences that ask rather than
state rank below prose. When the question asks who, a best sentence that opens with "He", "She" or
"They" is given after the sentence before it (from the chunk before when the chunk starts there:
ChunkQuerySet.lead_ins), so that the note says who.
"""

import re
from dataclasses import dataclass

import numpy as np

from features.chunking import split_sentences

MIN_SENTENCE_CHARS = 12
LABEL_WORDS = 5
# Linear under search as well as match: a run of spaces is entered only at its start ((?<!\s)), and
# no quantifier gives back what it took (*+, ++), so a long run of blanks is read once, not once per start.
BYLINE = re.compile(r"(?<!\s)\s*+([Bb]y|[Ww]ritten by)\s++[A-Z][\w.'-]*+(\s++[A-Z][\w.'-]*+){0,3}\s*+$")
PROSE_SHARE = 0.85
# What prose is made of besides letters, digits and spaces: "It cost me £1,340." is prose, a
# cron line or a shell command ("0 3 * * * pg_dump -Fc > /srv/db.dump") is not.
PROSE_PUNCTUATION = frozenset(".,;:!?'\"’‘“”£$€%-–—()")
# A question that asks for a quantity, a time or a date wants a sentence that states one.
QUANTITY_QUESTION = re.compile(
    r"\b(how (many|much|long|far|old|often|big|fast|tall|heavy|wide|late|early|hot|cold|warm|high|deep)|when|"
    r"what (time|year|date|day|month|ratio|size|percentage|number|temperature|limit|age|pitch|humidity|voltage|"
    r"weight|speed|height|depth|length|width|pressure|frequency|rate|score|total|share|dose))\b|\blimit\b",
    re.IGNORECASE,
)
# Digits, or number and time words ("one" is left out: it is more often a pronoun).
QUANTITY = re.compile(
    r"\d|\b(two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|"
    r"thousand|dozen|twice|daily|weekly|monthly|yearly|noon|midnight)\b",
    re.IGNORECASE,
)
# The same for the other common answer types: a reason, and a name (a person, place or thing).
REASON_QUESTION = re.compile(r"^\s*why\b|\bwhat (made|makes|was the reason)|\bthe reason\b", re.IGNORECASE)
# ", so" states a consequence: the clause before it is the reason ("Cold honey is thick, so…").
# "since" only opening a clause: "…since I was nineteen" tells when, not why.
REASON = re.compile(
    r"\b(because|so that|in order to|which is why|that is why|the reason|the answer is|due to)\b|, so\b|(^|, )since\b",
    re.IGNORECASE,
)
NAME_QUESTION = re.compile(
    r"^\s*(who|whose|where|which)\b|\bwhat (was|is) (the|its|his|her|their) name\b|\b(call|called|named)\b",
    re.IGNORECASE,
)
NAME = re.compile(r"(?<=[a-z,;] )[A-Z][a-z]+")  # a capitalised word inside a sentence
# Two narrower kinds of quantity; a sentence that matches one gets both bonuses.
TIME_QUESTION = re.compile(r"\b(what|which) (time|hour)\b", re.IGNORECASE)
TIME = re.compile(
    r"\b\d{1,2}[:.]\d{2}\b|\b\d{1,2} ?(am|pm|a\.m\.|p\.m\.)|\bo'clock\b|\bnoon\b|\bmidnight\b", re.IGNORECASE
)
TEMPERATURE_QUESTION = re.compile(r"\b(temperature|how (hot|cold|warm))\b", re.IGNORECASE)
TEMPERATURE = re.compile(r"\d ?°|\bdegrees?\b|\d ?[CF]\b")
# A run of digits, commas and points is read from its start only ((?<![\d,.])) and never given back:
# "1,1,1,…" tried from every digit, each read to the end of the run, took seconds (quadratic). Only
# whether DISTANCE or DURATION match is used, and a unit must follow the run's end either way.
NUMBER = (
    r"((?<![\d,.])[,.]*+\d[\d,.]*+"
    r"|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty)"
)
MONEY_QUESTION = re.compile(
    r"\b(price|cost|costs|costing|pay|pays|paying|paid|spend|spending|spent|charge|charged|charging|earn|earned|"
    r"earning|sell for)\b",
    re.IGNORECASE,
)
MONEY = re.compile(r"[£$€]\s?\d|\d\s?(p|pence|pounds?|dollars?|euros?|cents?)\b", re.IGNORECASE)
DISTANCE_QUESTION = re.compile(r"\bhow (far|long is|high|deep|tall|wide)\b|\bdistance\b", re.IGNORECASE)
DISTANCE = re.compile(
    NUMBER + r"\s?(km|kilomet\w*|miles?|metres?|meters?|m|yards?|feet|foot|ft|inch\w*|cm|mm)\b", re.IGNORECASE
)
DURATION_QUESTION = re.compile(r"\bhow long\b|\b(for )?how many (hours|days|weeks|months|years|minutes)\b", re.I)
DURATION = re.compile(NUMBER + r"[\s-]?(seconds?|minutes?|hours?|days?|nights?|weeks?|months?|years?)\b", re.I)
ANSWER_TYPES = (
    (QUANTITY_QUESTION, QUANTITY),
    (TIME_QUESTION, TIME),
    (TEMPERATURE_QUESTION, TEMPERATURE),
    (MONEY_QUESTION, MONEY),
    (DISTANCE_QUESTION, DISTANCE),
    (DURATION_QUESTION, DURATION),
    (REASON_QUESTION, REASON),
    (NAME_QUESTION, NAME),
)
# A sentence's score is WEIGHTS · its features (NoteSentences.features, in this order).
WEIGHTS = {
    "similarity": 1.0,  # embedding cosine to the question
    "overlap": 0.3,  # the share of the question's content words it holds
    # Retrieval ranked the chunks on the whole passage: a sentence of the best chunk (rank 0) is a
    # little likelier to answer than an equally similar one from the fifth (a different post, often).
    "chunk_rank": -0.05,
    "symbols": -0.5,  # under PROSE_SHARE letters, digits, spaces and sentence punctuation: a cron line
    "asks": -0.2,  # it asks ("Why not carbon?", "People ask why…"): it restates the question, not answers it
    # The answer often follows the sentence that sets its topic ("So I'm back on the hill. There is
    # one real climb. Gallows Lane."): a sentence earns a share of the similarity of the one before it.
    "follows": 0.15,
    # "People often ask why I do not use a modern glue. The answer is that…": the sentence after one
    # that asks (or reports a question) earns a further share of that sentence's similarity.
    "answers": 0.3,
    "answer_types": 0.3,  # how many of the answer types the question wants it holds (ANSWER_TYPES)
}
FEATURES = tuple(WEIGHTS)
# A reported question ("People often ask why I…") restates the question, as one that ends with "?" does.
ASKED = re.compile(
    r"\b(ask|asks|asked|wonder|wonders|wondered)( me| myself| us)? (why|how|what|whether|if|where|who|which|when)\b",
    re.IGNORECASE,
)
# A note that opens with a pronoun ("He pointed out that…") is given with the sentence before it,
# in reading order: without it neither the model nor the reader knows who "he" is.
OPENS_WITH_PRONOUN = re.compile(r"^(He|She|They|His|Her|Their|Them|Him)\b")
STOPWORDS = frozenset(
    """a an the i me my mine you your yours we our us he she it its they them their of to in on at by for and or
    but is are was were be been am do does did have has had that this these those with as from what when where
    which who whom why how there here so not no""".split()
)


@dataclass
class Evidence:
    text: str
    chunk_id: int
    similarity: float  # embedding cosine to the question
    score: float  # the ranking score (see NoteSentences.rank)
    index: int = -1  # its position in NoteSentences.texts


def stem(word: str) -> str:
    for suffix in ("ing", "ly", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> list[str]:
    """Lower-cased, stemmed words and numbers without stopwords: what overlap is measured on."""
    return [stem(w) for w in re.findall(r"[a-z0-9]+", text.lower().replace("’", "'")) if w not in STOPWORDS]


def overlap(question: str, sentence: str) -> float:
    """The share of the question's content words that the sentence contains."""
    wanted = set(content_words(question))
    return len(wanted & set(content_words(sentence))) / len(wanted) if wanted else 0.0


def prose_share(text: str) -> float:
    return sum(ch.isalnum() or ch.isspace() or ch in PROSE_PUNCTUATION for ch in text) / max(1, len(text))


def note_sentences(text: str) -> list[str]:
    """A chunk's sentences, hard-wrapped lines joined; headings and code blocks are not notes."""
    prose = "\n".join(line for line in text.split("\n") if not line.lstrip().startswith("#") and not BYLINE.match(line))
    return [s for s in split_sentences(prose) if len(s) >= MIN_SENTENCE_CHARS and "```" not in s and not is_label(s)]


def is_label(sentence: str) -> bool:
    """A title, a byline ("By Ann Lee") or a list label: a few words, or title case, and no full
    stop. It states nothing, yet "who wrote…?" questions land on it."""
    if sentence.rstrip().endswith((".", "!", "?", '"')):
        return False
    words = sentence.split()
    # A title is a label at any length when it is in title case ("The Grand in the Corn Exchange"):
    # a plain-text post keeps its title as its first line, and questions that name the post land on it.
    return len(words) < LABEL_WORDS or all(word[0].isupper() or len(word) < 4 for word in words)


def asks(sentence: str) -> bool:
    """It asks, or reports a question ("People often ask why…"): it restates a question, not answers it."""
    return sentence.rstrip().endswith("?") or bool(ASKED.search(sentence))


def opens_with_pronoun(sentence: str) -> bool:
    return bool(OPENS_WITH_PRONOUN.match(sentence))


@dataclass
class NoteSentences:
    """The sentences of the retrieved chunks, embedded once: ranked for the prompt, then
    reused by the grounding check after the answer."""

    texts: list[str]
    chunk_ids: list[int]
    vectors: np.ndarray
    previous: list[int | None]  # the index of the sentence before each one in its chunk

    @classmethod
    def from_chunks(cls, chunks, embed, lead_ins: dict[int, str] | None = None) -> "NoteSentences":
        """chunks: objects with .pk and .text, best first. Duplicate sentences (chunk overlap) kept once.
        lead_ins: chunk pk -> the sentence before that chunk, for a chunk that opens with a pronoun
        (see ChunkQuerySet.lead_ins); it joins the chunk's sentences."""
        texts, chunk_ids, previous = [], [], []
        lead_ins = lead_ins or {}
        for chunk in chunks:
            before = None
            sentences = note_sentences(chunk.text)
            for sentence in [lead_ins[chunk.pk], *sentences] if chunk.pk in lead_ins else sentences:
                if sentence not in texts:
                    texts.append(sentence)
                    chunk_ids.append(chunk.pk)
                    previous.append(before)
                index = texts.index(sentence)
                if previous[index] is None and before != index:  # a chunk that starts mid-passage
                    previous[index] = before
                before = index
        return cls(texts, chunk_ids, embed(texts), previous)

    def closest(self, question_vector) -> float:
        """The cosine similarity of the note nearest the question (0 without notes)."""
        if not self.texts:
            return 0.0
        return float(np.max(self.vectors @ np.asarray(question_vector, dtype=np.float32)))

    def features(self, question: str, question_vector) -> np.ndarray:
        """One row per sentence, one column per name in FEATURES (what WEIGHTS multiply)."""
        similarities = self.vectors @ np.asarray(question_vector, dtype=np.float32)
        wanted = [pattern for asks, pattern in ANSWER_TYPES if asks.search(question)]
        chunk_rank = {chunk_id: rank for rank, chunk_id in enumerate(dict.fromkeys(self.chunk_ids))}
        asking = [asks(text) for text in self.texts]
        rows = []
        for index, (text, chunk_id) in enumerate(zip(self.texts, self.chunk_ids, strict=True)):
            before = self.previous[index]
            lead = 0.0 if before is None else max(0.0, float(similarities[before]))  # the sentence before's
            # "He pointed out…" answers "who?" with the name in the sentence before it.
            typed = f"{self.texts[named]} {text}" if (named := self._antecedent(index)) is not None else text
            rows.append(
                (
                    float(similarities[index]),
                    overlap(question, text),
                    chunk_rank[chunk_id],
                    prose_share(text) < PROSE_SHARE,
                    asking[index],
                    lead,
                    lead if before is not None and asking[before] else 0.0,
                    sum(bool(pattern.search(typed)) for pattern in wanted),
                )
            )
        return np.array(rows, dtype=np.float32).reshape(len(rows), len(FEATURES))

    def rank(self, question: str, question_vector) -> list[Evidence]:
        """Every sentence scored for the question, best first."""
        if not self.texts:
            return []
        features = self.features(question, question_vector)
        scores = features @ np.array(list(WEIGHTS.values()), dtype=np.float32)
        ranked = [
            Evidence(text, chunk_id, float(row[0]), float(score), index)
            for index, (text, chunk_id, row, score) in enumerate(
                zip(self.texts, self.chunk_ids, features, scores, strict=True)
            )
        ]
        return sorted(ranked, key=lambda e: -e.score)

    def _antecedent(self, index: int) -> int | None:
        """The sentence before one that opens with a pronoun, in the same chunk."""
        return self.previous[index] if opens_with_pronoun(self.texts[index]) else None

    def select(self, question: str, question_vector, limit: int) -> list[Evidence]:
        """The best `limit` sentences, best first: the model copies from the first note most.
        For a question that asks who (or which, where), a best sentence that opens with a pronoun
        comes after the sentence before it. Other questions do not need the name, and the sentence
        before would push the second best out ("In what year was your pear planted?": "He is the
        tree everyone comes to see…" and the year, not "I start them at Old Gideon.")."""
        ranked = self.rank(question, question_vector)
        before = self._antecedent(ranked[0].index) if ranked and NAME_QUESTION.search(question) else None
        if before is None:
            return ranked[:limit]
        antecedent = next(e for e in ranked if e.index == before)
        rest = [e for e in ranked[1:] if e is not antecedent]
        return [antecedent, ranked[0], *rest[: max(0, limit - 2)]]
