"""The evaluation gate is a job (core/jobs.py): one claim wins, beat resumes an evaluation whose
worker died, each claim is an attempt and one that keeps losing its worker is failed with a reason;
its states before it was a job are kept by the migration."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from core.jobs import JobStatus
from tests.api.conftest import owner_model_version, stub_evaluate  # noqa: F401  (shared fixture)
from training.actions import TrainingRefused, do_approve_model_version, do_queue_evaluation
from training.models import EvaluationRun, ModelVersion
from training.tasks import run_evaluation
from twinsite.celery import resume_stalled_jobs


@pytest.fixture
def evaluations(monkeypatch):
    """Counts the gate's evaluations (the stubbed gate of the API tests: a passing candidate)."""
    done = []
    monkeypatch.setattr("training.tasks.evaluate", lambda **kwargs: done.append(kwargs) or stub_evaluate())
    return done


def taken_by_a_worker(evaluation, beat_seconds_ago: int, attempts: int = 1):
    """As if a worker claimed it and last beat its heartbeat that long ago."""
    EvaluationRun.objects.filter(pk=evaluation.pk).update(
        status=JobStatus.RUNNING, heartbeat_at=timezone.now() - timedelta(seconds=beat_seconds_ago), attempts=attempts
    )
    ModelVersion.objects.filter(pk=evaluation.model_version_id).update(verdict="")


@pytest.mark.django_db
def test_a_second_claim_of_the_same_evaluation_does_nothing(owner_model_version, evaluations):  # noqa: F811
    evaluation = owner_model_version.evaluation_run
    assert evaluation.status == JobStatus.SUCCEEDED and evaluation.attempts == 1
    run_evaluation(evaluation.pk)  # a redelivery after it ended
    taken_by_a_worker(evaluation, beat_seconds_ago=5)
    run_evaluation(evaluation.pk)  # a redelivery while a worker is on it

    assert evaluations == []
    evaluation.refresh_from_db()
    assert evaluation.status == JobStatus.RUNNING and evaluation.attempts == 1
    assert ModelVersion.objects.get(pk=owner_model_version.pk).evaluation_status == "running"


@pytest.mark.django_db
def test_beat_resumes_an_evaluation_whose_worker_died(owner_model_version, evaluations):  # noqa: F811
    evaluation = owner_model_version.evaluation_run
    taken_by_a_worker(evaluation, beat_seconds_ago=3600)

    done = resume_stalled_jobs()

    assert done["EvaluationRun"]["resumed"] == 1 and len(evaluations) == 1
    evaluation.refresh_from_db()
    assert evaluation.status == JobStatus.SUCCEEDED and evaluation.attempts == 2
    model_version = ModelVersion.objects.get(pk=owner_model_version.pk)
    assert model_version.evaluation_status == "done" and model_version.verdict == "passed"


@pytest.mark.django_db
def test_an_evaluation_that_keeps_losing_its_worker_is_failed_with_a_reason(
    owner_model_version,  # noqa: F811
    evaluations,
    settings,
    staff,
):
    evaluation = owner_model_version.evaluation_run
    taken_by_a_worker(evaluation, beat_seconds_ago=3600, attempts=settings.TWIN_JOB_MAX_ATTEMPTS)

    assert resume_stalled_jobs()["EvaluationRun"] == {"resumed": 0, "failed": 1, "resent": 0}

    assert evaluations == []
    model_version = ModelVersion.objects.get(pk=owner_model_version.pk)
    assert model_version.evaluation_status == "failed" and "stopped every time" in model_version.evaluation_error
    with pytest.raises(TrainingRefused, match="its evaluation failed"):
        do_approve_model_version(model_version, staff)


@pytest.mark.django_db
def test_running_the_gate_again_queues_the_same_job_as_a_new_request(owner_model_version, evaluations):  # noqa: F811
    evaluation = owner_model_version.evaluation_run
    taken_by_a_worker(evaluation, beat_seconds_ago=5, attempts=2)
    with pytest.raises(TrainingRefused, match="being evaluated already"):
        do_queue_evaluation(owner_model_version)
    assert evaluations == []

    EvaluationRun.objects.filter(pk=evaluation.pk).update(status=JobStatus.FAILED, error="Out of memory")
    assert do_queue_evaluation(owner_model_version) == evaluation  # eager: evaluated on return

    evaluation.refresh_from_db()
    assert len(evaluations) == 1 and evaluation.status == JobStatus.SUCCEEDED
    assert evaluation.attempts == 1 and evaluation.error == ""
    assert EvaluationRun.objects.filter(model_version=owner_model_version).count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_each_versions_evaluation_state(owner):
    """Versions evaluated before evaluations were jobs: their state and error become the job's."""
    before, after = [("training", "0008_preferencerun_from_features")], [("training", "0009_evaluation_runs")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    dataset = old.get_model("features", "DatasetVersion").objects.create(
        owner_id=owner.pk, version=1, path="d.jsonl", sha256="0", train_count=1, test_count=1, document_count=1
    )
    base = old.get_model("training", "BaseModel").objects.create(identifier="tiny", name="tiny")
    states = [("done", "", "candidate"), ("failed", "Out of memory", "candidate"), ("pending", "", "candidate")]
    states += [("running", "", "candidate"), ("pending", "", "rejected")]  # the last: an experiment's loser
    for version, (evaluation_status, evaluation_error, status) in enumerate(states, start=1):
        run = old.get_model("training", "TrainingRun").objects.create(
            owner_id=owner.pk, dataset_version_id=dataset.pk, base_model_id=base.pk, status="succeeded"
        )
        old.get_model("training", "ModelVersion").objects.create(
            owner_id=owner.pk,
            training_run_id=run.pk,
            base_model_id=base.pk,
            dataset_version_id=dataset.pk,
            version=version,
            adapter_path="a",
            sha256="0",
            evaluation_status=evaluation_status,
            evaluation_error=evaluation_error,
            status=status,
        )

    MigrationExecutor(connection).migrate(after)

    versions = ModelVersion.objects.filter(owner=owner).order_by("version")
    assert [(v.evaluation_status, v.evaluation_error) for v in versions] == [
        (evaluation_status, evaluation_error) for evaluation_status, evaluation_error, _ in states
    ]
    jobs = {e.model_version.version: e for e in EvaluationRun.objects.select_related("model_version")}
    assert {v: jobs[v].status for v in jobs} == {1: "succeeded", 2: "failed", 3: "queued", 4: "running"}
    assert jobs[4].heartbeat_at is not None  # beat resumes it if no worker has it
