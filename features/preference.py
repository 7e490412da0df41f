"""Preference (DPO) datasets: the author's own passage against a model's answer to the same prompt.

Built from one instruct version. Each of its style samples (an instruction whose answer
is a verbatim extract of the author's writing) becomes a pair: the prompt is the chat
messages the twin is asked with (system prompt with the twin's name, the instruction;
no notes, so the answer is all voice), chosen is the extract, rejected is what a model
answers to exactly those messages: the packaged base model, greedy and short, on the
"gpu" queue (training/preference.py), or the configured OpenAI-compatible endpoint
(features/generators.py). DPO on these pairs moves the twin away from the base model's
generic voice and toward the author's.

Record format, one JSON object per line: TRL's conversational preference type, which
`DPOTrainer` takes as is (it applies the tokenizer's chat template itself), plus
bookkeeping columns it leaves alone:
    {"prompt": [{"role": "system", ...}, {"role": "user", "content": instruction}],
     "chosen": [{"role": "assistant", "content": passage}],
     "rejected": [{"role": "assistant", "content": answer}],
     "split": "train"|"test", "instruction": str, "document_id": int, "title": str}
Each pair keeps its instruct sample's split, which is by document (features/datasets.py),
so both datasets hold out the same documents. A pair whose answer is empty or is the
passage itself teaches nothing and is dropped.
"""

import json
import re

PROMPT_KEY_VERSION = 1  # part of the cache key of earlier answers


def preference_prompts(instruct_records: list[dict], limit: int) -> list[dict]:
    """The style samples a pair is made of, one per distinct (instruction, passage), spread evenly
    over the dataset when there are more than `limit` (generation costs seconds per answer on CPU)."""
    seen, chosen = set(), []
    for record in instruct_records:
        key = (record["instruction"], record["answer"])
        if record.get("kind") == "style" and key not in seen:
            seen.add(key)
            chosen.append(record)
    if limit <= 0 or len(chosen) <= limit:
        return chosen
    if limit == 1:
        return chosen[:1]
    return [chosen[round(i * (len(chosen) - 1) / (limit - 1))] for i in range(limit)]


def prompt_key(messages: list[dict]) -> str:
    """What identifies a prompt for reusing an earlier answer to it."""
    return json.dumps([PROMPT_KEY_VERSION, messages], ensure_ascii=False, sort_keys=True)


def _normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def build_pairs(samples: list[dict], prompts: list[list[dict]], answers: list[str]) -> list[dict]:
    """Pair records in TRL's conversational preference format (see the module docstring)."""
    pairs = []
    for sample, messages, answer in zip(samples, prompts, answers, strict=True):
        answer = (answer or "").strip()
        if not answer or _normalised(answer) == _normalised(sample["answer"]):
            continue
        pairs.append(
            {
                "prompt": messages,
                "chosen": [{"role": "assistant", "content": sample["answer"]}],
                "rejected": [{"role": "assistant", "content": answer}],
                "split": sample["split"],
                "instruction": sample["instruction"],
                "document_id": sample["document_id"],
                "title": sample["title"],
            }
        )
    return pairs


def earlier_answers(records: list[dict]) -> dict[str, str]:
    """prompt key -> rejected answer, from an earlier preference version by the same generator."""
    return {prompt_key(r["prompt"]): r["rejected"][0]["content"] for r in records}
