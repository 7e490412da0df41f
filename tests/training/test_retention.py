"""Retention: old dataset versions, leftover and expired checkpoints, and old rejected adapters are
deleted (rows and files) by `manage.py prune_artifacts` and the daily beat task; what serves, what
can be rolled back to, what is under review and what a run was trained on are kept."""

from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from core.jobs import JobStatus
from features.models import DatasetVersion
from tests.api.conftest import stub_evaluate, stub_train_lora
from tests.conftest import add_markdown_source
from training.actions import do_reject_model_version, do_start_training_run
from training.export import ExportRefused, export_zip
from training.models import ModelVersion, TrainingRun
from training.retention import do_prune_artifacts

pytestmark = pytest.mark.django_db
NOTES = [
    f"# Note {n}\n\nOn day {n} I moved hive number {n} to the east side of the roof, where the morning "
    f"sun reaches the entrance first and the bees start foraging {n} minutes earlier than before."
    for n in range(1, 6)
]


@pytest.fixture(autouse=True)
def _quick_training(monkeypatch, settings, tmp_path):
    monkeypatch.setattr("training.tasks.train_lora", stub_train_lora)
    monkeypatch.setattr("training.tasks.evaluate", stub_evaluate)
    settings.TWIN_DATA_DIR = tmp_path / "data"
    settings.MEDIA_ROOT = settings.TWIN_DATA_DIR / "uploads"
    settings.TWIN_KEEP_DATASET_VERSIONS = 2


def five_dataset_versions(user, trained_on: int) -> list[DatasetVersion]:
    """Versions 1..5 (one more note each); version `trained_on` gets a training run."""
    for n, text in enumerate(NOTES, start=1):
        add_markdown_source(user, f"note-{n}.md", text)
        if n == trained_on:
            do_start_training_run(user)
    versions = list(DatasetVersion.objects.for_user(user).order_by("version"))
    assert [v.version for v in versions] == [1, 2, 3, 4, 5]
    return versions


def test_old_dataset_versions_go_with_their_files_but_the_newest_and_the_trained_on_stay(owner, other):
    mine = five_dataset_versions(owner, trained_on=1)
    theirs = add_markdown_source(other, "sailing.md", NOTES[0].replace("hive", "boat"))

    report = do_prune_artifacts()

    kept = list(DatasetVersion.objects.for_user(owner).order_by("version"))
    assert [v.version for v in kept] == [1, 4, 5]  # v1: a run was trained on it; v4, v5: the newest two
    assert sorted(report.datasets) == [mine[1].pk, mine[2].pk]
    assert not mine[1].file_path.exists() and not mine[2].file_path.exists()
    assert all(v.file_path.exists() for v in kept)
    assert DatasetVersion.objects.for_user(other).get().file_path.exists() and theirs.pk
    assert report.bytes_freed > 0


def test_a_dry_run_deletes_nothing_and_says_what_would_go(owner):
    five_dataset_versions(owner, trained_on=0)
    out = StringIO()

    call_command("prune_artifacts", "--dry-run", stdout=out)

    assert "Would delete: 3 dataset versions" in out.getvalue()
    assert DatasetVersion.objects.count() == 5 and all(v.file_path.exists() for v in DatasetVersion.objects.all())
    call_command("prune_artifacts", stdout=out)
    assert DatasetVersion.objects.count() == 2


def checkpoint(run: TrainingRun):
    folder = run.run_dir / "checkpoints" / "checkpoint-2"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "optimizer.pt").write_bytes(b"x" * 1000)
    return folder.parent


def test_checkpoints_go_when_their_run_finished_or_failed_long_ago(owner_source, owner):
    finished = do_start_training_run(owner)
    old_failure = do_start_training_run(owner)
    recent_failure = do_start_training_run(owner)
    active = do_start_training_run(owner)
    long_ago = timezone.now() - timedelta(days=settings.TWIN_KEEP_FAILED_CHECKPOINTS_DAYS + 1)
    TrainingRun.objects.filter(pk=old_failure.pk).update(status=JobStatus.FAILED, finished_at=long_ago)
    TrainingRun.objects.filter(pk=recent_failure.pk).update(status=JobStatus.FAILED, finished_at=timezone.now())
    TrainingRun.objects.filter(pk=active.pk).update(status=JobStatus.RUNNING)
    folders = {run.pk: checkpoint(run) for run in (finished, old_failure, recent_failure, active)}

    report = do_prune_artifacts()

    assert sorted(report.checkpoints) == sorted([finished.pk, old_failure.pk])
    assert [pk for pk, folder in folders.items() if folder.exists()] == [recent_failure.pk, active.pk]


def test_a_rejected_adapter_loses_its_files_after_a_while_and_keeps_its_history(owner_source, owner, staff):
    old, recent, candidate = (ModelVersion.objects.get(training_run=do_start_training_run(owner)) for _ in range(3))
    for model_version in (old, recent):
        do_reject_model_version(model_version, staff, "worse than the base model")
    ModelVersion.objects.filter(pk=old.pk).update(
        reviewed_at=timezone.now() - timedelta(days=settings.TWIN_KEEP_REJECTED_ADAPTERS_DAYS + 1)
    )

    report = do_prune_artifacts()

    old.refresh_from_db()
    assert report.adapters == [old.pk] and not old.adapter_dir.exists() and old.adapter_pruned_at
    assert recent.adapter_dir.exists() and candidate.adapter_dir.exists()
    assert [e.to_status for e in old.events.all()][-1] == "rejected"
    with pytest.raises(ExportRefused, match="its files have since been deleted"):
        export_zip(old)
    assert do_prune_artifacts().adapters == []  # once


def test_pruning_runs_daily_from_beat():
    assert settings.CELERY_BEAT_SCHEDULE["prune-artifacts"] == {
        "task": "training.tasks.prune_artifacts",
        "schedule": timedelta(days=1),
    }
