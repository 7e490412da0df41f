"""Write mode on public-domain authors: new text in each author's voice, composed, not copied.

For each author (bench/authors.py: Bierce, Paul, the wisdom books; clearly different styles) the
product's own path: features.datasets.build_records and training.samples.split_documents (whole
documents held out), an adapter trained by training.lora.train_lora with the default hyperparameters
(the default CPU budget), then BENCH_WRITING_BRIEFS held-out writing briefs (each a brief made from
one of the author's held-out passages, the passage its reference) written by the gate's write path,
training.evaluation.write_drafts, which is chat's (features.grounding.generate.write_stream: the
brief's closest training notes as background, sampled, the copy guard on). Baseline: the base model
through the same path, same briefs and seeds.

Figures (targets from the issue):
- copy: share of each draft's word 8-grams found in the author's corpus (max over drafts ≤ 5 %);
- voice: pooled Burrows' Delta (100-word segments, 150 most frequent words of the three authors)
  from the drafts to the author's held-out text, adapter below base; attribution to the nearest
  author centroid, drafts' rate ≥ 0.9 × the author's own held-out paragraphs' rate;
- on the brief: MiniLM cosine of each draft to its reference passage, adapter ≥ base;
- fluent: distinct-3 ≥ 0.9, no repeated sentence, the base model's perplexity on the drafts at most its
  perplexity on the author's held-out passages;
- held-out perplexity of the adapter (raw text windows) ≤ 0.80 × base, and the training wall time;
- speed (same run, base model): time to first token in write mode vs ask mode (≤ 1.2×), and decode
  tokens/s with the copy guard vs without (cost ≤ 10 %).

.venv/bin/python -m bench.run_all --only writing            # about an hour on 2 cores
BENCH_WRITING_AUTHORS=bierce BENCH_WRITING_BRIEFS=20 .venv/bin/python -m bench.run_all --only writing
"""

import math
import os
import re
import time
from collections import Counter

from . import common
from .common import log, row

AUTHORS = ("bierce", "paul", "wisdom")
SEGMENT_WORDS, MFW = 100, 150


def segments(text: str) -> list[str]:
    from training.stylometry import words

    tokens = words(text)
    return [" ".join(tokens[i : i + SEGMENT_WORDS]) for i in range(0, len(tokens) - SEGMENT_WORDS + 1, SEGMENT_WORDS)]


def distinct3(text: str) -> float:
    tokens = text.lower().split()
    grams = [tuple(tokens[i : i + 3]) for i in range(len(tokens) - 2)]
    return len(set(grams)) / len(grams) if grams else 1.0


def repeats_a_sentence(text: str) -> bool:
    sentences = [s.strip().lower() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 4]
    return any(count > 1 for count in Counter(sentences).values())


def attribution(space, centroids: dict, author: str, texts: list[str]) -> float | None:
    """Share of the texts' 100-word segments whose nearest author centroid (mean z-scores) is `author`."""
    pieces = [s for text in texts for s in segments(text)]
    if not pieces:
        return None
    hits = 0
    for piece in pieces:
        z = space.z_scores(piece)
        nearest = min(centroids, key=lambda name: sum(abs(a - b) for a, b in zip(z, centroids[name], strict=True)))
        hits += nearest == author
    return hits / len(pieces)


def mean_perplexity(model, tokenizer, texts: list[str]) -> float:
    import torch

    losses = []
    with torch.no_grad():
        for text in texts:
            ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"][:, :256]
            if ids.shape[1] > 2:
                losses.append(float(model(input_ids=ids, labels=ids).loss))
    return math.exp(sum(losses) / len(losses)) if losses else math.nan


def speed(model, tokenizer, config, guard, notes, briefs: list[str]) -> dict:
    """Time to first token, ask vs write, and decode speed with and without the copy guard."""
    from features.embeddings import embed
    from features.grounding import generate
    from features.grounding.evidence import NoteSentences
    from training.grounded_eval import Note

    pool = NoteSentences.from_chunks([Note(i, t) for i, t in enumerate(notes[:20])], embed)
    out = {"ask_ttft": [], "write_ttft": [], "guarded_tps": [], "unguarded_tps": []}
    for n, brief in enumerate(briefs):
        choice = generate.choose_notes(pool, brief, embed([brief])[0], config.but(min_similarity=-1.0))
        asked = generate.run_to_end(generate.answer_stream(model, tokenizer, "Twin", brief, choice, config))
        out["ask_ttft"].append(asked.first_token_ms)
        for key, index in (("guarded_tps", guard), ("unguarded_tps", None)):
            made = generate.run_to_end(
                generate.write_stream(
                    model, tokenizer, "Twin", brief, config, words=60, notes=choice.texts, guard=index, seed=n
                )
            )
            if key == "guarded_tps":
                out["write_ttft"].append(made.first_token_ms)
            decode_ms = made.generation_ms - made.first_token_ms
            out[key].append((made.tokens - 1) / (decode_ms / 1000) if decode_ms > 0 else math.nan)
    return {key: common.median(values) for key, values in out.items()}


def run(quick: bool) -> dict:
    common.setup_django()
    import torch
    from peft import PeftModel
    from transformers import AutoTokenizer

    from features.datasets import build_records
    from features.embeddings import embed
    from features.grounding.config import GroundingConfig
    from features.grounding.decoding import CorpusIndex
    from features.grounding.evidence import NoteSentences
    from training.evaluation import GateConfig, gate_prompts, spread, write_drafts
    from training.grounded_eval import Note
    from training.hyperparameters import defaults_for
    from training.lora import mean_loss, train_lora
    from training.samples import split_documents, text_windows
    from training.stylometry import DeltaSpace, copy_rate, training_ngrams

    from .authors import corpus

    authors = [a for a in os.environ.get("BENCH_WRITING_AUTHORS", ",".join(AUTHORS)).split(",") if a]
    count = int(os.environ.get("BENCH_WRITING_BRIEFS", "4" if quick else "20"))
    path = common.base_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    config = GateConfig(grounding=GroundingConfig.from_settings(), draft_words=100)
    data = {}
    for name in AUTHORS:  # every author shapes the Delta space and the centroids, measured or not
        documents = corpus(name)
        split = split_documents([(doc_id, text) for doc_id, _, text in documents])
        data[name] = (documents, split, build_records(documents))
    space = DeltaSpace([t for _, split, _ in data.values() for t in split.train_texts], mfw=MFW, segment_words=100)
    centroids = {}
    for name, (_, split, _) in data.items():
        rows_ = [space.z_scores(s) for t in split.train_texts for s in segments(t)]
        centroids[name] = [sum(col) / len(rows_) for col in zip(*rows_, strict=True)]

    rows, details, notes = [], {}, []
    for name in authors:
        documents, split, records = data[name]
        hp = defaults_for("smollm2")
        if quick:
            hp.max_steps = 10
        work = common.data_dir() / "bench-writing" / name
        started = time.perf_counter()
        result = train_lora(
            base_path=path, split=split, records=records, twin_name=name.title(), hp=hp,
            work_dir=work / "run", adapter_dir=work / "adapter",
        )  # fmt: skip
        train_seconds = time.perf_counter() - started
        log(f"{name}: trained {result.steps} steps in {train_seconds:.0f} s")
        base = common.load_base(path)
        model = PeftModel.from_pretrained(base, str(result.adapter_dir)).eval()
        prompts = gate_prompts(records, split, count)
        passages = [Note(i, t) for i, t in enumerate(spread(split.train_texts, 200))]
        pool = NoteSentences.from_chunks(passages, embed)
        # As chat/writing.py serves: the guard indexes every document the owner has (held-out ones
        # too; the split only decides what the adapter trains on), and copying counts against them all.
        owned = [text for _, _, text in documents]
        guard = CorpusIndex(tokenizer, owned, config.grounding.copy_guard_ngram)
        corpus_grams = training_ngrams(owned)
        heldout = "\n\n".join(split.heldout_texts)
        references = [p.reference for p in prompts]
        windows = spread(text_windows(tokenizer, split.heldout_texts, 256), 48)
        figures = {}
        for label, context in (("base", model.disable_adapter), ("adapter", None)):
            t0 = time.perf_counter()
            with context() if context else torch.no_grad():
                drafts = write_drafts(model, tokenizer, name.title(), prompts, pool, guard, embed, config)
                loss = mean_loss(model, windows, tokenizer.pad_token_id, 8)
            with model.disable_adapter():
                draft_ppl = mean_perplexity(model, tokenizer, drafts)
            vectors, refs = embed(drafts), embed(references)
            figures[label] = {
                "drafts": drafts,
                "seconds": round(time.perf_counter() - t0, 1),
                "heldout_perplexity": math.exp(loss),
                "copy_max": max(copy_rate([d], corpus_grams) or 0.0 for d in drafts),
                "copy_mean": copy_rate(drafts, corpus_grams) or 0.0,
                "delta": space.delta("\n\n".join(drafts), heldout),
                "attribution": attribution(space, centroids, name, drafts),
                "cosine": float(sum((vectors * refs).sum(1)) / len(drafts)),
                "distinct3": sum(distinct3(d) for d in drafts) / len(drafts),
                "repeated_sentences": sum(repeats_a_sentence(d) for d in drafts),
                "draft_perplexity": draft_ppl,
            }
            log(f"{name} {label}: { {k: v for k, v in figures[label].items() if k != 'drafts'} }")
        with model.disable_adapter():
            own_ppl = mean_perplexity(model, tokenizer, references)
        own_attribution = attribution(space, centroids, name, split.heldout_texts)
        a, b = figures["adapter"], figures["base"]
        rows += [
            row(f"{name}: held-out perplexity", a["heldout_perplexity"], b["heldout_perplexity"], "ppl",
                note=f"target ≤ ×0.80; {result.steps} steps, {train_seconds:.0f} s"),
            common.info_row(f"{name}: verbatim 8-grams, worst draft", a["copy_max"], b["copy_max"], "share",
                            note="target ≤ 0.05"),
            row(f"{name}: pooled Delta to held-out text", a["delta"], b["delta"], "Delta", note="adapter < base"),
            common.info_row(f"{name}: attributed to the author", a["attribution"], own_attribution, "share",
                            note="drafts vs own held-out paragraphs; target ≥ 0.9×"),
            common.info_row(f"{name}: cosine to reference", a["cosine"], b["cosine"], "cos", note="adapter ≥ base"),
            common.info_row(f"{name}: distinct-3", a["distinct3"], b["distinct3"], "share", note="≥ 0.9"),
            common.info_row(f"{name}: drafts repeating a sentence", a["repeated_sentences"], b["repeated_sentences"],
                            "drafts", note="0"),
            common.info_row(f"{name}: base perplexity of drafts", a["draft_perplexity"], own_ppl, "ppl",
                            note="vs the author's own held-out passages; drafts ≤"),
        ]  # fmt: skip
        details[name] = {
            "figures": figures,
            "own_attribution": own_attribution,
            "own_perplexity": own_ppl,
            "briefs": [p.instruction for p in prompts],
            "train_seconds": train_seconds,
            "steps": result.steps,
        }
        notes.append(f"{name}: {len(prompts)} briefs; first adapter draft: {a['drafts'][0][:300]!r}")
        if name == authors[0]:
            with model.disable_adapter():
                timing = speed(
                    model, tokenizer, config.grounding, guard, split.train_texts, [p.instruction for p in prompts[:6]]
                )
            rows += [
                row("write TTFT vs ask TTFT", timing["write_ttft"], timing["ask_ttft"], "ms", note="target ≤ ×1.2"),
                row("decode tok/s, copy guard vs none", timing["guarded_tps"], timing["unguarded_tps"], "tok/s",
                    lower_is_better=False, note="target ≤ ×1.10"),
            ]  # fmt: skip
            details["speed"] = timing
    return {
        "name": "writing",
        "description": __doc__.strip().splitlines()[0],
        "params": {"authors": authors, "briefs": count, **config.grounding.as_dict()},
        "rows": rows,
        "notes": notes,
        "details": details,
    }
