"""A training run's hyperparameters: defaults per base model, overrides, validation.

The budget is in epochs over the twin's data with a step cap, so a small corpus is
seen several times and a large one is cut off before a CPU run takes hours. The
defaults come from measurements on public-domain author corpora (bench/fidelity.py):
SmolLM2-135M on about 60k words reaches a held-out perplexity of 0.85 x base or
better within the cap on 2 CPU cores. The tiny random test model needs a far higher
learning rate to move at all in a handful of steps.
"""

from dataclasses import asdict, dataclass, field, fields

SCHEDULES = ("cosine", "linear", "constant_with_warmup")
KNOWN_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class Hyperparameters:
    epochs: float = 2.0
    max_steps: int = 120  # cap on optimiser steps whatever the corpus size
    batch_size: int = 4
    grad_accumulation: int = 1
    learning_rate: float = 4e-4
    lr_schedule: str = "cosine"
    warmup_ratio: float = 0.05
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    max_seq_len: int = 256
    style_fraction: float = 0.7  # share of training sequences that are raw author text (the rest: Q&A)
    packing: bool = True
    eval_every: int = 20  # validation loss every N steps (and at the end)
    save_every: int = 20
    seed: int = 42
    dpo_beta: float = 0.1  # preference runs: how far DPO may move from the adapter it starts from

    @classmethod
    def from_dict(cls, values: dict) -> "Hyperparameters":
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def as_dict(self) -> dict:
        return asdict(self)

    def errors(self) -> dict[str, str]:
        """Field -> message for every value a run cannot use (empty when all is well)."""
        out = {}
        positive_ints = ("max_steps", "batch_size", "grad_accumulation", "lora_r", "lora_alpha", "eval_every")
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                out[name] = "must be a whole number of at least 1"
        if not isinstance(self.save_every, int) or self.save_every < 1:
            out["save_every"] = "must be a whole number of at least 1"
        if not 0 < float(self.epochs) <= 50:
            out["epochs"] = "must be more than 0 and at most 50"
        if not 0 < float(self.learning_rate) <= 0.1:
            out["learning_rate"] = "must be more than 0 and at most 0.1"
        if self.lr_schedule not in SCHEDULES:
            out["lr_schedule"] = f"must be one of {', '.join(SCHEDULES)}"
        if not 0 <= float(self.warmup_ratio) < 1:
            out["warmup_ratio"] = "must be at least 0 and below 1"
        if not 0 <= float(self.lora_dropout) < 1:
            out["lora_dropout"] = "must be at least 0 and below 1"
        if not 0 <= float(self.style_fraction) <= 1:
            out["style_fraction"] = "must be between 0 and 1"
        if not isinstance(self.max_seq_len, int) or not 32 <= self.max_seq_len <= 4096:
            out["max_seq_len"] = "must be a whole number from 32 to 4096"
        modules = self.target_modules
        if not isinstance(modules, list) or not modules or not set(modules) <= set(KNOWN_TARGET_MODULES):
            out["target_modules"] = f"must be a non-empty list taken from {', '.join(KNOWN_TARGET_MODULES)}"
        if not 0 < float(self.dpo_beta) <= 5:
            out["dpo_beta"] = "must be more than 0 and at most 5"
        if not isinstance(self.seed, int) or self.seed < 0:
            out["seed"] = "must be a whole number of at least 0"
        return out


# Measured defaults per base model (see the module docstring); unknown bases get the SmolLM2 ones.
BASE_DEFAULTS: dict[str, dict] = {
    # Bierce (bench/fidelity.py, 50.7k words trained): held-out perplexity 67.7 for the base, 44.8
    # (0.66x) at step 60 of a 120-step run and 43.3 (0.64x) at step 120, for twice the CPU time
    # (120 steps took 48 min on 2 heavily shared cores). 60 steps keep the target with a margin.
    "smollm2": {"max_steps": 60, "eval_every": 10, "save_every": 10},
    # The tiny random model (tests): at 3e-2 four steps lower the held-out text's loss; at 1e-2 they
    # mostly learned the write template's tokens once the instruct samples became writing briefs.
    "tiny": {
        "learning_rate": 3e-2,
        "epochs": 4.0,
        "max_steps": 4,
        "batch_size": 2,
        "max_seq_len": 192,
        "eval_every": 2,
        "save_every": 2,
    },
}
# Preference (DPO) runs refine an adapter that already speaks like the author: a small step
# (Rafailov et al. tuned LoRA-free models at 5e-7; LoRA tolerates more), one pass over the pairs.
DPO_DEFAULTS: dict[str, dict] = {"smollm2": {"learning_rate": 5e-5, "epochs": 1.0}, "tiny": {}}
EDITABLE = [f.name for f in fields(Hyperparameters)]


def defaults_for(base_identifier: str, preference: bool = False, **settings_overrides) -> Hyperparameters:
    """The base model's measured defaults (a preference run's on top), then operator settings (env) that are set."""
    values = {**Hyperparameters().as_dict(), **BASE_DEFAULTS.get(base_identifier, {})}
    if preference:
        values.update(DPO_DEFAULTS.get(base_identifier, DPO_DEFAULTS["smollm2"]))
    values.update({k: v for k, v in settings_overrides.items() if v is not None})
    return Hyperparameters.from_dict(values)
