import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from accounts.models import Twin
from features.datasets import read_records
from features.models import DatasetVersion
from twinsite.jobs import JobStatus

from . import base_models
from .actions import TrainingRefused, do_register_model_version, do_start_training_run, remove_checkpoints
from .lora import Hyperparameters, Stopped, train_lora
from .models import TrainingRun

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def train_model(run_id: int):
    """Train one run (queue "gpu"); a redelivered task resumes from the last checkpoint."""
    run = TrainingRun.objects.select_related("owner", "dataset_version", "base_model").filter(pk=run_id).first()
    if run is None or not run.claim():
        return
    hp = Hyperparameters.from_dict(run.hyperparameters)

    def on_step(step: int, total: int, loss: float | None):
        history = [point for point in run.loss_history if point[0] < step]
        if loss is not None:
            history.append([step, round(loss, 4)])
        run.report(
            100 * step / max(1, total),
            f"Step {step} of {total}",
            current_step=step,
            total_steps=total,
            loss_history=history,
        )

    def cancelled() -> bool:
        return TrainingRun.objects.filter(pk=run.pk, status=JobStatus.CANCELLED).exists()

    try:
        run.report(1, "Loading the base model and dataset")
        result = train_lora(
            base_path=base_models.resolve(run.base_model.identifier),
            records=read_records(run.dataset_version.file_path),
            twin_name=Twin.for_user(run.owner).name,
            hp=hp,
            work_dir=run.run_dir,
            adapter_dir=settings.TWIN_DATA_DIR / "adapters" / str(run.owner_id) / f"run-{run.pk}",
            on_step=on_step,
            should_stop=cancelled,
        )
    except Stopped:
        remove_checkpoints(run)
        return
    except Exception as exc:
        logger.exception("training run %s failed", run_id)
        run.fail(f"Training failed: {exc.__class__.__name__}: {str(exc)[:300]}. Checkpoints are kept; retry to resume.")
        raise
    model_version = do_register_model_version(run, result)
    remove_checkpoints(run)
    run.succeed(
        f"Model v{model_version.version} is waiting for approval",
        device=result.device,
        metrics={
            "train_seconds": round(result.train_seconds, 1),
            "train_tokens": result.train_tokens,
            "tokens_per_second": round(result.train_tokens / max(result.train_seconds, 1e-6), 1),
            "steps": result.steps,
        },
    )


@shared_task
def train_when_due():
    """Beat: continuous training. A twin with auto-train on gets a run when its latest
    dataset has settled (no newer version for a while, so a burst of uploads trains
    once) and adds enough samples over the dataset of its last run."""
    settled_before = timezone.now() - timedelta(seconds=settings.TWIN_AUTO_TRAIN_SETTLE_SECONDS)
    for twin in Twin.objects.filter(auto_train=True).select_related("owner"):
        latest = DatasetVersion.objects.filter(owner=twin.owner).first()
        if latest is None or latest.created_at > settled_before or latest.training_runs.exists():
            continue
        last_run = TrainingRun.objects.filter(owner=twin.owner).exclude(status=JobStatus.CANCELLED).first()
        trained = last_run.dataset_version.sample_count if last_run else 0
        if latest.sample_count - trained < settings.TWIN_AUTO_TRAIN_MIN_SAMPLES:
            continue
        try:
            do_start_training_run(twin.owner, latest)
        except TrainingRefused as exc:
            logger.info("auto-train skipped for %s: %s", twin, exc)
