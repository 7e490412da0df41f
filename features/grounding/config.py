"""Every tuned knob of answering (ask) and writing (write), in one object.

Chat, the evaluation gate and the benchmarks all take a `GroundingConfig`, built from settings by
`GroundingConfig.from_settings()`, so the gate and the benches measure exactly what chat serves.
The values and what they were tuned on are in the README ("Grounded answers", "Writing") and in
twinsite/settings.py, where each has its environment variable.
"""

from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class GroundingConfig:
    # Ask: the question's best note sentences go into the prompt, decoding favours continuing them.
    evidence_sentences: int = 3
    copy_bonus: float = 6.0  # logits added to continue a note
    start_bonus: float = 7.0  # to open an answer sentence like the best unsaid note
    min_similarity: float = 0.36  # below it the twin says it has no notes on that
    max_sentences: int = 3  # answers stop after this many sentences (0: no limit)
    max_new_tokens: int = 120  # answer budget; it grows with long notes up to twice this
    # Write: the adapter composes with a few notes as background, with no copy bonus; the copy guard
    # forbids continuing any n-gram (in tokens) of the owner's corpus, numbers and names excepted.
    write_notes: int = 3
    copy_guard_ngram: int = 8
    write_repetition_penalty: float = 1.15
    write_temperature: float = 0.7  # drafts are sampled (alternatives differ); 0: greedy
    write_top_p: float = 0.9

    @classmethod
    def from_settings(cls, **overrides) -> "GroundingConfig":
        from django.conf import settings

        values = {
            "evidence_sentences": settings.TWIN_EVIDENCE_SENTENCES,
            "copy_bonus": settings.TWIN_COPY_BONUS,
            "start_bonus": settings.TWIN_START_BONUS,
            "min_similarity": settings.TWIN_NOTES_MIN_SIMILARITY,
            "max_sentences": settings.TWIN_MAX_SENTENCES,
            "max_new_tokens": settings.TWIN_MAX_NEW_TOKENS,
            "write_notes": settings.TWIN_WRITE_NOTES,
            "copy_guard_ngram": settings.TWIN_COPY_GUARD_NGRAM,
            "write_temperature": settings.TWIN_WRITE_TEMPERATURE,
        }
        return cls(**{**values, **overrides})

    def but(self, **changes) -> "GroundingConfig":
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return asdict(self)
