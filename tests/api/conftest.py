"""Fixtures for the REST API tests: a staff client and each pipeline stage's objects,
built through the real actions (eager Celery) for the owner and for the other user.

Training goes through the real task (claim, progress, registry, success) with the
LoRA step itself stubbed: the API tests are about the API, tests/training trains
for real, and a real run costs seconds to tens of seconds on a busy machine.
"""

import pytest
from django.core.cache.backends.locmem import LocMemCache

from chat.actions import do_answer
from features.models import DatasetVersion
from tests.conftest import add_markdown_source, api_client_for
from training import lora
from training.actions import do_start_training_run
from training.models import ModelVersion


def stub_train_lora(*, hp, adapter_dir, on_step, **_):
    """Stands in for training.lora.train_lora: reports every step and writes a small adapter."""
    for step in range(1, hp.max_steps + 1):
        on_step(step, hp.max_steps, round(2.0 / step, 4))
    adapter_dir.mkdir(parents=True, exist_ok=True)
    (adapter_dir / "adapter_config.json").write_text('{"stub": true}')
    return lora.TrainingResult(
        adapter_dir=adapter_dir,
        sha256=lora.directory_sha256(adapter_dir),
        steps=hp.max_steps,
        device="cpu",
        train_seconds=0.01,
        train_tokens=100 * hp.max_steps,
        eval_report={
            "base_loss": 2.5,
            "adapter_loss": 2.0,
            "base_perplexity": 12.18,
            "adapter_perplexity": 7.39,
            "test_samples": 1,
            "train_samples": 3,
            "samples": [],
        },
    )


@pytest.fixture
def stub_training(monkeypatch):
    monkeypatch.setattr("training.tasks.train_lora", stub_train_lora)


@pytest.fixture
def throttle_cache():
    """A throttle history of the test's own: concurrent test runs share one Redis database and clear it."""
    cache = LocMemCache("twinsite-throttle-tests", {})
    cache.clear()
    return cache


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
