"""Several serve workers, as on several machines: two worker processes consume the one serve queue,
and both answer, each loading the twin's adapter from the shared data directory (TWIN_DATA_DIR,
README "Several serving machines")."""

import pytest

from chat.actions import do_ask
from chat.models import Message
from tests.processes import forget_queued_tasks, kill, process_env, start_worker, wait_for
from twinsite.celery import app as celery_app

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
QUESTIONS = ["Why do you tilt the hives forward?", "How much honey does a hive give?", "When do bees swarm?"]


def test_two_serve_workers_both_answer_with_the_adapter_from_the_shared_directory(
    production_model_version, owner, tmp_path, settings
):
    settings.TWIN_MAX_PENDING_ANSWERS_PER_USER = len(QUESTIONS) + 1
    # One row each and answers long enough to overlap: the second worker gets a question while the first
    # is busy. Both read the adapter that this process's training wrote into the data directory.
    env = process_env(TWIN_SERVE_BATCH="1", TWIN_TEST_MAX_NEW_TOKENS="80", TWIN_MAX_SENTENCES="0")
    logs = {name: tmp_path / f"{name}.log" for name in ("serve-a", "serve-b")}
    forget_queued_tasks("serve")
    workers = [start_worker("serve", log, env, name=name) for name, log in logs.items()]
    celery_app.conf.task_always_eager = False
    try:
        for log in logs.values():
            wait_for(lambda log=log: "serving models loaded" in log.read_text(), logs, "the serve workers")
        answers = [do_ask(owner, question, mode="ask") for question in QUESTIONS]
        done = lambda: all(a.refresh_from_db() or a.status not in Message.IN_FLIGHT for a in answers)  # noqa: E731
        wait_for(done, logs, "the answers")
    finally:
        celery_app.conf.task_always_eager = True
        for worker in workers:
            kill(worker)
        forget_queued_tasks("serve")

    assert [a.status for a in answers] == ["done"] * len(QUESTIONS)
    assert all(a.trace.model_version_id == production_model_version.pk and not a.notice for a in answers)
    for name, log in logs.items():
        assert "chat.tasks.generate_answer" in log.read_text() and "succeeded" in log.read_text(), name
