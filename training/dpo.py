"""Preference tuning (DPO) of the production adapter on the twin's preference dataset.

The pairs (features/preference.py) prefer the author's own passage to the base model's answer
to the same prompt. DPO (Rafailov et al., 2023) raises the log-probability of the chosen
answer against the rejected one, measured relative to a frozen reference: here the adapter
the run starts from, so the stage refines the twin that serves rather than the base model.
The reference log-probabilities are computed once before training (the starting adapter
*is* the reference), so no second model is kept in memory.

Written on transformers' Trainer (checkpoints, resume, schedules, CUDA/bf16 as in
training/lora.py) with the DPO loss in `compute_loss`; TRL's DPOTrainer would bring
datasets, pandas and pyarrow for the same twenty lines. Kept free of Django.
"""

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from features.prompts import render_prompt

from .hyperparameters import Hyperparameters
from .lora import (
    Stopped,
    TrainingResult,
    device_label,
    directory_sha256,
    evaluating,
    planned_steps,
    progress_callback,
    run_trainer,
    save_adapter,
    trainer_arguments,
)
from .samples import IGNORE_INDEX


def encode_pair(tokenizer, pair: dict, max_len: int) -> dict | None:
    """Prompt plus chosen and prompt plus rejected, labels on the answers only; None when the
    prompt leaves no room for an answer."""
    prompt = tokenizer(render_prompt(tokenizer, pair["prompt"]), add_special_tokens=False)["input_ids"]
    encoded = {}
    for side in ("chosen", "rejected"):
        answer = tokenizer(pair[side][0]["content"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        room = max_len - len(prompt)
        if room < 4:
            return None
        answer = answer[:room]
        encoded[f"{side}_input_ids"] = prompt + answer
        encoded[f"{side}_labels"] = [IGNORE_INDEX] * len(prompt) + answer
    return encoded


def _pad(rows: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows], dtype=torch.long)


def collate_pairs(pad_id: int):
    """A batch of pairs as one tensor: the chosen answers, then the rejected ones."""

    def collate(batch: list[dict]) -> dict:
        ids = [b["chosen_input_ids"] for b in batch] + [b["rejected_input_ids"] for b in batch]
        labels = [b["chosen_labels"] for b in batch] + [b["rejected_labels"] for b in batch]
        out = {
            "input_ids": _pad(ids, pad_id),
            "labels": _pad(labels, IGNORE_INDEX),
            "attention_mask": _pad([[1] * len(r) for r in ids], 0),
        }
        if "reference" in batch[0]:
            out["reference"] = torch.tensor([b["reference"] for b in batch], dtype=torch.float32)
        return out

    return collate


def sequence_logps(model, batch: dict) -> torch.Tensor:
    """The summed log-probability of each row's labelled tokens."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    labels = batch["labels"][:, 1:]
    mask = labels != IGNORE_INDEX
    picked = torch.gather(logits.float().log_softmax(-1), 2, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(-1)


def dpo_loss(logps: torch.Tensor, reference: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """logps: [chosen..., rejected...] of the policy; reference: [[chosen, rejected], ...].
    (mean loss, share of pairs whose chosen answer gained on the rejected one)."""
    half = logps.shape[0] // 2
    margin = (logps[:half] - logps[half:]) - (reference[:, 0] - reference[:, 1]).to(logps.device)
    return -F.logsigmoid(beta * margin).mean(), (margin > 0).float().mean()


@torch.no_grad()
def pair_logps(model, pairs: list[dict], collate, batch_size: int) -> torch.Tensor:
    """[[chosen, rejected], ...]: each pair's summed answer log-probabilities, dropout off."""
    rows = []
    with evaluating(model):
        for start in range(0, len(pairs), batch_size):
            batch = {k: v.to(model.device) for k, v in collate(pairs[start : start + batch_size]).items()}
            logps = sequence_logps(model, batch).float().cpu()
            half = logps.shape[0] // 2
            rows.append(torch.stack([logps[:half], logps[half:]], dim=1))
    return torch.cat(rows) if rows else torch.zeros((0, 2))


def evaluate_pairs(model, pairs: list[dict], collate, batch_size: int, beta: float) -> dict:
    """DPO loss and reward accuracy on pairs (their references attached)."""
    if not pairs:
        return {}
    logps = pair_logps(model, pairs, collate, batch_size)
    reference = torch.tensor([p["reference"] for p in pairs], dtype=torch.float32)
    loss, accuracy = dpo_loss(torch.cat([logps[:, 0], logps[:, 1]]), reference, beta)
    return {"loss": loss.item(), "accuracy": accuracy.item()}


def train_dpo(
    *,
    base_path: str,
    start_adapter_dir: Path,
    pairs: list[dict],
    hp: Hyperparameters,
    work_dir: Path,
    adapter_dir: Path,
    on_step: Callable[[int, int, float | None], None] = lambda step, total, loss: None,
    on_validation: Callable[[int, float], None] = lambda step, loss: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> TrainingResult:
    """pairs: TRL conversational preference records with "split" ("train" or "test")."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer

    cuda = torch.cuda.is_available()
    torch.manual_seed(hp.seed)
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32).to("cuda" if cuda else "cpu")
    model = PeftModel.from_pretrained(base, str(start_adapter_dir), is_trainable=True)
    collate = collate_pairs(pad_id)

    encoded = {"train": [], "test": []}
    for pair in pairs:
        item = encode_pair(tokenizer, pair, hp.max_seq_len)
        if item is not None:
            encoded["test" if pair.get("split") == "test" else "train"].append(item)
    if not encoded["train"]:
        raise ValueError("the preference dataset has no training pairs that fit the sequence length")
    for items in encoded.values():  # the starting adapter is the frozen reference
        for item, reference in zip(items, pair_logps(model, items, collate, hp.batch_size).tolist(), strict=True):
            item["reference"] = reference
    train, heldout = encoded["train"], encoded["test"]
    total_steps = planned_steps(len(train), hp)
    val_history: list[list] = []

    last_validation = {}

    def validate(step: int):
        if heldout:
            last_validation.update(evaluate_pairs(model, heldout, collate, hp.batch_size, hp.dpo_beta))
            val_history.append([step, round(last_validation["loss"], 4)])
            on_validation(step, last_validation["loss"])

    class DPOTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            reference = inputs.pop("reference")
            loss, _ = dpo_loss(sequence_logps(model, inputs), reference, hp.dpo_beta)
            return loss

    checkpoints = work_dir / "checkpoints"
    args = trainer_arguments(hp, total_steps, checkpoints)
    progress = progress_callback(hp, on_step, validate, should_stop)
    trainer = DPOTrainer(model=model, args=args, train_dataset=train, data_collator=collate, callbacks=[progress])
    train_seconds = run_trainer(trainer, checkpoints, validate)  # validate(0): DPO loss ln 2, accuracy 0
    if should_stop():
        raise Stopped()

    save_adapter(model, adapter_dir)
    steps_done = trainer.state.global_step
    pairs_seen = steps_done * hp.batch_size * hp.grad_accumulation
    mean_tokens = sum(len(p["chosen_input_ids"]) + len(p["rejected_input_ids"]) for p in train) / len(train)
    report = {
        "stage": "dpo",
        "train_pairs": len(train),
        "heldout_pairs": len(heldout),
        "dpo_beta": hp.dpo_beta,
        "epochs_done": round(pairs_seen / len(train), 2),
        "train_reward_accuracy": round(
            evaluate_pairs(model, train, collate, hp.batch_size, hp.dpo_beta)["accuracy"], 4
        ),
    }
    if last_validation:  # the progress callback validates at the last step too
        report["heldout_reward_accuracy"] = round(last_validation["accuracy"], 4)
    if val_history:
        report["val_loss_start"], report["val_loss_end"] = val_history[0][1], val_history[-1][1]
    return TrainingResult(
        adapter_dir=adapter_dir,
        sha256=directory_sha256(adapter_dir),
        steps=steps_done,
        device=device_label(trainer.model),
        train_seconds=train_seconds,
        train_tokens=int(pairs_seen * mean_tokens),
        eval_report=report,
        val_history=val_history,
    )
