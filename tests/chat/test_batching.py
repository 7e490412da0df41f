"""Batched serving answers exactly what one answer alone gets: greedy rows token for token, sampled
rows draw for draw with the same seed, each with its own adapter and its own steering or copy guard,
joining the batch at different token boundaries (features/grounding/batching.py)."""

import threading
import time

import pytest
import torch
from django.conf import settings
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from features.grounding import generate, rows
from features.grounding.batching import BASE, Batcher, FairLock
from features.grounding.config import GroundingConfig
from features.prompts import build_messages, build_write_messages
from training import base_models

NOTES = [
    "Each hive gives twelve kilograms of honey a year.",
    "My bees find linden trees in the park in June.",
    "I keep four hives on the roof of the library.",
    "The queen lays two thousand eggs a day in spring.",
]
QUESTIONS = [
    "How much honey does a hive give?",
    "Where do the bees find food?",
    "Where are the hives?",
    "How many eggs does the queen lay?",
    "What do you feed your bees?",
    "When is the honey harvested?",
]


def with_adapters(path: str, count: int):
    """The base model with `count` random LoRA adapters (a fresh LoRA is a no-op: lora_B is drawn too)."""
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    for number in range(count):
        torch.manual_seed(number)
        config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        if number == 0:
            model = get_peft_model(model, config, adapter_name="a0")
        else:
            model.add_adapter(f"a{number}", config)
        for name, parameter in model.named_parameters():
            if f".a{number}." in name and "lora_B" in name:
                parameter.data *= 0.05  # changes the answer without turning it into noise
    return model.eval()


def answer(model, tokenizer, config, number: int, **kwargs) -> str:
    """Question `number` (ask mode: steered toward its notes), or a sampled draft for odd numbers
    when `write` is set: the text that features.grounding.generate streams."""
    if kwargs.pop("write", False) and number % 2:
        messages = build_write_messages("Alice", QUESTIONS[number], "post", 40, NOTES[:1])
        stream = generate.stream_generation(
            model, tokenizer, messages, config, mode="write", max_new_tokens=24, seed=number, **kwargs
        )
    else:
        notes = NOTES[number % 4 :][:2] or NOTES[:2]
        messages = build_messages("Alice", QUESTIONS[number], notes)
        stream = generate.stream_generation(model, tokenizer, messages, config, evidence=notes, **kwargs)
    return generate.run_to_end(stream).text


def alone_and_batched(model, tokenizer, config, adapters: list[str], write=False):
    alone = []
    for number, adapter in enumerate(adapters):
        if adapter == BASE:
            with model.disable_adapter():
                alone.append(answer(model, tokenizer, config, number, write=write))
        else:
            model.set_adapter(adapter)
            alone.append(answer(model, tokenizer, config, number, write=write))
    batcher = Batcher(model, max_rows=len(adapters))
    batched = [None] * len(adapters)

    def ask(number):
        kwargs = {"batcher": batcher, "adapter": adapters[number], "write": write}
        batched[number] = answer(model, tokenizer, config, number, **kwargs)

    threads = []
    for number in range(len(adapters)):
        threads.append(threading.Thread(target=ask, args=(number,)))
        threads[-1].start()
        time.sleep(0.05 * (number % 3))  # joining while the others decode, at different token boundaries
    for thread in threads:
        thread.join()
    return alone, batched, batcher


@pytest.mark.parametrize("spare_columns", [64, 1])
def test_greedy_and_seeded_answers_are_the_same_batched_and_alone_on_the_tiny_model(monkeypatch, spare_columns):
    """spare_columns=1: the KV cache buffers grow at almost every join and token (rows.RowCache)."""
    monkeypatch.setattr(rows, "SPARE_COLUMNS", spare_columns)
    path = base_models.resolve("tiny")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = with_adapters(path, 4)
    config = GroundingConfig.from_settings().but(max_new_tokens=24)
    adapters = ["a0", "a1", BASE, "a2", "a3", "a1"]
    alone, batched, batcher = alone_and_batched(model, tokenizer, config, adapters, write=True)
    assert batched == alone
    assert len(set(alone)) == len(alone)  # each row really had its own adapter and prompt
    assert batcher.steps < sum(len(tokenizer(text)["input_ids"]) for text in alone)  # rows shared steps


def test_row_lora_computes_what_peft_computes():
    """The batch's LoRA slots (two bmm calls a layer for all rows) give peft's mixed-adapter forward,
    rows of different adapters, ranks and target modules and base rows together."""
    model = with_adapters(base_models.resolve("tiny"), 2)
    torch.manual_seed(7)
    model.add_adapter("wide", LoraConfig(r=4, lora_alpha=4, target_modules="all-linear", init_lora_weights=False))
    names = ["a0", "wide", BASE, "a1", "a0"]
    ids = torch.randint(0, 200, (len(names), 9))
    with torch.inference_mode():
        expected = model(input_ids=ids, adapter_names=names).logits
        lora = rows.RowLora(model)
        for slot, name in enumerate(names):
            lora.put(slot, name)
        lora.move(4, 2)  # a row leaving: the last one takes its slot
        with lora.applied(4):
            got = model(input_ids=ids[[0, 1, 4, 3]]).logits
        assert model(input_ids=ids, adapter_names=names).logits.allclose(expected)  # the model is as it was
    assert got.allclose(expected[[0, 1, 4, 3]], atol=1e-5)
    assert not got[2].allclose(expected[2], atol=1e-3)  # the adapters do change the logits


def test_the_lora_layer_list_follows_adapters_loaded_and_removed():
    """rows.lora_layers is found once per set of adapters (the walk cost a joining row 14 ms per call):
    an adapter on other modules, or one removed and loaded again on others, gives the new list."""
    model = with_adapters(base_models.resolve("tiny"), 1)
    narrow = rows.lora_layers(model)
    assert narrow is rows.lora_layers(model)  # not walked again
    assert {type(layer.base_layer).__name__ for layer in narrow} == {"Linear"}
    model.add_adapter("wide", LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    wide = rows.lora_layers(model)
    assert len(wide) > len(narrow) and all(layer in wide for layer in narrow)
    model.delete_adapter("wide")
    model.add_adapter("wide", LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=False))
    assert rows.lora_layers(model) == [m for m in model.modules() if isinstance(m, type(narrow[0]))]


@pytest.mark.parametrize("adapter", [None, "a1"])
def test_one_answer_alone_is_what_model_generate_gives(adapter):
    """The batcher's loop, one row: the same tokens as transformers' generate with the same processors
    (with an adapter: peft's own forward)."""
    path = base_models.resolve("tiny")
    tokenizer = AutoTokenizer.from_pretrained(path)
    if adapter:
        model = with_adapters(path, 2)
        model.set_adapter(adapter)
    else:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    config = GroundingConfig.from_settings().but(max_new_tokens=24)
    messages = build_messages("Alice", QUESTIONS[0], NOTES[:2])
    served = "".join(generate.stream_generation(model, tokenizer, messages, config, evidence=NOTES[:2]))
    prompt = generate.render_prompt(tokenizer, messages)

    from features.grounding.decoding import steered_decoding

    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    processors, stopping = steered_decoding(
        tokenizer,
        NOTES[:2],
        ids["input_ids"].shape[1],
        copy_bonus=config.copy_bonus,
        start_bonus=config.start_bonus,
        max_sentences=config.max_sentences,
    )
    budget = generate.answer_budget(tokenizer, NOTES[:2], config)
    output = model.generate(
        **ids, max_new_tokens=budget, logits_processor=processors, stopping_criteria=stopping, do_sample=False
    )
    expected = tokenizer.decode(output[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
    assert served == expected


@pytest.mark.skipif(
    not (settings.TWIN_MODEL_CACHE / "smollm2-135m-instruct-0.1.2").exists(),
    reason="the packaged SmolLM2 has not been converted on this machine (make setup)",
)
def test_greedy_answers_are_the_same_batched_and_alone_on_smollm2():
    path = base_models.resolve("smollm2")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = with_adapters(path, 3)
    config = GroundingConfig.from_settings().but(copy_bonus=6.0, start_bonus=4.0, max_new_tokens=32)
    alone, batched, _ = alone_and_batched(model, tokenizer, config, ["a0", "a1", BASE, "a2"])
    assert batched == alone
    assert all(text.strip() for text in alone)


def test_the_model_lock_is_granted_in_turn():
    """The decoding loop takes the lock for every step and asks again at once: a question asking for it
    in between (chat/llm.py checks its adapter under it) gets it next, not when the loop happens to lose."""
    lock, steps, stop = FairLock(), [], threading.Event()

    def loop():
        while not stop.is_set():
            with lock:
                steps.append(1)
                time.sleep(0.002)

    thread = threading.Thread(target=loop)
    thread.start()
    time.sleep(0.05)
    asked = len(steps)
    with lock:
        waited = len(steps) - asked
    stop.set()
    thread.join()
    assert waited <= 1
    assert not lock.locked()
