"""Fixtures for the REST API tests: a staff client and each pipeline stage's objects,
built through the real actions (eager Celery) for the owner and for the other user.

Training goes through the real task (claim, progress, registry, success) with the
LoRA step itself stubbed: the API tests are about the API, tests/training trains
for real, and a real run costs seconds to tens of seconds on a busy machine.
"""

import pytest
import torch
from safetensors.torch import save_file

from chat.actions import do_answer
from features.models import DatasetVersion
from tests.conftest import add_markdown_source, api_client_for
from training import lora
from training.actions import do_start_training_run
from training.models import ModelVersion


def stub_train_lora(*, hp, adapter_dir, on_step, on_validation=lambda step, loss: None, **_):
    """Stands in for training.lora.train_lora: reports every step and writes a small adapter."""
    on_validation(0, 2.5)
    for step in range(1, hp.max_steps + 1):
        on_step(step, hp.max_steps, round(2.0 / step, 4))
    on_validation(hp.max_steps, 2.0)
    adapter_dir.mkdir(parents=True, exist_ok=True)
    (adapter_dir / "adapter_config.json").write_text('{"stub": true}')
    save_file({"stub": torch.zeros(1)}, adapter_dir / "adapter_model.safetensors")
    return lora.TrainingResult(
        adapter_dir=adapter_dir,
        sha256=lora.directory_sha256(adapter_dir),
        steps=hp.max_steps,
        device="cpu",
        train_seconds=0.01,
        train_tokens=100 * hp.max_steps,
        eval_report={"train_sequences": 3, "heldout_windows": 1, "val_loss_start": 2.5, "val_loss_end": 2.0},
        val_history=[[0, 2.5], [hp.max_steps, 2.0]],
    )


def stub_evaluate(**_):
    """Stands in for training.evaluation.evaluate: a candidate that beats the base model."""
    models = {
        "base": {"loss": 2.5, "perplexity": 12.18, "delta": 1.2, "similarity": 0.5, "copy_rate": 0.0},
        "candidate": {"loss": 2.0, "perplexity": 7.39, "delta": 1.0, "similarity": 0.5, "copy_rate": 0.01},
    }
    return {
        "passed": True,
        "reference": "base",
        "models": models,
        "checks": [{"metric": "perplexity", "candidate": 7.39, "reference": 12.18, "passed": True, "rule": "lower"}],
        "fidelity_score": 23.2,
        "samples": [{"prompt": "Tell me about bees.", "reference": "Bees.", "base": "Hm.", "candidate": "Bees!"}],
        "heldout": {"windows": 1, "words": 40, "documents": [], "prompts": 1},
        "seconds": 0.01,
    }


@pytest.fixture
def stub_training(monkeypatch):
    monkeypatch.setattr("training.tasks.train_lora", stub_train_lora)
    monkeypatch.setattr("training.tasks.evaluate", stub_evaluate)


@pytest.fixture
def staff_api(staff):
    return api_client_for(staff)


@pytest.fixture
def owner_dataset(owner_source, owner):
    return DatasetVersion.objects.for_user(owner).get()


SAILING_LOG = """# A season of sailing

## The boat

I sail a small dinghy on the lake every Sunday morning when the wind is light. The boat is eleven feet
long and I bought it second hand for four hundred euros from a retired teacher in the next village.

## Capsizing

I capsized twice in the first month and learned to right the boat from the water by standing on the
centreboard and leaning back until the mast comes up. Now I practise it every spring in warm shallow water.
"""


@pytest.fixture
def other_dataset(other):
    """The other user's sailing log: long enough to make a dataset (the shared other_source is not)."""
    add_markdown_source(other, "sailing-log.md", SAILING_LOG)
    return DatasetVersion.objects.for_user(other).get()


@pytest.fixture
def owner_model_version(owner_source, owner, stub_training):
    """A finished training run's candidate model version, awaiting review."""
    run = do_start_training_run(owner)
    return ModelVersion.objects.get(training_run=run)


@pytest.fixture
def owner_answer(owner_source, owner):
    return do_answer(owner, "How much honey does a hive give in July?")


@pytest.fixture
def other_answer(other_source, other):
    return do_answer(other, "How long is your boat?")
