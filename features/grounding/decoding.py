"""Decoding rules: steering toward the evidence (ask) and the copy guard (write).

Ask: how a 135M model is made to state the facts it was given.

Measured on the demo questions (greedy, base SmolLM2-135M): prompting alone put the fact
in 1 of 8 answers. Two things were in the way:

- transformers' `repetition_penalty` and `no_repeat_ngram_size` look at the whole
  sequence, prompt included, so they *penalise* the evidence tokens and *forbid*
  copying any 4-gram of the notes. Here both apply to the generated tokens only.
- the model's prior ("I'm sorry for any confusion…") wins over notes it half-reads.
  A bonus on the token that continues the longest n-gram of the evidence that the
  answer has just produced (a copy mechanism, like a pointer network's, but with no
  extra forward pass) lets it carry a phrase through once it has started one, in
  its own words around it.

The processor costs one dictionary lookup per step (the evidence is indexed by
n-gram once), so decode speed does not change measurably.
"""

import functools
import re
from collections import Counter, defaultdict

import torch
from transformers import LogitsProcessor, StoppingCriteria

from features.words import LETTERS, words

MAX_NGRAM = 6
# An answer sentence that opens like a note is held to the note's first tokens, not only its first:
# "One" (of "One came from a swarm… the one I call Dividend") went on "One of the other colonies".
OPENING_TOKENS = 3


def ngrams(ids: list[int], n: int) -> list[tuple]:
    """Every run of n consecutive tokens, in order (repeats kept: callers count them)."""
    return [tuple(ids[k : k + n]) for k in range(len(ids) - n + 1)]


class EvidenceSteering(LogitsProcessor):
    """Bonus for continuing the evidence, penalties for repeating the answer itself."""

    def __init__(
        self,
        evidence_ids: list[list[int]],  # best sentence first
        prompt_length: int,
        *,
        copy_bonus: float,
        start_bonus: float = 0.0,
        sentence_ends: frozenset[int] = frozenset(),
        end_ids: tuple[int, ...] = (),
        repetition_penalty: float = 1.1,
        no_repeat_ngram: int = 4,
    ):
        self.prompt_length = prompt_length
        self.evidence_ids = evidence_ids
        self.copy_bonus = copy_bonus
        self.start_bonus = start_bonus
        # Each note's opening, in both of its tokenizations (see evidence_token_ids), and the 4-grams
        # that only it has: each sentence of the answer opens like the best note it has not yet used.
        # A 4-gram the notes share (", and it was") said with the first note must not mark the second
        # as used: the answer then ended without the second note, which held the fact.
        notes = [evidence_ids[i : i + 2] for i in range(0, len(evidence_ids), 2)]
        self.notes = notes
        self.openings = [sorted({ids[0] for ids in pair if ids}) for pair in notes]
        fours = [{gram for ids in pair for gram in ngrams(ids, 4)} for pair in notes]
        self.note_ngrams = [own - set().union(*fours[:i], *fours[i + 1 :]) for i, own in enumerate(fours)]
        self.sentence_ends = sentence_ends
        self.end_ids = list(end_ids)
        self.repetition_penalty = repetition_penalty
        self.no_repeat_ngram = no_repeat_ngram
        # n-gram (as a tuple of token ids) -> the tokens that follow it somewhere in the evidence
        self.next_tokens: dict[tuple, set[int]] = defaultdict(set)
        # How often each n-gram of the no-repeat size occurs in the notes together (a note's two
        # tokenizations counted once): copying "by a larger one and then by a larger one still", or
        # ", and it was" from each of two notes, must not be cut off by the ban on repeating an n-gram.
        self.note_repeats: Counter = Counter()
        for pair in notes:
            in_note = Counter()
            for ids in pair:
                in_note |= Counter(ngrams(ids, no_repeat_ngram))
            self.note_repeats += in_note
        for ids in evidence_ids:
            for end in range(1, len(ids)):
                for n in range(1, min(MAX_NGRAM, end) + 1):
                    self.next_tokens[tuple(ids[end - n : end])].add(ids[end])

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for row in range(input_ids.shape[0]):
            generated = input_ids[row, self.prompt_length :].tolist()
            self._steer(generated, scores[row])
        return scores

    def _continue_opening(self, generated: list[int], scores: torch.FloatTensor):
        """Within a sentence's first OPENING_TOKENS tokens, the start bonus goes on to the next token
        of each unsaid note that the sentence has opened like so far (a said one would be said again)."""
        start = max((k + 1 for k, token in enumerate(generated) if token in self.sentence_ends), default=0)
        sentence = generated[start:]
        if len(sentence) >= OPENING_TOKENS:
            return
        size = len(sentence)
        unsaid = [ids for note in self._unsaid(generated) for ids in self.notes[note]]
        following = {ids[size] for ids in unsaid if len(ids) > size and ids[:size] == sentence}
        if following:
            scores[list(following)] += self.start_bonus

    def _unsaid(self, generated: list[int]) -> list[int]:
        """The notes (their indexes, best first) that none of the answer's 4-grams has marked as said."""
        said = set(ngrams(generated, 4))
        return [note for note, own in enumerate(self.note_ngrams) if not own & said]

    def _next_opening(self, generated: list[int]) -> list[int]:
        unsaid = self._unsaid(generated)
        return self.openings[unsaid[0]] if unsaid else []

    def _steer(self, generated: list[int], scores: torch.FloatTensor):
        if self.start_bonus and (not generated or generated[-1] in self.sentence_ends):
            opening = self._next_opening(generated)
            if opening:
                scores[opening] += self.start_bonus  # open like the note ("I feed…", "My commute…")
                if generated and self.end_ids:  # not done while a note is unsaid: it may hold the fact
                    scores[self.end_ids] = -float("inf")
        elif self.start_bonus:
            self._continue_opening(generated, scores)
        if generated and self.repetition_penalty != 1.0:
            seen = torch.tensor(sorted(set(generated)), device=scores.device)
            values = scores[seen]
            scores[seen] = torch.where(values > 0, values / self.repetition_penalty, values * self.repetition_penalty)
        for n in range(min(MAX_NGRAM, len(generated)), 0, -1):  # the longest match decides
            following = self.next_tokens.get(tuple(generated[-n:]))
            if following:
                bonus = self.copy_bonus * (1 + 0.25 * (n - 1))
                scores[list(following)] += bonus
                break
        size = self.no_repeat_ngram
        if size and len(generated) >= size:
            prefix = generated[-(size - 1) :]
            said = Counter(ngrams(generated, size))
            for start in range(len(generated) - size + 1):
                if generated[start : start + size - 1] == prefix:
                    ngram = tuple(generated[start : start + size])
                    if said[ngram] >= self.note_repeats.get(ngram, 0):  # no more often than the notes say it
                        scores[ngram[-1]] = -float("inf")


class StopAfterSentences(StoppingCriteria):
    """Short answers: a small model adds invented filler after it has said what it knows."""

    def __init__(self, tokenizer, prompt_length: int, sentences: int):
        self.tokenizer = tokenizer
        self.prompt_length = prompt_length
        self.sentences = sentences

    def __call__(self, input_ids, scores, **kwargs) -> bool:
        text = self.tokenizer.decode(input_ids[0, self.prompt_length :], skip_special_tokens=True)
        return count_sentence_ends(text) >= self.sentences


@functools.cache
def sentence_end_ids(tokenizer) -> frozenset[int]:
    """The vocabulary's tokens that end a sentence (".", "!", "?", with or without trailing space):
    where EvidenceSteering starts the next note. Computed once per tokenizer."""
    ends = set()
    for token_id in range(len(tokenizer)):
        text = tokenizer.decode([token_id])
        if text.rstrip(" \n").endswith((".", "!", "?")) and len(text.strip()) <= 3:
            ends.add(token_id)
    return frozenset(ends)


def count_sentence_ends(text: str) -> int:
    """Sentence ends: . ! or ? before a space, a line break or the end of the text. A period
    after a digit does not count ("1." may be the start of "1.5"), nor does one before a letter."""
    count = 0
    for i, ch in enumerate(text):
        after = text[i + 1 : i + 2]
        if ch in ".!?" and after in ("", " ", "\n") and not (ch == "." and i and text[i - 1].isdigit()):
            count += 1
    return count


def evidence_token_ids(tokenizer, evidence) -> list[list[int]]:
    """Each sentence as it is tokenized mid-text (after a space) and at the start of the answer."""
    ids = []
    for sentence in evidence:
        ids.append(tokenizer(" " + sentence, add_special_tokens=False)["input_ids"])
        ids.append(tokenizer(sentence, add_special_tokens=False)["input_ids"])
    return ids


def steered_decoding(tokenizer, evidence: list[str], prompt_length: int, *, copy_bonus, start_bonus, max_sentences):
    """The logits processor and stopping criteria of a steered, grounded answer: what chat serving
    and the evaluation gate both generate with (transformers lists, to extend or pass as they are)."""
    from transformers import LogitsProcessorList, StoppingCriteriaList

    steering = EvidenceSteering(
        evidence_token_ids(tokenizer, evidence),
        prompt_length,
        copy_bonus=copy_bonus,
        start_bonus=start_bonus,
        sentence_ends=sentence_end_ids(tokenizer),
        end_ids=(tokenizer.eos_token_id,) if tokenizer.eos_token_id is not None else (),
    )
    stopping = [StopAfterSentences(tokenizer, prompt_length, max_sentences)] if max_sentences else []
    return LogitsProcessorList([steering]), StoppingCriteriaList(stopping)


class CorpusIndex:
    """The owner's corpus as "what may not come next", twice over: every run of n-1 tokens mapped
    to the tokens that follow it somewhere in the corpus, and every run of n-1 words (as the copy
    measure counts words: features/words.py) mapped to the words that follow it. Continuing either
    would complete an n-gram of the owner's old text, which a draft must compose, not copy. The
    word table catches what the token table cannot see: the same words with other punctuation or
    case ("Church, whose" and "church whose"). Built once per owner and corpus version
    (chat/writing.py caches it); lookups per decoding step."""

    def __init__(self, tokenizer, texts: list[str], n: int):
        self.n = n
        self.tokenizer = tokenizer
        self.banned_after: dict[tuple, set[int]] = defaultdict(set)
        self.words_after: dict[tuple, set[str]] = defaultdict(set)
        for text in texts:
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            for gram in ngrams(ids, n):
                self.banned_after[gram[:-1]].add(gram[-1])
            for gram in ngrams(words(text), n):
                self.words_after[gram[:-1]].add(gram[-1])
        self.names = corpus_names(texts)

    def __len__(self) -> int:
        return len(self.banned_after)


NAME_OR_WORD = re.compile(r"(?<=[a-z,;] )[A-Za-z]+")  # a word inside a sentence (after a lower-case word)


def corpus_names(texts: list[str]) -> frozenset[str]:
    """The words the corpus writes capitalised inside sentences more often than in lower case: its
    names ("Roman Catholic Church"), which a draft may copy. A common word in capitals ("With",
    "That") stays banned: sampling moved to the capitalised twin of every banned word otherwise."""
    capitalised, lower = Counter(), Counter()
    for text in texts:
        for found in NAME_OR_WORD.finditer(text):
            word = found.group(0)
            (capitalised if word[0].isupper() else lower)[word.lower()] += 1
    return frozenset(word for word, count in capitalised.items() if count > lower[word])


@functools.cache
def copyable_token_ids(tokenizer) -> frozenset[int]:
    """Tokens a draft may take from the corpus even mid-n-gram: digits and capitalised words (numbers
    and names: a draft about "the Ravensby box" must be able to name it)."""
    copyable = set()
    for token_id in range(len(tokenizer)):
        text = tokenizer.decode([token_id]).strip()
        pronoun = text == "I" or text.startswith("I'")  # "I" is no name
        if text and (any(ch.isdigit() for ch in text) or (text[0].isupper() and not pronoun)):
            copyable.add(token_id)
    return frozenset(copyable)


SENTENCE_END = frozenset(".!?:;\n\"“”'")


def mid_sentence(text: str) -> bool:
    """Whether the next word goes on a sentence (rather than beginning one, or a line)."""
    stripped = text.rstrip(" \t")
    return bool(stripped) and stripped[-1] not in SENTENCE_END


@functools.cache
def word_starts(tokenizer) -> tuple[dict[str, frozenset[int]], dict[str, frozenset[int]]]:
    """The tokens that can begin a word, by their letters (lower case): those with a boundary of
    their own (" ecclesiastic", "(the") and those without ("the"), which begin a word only after
    a space or punctuation."""
    bounded, bare = defaultdict(set), defaultdict(set)
    for token_id in range(len(tokenizer)):
        text = tokenizer.decode([token_id]).lower()
        found = LETTERS.search(text)
        if found:
            starts_bounded = not (text[0].isalpha() or text[0] == "'")  # "'s" goes on the word before
            (bounded if starts_bounded else bare)[found.group(0)].add(token_id)
    return {k: frozenset(v) for k, v in bounded.items()}, {k: frozenset(v) for k, v in bare.items()}


def tokens_starting(tokenizer, banned_words: set[str], after_a_word: bool) -> set[int]:
    """Every token that would begin one of `banned_words` (its letters a prefix of the word)."""
    bounded, bare = word_starts(tokenizer)
    found = set()
    for word in banned_words:
        for end in range(1, len(word) + 1):
            found |= bounded.get(word[:end], frozenset())
            if not after_a_word:
                found |= bare.get(word[:end], frozenset())
    return found


class CopyGuard(LogitsProcessor):
    """Write mode: forbid the token that would complete an n-gram of the corpus, of tokens or of
    words (numbers and names excepted), and any 4-gram the draft itself has already said (no
    sentence said twice). The repetition penalty looks at the draft only: the brief's own words
    must stay cheap."""

    def __init__(
        self,
        index: CorpusIndex | None,
        prompt_length: int,
        copyable: frozenset[int],
        repetition_penalty: float = 1.0,
        no_repeat: int = 4,
    ):
        self.index = index
        self.prompt_length = prompt_length
        self.copyable = copyable
        self.repetition_penalty = repetition_penalty
        self.no_repeat = no_repeat

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for row in range(input_ids.shape[0]):
            generated = input_ids[row, self.prompt_length :].tolist()
            if generated and self.repetition_penalty != 1.0:
                seen = torch.tensor(sorted(set(generated)), device=scores.device)
                values = scores[row, seen]
                penalised = torch.where(values > 0, values / self.repetition_penalty, values * self.repetition_penalty)
                scores[row, seen] = penalised
            banned = set()
            if self.index is not None and len(generated) >= self.index.n - 1:
                text = self.index.tokenizer.decode(generated)
                # A capital after a full stop or a line break begins a sentence or a verse line, not
                # a name: exempting it let a poem through a line at a time (Bierce's verses).
                exempt = self.copyable if mid_sentence(text) else frozenset()
                copying = self.index.banned_after.get(tuple(generated[-(self.index.n - 1) :]), set())
                banned |= (copying - exempt) | self._starting_a_copied_word(text)
            size = self.no_repeat
            if size and len(generated) >= size:
                prefix = generated[-(size - 1) :]
                banned |= {
                    generated[k + size - 1]
                    for k in range(len(generated) - size + 1)
                    if generated[k : k + size - 1] == prefix
                }
            if banned:
                scores[row, list(banned)] = -float("inf")
        return scores

    def _starting_a_copied_word(self, text: str) -> set[int]:
        """The tokens that would begin the corpus word that follows the draft's last n-1 words."""
        said = words(text)[-(self.index.n - 1) :]
        if len(said) < self.index.n - 1:
            return set()
        banned_words = self.index.words_after.get(tuple(said))
        if not banned_words:
            return set()
        after_a_word = text[-1].isalpha() or text[-1] == "'"  # a bare token would go on that word
        names = banned_words & self.index.names  # a name may be copied, written as a name
        return tokens_starting(self.index.tokenizer, banned_words - names, after_a_word) | (
            tokens_starting(self.index.tokenizer, names, after_a_word) - self.copyable
        )


def write_decoding(tokenizer, prompt_length: int, config, index: CorpusIndex | None):
    """The logits processors and stopping criteria of a draft (what chat's write mode and the gate's
    write measure both generate with)."""
    from transformers import LogitsProcessorList, StoppingCriteriaList

    guard = CopyGuard(index, prompt_length, copyable_token_ids(tokenizer), config.write_repetition_penalty)
    return LogitsProcessorList([guard]), StoppingCriteriaList([])
