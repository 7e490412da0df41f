"""The whole twin through a real Celery worker process, as in production:
upload -> crawl -> clean/chunk/embed -> dataset -> LoRA training (tiny model, queue "gpu")
-> staff approval in the admin -> a chat answer from the approved adapter.
"""

import os
import subprocess
import sys
import time

import pytest
import redis
from django.conf import settings
from django.db import connection
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


@pytest.fixture
def worker(tmp_path):
    """A worker consuming both queues, on the test database, in its own process."""
    # No stale messages from an aborted run (kombu keeps each queue in a Redis list of its name).
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("default", "gpu", "unacked", "unacked_index")
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}",
        "TWIN_TEST_EAGER": "0",
        "TWIN_TEST_DATA_DIR": str(settings.TWIN_DATA_DIR),
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "twinsite",
        "worker",
        "--queues",
        "default,gpu",
        "--concurrency",
        "1",
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
    ]
    with open(log, "w") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    celery_app.conf.task_always_eager = False
    try:
        yield log
    finally:
        celery_app.conf.task_always_eager = True
        process.terminate()
        process.wait(timeout=30)


def wait_for(condition, log, what):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}; worker log:\n{log.read_text()[-4000:]}")


def test_a_twin_is_built_and_served_through_a_real_worker(worker, owner, staff, client):
    add_markdown_source(owner)  # queues the crawl on commit; this process runs nothing itself

    dataset = wait_for(lambda: DatasetVersion.objects.filter(owner=owner).first(), worker, "the dataset")
    assert CrawlRun.objects.get(owner=owner).status == "succeeded"
    assert wait_for(lambda: FeatureRun.objects.filter(owner=owner, status="succeeded").exists(), worker, "features")

    run = do_start_training_run(owner, dataset)
    wait_for(lambda: TrainingRun.objects.get(pk=run.pk).status not in ("queued", "running"), worker, "training")
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert len(run.loss_history) == run.total_steps

    # The evaluation gate runs next, on queue "default"; staff approve a candidate it passed.
    evaluated = lambda: ModelVersion.objects.filter(training_run=run, evaluation_status="done").first()  # noqa: E731
    model_version = wait_for(evaluated, worker, "the evaluation gate")
    assert model_version.verdict == "passed", model_version.eval_report.get("checks")
    client.force_login(staff)
    response = client.post(
        reverse("admin:training_modelversion_changelist"),
        {"action": "approve", "_selected_action": [model_version.pk]},
    )
    assert response.status_code == 302
    model_version.refresh_from_db()
    assert model_version.status == "production" and model_version.reviewed_by == staff

    answer = do_answer(owner, "Why do you tilt the hives forward?")
    assert answer.status == "done" and answer.model_version == model_version
    assert answer.sources and answer.sources[0]["title"] == "Keeping bees on a city roof"
