"""Multi-step writes of the training pipeline and the registry, shared by views, API, admin and tasks."""

import shutil

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from features.models import DatasetVersion
from twinsite.jobs import JobStatus

from .lora import Hyperparameters
from .models import BaseModel, ModelVersion, TrainingRun


class TrainingRefused(Exception):
    """The run cannot start; the message says why."""


def default_hyperparameters() -> Hyperparameters:
    return Hyperparameters(
        max_steps=settings.TWIN_TRAIN_MAX_STEPS,
        batch_size=settings.TWIN_TRAIN_BATCH_SIZE,
        max_seq_len=settings.TWIN_TRAIN_MAX_SEQ_LEN,
    )


def do_start_training_run(owner, dataset: DatasetVersion | None = None, **overrides) -> TrainingRun:
    """Queue a LoRA run on the owner's latest (or given) dataset; one active run per twin."""
    from .tasks import train_model

    dataset = dataset or DatasetVersion.objects.filter(owner=owner).first()
    if dataset is None:
        raise TrainingRefused("There is no dataset yet: add a source and wait for it to be processed.")
    if dataset.owner_id != owner.pk:
        raise TrainingRefused("That dataset is not yours.")
    if dataset.train_count == 0:
        raise TrainingRefused("The dataset has no training samples yet; add more writing.")
    with transaction.atomic():
        active = TrainingRun.objects.select_for_update().filter(owner=owner).active().first()
        if active:
            raise TrainingRefused(f"Training run {active.pk} is still {active.status}; wait for it or cancel it.")
        hp = default_hyperparameters()
        hp = Hyperparameters.from_dict({**hp.as_dict(), **overrides})
        run = TrainingRun.objects.create(
            owner=owner,
            dataset_version=dataset,
            base_model=BaseModel.default(),
            hyperparameters=hp.as_dict(),
            total_steps=hp.max_steps,
            message="Waiting for a GPU (or CPU) worker",
        )
        transaction.on_commit(lambda: train_model.delay(run.pk))
    return run


def do_cancel_training_run(run: TrainingRun) -> bool:
    """Mark an active run cancelled; a running trainer notices at its next step."""
    return bool(
        TrainingRun.objects.filter(pk=run.pk, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).update(
            status=JobStatus.CANCELLED, finished_at=timezone.now(), message="Cancelled"
        )
    )


def do_register_model_version(run: TrainingRun, result) -> ModelVersion:
    """Record the trained adapter as a candidate; idempotent per run."""
    with transaction.atomic():
        existing = ModelVersion.objects.filter(training_run=run).first()
        if existing:
            return existing
        version = (ModelVersion.objects.filter(owner=run.owner).aggregate(v=Max("version"))["v"] or 0) + 1
        return ModelVersion.objects.create(
            owner=run.owner,
            training_run=run,
            base_model=run.base_model,
            dataset_version=run.dataset_version,
            version=version,
            adapter_path=str(result.adapter_dir.relative_to(settings.TWIN_DATA_DIR)),
            sha256=result.sha256,
            hyperparameters=run.hyperparameters,
            eval_report=result.eval_report,
        )


def do_approve_model_version(model_version: ModelVersion, reviewer) -> ModelVersion:
    """Make the version the twin's production model; the previous one stays for rollback."""
    if model_version.status == ModelVersion.Status.REJECTED:
        raise TrainingRefused("A rejected model cannot be approved; train a new one.")
    with transaction.atomic():
        get_user_model().objects.select_for_update().get(pk=model_version.owner_id)  # one promotion at a time
        ModelVersion.objects.filter(owner=model_version.owner_id, status=ModelVersion.Status.PRODUCTION).exclude(
            pk=model_version.pk
        ).update(status=ModelVersion.Status.APPROVED)
        model_version.status = ModelVersion.Status.PRODUCTION
        model_version.reviewed_by = reviewer
        model_version.reviewed_at = timezone.now()
        model_version.save(update_fields=["status", "reviewed_by", "reviewed_at"])
    return model_version


def do_reject_model_version(model_version: ModelVersion, reviewer) -> ModelVersion:
    if model_version.status == ModelVersion.Status.PRODUCTION:
        raise TrainingRefused("This model is serving; approve another version first, then reject this one.")
    model_version.status = ModelVersion.Status.REJECTED
    model_version.reviewed_by = reviewer
    model_version.reviewed_at = timezone.now()
    model_version.save(update_fields=["status", "reviewed_by", "reviewed_at"])
    return model_version


def remove_checkpoints(run: TrainingRun):
    """Checkpoints are only for resuming; the adapter is kept elsewhere."""
    shutil.rmtree(run.run_dir / "checkpoints", ignore_errors=True)


def do_retry_training_run(run: TrainingRun) -> TrainingRun:
    """Queue a failed run again; it resumes from its last checkpoint when one was saved."""
    from .tasks import train_model

    if run.status != JobStatus.FAILED:
        raise TrainingRefused("Only a failed run can be retried.")
    with transaction.atomic():
        if TrainingRun.objects.select_for_update().filter(owner=run.owner).active().exists():
            raise TrainingRefused("Another run is active; wait for it or cancel it.")
        run.status, run.error, run.finished_at, run.message = JobStatus.QUEUED, "", None, "Queued for retry"
        run.save(update_fields=["status", "error", "finished_at", "message"])
        transaction.on_commit(lambda: train_model.delay(run.pk))
    return run
