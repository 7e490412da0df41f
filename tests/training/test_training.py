"""LoRA training on the tiny model (same architecture and tokenizer as SmolLM2), the registry and approval."""

from types import SimpleNamespace

import pytest
import torch
from django.conf import settings
from django.db import IntegrityError

from features.models import Chunk, DatasetVersion
from tests.conftest import expected_device
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


@pytest.fixture
def trained(owner_source, owner):
    run = do_start_training_run(owner)
    run.refresh_from_db()
    return run


def test_a_run_trains_an_adapter_and_registers_an_evaluated_candidate(trained, owner):
    assert trained.status == "succeeded", trained.error
    assert trained.progress == 100 and trained.current_step == trained.total_steps == settings.TWIN_TRAIN_MAX_STEPS
    assert [step for step, _ in trained.loss_history] == [1, 2, 3, 4]
    assert [step for step, _ in trained.val_history] == [0, 2, 4]  # step 0 is the base model
    assert trained.metrics["tokens_per_second"] > 0 and trained.device == expected_device()
    metrics = trained.metrics  # one page: its Q&A samples are test-split or cut from the held-out tail
    assert (
        metrics["style_sequences"] >= 1
        and metrics["train_sequences"] == metrics["style_sequences"] + metrics["qa_sequences"]
    )

    model_version = ModelVersion.objects.get(training_run=trained)
    assert model_version.status == "candidate" and model_version.owner == owner
    assert (model_version.adapter_dir / "adapter_model.safetensors").exists()
    assert model_version.sha256 == lora.directory_sha256(model_version.adapter_dir)
    assert model_version.evaluation_status == "done" and model_version.verdict in ("passed", "failed")
    report = model_version.eval_report
    assert set(report["models"]) == {"base", "candidate"} and report["reference"] == "base"
    assert report["models"]["base"]["perplexity"] > 0 and report["heldout"]["windows"] >= 1
    assert [c["metric"] for c in report["checks"]] == settings.TWIN_GATE_METRICS
    assert report["samples"] and {"prompt", "base", "candidate", "reference"} <= set(report["samples"][0])
    assert not (trained.run_dir / "checkpoints").exists()  # only kept for resuming


def test_training_asks_for_cuda_and_bf16_when_the_machine_has_them(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert lora.accelerator() == {"use_cpu": False, "bf16": True}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert lora.accelerator() == {"use_cpu": True, "bf16": False}


def test_a_run_records_where_its_weights_were_not_what_the_machine_offers(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")

    class OnTheGpu:
        def parameters(self):
            return iter([SimpleNamespace(device=torch.device("cuda", 0))])

    assert lora.device_label(OnTheGpu()) == "NVIDIA H100 80GB HBM3"
    assert lora.device_label(torch.nn.Linear(2, 2)) == "cpu"  # fell back to the CPU on a GPU machine: said


def test_the_budget_is_epochs_over_the_data_capped_in_steps(owner_source, owner):
    run = do_start_training_run(owner, epochs=1.0, max_steps=50, batch_size=1)
    run.refresh_from_db()
    sequences = run.metrics["train_sequences"]
    assert run.status == "succeeded", run.error
    assert run.total_steps == sequences < 50 and run.metrics["epochs_done"] == 1.0


def test_one_active_run_per_twin(owner_source, owner, monkeypatch):
    monkeypatch.setattr("training.tasks.train_model.delay", lambda run_id: None)  # stays queued
    first = do_start_training_run(owner)
    with pytest.raises(TrainingRefused, match=f"Training run {first.pk} is still queued"):
        do_start_training_run(owner)


def test_the_database_refuses_a_second_active_run(owner_source, owner, monkeypatch):
    """Even a writer that skips the start action (or races it) cannot queue two runs."""
    monkeypatch.setattr("training.tasks.train_model.delay", lambda run_id: None)
    first = do_start_training_run(owner)
    with pytest.raises(IntegrityError):
        TrainingRun.objects.create(
            owner=owner, dataset_version=first.dataset_version, base_model=first.base_model, status="running"
        )


def test_bad_hyperparameters_are_refused_with_every_reason(owner_source, owner):
    with pytest.raises(TrainingRefused) as refused:
        do_start_training_run(owner, learning_rate=-1, target_modules=["lm_head"], epochs=0)
    assert "learning_rate" in str(refused.value) and "target_modules" in str(refused.value)
    assert "epochs" in str(refused.value)
    with pytest.raises(TrainingRefused, match="Unknown hyperparameters: warp"):
        do_start_training_run(owner, warp=9)
    assert not TrainingRun.objects.exists()


def test_training_needs_a_dataset(owner):
    with pytest.raises(TrainingRefused, match="no dataset"):
        do_start_training_run(owner)


def test_rejected_versions_never_serve(trained, staff):
    model_version = ModelVersion.objects.get(training_run=trained)
    do_reject_model_version(model_version, staff)
    with pytest.raises(TrainingRefused):
        do_approve_model_version(model_version, staff)
    assert ModelVersion.objects.for_user(trained.owner).production() is None


@pytest.mark.parametrize("killed_while_saving", [False, True])
def test_a_failed_run_resumes_from_its_last_checkpoint(owner_source, owner, monkeypatch, killed_while_saving):
    real_train = lora.train_lora
    calls = []
    retried = {"steps": [], "validations": []}  # what the second attempt itself trained and measured

    def crash_after_checkpoint(**kwargs):
        calls.append(1)
        on_step, on_validation = kwargs["on_step"], kwargs["on_validation"]
        if len(calls) == 1:

            def crashing(step, total, loss):
                on_step(step, total, loss)
                if step == 3:
                    raise RuntimeError("worker lost power")

            kwargs["on_step"] = crashing
        else:

            def recording_step(step, total, loss):
                retried["steps"].append(step)
                on_step(step, total, loss)

            def recording_validation(step, loss):
                retried["validations"].append(step)
                on_validation(step, loss)

            kwargs["on_step"], kwargs["on_validation"] = recording_step, recording_validation
        return real_train(**kwargs)

    monkeypatch.setattr("training.tasks.train_lora", crash_after_checkpoint)
    with monkeypatch.context() as queued_only:
        queued_only.setattr("training.tasks.train_model.delay", lambda run_id: None)
        run = do_start_training_run(owner, save_every=2, eval_every=2)
    with pytest.raises(RuntimeError):
        train_model(run.pk)  # what the worker runs
    run.refresh_from_db()
    assert run.status == "failed" and "worker lost power" in run.error
    assert (run.run_dir / "checkpoints" / "checkpoint-2").exists()
    if killed_while_saving:  # the next checkpoint's folder, its weights written, its trainer state not yet
        half = run.run_dir / "checkpoints" / "checkpoint-3"
        half.mkdir()
        (half / "adapter_config.json").write_bytes((half.parent / "checkpoint-2" / "adapter_config.json").read_bytes())

    do_retry_training_run(run)
    run.refresh_from_db()

    assert run.status == "succeeded", run.error
    # Only a resume does this: the retry's optimiser starts at step 3 (a run that ignored the
    # checkpoint trains and reports steps 1-4 again, and validates the base model at step 0 again)...
    assert retried == {"steps": [3, 4], "validations": [4]}
    # ...and the stored curves continue the first attempt's: steps 1-2 and validations 0, 2 are its own.
    assert [step for step, _ in run.loss_history] == [1, 2, 3, 4]
    assert [step for step, _ in run.val_history] == [0, 2, 4]
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


def test_after_a_revert_training_uses_the_dataset_of_the_current_content(owner, local_site, monkeypatch):
    """A -> B -> A: the third build reuses A's version (same content hash), and that reused
    version, not B's higher number, is what a training run (by hand or by beat) starts from."""
    from accounts.models import Twin
    from ingestion.actions import do_add_article_source, do_sync_source
    from tests.conftest import SAMPLE_MARKDOWN
    from training.tasks import train_when_due

    def serve(extra: str) -> str:
        paragraphs = "".join(f"<p>{p}</p>" for p in SAMPLE_MARKDOWN.split("\n\n")[1:] if not p.startswith("#"))
        return local_site.page(
            "/bees", f"<html><body><article><h1>Bees</h1>{paragraphs}<p>{extra}</p></article></body></html>"
        )

    text_a = "In spring I add a super to each hive as soon as the dandelions open along the railway line."
    text_b = "This year I am trying a top-bar hive, and the bees built their comb crooked within a week."
    source = do_add_article_source(owner, serve(text_a), category="post")
    version_a = DatasetVersion.objects.get(owner=owner)
    serve(text_b)
    do_sync_source(source)
    version_b = DatasetVersion.objects.get(owner=owner, version=2)
    assert DatasetVersion.objects.for_user(owner).instruct().current() == version_b

    serve(text_a)
    do_sync_source(source)

    assert DatasetVersion.objects.filter(owner=owner).count() == 2  # A's version was reused, not rebuilt
    assert DatasetVersion.objects.for_user(owner).instruct().current() == version_a
    monkeypatch.setattr("training.tasks.train_model.delay", lambda run_id: None)
    run = do_start_training_run(owner)
    assert run.dataset_version == version_a
    do_cancel_training_run(run)
    monkeypatch.setattr(settings, "TWIN_AUTO_TRAIN_SETTLE_SECONDS", 0)
    monkeypatch.setattr(settings, "TWIN_AUTO_TRAIN_MIN_SAMPLES", 1)
    TrainingRun.objects.filter(pk=run.pk).delete()  # beat skips a dataset that already has a run
    Twin.objects.filter(owner=owner).update(auto_train=True)
    train_when_due()
    assert TrainingRun.objects.get(owner=owner).dataset_version == version_a
