import errno
import logging
import shutil
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError
from django.utils import timezone

from accounts.actions import do_ensure_twin, user_data_dirs
from accounts.models import Twin
from core.jobs import JobStatus
from features.actions import do_build_preference_version
from features.datasets import read_records
from features.generators import GeneratorError, endpoint_generator
from features.grounding.config import GroundingConfig
from features.models import CleanDocument, DatasetVersion
from features.prompts import record_messages

from . import base_models
from .actions import (
    TrainingRefused,
    do_queue_evaluation,
    do_record_evaluation,
    do_register_model_version,
    do_start_training_run,
    remove_checkpoints,
)
from .dpo import train_dpo
from .evaluation import GateConfig, evaluate
from .experiments import do_advance_experiment
from .lora import AdapterSaveFailed, Hyperparameters, Stopped, train_lora, verify_adapter_dir
from .models import EvaluationRun, ModelVersion, PreferenceRun, TrainingRun
from .preference import BaseModelGenerator
from .samples import DataSplit, split_documents

logger = logging.getLogger(__name__)
DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO}


def failure_reason(exc: Exception) -> str:
    """What the user reads: disk trouble in words (no server paths), anything else by its class and message."""
    if isinstance(exc, AdapterSaveFailed):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno in DISK_ERRORS:
        return f"could not write to disk ({exc.strerror})"
    return f"{exc.__class__.__name__}: {str(exc)[:300]}"


def load_data(dataset: DatasetVersion) -> tuple[list[dict], DataSplit]:
    """The dataset's records and the split of its documents' cleaned text into trained and held out."""
    records = read_records(dataset.file_path)
    ids = [d["id"] for d in dataset.lineage.get("documents", [])] or sorted(
        {r["document_id"] for r in records if r.get("document_id")}
    )
    documents = (
        CleanDocument.objects.for_user(dataset.owner).filter(document_id__in=ids).values_list("document_id", "text")
    )
    return records, split_documents(sorted(documents))


def gate_config() -> GateConfig:
    return GateConfig(
        metrics=list(settings.TWIN_GATE_METRICS),
        style_tolerance=settings.TWIN_GATE_STYLE_TOLERANCE,
        first_perplexity_ratio=settings.TWIN_GATE_FIRST_PERPLEXITY_RATIO,
        similarity_floor=settings.TWIN_GATE_SIMILARITY_FLOOR,
        max_copy_rate=settings.TWIN_GATE_MAX_COPY_RATE,
        generations=settings.TWIN_GATE_GENERATIONS,
        max_new_tokens=settings.TWIN_GATE_MAX_NEW_TOKENS,
        grounding_questions=settings.TWIN_GATE_GROUNDING_QUESTIONS,
        grounding=GroundingConfig.from_settings(),
    )


def run_is_gone(run: TrainingRun) -> bool:
    """Its row was deleted (with its owner's account, say) while it trained."""
    return not TrainingRun.objects.filter(pk=run.pk).exists()


def discard_deleted_run(run: TrainingRun, adapter_dir) -> None:
    """The run's row, or its whole account, was deleted while it trained: nothing it wrote may stay
    (a checkpoint saved after the account deletion removed the folders would write them again)."""
    if not get_user_model().objects.filter(pk=run.owner_id).exists():
        folders = user_data_dirs(run.owner_id)  # ids are never reused: these are the deleted account's
    else:
        folders = [run.run_dir, adapter_dir, adapter_dir.with_name(adapter_dir.name + ".partial")]
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    logger.info("training run %s stopped: its row or its owner was deleted; its files are removed", run.pk)


@shared_task(acks_late=True)
def train_model(run_id: int):
    """Train one run (queue "gpu"); a redelivered task resumes from the last checkpoint.
    The candidate it registers is then evaluated by `run_evaluation` (queue "default")."""
    run = (
        TrainingRun.objects.select_related("owner", "dataset_version", "base_model", "start_from", "experiment")
        .filter(pk=run_id)
        .first()
    )
    if run is None or not run.claim():
        return
    hp = Hyperparameters.from_dict(run.hyperparameters)
    adapter_dir = settings.TWIN_DATA_DIR / "adapters" / str(run.owner_id) / f"run-{run.pk}"

    def report(progress: float, message: str, **fields):
        """Progress on the run row; none once the row is gone (should_stop ends the run at the step's end)."""
        if run_is_gone(run):
            return
        try:
            run.report(progress, message, **fields)
        except DatabaseError:  # deleted between the look and the write
            if not run_is_gone(run):
                raise

    def on_step(step: int, total: int, loss: float | None):
        history = [point for point in run.loss_history if point[0] < step]
        if loss is not None:
            history.append([step, round(loss, 4)])
        report(
            100 * step / max(1, total),
            f"Step {step} of {total}",
            current_step=step,
            total_steps=total,
            loss_history=history,
        )

    def on_validation(step: int, loss: float):
        history = [point for point in run.val_history if point[0] < step] + [[step, round(loss, 4)]]
        report(run.progress, run.message or "Validating", val_history=history)

    def should_stop() -> bool:
        """Cancelled, or deleted (the run, or its owner's whole account): asked at every step."""
        return not TrainingRun.objects.filter(pk=run.pk).exclude(status=JobStatus.CANCELLED).exists()

    with run.keep_alive():
        try:
            run.report(1, "Loading the base model and dataset")  # minutes on a big model: the heartbeat goes on
            common = {
                "base_path": base_models.resolve(run.base_model.identifier),
                "hp": hp,
                "work_dir": run.run_dir,
                "adapter_dir": adapter_dir,
                "on_step": on_step,
                "on_validation": on_validation,
                "should_stop": should_stop,
            }
            if run.start_from is not None:  # a preference run: DPO from the adapter it starts from
                verify_adapter_dir(run.start_from.adapter_dir, run.start_from.sha256)
                pairs = read_records(run.dataset_version.file_path)
                result = train_dpo(start_adapter_dir=run.start_from.adapter_dir, pairs=pairs, **common)
            else:
                records, split = load_data(run.dataset_version)
                result = train_lora(split=split, records=records, twin_name=do_ensure_twin(run.owner).name, **common)
        except Stopped:
            if run_is_gone(run):
                discard_deleted_run(run, adapter_dir)
                return
            remove_checkpoints(run)
            if run.experiment_id:  # cancelling a sweep's run ends the sweep with the runs that finished
                do_advance_experiment(run.experiment, stop=True)
            return
        except Exception as exc:
            if run_is_gone(run):  # what failed was writing to a row that is gone
                discard_deleted_run(run, adapter_dir)
                return
            logger.exception("training run %s failed", run_id)
            run.fail(f"Training failed: {failure_reason(exc)}. Checkpoints are kept; retry to resume.")
            if run.experiment_id:  # the sweep goes on without it
                do_advance_experiment(run.experiment)
            raise
        try:  # deleted between the last step and here: no model version, no adapter left behind
            if run_is_gone(run):
                raise Stopped()
            model_version = do_register_model_version(run, result)
        except (Stopped, DatabaseError):
            if run_is_gone(run):
                discard_deleted_run(run, adapter_dir)
                return
            raise
        remove_checkpoints(run)
        run.succeed(
            f"Model v{model_version.version} is being evaluated",
            device=result.device,
            metrics={
                "train_seconds": round(result.train_seconds, 1),
                "train_tokens": result.train_tokens,
                "tokens_per_second": round(result.train_tokens / max(result.train_seconds, 1e-6), 1),
                "steps": result.steps,
                **{k: v for k, v in result.eval_report.items() if k != "split"},
            },
        )
    if run.experiment_id:  # only the sweep's best run is evaluated, once the last one has ended
        do_advance_experiment(run.experiment)
    else:
        do_queue_evaluation(model_version)


@shared_task(acks_late=True)
def run_evaluation(evaluation_id: int):
    """The evaluation gate on a candidate (queue "default"). A job (core/jobs.py): a redelivered task
    does nothing while the evaluation runs elsewhere or after it ended, and beat resumes one whose
    worker died."""
    evaluation = EvaluationRun.objects.filter(pk=evaluation_id).first()
    if evaluation is None or not evaluation.claim():
        return
    model_version = ModelVersion.objects.select_related("base_model", "dataset_version", "owner").get(
        pk=evaluation.model_version_id
    )
    evaluation.model_version = model_version
    production = ModelVersion.objects.for_user(model_version.owner).production()
    if production is not None and production.pk == model_version.pk:
        production = None
    with evaluation.keep_alive():  # loading and generating with three models reports no progress for minutes
        try:
            from features.embeddings import embed

            evaluation.report(1, f"Comparing with the {'production' if production else 'base'} model")
            records, split = load_data(model_version.dataset_version.instruct_source)
            report = evaluate(
                base_path=base_models.resolve(model_version.base_model.identifier),
                candidate_dir=model_version.adapter_dir,
                production_dir=production.adapter_dir if production else None,
                split=split,
                records=records,
                twin_name=do_ensure_twin(model_version.owner).name,
                embed=embed,
                config=gate_config(),
            )
        except Exception as exc:
            logger.exception("evaluation %s of model version %s failed", evaluation_id, model_version.pk)
            evaluation.fail(f"{exc.__class__.__name__}: {str(exc)[:300]}")
            raise
    if production is not None:
        report["production_version"] = production.version
    do_record_evaluation(evaluation, report)


@shared_task
def prune_artifacts():
    """Beat, daily: old dataset versions, leftover checkpoints and rejected adapters (training.retention)."""
    from .retention import do_prune_artifacts

    logger.info("retention: %s", do_prune_artifacts())


@shared_task
def train_when_due():
    """Beat: continuous training. A twin with auto-train on gets a run when its current
    dataset has settled (none other became current for a while, so a burst of uploads trains
    once) and adds enough samples over the dataset of its last run."""
    settled_before = timezone.now() - timedelta(seconds=settings.TWIN_AUTO_TRAIN_SETTLE_SECONDS)
    for twin in Twin.objects.filter(auto_train=True).select_related("owner"):
        latest = DatasetVersion.objects.for_user(twin.owner).instruct().current()
        if latest is None or latest.current_since > settled_before or latest.training_runs.exists():
            continue
        last_run = TrainingRun.objects.for_user(twin.owner).exclude(status=JobStatus.CANCELLED).first()
        trained = last_run.dataset_version.sample_count if last_run else 0
        if latest.sample_count - trained < settings.TWIN_AUTO_TRAIN_MIN_SAMPLES:
            continue
        try:
            do_start_training_run(twin.owner, latest)
        except TrainingRefused as exc:
            logger.info("auto-train skipped for %s: %s", twin, exc)


@shared_task(acks_late=True)
def build_preference_dataset(run_id: int):
    """Build a preference dataset from an instruct version (queue "gpu"): the base model (or the
    configured OpenAI-compatible endpoint) answers each prompt; the author's passage is preferred.
    A redelivered task starts over, reusing the answers of the previous version."""
    run = PreferenceRun.objects.select_related("owner", "instruct_dataset").filter(pk=run_id).first()
    if run is None or not run.claim():
        return
    twin_name = do_ensure_twin(run.owner).name
    try:
        generator = endpoint_generator() or BaseModelGenerator()
        run.report(1, f"Answering with {generator.name}", generator=generator.name)
        dataset, created = do_build_preference_version(
            run.instruct_dataset,
            messages_for=lambda record: record_messages(twin_name, record, []),
            answer=generator.answer,
            generator=generator.name,
            report=run.report,
        )
    except GeneratorError as exc:
        run.fail(f"{exc} No preference dataset was written; retry when the endpoint works.")
        return
    except FileNotFoundError:
        run.fail(f"The file of instruct dataset v{run.instruct_dataset.version} is missing from storage.")
        return
    except Exception:
        logger.exception("preference run %s failed", run_id)
        run.fail("An unexpected error stopped the preference dataset build. It has been logged; retry it.")
        raise
    if dataset is None:
        run.succeed("No pairs: the instruct dataset has no passages of the author's to prefer.")
    else:
        state = "built" if created else "unchanged"
        summary = f"Preference dataset v{dataset.version} {state}: {dataset.sample_count} pairs"
        run.succeed(summary, dataset_version=dataset)
