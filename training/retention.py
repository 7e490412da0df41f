"""Retention: what the pipelines delete once it is old, so that the disk does not fill up.

- Dataset versions: each user keeps their newest TWIN_KEEP_DATASET_VERSIONS, and every
  version a training run was trained on (its lineage); older ones go, row and file.
- Checkpoints: only for resuming. A finished or cancelled run's leftovers go at once; a
  failed run's after TWIN_KEEP_FAILED_CHECKPOINTS_DAYS (a retry then starts over).
- Rejected adapters: their files go TWIN_KEEP_REJECTED_ADAPTERS_DAYS after the rejection;
  the version's row and history stay, marked pruned.

Production, approved (rollback) and candidate adapters are never touched. `manage.py
prune_artifacts` runs it (`--dry-run` to see what would go); beat runs it daily.
"""

import shutil
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from core.jobs import JobStatus
from features.models import DatasetVersion

from .models import ModelVersion, TrainingRun


@dataclass
class PruneReport:
    datasets: list[int] = field(default_factory=list)  # dataset version ids deleted
    checkpoints: list[int] = field(default_factory=list)  # training run ids whose checkpoints went
    adapters: list[int] = field(default_factory=list)  # model version ids whose adapter files went
    bytes_freed: int = 0

    def __str__(self):
        return (
            f"{len(self.datasets)} dataset versions, {len(self.checkpoints)} runs' checkpoints, "
            f"{len(self.adapters)} rejected adapters; {self.bytes_freed} bytes freed"
        )


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def _remove(path: Path):
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


def old_dataset_versions():
    """Beyond each user's newest N, and trained on by no run (a run's lineage keeps its dataset)."""
    newest_first = Window(RowNumber(), partition_by=[F("owner_id")], order_by=F("version").desc())
    ranked = DatasetVersion.objects.annotate(rank=newest_first).filter(rank__gt=settings.TWIN_KEEP_DATASET_VERSIONS)
    trained_on = set(TrainingRun.objects.values_list("dataset_version_id", flat=True))
    return [dataset for dataset in ranked.order_by("pk") if dataset.pk not in trained_on]


def do_prune_artifacts(now=None, dry_run: bool = False) -> PruneReport:
    now = now or timezone.now()
    report = PruneReport()

    for dataset in old_dataset_versions():
        report.datasets.append(dataset.pk)
        report.bytes_freed += _size(dataset.file_path)
        if not dry_run:
            with transaction.atomic():
                dataset.delete()  # a feature run that built it keeps a null link
                transaction.on_commit(lambda path=dataset.file_path: _remove(path))  # the file once the row is gone

    failed_before = now - timedelta(days=settings.TWIN_KEEP_FAILED_CHECKPOINTS_DAYS)
    finished = Q(status__in=[JobStatus.SUCCEEDED, JobStatus.CANCELLED])
    expired = Q(status=JobStatus.FAILED, finished_at__lt=failed_before)
    for run in TrainingRun.objects.filter(finished | expired).order_by("pk"):
        checkpoints = run.run_dir / "checkpoints"
        if checkpoints.exists():
            report.checkpoints.append(run.pk)
            report.bytes_freed += _size(checkpoints)
            if not dry_run:
                _remove(checkpoints)

    rejected_before = now - timedelta(days=settings.TWIN_KEEP_REJECTED_ADAPTERS_DAYS)
    rejected = ModelVersion.objects.filter(
        status=ModelVersion.Status.REJECTED, reviewed_at__lt=rejected_before, adapter_pruned_at__isnull=True
    )
    for model_version in rejected.order_by("pk"):
        report.adapters.append(model_version.pk)
        report.bytes_freed += _size(model_version.adapter_dir)
        if not dry_run:
            _remove(model_version.adapter_dir)
            ModelVersion.objects.filter(pk=model_version.pk).update(adapter_pruned_at=now)
    return report
