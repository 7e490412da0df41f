"""Twin fidelity on public-domain author corpora: does the default training make SmolLM2 sound like the author?

App: the product's own path on an author's corpus (bench/authors.py, from Debian packages):
features.datasets.build_records for the Q&A samples, training.samples.split_documents for
the held-out documents, training.lora.train_lora with the base model's default
hyperparameters (the default CPU budget), then training.evaluation.evaluate, the gate.
Baseline: the base model on the same held-out windows and prompts (same run, same seed).
Reference (default size only): a plain LoRA loop on raw text windows (r 8 on q/k/v/o,
batch 4 x 128 tokens, 70 steps, lr 2e-4, no Trainer), scored on the same held-out windows.
Target: held-out perplexity of the adapter at most 0.85 x base.
Cross-author: the same adapter put up as another author's candidate (BENCH_OTHER_AUTHOR, paul
by default) through the same gate, on that author's held-out text and prompts: it must fail.

.venv/bin/python -m bench.run_all --only fidelity            # bierce (default) + plain-LoRA reference
BENCH_AUTHOR=paul .venv/bin/python -m bench.run_all --quick --only fidelity
"""

import math
import os
import time

from . import common
from .common import log, row, timed

REFERENCE_STEPS, REFERENCE_BATCH, REFERENCE_LEN = 70, 4, 128


def plain_reference(path: str, split, windows: list[dict]) -> dict:
    """The issue's outside-the-product reference: a bare LoRA loop on raw author text."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer

    from training.lora import collate, mean_loss
    from training.samples import text_windows

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(path)
    train = text_windows(tokenizer, split.train_texts, REFERENCE_LEN)
    config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    model = get_peft_model(common.load_base(path), config)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    batch_of = collate(tokenizer.pad_token_id)
    started = time.perf_counter()
    for step in range(REFERENCE_STEPS):
        first = (step * REFERENCE_BATCH) % max(1, len(train) - REFERENCE_BATCH)
        loss = model(**batch_of(train[first : first + REFERENCE_BATCH]), use_cache=False).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    seconds = time.perf_counter() - started
    held_out = mean_loss(model, windows, tokenizer.pad_token_id, 8)
    return {"loss": held_out, "perplexity": math.exp(held_out), "seconds": seconds}


def run(quick: bool) -> dict:
    common.setup_django()
    from features.datasets import build_records
    from features.embeddings import embed
    from training.evaluation import GateConfig, evaluate
    from training.hyperparameters import defaults_for
    from training.lora import train_lora
    from training.samples import split_documents, text_windows

    from .authors import corpus

    def author_data(name: str):
        """(documents, split with whole documents held out, Q&A records) of one author's corpus."""
        documents = corpus(name)
        return documents, split_documents([(doc_id, text) for doc_id, _, text in documents]), build_records(documents)

    author = os.environ.get("BENCH_AUTHOR", "bierce")
    documents, split, records = author_data(author)
    hp = defaults_for("smollm2")
    if quick:
        hp.max_steps = 20
    path = common.base_model_path()
    work = common.data_dir() / "bench-fidelity"
    log(
        f"{author}: {len(documents)} documents, {split.as_dict()['train_words']} words trained on, "
        f"{split.as_dict()['heldout_words']} held out (documents {split.heldout_document_ids})"
    )
    progress = []

    def on_validation(step, loss):
        progress.append([step, round(loss, 4)])
        log(f"held-out loss at step {step}: {loss:.4f}")

    with timed() as wall:
        result = train_lora(
            base_path=path,
            split=split,
            records=records,
            twin_name=author.title(),
            hp=hp,
            work_dir=work / "run",
            adapter_dir=work / "adapter",
            on_validation=on_validation,
        )
    log(f"trained {result.steps} steps in {result.train_seconds:.0f} s ({wall.seconds:.0f} s wall)")
    config = GateConfig()

    def gate_report(split, records, name: str) -> dict:
        """The gate's report on this adapter as `name`'s first candidate (against the base model)."""
        return evaluate(
            base_path=path,
            candidate_dir=result.adapter_dir,
            production_dir=None,
            split=split,
            records=records,
            twin_name=name.title(),
            embed=embed,
            config=config,
        )

    with timed() as gate:
        report = gate_report(split, records, author)
    base, candidate = report["models"]["base"], report["models"]["candidate"]
    log(f"gate in {gate.seconds:.0f} s: base {base}, candidate {candidate}, passed {report['passed']}")
    rows = [
        row("held-out perplexity", candidate["perplexity"], base["perplexity"], "ppl", note="target ≤ ×0.85"),
        row("style Delta to held-out text", candidate["delta"], base["delta"], "Delta", note="pooled generations"),
        common.info_row("topic similarity", candidate["similarity"], base["similarity"], "cos"),
        common.info_row("copy rate (8-grams)", candidate["copy_rate"], base["copy_rate"], "share"),
        common.info_row(
            "training wall time", round(wall.seconds, 1), None, "s", note=f"{result.steps} steps, default budget"
        ),
        common.info_row("training tokens/s", round(result.train_tokens / result.train_seconds, 1), None, "tok/s"),
        common.info_row("evaluation report", round(gate.seconds, 1), None, "s"),
    ]
    details = {"train": {**result.eval_report, "val_history": result.val_history}, "gate": report}
    # The gate must tell authors apart: this adapter, put up as the other author's candidate
    # (their held-out text, their prompts), should fail where it passed for its own author.
    other = os.environ.get("BENCH_OTHER_AUTHOR", "paul" if author != "paul" else "bierce")
    _, other_split, other_records = author_data(other)
    with timed() as cross:
        cross_report = gate_report(other_split, other_records, other)
    cross_base, cross_candidate = cross_report["models"]["base"], cross_report["models"]["candidate"]
    log(f"{author}'s adapter as {other}'s candidate ({cross.seconds:.0f} s): passed {cross_report['passed']}")
    rows += [
        common.info_row(
            f"gate verdict for {author}'s adapter on {author}",
            int(report["passed"]),
            None,
            "passed",
            note="1: passed (expected)",
        ),
        common.info_row(
            f"gate verdict for {author}'s adapter put up as {other}'s",
            int(cross_report["passed"]),
            None,
            "passed",
            note="0: failed (expected): "
            + "; ".join(f"{c['metric']} {'ok' if c['passed'] else 'worse'}" for c in cross_report["checks"]),
        ),
        common.info_row(
            f"held-out perplexity on {other}, {author}'s adapter vs base",
            cross_candidate["perplexity"],
            cross_base["perplexity"],
            "ppl",
        ),
    ]
    details["cross_author"] = {"author": other, "gate": cross_report}
    notes = [
        f"author {author}; hyperparameters {hp.as_dict()}",
        f"twin fidelity {report['fidelity_score']}; verdict {'passed' if report['passed'] else 'failed'}",
        f"held-out loss during training: {progress}",
    ]
    if not quick:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path)
        windows = text_windows(tokenizer, split.heldout_texts, config.window_len)
        from training.evaluation import spread

        reference = plain_reference(path, split, spread(windows, config.max_windows))
        rows.append(
            row(
                "held-out perplexity vs plain LoRA",
                candidate["perplexity"],
                reference["perplexity"],
                "ppl",
                note=f"plain: {REFERENCE_STEPS} steps, {reference['seconds']:.0f} s",
            )
        )
        details["plain_reference"] = reference
    return {
        "name": "fidelity",
        "description": __doc__.strip().splitlines()[0],
        "params": {"author": author, **hp.as_dict()},
        "rows": rows,
        "notes": notes,
        "details": details,
    }
