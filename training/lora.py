"""LoRA fine-tuning of a base model on an instruct dataset, with transformers + peft.

Kept free of Django so the same function runs in a Celery task, a benchmark or a
notebook. Trainer gives checkpoints (a crashed run resumes from the last one),
schedules and CUDA/bf16 handling; a callback reports progress and loss and lets
the caller stop the run.
"""

import hashlib
import logging
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .prompts import build_messages, render_prompt

logger = logging.getLogger(__name__)
IGNORE_INDEX = -100
# Raised by Trainer's own internals in transformers 5.24, not by anything we call.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)


@dataclass
class Hyperparameters:
    max_steps: int = 40
    batch_size: int = 4
    learning_rate: float = 2e-4
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    max_seq_len: int = 384
    warmup_steps: int = 2
    save_every: int = 10
    seed: int = 42

    @classmethod
    def from_dict(cls, values: dict) -> "Hyperparameters":
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainingResult:
    adapter_dir: Path
    sha256: str
    steps: int
    device: str
    train_seconds: float
    train_tokens: int
    eval_report: dict


class Stopped(Exception):
    """The caller asked the run to stop (cancelled)."""


def encode(tokenizer, twin_name: str, record: dict, max_len: int) -> dict:
    """Token ids with labels on the answer only; context is dropped first when too long."""
    for context in (record["context"], []):
        prompt = render_prompt(tokenizer, build_messages(twin_name, record["instruction"], context))
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        if len(prompt_ids) <= max_len // 2:
            break
    answer_ids = tokenizer(record["answer"] + tokenizer.eos_token + "\n", add_special_tokens=False)["input_ids"]
    answer_ids = answer_ids[: max(1, max_len - len(prompt_ids))]
    return {"input_ids": prompt_ids + answer_ids, "labels": [IGNORE_INDEX] * len(prompt_ids) + answer_ids}


def collate(pad_id: int):
    def collate_batch(batch: list[dict]) -> dict:
        width = max(len(item["input_ids"]) for item in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, item in enumerate(batch):
            n = len(item["input_ids"])
            ids[row, :n] = torch.tensor(item["input_ids"])
            labels[row, :n] = torch.tensor(item["labels"])
            mask[row, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}

    return collate_batch


@torch.no_grad()
def mean_loss(model, samples: list[dict], pad_id: int, batch_size: int) -> float:
    model.eval()
    total, count = 0.0, 0
    collate_batch = collate(pad_id)
    for start in range(0, len(samples), batch_size):
        batch = {k: v.to(model.device) for k, v in collate_batch(samples[start : start + batch_size]).items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        shift_logits, shift_labels = logits[:, :-1].float(), batch["labels"][:, 1:]
        losses = torch.nn.functional.cross_entropy(
            shift_logits.reshape(-1, shift_logits.size(-1)),
            shift_labels.reshape(-1),
            ignore_index=IGNORE_INDEX,
            reduction="sum",
        )
        total += losses.item()
        count += (shift_labels != IGNORE_INDEX).sum().item()
    return total / max(1, count)


def directory_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _sample_answers(model, tokenizer, twin_name: str, records: list[dict], max_new_tokens: int = 48) -> list[dict]:
    samples = []
    for record in records[:2]:
        prompt = render_prompt(tokenizer, build_messages(twin_name, record["instruction"], record["context"]))
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(model.device)
        output = model.generate(
            **ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
        generated = tokenizer.decode(output[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip()
        samples.append(
            {"instruction": record["instruction"], "reference": record["answer"][:400], "generated": generated}
        )
    return samples


def train_lora(
    *,
    base_path: str,
    records: list[dict],
    twin_name: str,
    hp: Hyperparameters,
    work_dir: Path,
    adapter_dir: Path,
    on_step: Callable[[int, int, float | None], None] = lambda step, total, loss: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> TrainingResult:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback, TrainingArguments
    from transformers.trainer_callback import PrinterCallback
    from transformers.trainer_utils import get_last_checkpoint

    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    train = [encode(tokenizer, twin_name, r, hp.max_seq_len) for r in records if r["split"] == "train"]
    test_records = [r for r in records if r["split"] == "test"] or [r for r in records if r["split"] == "train"][:4]
    test = [encode(tokenizer, twin_name, r, hp.max_seq_len) for r in test_records]
    if not train:
        raise ValueError("the dataset has no training samples")

    lora = LoraConfig(
        r=hp.lora_r,
        lora_alpha=hp.lora_alpha,
        lora_dropout=hp.lora_dropout,
        target_modules=hp.target_modules,
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    use_bf16 = cuda and torch.cuda.is_bf16_supported()

    class Progress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                on_step(state.global_step, state.max_steps, float(logs["loss"]))

        def on_step_end(self, args, state, control, **kwargs):
            if should_stop():
                control.should_training_stop = True

    checkpoints = work_dir / "checkpoints"
    args = TrainingArguments(
        output_dir=str(checkpoints),
        per_device_train_batch_size=hp.batch_size,
        max_steps=hp.max_steps,
        learning_rate=hp.learning_rate,
        warmup_steps=hp.warmup_steps,
        lr_scheduler_type="cosine",
        logging_steps=1,
        save_steps=hp.save_every,
        save_total_limit=1,
        report_to=[],
        use_cpu=not cuda,
        bf16=use_bf16,
        seed=hp.seed,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=train, data_collator=collate(pad_id), callbacks=[Progress()]
    )
    trainer.remove_callback(PrinterCallback)  # progress goes to the run row, not stdout
    resume = get_last_checkpoint(str(checkpoints)) if checkpoints.exists() else None
    if resume:
        logger.info("resuming from %s", resume)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume)
    train_seconds = time.perf_counter() - started
    if should_stop():
        raise Stopped()

    steps_done = trainer.state.global_step
    examples_seen = steps_done * hp.batch_size
    mean_len = sum(len(s["input_ids"]) for s in train) / len(train)
    adapter_loss = mean_loss(model, test, pad_id, hp.batch_size)
    with model.disable_adapter():
        base_loss = mean_loss(model, test, pad_id, hp.batch_size)
    samples = _sample_answers(model, tokenizer, twin_name, test_records)
    adapter_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(adapter_dir)
    report = {
        "base_loss": round(base_loss, 4),
        "adapter_loss": round(adapter_loss, 4),
        "base_perplexity": round(math.exp(min(base_loss, 50)), 2),
        "adapter_perplexity": round(math.exp(min(adapter_loss, 50)), 2),
        "test_samples": len(test),
        "train_samples": len(train),
        "samples": samples,
    }
    return TrainingResult(
        adapter_dir=adapter_dir,
        sha256=directory_sha256(adapter_dir),
        steps=steps_done,
        device=device,
        train_seconds=train_seconds,
        train_tokens=int(examples_seen * mean_len),
        eval_report=report,
    )
