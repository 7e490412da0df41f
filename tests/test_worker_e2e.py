"""The whole twin through a real Celery worker process, as in production:
upload -> crawl -> clean/chunk/embed -> dataset -> LoRA training (tiny model, queue "gpu")
-> staff approval in the admin -> a chat answer from the approved adapter.
"""

import os
import re
import subprocess
import sys
import time

import pytest
import redis
from django.conf import settings
from django.db import connection, transaction
from django.test import override_settings
from django.urls import reverse

from chat.actions import do_answer
from features.models import DatasetVersion, FeatureRun
from ingestion.models import CrawlRun
from tests.conftest import add_markdown_source
from training.actions import do_start_training_run
from training.models import ModelVersion, TrainingRun
from twinsite.celery import app as celery_app

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
TIMEOUT = 180


QUEUES = ("default", "gpu")


def start_worker(queue: str, log, env) -> subprocess.Popen:
    """One worker per queue, as the Procfile runs them: a task on the wrong queue is never picked up."""
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "twinsite",
        "worker",
        "--queues",
        queue,
        "--hostname",
        f"{queue}@%h",
        "--concurrency",
        "1",
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
    ]
    with open(log, "w") as output:
        return subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)


@pytest.fixture
def workers(tmp_path):
    """A default and a gpu worker on the test database, each in its own process; yields their logs."""
    # No stale messages from an aborted run (kombu keeps each queue in a Redis list of its name).
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(*QUEUES, "unacked", "unacked_index")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}",
        "TWIN_TEST_EAGER": "0",
        "TWIN_TEST_DATA_DIR": str(settings.TWIN_DATA_DIR),
    }
    logs = {queue: tmp_path / f"worker-{queue}.log" for queue in QUEUES}
    processes = [start_worker(queue, logs[queue], env) for queue in QUEUES]
    celery_app.conf.task_always_eager = False
    try:
        # Started before the clock of each step runs: on a busy machine start-up alone takes minutes.
        wait_for(lambda: all("ready." in log.read_text() for log in logs.values()), logs, "the workers to start")
        yield logs
    finally:
        celery_app.conf.task_always_eager = True
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:  # still inside a task (warm shutdown waits for it)
                process.kill()
                process.wait()


def wait_for(condition, logs, what):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    tails = "\n".join(f"--- {queue} worker ---\n{log.read_text()[-3000:]}" for queue, log in logs.items())
    pytest.fail(f"timed out waiting for {what}; worker logs:\n{tails}")


def tasks_in(log) -> set[str]:
    """The task names a worker logged as received (celery: "Task <name>[<id>] received")."""
    return set(re.findall(r"Task ([\w.]+)\[[\w-]+\] received", log.read_text()))


def test_a_twin_is_built_and_served_through_a_real_worker(workers, owner, staff, client):
    # The real on_commit: tasks leave only once their rows are committed, as in production.
    assert transaction.on_commit.__module__ == "django.db.transaction"
    add_markdown_source(owner)  # queues the crawl on commit; this process runs nothing itself

    dataset = wait_for(lambda: DatasetVersion.objects.filter(owner=owner).first(), workers, "the dataset")
    assert CrawlRun.objects.get(owner=owner).status == "succeeded"
    assert wait_for(lambda: FeatureRun.objects.filter(owner=owner, status="succeeded").exists(), workers, "features")

    question = "Why do you tilt the hives forward?"
    base_answer = do_answer(owner, question)
    with override_settings(TWIN_COPY_BONUS=0.0, TWIN_START_BONUS=0.0):
        base_unsteered = do_answer(owner, question).content

    run = do_start_training_run(owner, dataset, learning_rate=1e-2)  # a few steps must move a tiny model
    wait_for(lambda: TrainingRun.objects.get(pk=run.pk).status not in ("queued", "running"), workers, "training")
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert len(run.loss_history) == run.total_steps
    # Training went through the gpu queue, and only there; the pipeline's tasks through default.
    assert "training.tasks.train_model" in tasks_in(workers["gpu"])
    assert "training.tasks.train_model" not in tasks_in(workers["default"])
    assert "ingestion.tasks.crawl_source" in tasks_in(workers["default"])
    assert not tasks_in(workers["gpu"]) - {"training.tasks.train_model"}

    # The evaluation gate runs next, on queue "default"; staff approve a candidate it passed.
    evaluated = lambda: ModelVersion.objects.filter(training_run=run, evaluation_status="done").first()  # noqa: E731
    model_version = wait_for(evaluated, workers, "the evaluation gate")
    assert model_version.verdict == "passed", model_version.eval_report.get("checks")
    client.force_login(staff)
    response = client.post(
        reverse("admin:training_modelversion_changelist"),
        {"action": "approve", "_selected_action": [model_version.pk]},
    )
    assert response.status_code == 302
    model_version.refresh_from_db()
    assert model_version.status == "production" and model_version.reviewed_by == staff

    answer = do_answer(owner, question)
    assert answer.status == "done" and answer.model_version == model_version
    assert base_answer.model_version is None
    assert answer.sources and answer.sources[0]["title"] == "Keeping bees on a city roof"
    # Grounded: the answer states the note (the model is a tiny random one: steering puts it there) ...
    assert "tilt each hive forward" in answer.content and answer.grounding["score"] == 1.0
    # ... and the adapter is really in use: greedy decoding without steering differs from the base's.
    with override_settings(TWIN_COPY_BONUS=0.0, TWIN_START_BONUS=0.0):
        assert do_answer(owner, question).content != base_unsteered
