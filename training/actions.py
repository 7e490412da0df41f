"""Multi-step writes of the training pipeline and the registry, shared by views, API, admin and tasks."""

import shutil

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from accounts.quotas import QuotaReached, check_runs_today, check_storage
from core.jobs import ACTIVE_STATUSES, JobStatus
from features.actions import do_build_correction_dataset
from features.models import DatasetKind, DatasetVersion

from .hyperparameters import Hyperparameters, defaults_for
from .models import BaseModel, EvaluationRun, ModelVersion, ModelVersionEvent, PreferenceRun, TrainingRun


class TrainingRefused(Exception):
    """The run cannot start (or the review cannot happen); the message says why."""


def default_hyperparameters(base_identifier: str | None = None, preference: bool = False) -> Hyperparameters:
    """The base model's measured defaults, with the operator's TWIN_TRAIN_* settings on top."""
    return defaults_for(
        base_identifier or settings.TWIN_BASE_MODEL,
        preference,
        max_steps=settings.TWIN_TRAIN_MAX_STEPS,
        epochs=settings.TWIN_TRAIN_EPOCHS,
        batch_size=settings.TWIN_TRAIN_BATCH_SIZE,
        max_seq_len=settings.TWIN_TRAIN_MAX_SEQ_LEN,
    )


def checked_hyperparameters(base: Hyperparameters, overrides: dict) -> Hyperparameters:
    """The defaults with the overrides applied, or TrainingRefused naming every bad field."""
    unknown = sorted(set(overrides) - set(Hyperparameters.__dataclass_fields__))
    if unknown:
        raise TrainingRefused(f"Unknown hyperparameters: {', '.join(unknown)}.")
    try:
        hp = Hyperparameters.from_dict({**base.as_dict(), **overrides})
        errors = hp.errors()
    except (TypeError, ValueError) as exc:
        raise TrainingRefused(f"Invalid hyperparameters: {exc}.") from None
    if errors:
        raise TrainingRefused("Invalid hyperparameters: " + "; ".join(f"{k} {v}" for k, v in errors.items()) + ".")
    return hp


def _active_run_refusal(run: TrainingRun) -> TrainingRefused:
    return TrainingRefused(f"Training run {run.pk} is still {run.status}; wait for it or cancel it.")


def do_start_training_run(owner, dataset: DatasetVersion | None = None, *, experiment=None, **overrides) -> TrainingRun:
    """Queue a run on the owner's current (or given) dataset; one active run per twin (a partial
    unique index enforces it even against concurrent requests). An instruct dataset trains a LoRA
    adapter from the base model; a preference dataset refines the production adapter by DPO."""
    dataset = dataset or DatasetVersion.objects.for_user(owner).instruct().current()
    if dataset is None:
        raise TrainingRefused("There is no dataset yet: add a source and wait for it to be processed.")
    if dataset.owner_id != owner.pk:
        raise TrainingRefused("That dataset is not yours.")
    if dataset.train_count == 0:
        raise TrainingRefused("The dataset has no training samples yet; add more writing.")
    start_from = None
    if dataset.kind == DatasetKind.PREFERENCE:
        start_from = ModelVersion.objects.for_user(owner).production()
        if start_from is None:
            raise TrainingRefused(
                "Preference tuning refines the twin's approved model: "
                "train and approve one on an instruct dataset first."
            )
    try:
        check_runs_today(owner)
        check_storage(owner)  # checkpoints and the adapter will add to it
    except QuotaReached as exc:
        raise TrainingRefused(str(exc)) from None
    base_model = start_from.base_model if start_from else BaseModel.default()
    hp = checked_hyperparameters(default_hyperparameters(base_model.identifier, start_from is not None), overrides)
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(
                owner=owner,
                dataset_version=dataset,
                base_model=base_model,
                start_from=start_from,
                experiment=experiment,
                hyperparameters=hp.as_dict(),
                total_steps=hp.max_steps,
                message="Waiting for a GPU (or CPU) worker",
            )
    except IntegrityError:
        active = TrainingRun.objects.for_user(owner).active().first()
        if active is None:
            raise
        raise _active_run_refusal(active) from None
    run.send_when_committed()
    return run


def do_queue_preference_run(instruct_dataset: DatasetVersion) -> PreferenceRun:
    """Queue the build of a preference dataset from an instruct version (queue "gpu"); while one
    is queued or running for this twin, that one is returned instead."""
    if instruct_dataset.kind != DatasetKind.INSTRUCT:
        raise ValueError("a preference dataset is built from an instruct dataset")
    try:
        with transaction.atomic():
            run = PreferenceRun.objects.create(
                owner_id=instruct_dataset.owner_id,
                instruct_dataset=instruct_dataset,
                message="Waiting for a GPU (or CPU) worker",
            )
    except IntegrityError:
        active = PreferenceRun.objects.for_user(instruct_dataset.owner).active().first()
        if active is None:
            raise
        return active
    run.send_when_committed()
    return run


def do_update_hyperparameters(run: TrainingRun, changes: dict, editor) -> TrainingRun:
    """Staff tune a run that has not started (queued) or will resume (failed)."""
    if not getattr(editor, "is_staff", False):
        raise TrainingRefused("Only staff can change hyperparameters.")
    if run.status not in (JobStatus.QUEUED, JobStatus.FAILED):
        raise TrainingRefused(f"Run {run.pk} is {run.status}; only a queued or failed run can be changed.")
    hp = checked_hyperparameters(Hyperparameters.from_dict(run.hyperparameters), changes)
    updated = TrainingRun.objects.filter(pk=run.pk, status__in=[JobStatus.QUEUED, JobStatus.FAILED]).update(
        hyperparameters=hp.as_dict(), total_steps=hp.max_steps
    )
    if not updated:
        raise TrainingRefused(f"Run {run.pk} started meanwhile; its hyperparameters are fixed now.")
    run.refresh_from_db()
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
        version = (ModelVersion.objects.for_user(run.owner).aggregate(v=Max("version"))["v"] or 0) + 1
        model_version = ModelVersion.objects.create(
            owner=run.owner,
            training_run=run,
            base_model=run.base_model,
            dataset_version=run.dataset_version,
            version=version,
            adapter_path=str(result.adapter_dir.relative_to(settings.TWIN_DATA_DIR)),
            sha256=result.sha256,
            hyperparameters=run.hyperparameters,
            eval_report={"training": result.eval_report},
        )
        _record(model_version, "", ModelVersion.Status.CANDIDATE, None, f"Trained by run {run.pk}")
    return model_version


def do_queue_evaluation(model_version: ModelVersion) -> EvaluationRun:
    """Queue the evaluation gate on a model version (queue "default"): its evaluation job, new, or
    the one that ended queued again as a new request (its attempts start over; the verdict is
    cleared). Refused while the evaluation is queued or running."""
    with transaction.atomic():
        evaluation, created = EvaluationRun.objects.get_or_create(
            model_version=model_version, defaults={"owner_id": model_version.owner_id}
        )
        if not created:
            again = EvaluationRun.objects.filter(pk=evaluation.pk).exclude(status__in=ACTIVE_STATUSES)
            if not again.update(
                status=JobStatus.QUEUED,
                progress=0,
                message="",
                error="",
                attempts=0,
                created_at=timezone.now(),  # beat fails what waited a day since it was asked for
                started_at=None,
                heartbeat_at=None,
                finished_at=None,
            ):
                raise TrainingRefused(f"Model v{model_version.version} is being evaluated already.")
            evaluation.refresh_from_db()
        ModelVersion.objects.filter(pk=model_version.pk).update(verdict=ModelVersion.Verdict.NONE)
        evaluation.send_when_committed()
    return evaluation


def do_record_evaluation(evaluation: EvaluationRun, report: dict) -> ModelVersion:
    """Store the gate's report and verdict next to what training reported, kept in the history, and
    end the evaluation job, in one transaction."""
    model_version = evaluation.model_version
    model_version.eval_report = {"training": model_version.eval_report.get("training", {}), **report}
    model_version.verdict = ModelVersion.Verdict.PASSED if report["passed"] else ModelVersion.Verdict.FAILED
    model_version.fidelity_score = report.get("fidelity_score")
    model_version.grounding_score = report.get("models", {}).get("candidate", {}).get("grounding")
    failed = [c["metric"] for c in report["checks"] if not c["passed"]]
    why = f"failed on {', '.join(failed)}" if failed else f"beats the {report['reference']} model"
    with transaction.atomic():
        model_version.save(update_fields=["eval_report", "verdict", "fidelity_score", "grounding_score"])
        _record(model_version, model_version.status, model_version.status, None, f"Evaluation gate: {why}")
        evaluation.succeed(model_version.get_verdict_display())
    return model_version


def _record(model_version: ModelVersion, from_status: str, to_status: str, actor, reason: str = ""):
    ModelVersionEvent.objects.create(
        owner_id=model_version.owner_id,
        model_version=model_version,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        reason=reason,
    )


def _require_staff(reviewer):
    if not getattr(reviewer, "is_staff", False):
        raise TrainingRefused("Only staff can review model versions.")


def _promote(model_version: ModelVersion, reviewer, reason: str) -> ModelVersion:
    """Make the version production inside one locked transaction; the previous one stays for rollback."""
    with transaction.atomic():
        get_user_model().objects.select_for_update().get(pk=model_version.owner_id)  # one promotion at a time
        for previous in (
            ModelVersion.objects.for_user(model_version.owner)
            .filter(status=ModelVersion.Status.PRODUCTION)
            .exclude(pk=model_version.pk)
        ):
            previous.status = ModelVersion.Status.APPROVED
            previous.save(update_fields=["status"])
            _record(
                previous,
                ModelVersion.Status.PRODUCTION,
                previous.status,
                reviewer,
                f"Replaced by v{model_version.version}",
            )
        from_status = model_version.status
        model_version.status = ModelVersion.Status.PRODUCTION
        model_version.reviewed_by = reviewer
        model_version.reviewed_at = timezone.now()
        model_version.save(update_fields=["status", "reviewed_by", "reviewed_at", "override_reason"])
        _record(model_version, from_status, model_version.status, reviewer, reason)
    return model_version


def do_approve_model_version(model_version: ModelVersion, reviewer, override_reason: str = "") -> ModelVersion:
    """Promote a candidate the evaluation gate passed; any other needs a written override reason."""
    _require_staff(reviewer)
    model_version.refresh_from_db()
    if model_version.status == ModelVersion.Status.REJECTED:
        raise TrainingRefused("A rejected model cannot be approved; train a new one.")
    override_reason = (override_reason or "").strip()
    if model_version.status == ModelVersion.Status.CANDIDATE and not model_version.passed_gate:
        if not override_reason:
            why = {
                ModelVersion.Evaluation.PENDING: "its evaluation has not run yet",
                ModelVersion.Evaluation.RUNNING: "its evaluation is still running",
                ModelVersion.Evaluation.FAILED: "its evaluation failed",
            }.get(model_version.evaluation_status, "it failed the evaluation gate")
            raise TrainingRefused(
                f"Model v{model_version.version} cannot be approved: {why}. "
                "Approve with a written override reason to serve it anyway."
            )
        model_version.override_reason = override_reason
    reason = f"Override: {override_reason}" if model_version.override_reason and override_reason else "Approved"
    return _promote(model_version, reviewer, reason)


def do_reject_model_version(model_version: ModelVersion, reviewer, reason: str = "") -> ModelVersion:
    _require_staff(reviewer)
    if model_version.status == ModelVersion.Status.PRODUCTION:
        raise TrainingRefused("This model is serving; approve another version first, then reject this one.")
    from_status = model_version.status
    model_version.status = ModelVersion.Status.REJECTED
    model_version.reviewed_by = reviewer
    model_version.reviewed_at = timezone.now()
    model_version.save(update_fields=["status", "reviewed_by", "reviewed_at"])
    _record(model_version, from_status, model_version.status, reviewer, reason or "Rejected")
    return model_version


def do_rollback(owner, reviewer, reason: str = "") -> ModelVersion:
    """One click: the previous production version (the newest one kept for rollback) serves again."""
    _require_staff(reviewer)
    current = ModelVersion.objects.for_user(owner).production()
    if current is None:
        raise TrainingRefused("Nothing serves yet: there is no production version to roll back from.")
    replaced = (
        ModelVersionEvent.objects.for_user(owner)
        .filter(
            from_status=ModelVersion.Status.PRODUCTION,
            model_version__status=ModelVersion.Status.APPROVED,
        )
        .exclude(model_version=current)
        .select_related("model_version")
        .order_by("-created_at", "-pk")
        .first()
    )
    previous = replaced.model_version if replaced else None
    if previous is None:
        raise TrainingRefused("There is no earlier approved version to roll back to.")
    return _promote(previous, reviewer, f"Rollback from v{current.version}" + (f": {reason}" if reason else ""))


def remove_checkpoints(run: TrainingRun):
    """Checkpoints are only for resuming; the adapter is kept elsewhere."""
    shutil.rmtree(run.run_dir / "checkpoints", ignore_errors=True)


def do_retry_training_run(run: TrainingRun) -> TrainingRun:
    """Queue a failed run again; it resumes from its last checkpoint when one was saved."""
    if run.status != JobStatus.FAILED:
        raise TrainingRefused("Only a failed run can be retried.")
    with transaction.atomic():
        if TrainingRun.objects.select_for_update().for_user(run.owner).active().exists():
            raise TrainingRefused("Another run is active; wait for it or cancel it.")
        run.status, run.error, run.finished_at, run.message = JobStatus.QUEUED, "", None, "Queued for retry"
        run.save(update_fields=["status", "error", "finished_at", "message"])
        run.send_when_committed()
    return run


def do_start_refinement(owner, **overrides) -> TrainingRun:
    """A DPO run on every correction the owner made (edited drafts, revised answers): the owner's text
    preferred to the twin's. Its candidate is gated and approved like any other."""
    if ModelVersion.objects.for_user(owner).production() is None:
        raise TrainingRefused("A refinement improves an approved model: train and approve one first.")
    try:
        dataset = do_build_correction_dataset(owner)
    except ValueError as exc:
        raise TrainingRefused(str(exc)) from None
    return do_start_training_run(owner, dataset, **overrides)
