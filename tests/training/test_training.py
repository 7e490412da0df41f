"""LoRA training on the tiny model (same architecture and tokenizer as SmolLM2), the registry and approval."""

import pytest
from django.conf import settings

from features.models import Chunk, DatasetVersion
from training import lora
from training.actions import (
    TrainingRefused,
    do_approve_model_version,
    do_cancel_training_run,
    do_reject_model_version,
    do_retry_training_run,
    do_start_training_run,
)
from training.models import ModelVersion, TrainingRun
from training.tasks import train_model

pytestmark = pytest.mark.django_db


def expected_device() -> str:
    """What a run reports: the GPU's name where CUDA is present (a GPU machine), else "cpu"."""
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


@pytest.fixture
def trained(owner_source, owner):
    run = do_start_training_run(owner)
    run.refresh_from_db()
    return run


def test_a_run_trains_an_adapter_and_registers_a_candidate(trained, owner):
    assert trained.status == "succeeded", trained.error
    assert trained.progress == 100 and trained.current_step == trained.total_steps == settings.TWIN_TRAIN_MAX_STEPS
    assert [step for step, _ in trained.loss_history] == [1, 2, 3, 4]
    assert trained.metrics["tokens_per_second"] > 0 and trained.device == expected_device()

    model_version = ModelVersion.objects.get(training_run=trained)
    assert model_version.status == "candidate" and model_version.owner == owner
    assert (model_version.adapter_dir / "adapter_model.safetensors").exists()
    assert model_version.sha256 == lora.directory_sha256(model_version.adapter_dir)
    report = model_version.eval_report
    assert report["test_samples"] >= 1 and report["base_loss"] > 0 and report["adapter_loss"] > 0
    assert not (trained.run_dir / "checkpoints").exists()  # only kept for resuming


def test_one_active_run_per_twin(owner_source, owner, monkeypatch):
    monkeypatch.setattr("training.tasks.train_model.delay", lambda run_id: None)  # stays queued
    do_start_training_run(owner)
    with pytest.raises(TrainingRefused, match="still queued"):
        do_start_training_run(owner)


def test_training_needs_a_dataset(owner):
    with pytest.raises(TrainingRefused, match="no dataset"):
        do_start_training_run(owner)


def test_approval_promotes_and_keeps_the_previous_version_for_rollback(trained, owner, staff):
    first = ModelVersion.objects.get(training_run=trained)
    second_run = do_start_training_run(owner)
    second = ModelVersion.objects.get(training_run=second_run)

    do_approve_model_version(first, staff)
    do_approve_model_version(second, staff)
    first.refresh_from_db()

    assert ModelVersion.objects.production_for(owner) == second
    assert first.status == "approved" and second.reviewed_by == staff
    do_approve_model_version(first, staff)  # rollback
    assert ModelVersion.objects.production_for(owner) == first


def test_rejected_versions_never_serve(trained, staff):
    model_version = ModelVersion.objects.get(training_run=trained)
    do_reject_model_version(model_version, staff)
    with pytest.raises(TrainingRefused):
        do_approve_model_version(model_version, staff)
    assert ModelVersion.objects.production_for(trained.owner) is None


def test_a_failed_run_resumes_from_its_last_checkpoint(owner_source, owner, monkeypatch):
    real_train = lora.train_lora
    calls = []

    def crash_after_checkpoint(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            on_step = kwargs["on_step"]

            def crashing(step, total, loss):
                on_step(step, total, loss)
                if step == 3:
                    raise RuntimeError("worker lost power")

            kwargs["on_step"] = crashing
        return real_train(**kwargs)

    monkeypatch.setattr("training.tasks.train_lora", crash_after_checkpoint)
    with monkeypatch.context() as queued_only:
        queued_only.setattr("training.tasks.train_model.delay", lambda run_id: None)
        run = do_start_training_run(owner, save_every=2)
    with pytest.raises(RuntimeError):
        train_model(run.pk)  # what the worker runs
    run.refresh_from_db()
    assert run.status == "failed" and "worker lost power" in run.error
    assert (run.run_dir / "checkpoints" / "checkpoint-2").exists()

    do_retry_training_run(run)
    run.refresh_from_db()

    assert run.status == "succeeded", run.error
    steps = [step for step, _ in run.loss_history]
    assert steps == [1, 2, 3, 4]  # steps 1-2 from the first attempt, 3-4 after resuming
    assert ModelVersion.objects.filter(training_run=run).exists()


def test_cancelling_a_queued_run(owner_source, owner, monkeypatch):
    monkeypatch.setattr("training.tasks.train_model.delay", lambda run_id: None)
    run = do_start_training_run(owner)
    assert do_cancel_training_run(run)
    run.refresh_from_db()
    assert run.status == "cancelled"
    assert not do_cancel_training_run(run)


def test_beat_trains_when_a_settled_dataset_has_enough_new_samples(owner_source, owner, settings):
    from accounts.models import Twin
    from training.tasks import train_when_due

    settings.TWIN_AUTO_TRAIN_MIN_SAMPLES = 1
    train_when_due()
    assert not TrainingRun.objects.exists()  # auto-train is off by default

    Twin.objects.filter(owner=owner).update(auto_train=True)
    train_when_due()
    run = TrainingRun.objects.get(owner=owner)
    assert run.dataset_version == DatasetVersion.objects.get(owner=owner)

    train_when_due()  # that dataset already has a run
    assert TrainingRun.objects.count() == 1


def test_deleting_a_user_removes_their_runs_models_and_datasets(trained, owner, other_source, other):
    owner_id = owner.pk
    owner.delete()  # RESTRICT between runs, models and datasets must not block the cascade
    assert not TrainingRun.objects.exists() and not ModelVersion.objects.exists()
    assert not DatasetVersion.objects.filter(owner_id=owner_id).exists()
    assert DatasetVersion.objects.filter(owner=other).exists()  # a short note still makes grounded samples
    assert Chunk.objects.filter(owner=other).exists()  # the other user's data stays
