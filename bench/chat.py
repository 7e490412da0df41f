"""Chat generation: TwinModels.stream against bare `model.generate` with the base model.

Model: the packaged SmolLM2-135M-Instruct (fp32, CPU). Prompts: the app's chat
template with retrieved notes, about 100 and 500 tokens.

Configurations, interleaved within every repetition so they share the load:
- bare: `model.generate` on the same rendered prompt, greedy, exactly
  max_new_tokens, timed token by token with a streamer, in a worker thread
  like the app's (the baseline);
- app, base only: `TwinModels.stream(messages)` in a process that never loaded
  an adapter (a twin with no approved model);
- app, adapters off: the same call once adapters are resident, so the base
  model is a PeftModel with adapters disabled for this twin;
- app, LoRA: `TwinModels.stream(messages, version)` with a random LoRA active.

App TTFT runs from the call to the first text piece: prompt rendering,
tokenising, thread start, prefill, and the streamer waiting for a whole word.
Bare TTFT runs from the call to the first new token. Decode rate is
(tokens - 1) / (end - first token), tokens counted by the app's own Generation.
"""

import threading
import time

from . import common
from .common import log, median, row, timed

QUESTION = "How do you keep going through the winter, and what would you tell a beginner?"


class TokenClock:
    """A streamer that timestamps every put(); the first put is the prompt."""

    def __init__(self):
        self.stamps = []

    def put(self, value):
        self.stamps.append(time.perf_counter())

    def end(self):
        pass


def build_prompts(tokenizer, targets: list[int]) -> dict[int, list[dict]]:
    """Messages whose rendered prompt is the first to reach each target token count."""
    from features.prompts import build_messages, render_prompt

    sentences = common.corpus_sentences()
    prompts = {}
    for target in targets:
        context, i = [], 0
        while True:
            messages = build_messages("Robin", QUESTION, [" ".join(context)] if context else [])
            if len(tokenizer(render_prompt(tokenizer, messages), add_special_tokens=False)["input_ids"]) >= target:
                break
            context.append(sentences[i % len(sentences)])
            i += 1
        prompts[target] = messages
    return prompts


def in_thread(function, *args):
    """Run function in a fresh thread, as TwinModels.stream runs generate.

    Under CPU contention, torch in the main thread can be several times slower
    than in a worker thread (libgomp spin-waits while its team is the only one),
    so the baseline must run in the same kind of thread as the app.
    """
    result = []
    worker = threading.Thread(target=lambda: result.append(function(*args)))
    worker.start()
    worker.join()
    return result[0]


def bare_generate(model, tokenizer, messages, max_new_tokens: int) -> dict:
    import torch

    from features.prompts import render_prompt

    clock = TokenClock()
    started = time.perf_counter()
    inputs = tokenizer(render_prompt(tokenizer, messages), return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        model.generate(
            **inputs,
            streamer=clock,
            max_new_tokens=max_new_tokens,
            min_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
    first, last = clock.stamps[1], clock.stamps[-1]
    tokens = len(clock.stamps) - 1
    return {
        "ttft_ms": 1000 * (first - started),
        "tokens": tokens,
        "decode_tps": (tokens - 1) / (last - first) if tokens > 1 else float("nan"),
        "prompt_tokens": inputs["input_ids"].shape[1],
    }


def app_stream(models, messages, version, max_new_tokens: int) -> dict:
    stream = models.stream(messages, version, max_new_tokens=max_new_tokens)
    started = time.perf_counter()
    first = None
    while True:
        try:
            next(stream)
        except StopIteration as finished:
            generation = finished.value
            break
        if first is None:
            first = time.perf_counter()
    done = time.perf_counter()
    return {
        "ttft_ms": 1000 * (first - started),
        "tokens": generation.tokens,
        "decode_tps": (generation.tokens - 1) / (done - first) if generation.tokens > 1 else float("nan"),
        "prompt_tokens": generation.prompt_tokens,
        "app_first_token_ms": generation.first_token_ms,
        "text": generation.text,
    }


def run(quick: bool) -> dict:
    common.setup_django()
    from chat.llm import TwinModels

    max_new_tokens, reps = (16, 3) if quick else (64, 3)
    targets = [100, 500]
    params = {"max_new_tokens": max_new_tokens, "reps": reps, "warmups": 1, "prompt_targets": targets}

    path = common.base_model_path()
    adapter_dir = common.data_dir() / "bench-adapters" / "chat"
    with timed() as t:
        common.make_random_adapters(path, [adapter_dir], seed=1)
    log(f"random LoRA adapter saved in {t.seconds:.1f} s")
    version = common.adapter_version(1, adapter_dir)

    bare = common.load_base(path)
    plain, multi = TwinModels(), TwinModels()
    plain.prepare(None)  # never gets an adapter
    multi.prepare(version)  # the adapter stays resident; None then means "adapters disabled"
    tokenizer = plain.tokenizer
    prompts = build_prompts(tokenizer, targets)

    configs = {
        "bare": lambda m: in_thread(bare_generate, bare, tokenizer, m, max_new_tokens),
        "app_base": lambda m: app_stream(plain, m, None, max_new_tokens),
        "app_disabled": lambda m: app_stream(multi, m, None, max_new_tokens),
        "app_lora": lambda m: app_stream(multi, m, version, max_new_tokens),
    }
    for run_config in configs.values():  # one warm-up each
        run_config(prompts[targets[0]])

    samples = {(name, target): [] for name in configs for target in targets}
    for rep in range(reps):
        for target in targets:
            names = list(configs)
            shift = (rep + targets.index(target)) % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name, target].append(configs[name](prompts[target]))
        log(
            f"rep {rep + 1}/{reps}: "
            + ", ".join(f"{name} TTFT {samples[name, targets[-1]][-1]['ttft_ms']:.0f} ms" for name in configs)
            + f" (at {targets[-1]} tokens)"
        )

    def med(name, target, key):
        return median([s[key] for s in samples[name, target]])

    rows = []
    for target in targets:
        prompt_tokens = samples["bare", target][0]["prompt_tokens"]
        for name, label in (("app_lora", "app + LoRA"), ("app_base", "app, base only")):
            rows.append(
                row(
                    f"TTFT, {label}, {prompt_tokens}-tok prompt",
                    med(name, target, "ttft_ms"),
                    med("bare", target, "ttft_ms"),
                    "ms",
                )
            )
            rows.append(
                row(
                    f"decode, {label}, {prompt_tokens}-tok prompt",
                    med(name, target, "decode_tps"),
                    med("bare", target, "decode_tps"),
                    "tok/s",
                    lower_is_better=False,
                )
            )
    for target in targets:
        prompt_tokens = samples["bare", target][0]["prompt_tokens"]
        rows.append(
            row(
                f"decode, LoRA vs no adapter, {prompt_tokens}-tok prompt",
                med("app_lora", target, "decode_tps"),
                med("app_base", target, "decode_tps"),
                "tok/s",
                lower_is_better=False,
                note="baseline: app, base only",
            )
        )

    changed = samples["app_lora", targets[0]][0]["text"] != samples["app_base", targets[0]][0]["text"]
    notes = [
        f"Prompts of {', '.join(str(samples['bare', t][0]['prompt_tokens']) for t in targets)} tokens; "
        f"{max_new_tokens} new tokens; 1 warm-up per configuration, then {reps} repetitions; medians.",
        "Adapters off (base model wrapped by peft, adapters disabled for this twin): "
        + ", ".join(
            f"TTFT {med('app_disabled', t, 'ttft_ms'):.0f} ms, decode {med('app_disabled', t, 'decode_tps'):.1f} tok/s"
            f" at {samples['bare', t][0]['prompt_tokens']} tokens"
            for t in targets
        )
        + ".",
        "App generation uses repetition_penalty 1.1 and no_repeat_ngram_size 4; bare is plain greedy.",
        f"The LoRA changes the answer: {changed} (it must, or the adapter would be a no-op).",
        "App tokens generated (median): "
        + ", ".join(f"{name} {med(name, targets[-1], 'tokens'):.0f}" for name in configs if name != "bare")
        + f" at {targets[-1]} target; fewer than {max_new_tokens} means the model stopped by itself.",
    ]
    details = {
        f"{name}@{target}": [{k: v for k, v in s.items() if k != "text"} for s in samples[name, target]]
        for name, target in samples
    }
    return {
        "name": "chat",
        "description": __doc__.strip().splitlines()[0],
        "params": params,
        "rows": rows,
        "notes": notes,
        "details": details,
    }
