"""LoRA fine-tuning of a base model on the author's text and Q&A samples, with transformers + peft.

Kept free of Django so the same function runs in a Celery task, a benchmark or a
notebook. Trainer gives checkpoints (a crashed run resumes from the last one),
schedules and CUDA/bf16 handling; a callback reports progress, training loss and
validation loss on held-out documents, and lets the caller stop the run.
"""

import hashlib
import json
import logging
import math
import shutil
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .hyperparameters import Hyperparameters
from .samples import IGNORE_INDEX, DataSplit, build_training_data, encode, text_windows  # noqa: F401

logger = logging.getLogger(__name__)
VALIDATION_WINDOWS = 24  # held-out windows scored during training (the gate scores them all)
# Raised by Trainer's own internals in transformers 5.24, not by anything we call.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)

__all__ = ["Hyperparameters", "Stopped", "TrainingResult", "collate", "encode", "mean_loss", "train_lora"]


@dataclass
class TrainingResult:
    adapter_dir: Path
    sha256: str
    steps: int
    device: str
    train_seconds: float
    train_tokens: int  # real (non-padding) tokens the optimiser saw
    eval_report: dict
    val_history: list = field(default_factory=list)  # [[step, held-out loss], ...]; step 0 is the base


class Stopped(Exception):
    """The caller asked the run to stop (cancelled)."""


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


@contextmanager
def evaluating(model):
    """Dropout off for a measurement in the middle of training, and back on after it."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        if was_training:
            model.train()


@torch.no_grad()
def mean_loss(model, samples: list[dict], pad_id: int, batch_size: int) -> float:
    """Token-weighted mean cross-entropy over the labelled tokens of the samples."""
    with evaluating(model):
        return _summed_loss(model, samples, pad_id, batch_size)


def _summed_loss(model, samples: list[dict], pad_id: int, batch_size: int) -> float:
    total, count = 0.0, 0
    collate_batch = collate(pad_id)
    for start in range(0, len(samples), batch_size):
        batch = {k: v.to(model.device) for k, v in collate_batch(samples[start : start + batch_size]).items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
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


class AdapterDamaged(Exception):
    """The adapter's files are not what training wrote; the message says how, without paths."""


def verify_adapter_dir(path: Path, sha256: str):
    """Raise AdapterDamaged unless the directory holds exactly the files that were registered."""
    if not path.is_dir() or not any(p.is_file() for p in path.rglob("*")):
        raise AdapterDamaged("its files are missing")
    if directory_sha256(path) != sha256:
        raise AdapterDamaged("its files are damaged (their sha256 differs from the registered one)")


class AdapterSaveFailed(Exception):
    """The trained adapter could not be written (disk full, unwritable); nothing of it was kept."""


def save_adapter(model, adapter_dir: Path):
    """Write the adapter beside its place, then rename it there: a full or unwritable disk
    leaves no half-written adapter that could be registered or served."""
    partial = adapter_dir.with_name(adapter_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir(parents=True)
        model.save_pretrained(partial)
        shutil.rmtree(adapter_dir, ignore_errors=True)  # a redelivered run's earlier save
        partial.rename(adapter_dir)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise AdapterSaveFailed(f"could not save the adapter ({exc.strerror or exc})") from exc


def planned_steps(sequences: int, hp: Hyperparameters) -> int:
    """Optimiser steps for `epochs` passes over the sequences, capped at max_steps."""
    per_step = hp.batch_size * hp.grad_accumulation
    return max(1, min(hp.max_steps, math.ceil(hp.epochs * sequences / per_step)))


def lora_config(hp: Hyperparameters):
    from peft import LoraConfig

    return LoraConfig(
        r=hp.lora_r,
        lora_alpha=hp.lora_alpha,
        lora_dropout=hp.lora_dropout,
        target_modules=list(hp.target_modules),
        task_type="CAUSAL_LM",
    )


def accelerator() -> dict:
    """Where a run trains, as TrainingArguments say it: on CUDA when present (bf16 where the card
    has it), else on the CPU."""
    cuda = torch.cuda.is_available()
    return {"use_cpu": not cuda, "bf16": cuda and torch.cuda.is_bf16_supported()}


def device_label(model) -> str:
    """The device the model's weights are on (where it trained, not what the machine offers):
    the GPU's name, or "cpu". A run that fell back to the CPU on a GPU machine says "cpu"."""
    device = next(model.parameters()).device
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def trainer_arguments(hp: Hyperparameters, total_steps: int, checkpoints: Path, **extra):
    """transformers' TrainingArguments of a run (LoRA or DPO): its schedule, a loss logged every
    step, checkpoints every `save_every` steps (the last one kept, to resume from), bf16 on CUDA."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(checkpoints),
        per_device_train_batch_size=hp.batch_size,
        gradient_accumulation_steps=hp.grad_accumulation,
        max_steps=total_steps,
        learning_rate=hp.learning_rate,
        warmup_steps=int(hp.warmup_ratio * total_steps),  # floor: a 1-step run must not spend it at lr 0
        lr_scheduler_type=hp.lr_schedule,
        logging_steps=1,
        save_steps=hp.save_every,
        save_total_limit=1,
        report_to=[],
        **accelerator(),
        seed=hp.seed,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=True,
        **extra,
    )


def progress_callback(hp: Hyperparameters, on_step, validate, should_stop):
    """Reports each step's loss, validates every `eval_every` steps and at the end, and stops the
    run when the caller asks."""
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                on_step(state.global_step, state.max_steps, float(logs["loss"]))

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % hp.eval_every == 0 or state.global_step == state.max_steps:
                validate(state.global_step)
            if should_stop():
                control.should_training_stop = True

    return Progress()


def last_complete_checkpoint(checkpoints: Path) -> str | None:
    """The newest checkpoint that was written to the end, or None; newer, half-written ones are removed.

    The Trainer writes a checkpoint's files in place and its trainer_state.json last (then it
    removes the older checkpoint): a worker killed while saving leaves a newer folder without
    one, next to the complete older checkpoint, and resuming from that folder fails.
    """
    if not checkpoints.exists():
        return None
    steps = {p: p.name.removeprefix("checkpoint-") for p in checkpoints.glob("checkpoint-*") if p.is_dir()}
    found = [(int(step), folder) for folder, step in steps.items() if step.isdigit()]
    for _, folder in sorted(found, reverse=True):
        try:
            json.loads((folder / "trainer_state.json").read_text())
            return str(folder)
        except (OSError, ValueError):
            logger.warning("checkpoint %s was not written to the end; resuming from an earlier one", folder)
            shutil.rmtree(folder, ignore_errors=True)
    return None


def run_trainer(trainer, checkpoints: Path, validate) -> float:
    """Train, resuming from the last complete checkpoint if there is one; otherwise validate the
    starting model first (step 0 of the validation curve). Returns the training seconds."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # progress goes to the run row, not stdout
    resume = last_complete_checkpoint(checkpoints)
    if resume:
        logger.info("resuming from %s", resume)
    else:
        validate(0)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume)
    return time.perf_counter() - started


def train_lora(
    *,
    base_path: str,
    split: DataSplit,
    records: list[dict],
    twin_name: str,
    hp: Hyperparameters,
    work_dir: Path,
    adapter_dir: Path,
    on_step: Callable[[int, int, float | None], None] = lambda step, total, loss: None,
    on_validation: Callable[[int, float], None] = lambda step, loss: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> TrainingResult:
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer

    cuda = torch.cuda.is_available()
    torch.manual_seed(hp.seed)
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    data = build_training_data(tokenizer, twin_name, split, records, hp)
    if not data.sequences:
        raise ValueError("the dataset has no training text outside the held-out documents")
    validation = data.validation[:VALIDATION_WINDOWS]
    total_steps = planned_steps(len(data.sequences), hp)

    model = get_peft_model(model, lora_config(hp))
    val_history: list[list] = []

    def validate(step: int):
        if validation:
            loss = mean_loss(model, validation, pad_id, hp.batch_size)
            val_history.append([step, round(loss, 4)])
            on_validation(step, loss)

    checkpoints = work_dir / "checkpoints"
    args = trainer_arguments(
        hp,
        total_steps,
        checkpoints,
        activation_checkpointing=cuda,  # activations dominate GPU memory at long sequences
        activation_checkpointing_kwargs={"use_reentrant": False} if cuda else None,
    )
    progress = progress_callback(hp, on_step, validate, should_stop)
    trainer = Trainer(
        model=model, args=args, train_dataset=data.sequences, data_collator=collate(pad_id), callbacks=[progress]
    )
    train_seconds = run_trainer(trainer, checkpoints, validate)  # validate(0): the base model, where the curve starts
    if should_stop():
        raise Stopped()

    device = device_label(trainer.model)  # where the Trainer put the weights it trained
    steps_done = trainer.state.global_step
    sequences_seen = steps_done * hp.batch_size * hp.grad_accumulation
    mean_len = data.real_tokens / len(data.sequences)
    save_adapter(model, adapter_dir)
    report = {
        "train_sequences": len(data.sequences),
        "style_sequences": data.style_count,
        "qa_sequences": data.qa_count,
        "heldout_windows": len(data.validation),
        "epochs_done": round(sequences_seen / len(data.sequences), 2),
        "split": split.as_dict(),
    }
    if val_history:
        report["val_loss_start"], report["val_loss_end"] = val_history[0][1], val_history[-1][1]
    return TrainingResult(
        adapter_dir=adapter_dir,
        sha256=directory_sha256(adapter_dir),
        steps=steps_done,
        device=device,
        train_seconds=train_seconds,
        train_tokens=int(sequences_seen * mean_len),
        eval_report=report,
        val_history=val_history,
    )
