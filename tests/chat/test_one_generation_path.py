"""The evaluation gate measures what chat serves: both answer through generate.answer_stream and
write through generate.write_stream (features/grounding/generate.py), with the same config."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from chat.actions import do_ask, do_write
from features.embeddings import embed
from features.grounding import generate
from features.grounding.config import GroundingConfig
from features.grounding.evidence import NoteSentences
from training import base_models
from training.evaluation import GateConfig, Prompt, write_drafts
from training.grounded_eval import GroundedQuestion, Note, grounding_metrics


@pytest.fixture
def calls(monkeypatch):
    seen = []
    for name in ("answer_stream", "write_stream"):
        original = getattr(generate, name)

        def spy(*args, _original=original, _name=name, **kwargs):
            seen.append((_name, args[5] if _name == "answer_stream" else args[4]))  # the config it got
            return _original(*args, **kwargs)

        monkeypatch.setattr(generate, name, spy)
    return seen


def test_chat_and_the_gate_answer_and_write_through_one_function(owner, owner_source, calls):
    do_ask(owner, "How much honey does a hive give?", mode="ask")
    do_write(owner, "why I keep bees", form="post", length="short")
    served = list(calls)
    assert [name for name, _ in served] == ["answer_stream", "write_stream"]

    path = base_models.resolve("tiny")
    model, tokenizer = AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)
    config = GateConfig(grounding=GroundingConfig.from_settings())
    question = GroundedQuestion("How much honey?", ["Each hive gives twelve kilograms of honey."], "twelve kilograms")
    grounding_metrics(model, tokenizer, "Alice", [question], embed, config.grounding)
    notes = NoteSentences.from_chunks([Note(1, "The bees find linden trees in the park.")], embed)
    write_drafts(model, tokenizer, "Alice", [Prompt("why I keep bees", "ref")], notes, None, embed, config)

    measured = calls[len(served) :]
    assert [name for name, _ in measured] == ["answer_stream", "write_stream"]
    assert all(config == served[0][1] for _, config in measured)  # the same knobs chat served with


def test_a_model_that_emits_nul_bytes_still_writes_a_draft_that_can_be_kept(owner, owner_source):
    """The NUL byte is a token like any other (the API fuzz test met one from the tiny random model),
    and PostgreSQL text holds none: the one generation path drops it, and the draft is saved."""
    from chat.models import Draft

    tokenizer = AutoTokenizer.from_pretrained(base_models.resolve("tiny"))
    nul = next(i for i in range(len(tokenizer)) if tokenizer.decode([i]) == "\x00")

    def only_nul(module, inputs, output):  # the serving model's head, whatever wraps it
        if isinstance(module, torch.nn.Linear) and module.out_features == len(tokenizer):
            forced = torch.full_like(output, -1e4)
            forced[..., nul] = 0.0
            return forced
        return None

    hook = torch.nn.modules.module.register_module_forward_hook(only_nul)
    try:
        draft = do_write(owner, "why I keep bees", form="post", length="short")
    finally:
        hook.remove()
    draft.refresh_from_db()
    assert draft.status == Draft.Status.DONE, draft.error
    assert draft.generated_text == draft.text and "\x00" not in draft.text
