"""LoRA training throughput: train_lora (HF Trainer + peft) against a plain loop, and packing.

Both train the packaged SmolLM2 (fp32, CPU) with the app's default LoRA shape
(training.hyperparameters for smollm2), batch 4 x 256 tokens, AdamW at the same
learning rate. The training text is raw author-style windows (style_fraction 1)
cut from long documents, so every sequence is exactly 256 tokens and every batch
has the same shape whatever order the Trainer shuffles them in.

Packing: train_lora on Q&A samples only (short answers), packed into 256-token
sequences against unpacked (padded per batch), same number of steps; the figure is
real (non-padding) tokens per second.

App: `training.lora.train_lora`, which also sets up the Trainer, runs a
warm-up/cosine schedule, clips gradients and writes a checkpoint every 10
steps. Its figure is the app's own (train_tokens / train_seconds); step times
come from its on_step callback.
Baseline: forward (loss from labels, no KV cache), backward, fused AdamW step
(the Trainer's default optimizer), zero_grad on the same encoded samples,
batched with the app's collate; every step timed. Half
its steps run before the app's run and half after, in the same process and
thread, so a change in background load hits both.
"""

import random

from . import common
from .common import log, median, row, timed

SEQ_LEN, BATCH = 256, 4


def make_texts(count: int, seed: int) -> list[str]:
    """Long documents of shuffled demo sentences: each yields full 256-token windows."""
    rng = random.Random(seed)
    sentences = common.corpus_sentences()
    return [" ".join(rng.choice(sentences) for _ in range(60)) for _ in range(count)]


def make_qa_records(count: int, seed: int) -> list[dict]:
    """Short Q&A samples (one to three sentences), the case packing is for."""
    rng = random.Random(seed)
    sentences = common.corpus_sentences()
    return [
        {
            "split": "train",
            "instruction": f"Tell me about topic {i}.",
            "context": [],
            "answer": " ".join(rng.choice(sentences) for _ in range(rng.randint(1, 3))),
            "document_id": i,
            "title": f"Topic {i}",
        }
        for i in range(count)
    ]


class PlainLoop:
    """transformers + peft, nothing else: forward, backward, AdamW; run a few steps at a time."""

    def __init__(self, path: str, texts: list[str], hp):
        import torch
        from peft import get_peft_model
        from transformers import AutoTokenizer

        from training.lora import collate, lora_config
        from training.samples import text_windows

        torch.manual_seed(hp.seed)
        tokenizer = AutoTokenizer.from_pretrained(path)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.model = get_peft_model(common.load_base(path), lora_config(hp))
        self.model.train()
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        # What the Trainer uses on torch >= 2.8 ("adamw_torch_fused"), and no KV cache in training
        # forwards (Trainer sets config.use_cache = False; left on, every step builds a cache).
        self.optimizer = torch.optim.AdamW(trainable, lr=hp.learning_rate, fused=True)
        self.samples = [w for w in text_windows(tokenizer, texts, hp.max_seq_len) if len(w["input_ids"]) == SEQ_LEN]
        self.collate = collate(pad_id)
        self.step_s, self.tokens, self.losses = [], 0, []

    def run(self, steps: int):
        for _ in range(steps):
            first = len(self.step_s) * BATCH
            batch = self.collate(self.samples[first : first + BATCH])
            with timed() as t:
                loss = self.model(**batch, use_cache=False).loss
                loss.backward()
                self.optimizer.step()
                self.optimizer.zero_grad()
            self.step_s.append(t.seconds)
            self.tokens += batch["input_ids"].numel()
            self.losses.append(round(loss.item(), 4))

    def result(self) -> dict:
        return {"seconds": sum(self.step_s), "tokens": self.tokens, "step_s": self.step_s, "losses": self.losses}


def app_train(path: str, split, records: list[dict], hp, name: str = "run") -> dict:
    import time

    from training.lora import train_lora

    stamps, losses, stop_checks = [], [], []

    def on_step(step, total, loss):
        stamps.append(time.perf_counter())
        losses.append(round(loss, 4) if loss is not None else None)

    def should_stop():
        stop_checks.append(time.perf_counter())  # the last check comes right after trainer.train()
        return False

    work = common.data_dir() / "bench-training" / name
    with timed() as wall:
        result = train_lora(
            base_path=path,
            split=split,
            records=records,
            twin_name="Robin",
            hp=hp,
            work_dir=work / "run",
            adapter_dir=work / "adapter",
            on_step=on_step,
            should_stop=should_stop,
        )
    # on_step fires from on_log after each step, so consecutive stamps delimit steps; the
    # first step runs from the start of trainer.train() (its end minus train_seconds).
    train_started = stop_checks[-1] - result.train_seconds
    step_s = [b - a for a, b in zip([train_started, *stamps], stamps, strict=False)]
    return {
        "seconds": result.train_seconds,
        "tokens": result.train_tokens,
        "steps": result.steps,
        "step_s": step_s,
        "losses": losses,
        "wall_s": wall.seconds,
    }


def packing_comparison(path: str, steps: int) -> dict:
    """Real tokens/s of train_lora on short Q&A samples, packed against padded, same steps."""
    from training.hyperparameters import defaults_for
    from training.samples import DataSplit

    split = DataSplit(train_texts=[], heldout_texts=[], heldout_document_ids=[])
    records = make_qa_records(200, seed=5)
    out = {}
    for packing in (False, True, False, True):  # interleaved: background load hits both
        hp = defaults_for("smollm2", max_steps=steps, batch_size=BATCH, max_seq_len=SEQ_LEN)
        hp.style_fraction, hp.packing, hp.save_every = 0.0, packing, 10_000
        result = app_train(path, split, records, hp, name=f"packing-{packing}-{len(out)}")
        key = "packed" if packing else "padded"
        out.setdefault(key, []).append(result)
        log(f"{key}: {result['tokens'] / result['seconds']:.0f} real tok/s over {result['steps']} steps")
    return {
        key: {"tokens": sum(r["tokens"] for r in runs), "seconds": sum(r["seconds"] for r in runs)}
        for key, runs in out.items()
    }


def run(quick: bool) -> dict:
    common.setup_django()
    from training.hyperparameters import defaults_for
    from training.samples import DataSplit

    steps = 6 if quick else 12
    hp = defaults_for("smollm2", max_steps=steps, batch_size=BATCH, max_seq_len=SEQ_LEN)
    hp.style_fraction, hp.epochs, hp.save_every = 1.0, 50.0, 10
    params = {"steps": steps, "batch_size": BATCH, "seq_len": SEQ_LEN} | {
        k: v for k, v in hp.as_dict().items() if k.startswith("lora") or k in ("learning_rate", "save_every")
    }
    path = common.base_model_path()
    texts = make_texts(steps * BATCH, seed=3)
    split = DataSplit(train_texts=texts, heldout_texts=[], heldout_document_ids=[])

    # Plain, app, plain: half the baseline steps on each side of the app's run, so a change
    # in background load during the run hits both.
    plain = PlainLoop(path, texts, hp)
    plain.run(steps // 2)
    log("plain loop, first half: steps (s) " + ", ".join(f"{s:.1f}" for s in plain.step_s))
    app = app_train(path, split, [], hp)
    log(
        f"train_lora: {app['tokens'] / app['seconds']:.0f} tok/s, steps (s) "
        + ", ".join(f"{s:.1f}" for s in app["step_s"])
    )
    plain.run(steps - steps // 2)
    baseline = plain.result()
    log(
        f"plain loop: {baseline['tokens'] / baseline['seconds']:.0f} tok/s, steps (s) "
        + ", ".join(f"{s:.1f}" for s in baseline["step_s"])
    )
    packing = packing_comparison(path, 3 if quick else 6)

    tokens_per_step = BATCH * SEQ_LEN
    rows = [
        row(
            "tokens/s, whole run",
            app["tokens"] / app["seconds"],
            baseline["tokens"] / baseline["seconds"],
            "tok/s",
            lower_is_better=False,
            note="train_lora's own figure vs all plain steps (keep ≥ 0.95: ratio ≤ ×1.05)",
        ),
        row(
            "tokens/s, median step",
            tokens_per_step / median(app["step_s"][1:]),
            tokens_per_step / median(baseline["step_s"][1:]),
            "tok/s",
            lower_is_better=False,
            note="first step left out",
        ),
        row("first step", app["step_s"][0], baseline["step_s"][0], "s"),
        row(
            "real tokens/s, packed vs padded Q&A",
            packing["packed"]["tokens"] / packing["packed"]["seconds"],
            packing["padded"]["tokens"] / packing["padded"]["seconds"],
            "tok/s",
            lower_is_better=False,
            note="non-padding tokens; target ≥ 1.3x (ratio ≤ ×0.77)",
        ),
    ]
    notes = [
        f"{steps} steps of {BATCH} x {SEQ_LEN} tokens; app counted {app['tokens']} tokens, "
        f"the loop {baseline['tokens']}.",
        f"train_lora wall time {app['wall_s']:.0f} s, of which training {app['seconds']:.0f} s; the rest is model "
        "loading, tokenising and saving the adapter.",
        f"Losses: plain {baseline['losses']}, train_lora {app['losses']}.",
        f"Packing: {packing}.",
    ]
    return {
        "name": "training",
        "description": __doc__.strip().splitlines()[0],
        "params": params,
        "rows": rows,
        "notes": notes,
        "details": {"plain": baseline, "app": app, "packing": packing},
    }
