"""The rejected side of preference datasets: the packaged base model's own answers.

What a twin sounds like before any fine-tuning is exactly what DPO should move it away
from, so the base model answers each prompt of the preference dataset (features/
preference.py builds the pairs). Greedy, so a rebuild gives the same answer, and short
(TWIN_PREFERENCE_MAX_NEW_TOKENS): the pair contrasts voice, not length. Runs on the "gpu"
queue; on a CUDA machine the model runs there, else on the CPU.
"""

from functools import cache

from django.conf import settings

from features.prompts import render_prompt

from . import base_models

MIN_NEW_TOKENS = 4  # an answer that ends at once is no answer to prefer the author's over


@cache
def _loaded(identifier: str):
    """Tokenizer and model, once per worker process."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if settings.TWIN_TORCH_THREADS:
        torch.set_num_threads(settings.TWIN_TORCH_THREADS)
    path = base_models.resolve(identifier)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"  # batched generation continues every prompt from its last token
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to("cuda" if cuda else "cpu").eval()
    return tokenizer, model


class BaseModelGenerator:
    def __init__(self, identifier: str | None = None, max_new_tokens: int | None = None):
        self.identifier = identifier or settings.TWIN_BASE_MODEL
        self.max_new_tokens = max_new_tokens or settings.TWIN_PREFERENCE_MAX_NEW_TOKENS

    @property
    def name(self) -> str:
        return f"base:{self.identifier}:greedy-{self.max_new_tokens}"

    def answer(self, prompts: list[list[dict]]) -> list[str]:
        """One answer per prompt (chat messages, rendered with the chat template), in order."""
        import torch

        tokenizer, model = _loaded(self.identifier)
        rendered = [render_prompt(tokenizer, messages) for messages in prompts]
        batch = tokenizer(rendered, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        with torch.no_grad():
            output = model.generate(
                **batch,
                do_sample=False,
                max_new_tokens=self.max_new_tokens,
                min_new_tokens=MIN_NEW_TOKENS,
                pad_token_id=pad_id,
            )
        width = batch["input_ids"].shape[1]
        return [tokenizer.decode(row[width:], skip_special_tokens=True).strip() for row in output]
