"""Serving many askers at once: the batched serve path against one answer at a time, same run.

Each asker has its own twin (its own random LoRA adapter in the app's shape, all of them loaded
before timing: adapter loads are bench/adapter_switch's) and asks its
questions one after another (the next as soon as its answer has arrived); askers start at random
moments within one lone answer's time, after each twin has answered once untimed (a warm
serve worker). Every answer goes through `TwinModels.serve` and
`generate.answer_stream`, the serve worker's path (retrieval and the database left out: they do
not change with batching), with the production steering settings. The baseline serves the same
questions one at a time (a batch of one row: what a concurrency-1 serve worker did before).

Rows: answers a minute at 1, 2, 4, 8 and 16 askers (baseline: one at a time), p95 time to first
text against a lone question's, and whether every batched answer equals its one-at-a-time answer.
Targets (issue 21): at 8 askers at least 3x the answers a minute, p95 TTFT at most 3x a lone
question's, none refused (the serve worker has TWIN_SERVE_BATCH rows; the web's line, not measured
here, holds the rest).

    .venv/bin/python -m bench.run_all --quick --only serving
"""

import random
import threading
import time
from types import SimpleNamespace

from . import common
from .common import log, median, percentile, row

LEVELS = [1, 2, 4, 8, 16]
TARGET_ASKERS = 8  # the targets are at 8 askers


def run(quick: bool) -> dict:
    common.setup_django()
    import torch

    from chat.llm import TwinModels
    from features.grounding import generate
    from features.grounding.config import GroundingConfig

    torch.set_num_threads(1)  # the Procfile's serve worker (TWIN_SERVE_THREADS=1)
    rounds, max_new = (1, 40) if quick else (3, 120)
    config = GroundingConfig.from_settings().but(max_new_tokens=max_new)
    askers = max(LEVELS)
    path = common.base_model_path()
    root = common.data_dir() / "bench-adapters" / "serving"
    dirs = [root / f"twin{i}" for i in range(askers)]
    common.make_random_adapters(path, dirs, seed=5)
    versions = [common.adapter_version(300 + i, d) for i, d in enumerate(dirs)]
    sentences = [s for s in common.corpus_sentences() if 8 <= len(s.split()) <= 30]
    rng = random.Random(21)

    def question(twin: int, number: int):
        notes = rng.sample(sentences, 2)
        return f"What did you write about {' '.join(notes[0].split()[:5]).rstrip(',.')}?", notes

    questions = {(t, n): question(t, n) for t in range(askers) for n in range(rounds)}

    def ask(models, twin, number):
        text, notes = questions[twin, number]
        choice = generate.NotesChoice([SimpleNamespace(text=note) for note in notes], 1.0, 0.0)

        def make(model, tokenizer, **kwargs):
            return generate.answer_stream(model, tokenizer, "Alice", text, choice, config, **kwargs)

        started, first, pieces = time.perf_counter(), None, []
        for piece in models.serve(versions[twin], make):
            first = first or time.perf_counter()
            pieces.append(piece)
        return {"twin": twin, "ttft_ms": 1000 * (first - started), "text": "".join(pieces), "end": time.perf_counter()}

    def serving(rows: int) -> TwinModels:
        from django.test import override_settings

        with override_settings(TWIN_SERVE_BATCH=rows):
            models = TwinModels()
            models.prepare(None)
        models.max_resident = len(versions)  # all stay loaded: adapter loads are bench/adapter_switch's
        for version in versions:
            with models.lock:
                models.prepare(version)
        return models

    batched = serving(max(LEVELS))
    one_at_a_time = serving(1)
    # Warm-up, untimed: each twin answers once on the batched instance. Its first answers paid for
    # first-use costs (peft's first forward per adapter, the row buffers growing to their size) and
    # the first level's p95 measured those: TTFT 10 s where a warm serve worker takes 4.5 s for the
    # last of 8 questions asked at once. The baseline's lone TTFT is a median, past its own first answers.
    for twin in range(askers):
        ask(batched, twin, 0)
    reference, curve, mismatches, sequential_s = {}, {}, [], 0.0

    def baseline(twins):
        """Every question of these twins, one at a time."""
        nonlocal sequential_s
        started = time.perf_counter()
        reference.update({(t, n): ask(one_at_a_time, t, n) for t in twins for n in range(rounds)})
        sequential_s += time.perf_counter() - started
        per_min, lone = 60 * len(reference) / sequential_s, median([r["ttft_ms"] for r in reference.values()])
        answers = f"{len(reference)} answers in {sequential_s:.0f} s ({per_min:.1f}/min)"
        log(f"one at a time: {answers}, lone TTFT {lone:.0f} ms")
        return per_min, lone, sequential_s / len(reference)

    def level_run(level, per_min, lone_ttft, lone_answer_s):
        results, threads, differing = [], [], []

        def asker(twin, delay):
            time.sleep(delay)
            for number in range(rounds):
                result = ask(batched, twin, number)
                results.append(result)
                if result["text"] != reference[twin, number]["text"]:
                    differing.append((level, twin, number))

        begin = time.perf_counter()
        for twin in range(level):
            delay = 0.0 if level == 1 else rng.uniform(0, lone_answer_s)
            threads.append(threading.Thread(target=asker, args=(twin, delay)))
            threads[-1].start()
        for thread in threads:
            thread.join()
        elapsed = max(r["end"] for r in results) - begin
        ttfts = [r["ttft_ms"] for r in results]
        c = curve[level] = {
            "answers": len(results),
            "seconds": elapsed,
            "per_min": 60 * len(results) / elapsed,
            "ttft_p50": median(ttfts),
            "ttft_p95": percentile(ttfts, 95),
        }
        mismatches.extend(differing)
        log(
            f"{level} askers: {c['per_min']:.1f} answers/min (x{c['per_min'] / per_min:.2f} of one at a time), "
            f"TTFT p50 {c['ttft_p50']:.0f} p95 {c['ttft_p95']:.0f} ms (x{c['ttft_p95'] / lone_ttft:.2f} of a lone "
            f"question's), {len(results) - len(differing)}/{len(results)} answers equal to one at a time"
        )

    # The target level and the equality check first, so that a run cut short still reports them.
    level_run(TARGET_ASKERS, *baseline(range(TARGET_ASKERS)))
    numbers = baseline(range(TARGET_ASKERS, askers))
    for level in LEVELS:
        if level != TARGET_ASKERS:
            level_run(level, *numbers)
    baseline_per_min, lone_ttft, _ = numbers

    rows = []
    for level in LEVELS:
        c = curve[level]
        rows.append(row(f"answers/min, {level} askers", c["per_min"], baseline_per_min, "/min", lower_is_better=False))
    for level in LEVELS:
        rows.append(row(f"p95 TTFT, {level} askers (vs lone)", curve[level]["ttft_p95"], lone_ttft, "ms"))
    rows.append(common.info_row("answers differing from one at a time", len(mismatches), 0, "answers"))
    eight = curve[TARGET_ASKERS]
    notes = [
        f"One at a time: {len(reference)} answers in {sequential_s:.0f} s ({baseline_per_min:.1f}/min), "
        f"lone TTFT median {lone_ttft:.0f} ms.",
        f"Targets at 8 askers: answers/min x{eight['per_min'] / baseline_per_min:.2f} (>= 3), "
        f"p95 TTFT x{eight['ttft_p95'] / lone_ttft:.2f} of a lone question (<= 3), refused 0 (none can be here).",
        f"Answers differing from one at a time: {mismatches or 'none'}.",
    ]
    return {
        "name": "serving",
        "description": __doc__.strip().splitlines()[0],
        "params": {"rounds": rounds, "max_new_tokens": max_new, "levels": LEVELS, "torch_threads": 1},
        "rows": rows,
        "notes": notes,
        "details": {"curve": curve, "mismatches": mismatches, "sequential_s": sequential_s},
    }
