"""An interrupted test run must not break the next one.

A run stopped by a timeout (SIGKILL: no fixture tears down) leaves its Celery workers running,
each in its own session. They once consumed the next run's queues on the shared test broker and
took its tasks (the serving-fault, killed-training and end-to-end tests failed). Each run now has
its own broker namespace (tests/settings.py), and a run reaps what the previous one on its test
database left (tests/processes.py).
"""

import subprocess

import pytest

from tests import processes
from twinsite.celery import app as celery_app
from twinsite.celery import resume_stalled_jobs

PREVIOUS_RUN = {"TWIN_TEST_CACHE_PREFIX": "twinsite-test-a-previous-run"}


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_left_by_a_previous_run_does_not_take_this_runs_tasks(tmp_path):
    logs = {"previous run": tmp_path / "previous.log", "this run": tmp_path / "this.log"}
    leftover = processes.start_worker("default", logs["previous run"], processes.process_env(**PREVIOUS_RUN))
    workers = [leftover]
    try:
        processes.wait_for(lambda: "ready." in logs["previous run"].read_text(), logs, "the leftover worker")
        celery_app.conf.task_always_eager = False
        # The leftover listens on queue "default" already: on a shared queue it takes the task at
        # once, and this run's worker, started only now, never sees it.
        sent = resume_stalled_jobs.delay()
        workers.append(processes.start_worker("default", logs["this run"], processes.process_env()))
        done = f"Task twinsite.resume_stalled_jobs[{sent.id}] succeeded"
        processes.wait_for(lambda: done in logs["this run"].read_text(), logs, "this run's worker to run the task")
        assert "received" not in logs["previous run"].read_text()
    finally:
        celery_app.conf.task_always_eager = True
        for worker in workers:
            processes.kill(worker)
        processes.forget_broker(PREVIOUS_RUN["TWIN_TEST_CACHE_PREFIX"])


@pytest.mark.django_db(transaction=True)
def test_a_new_run_reaps_what_a_killed_run_left_on_its_database_and_nothing_else(tmp_path):
    def spawn(**extra):  # stands in for a worker: spawned the same way, a process that waits
        return processes.spawn(["/bin/sleep", "600"], tmp_path / f"{len(spawned)}.log", processes.process_env(**extra))

    spawned = []
    spawned.append(spawn(**PREVIOUS_RUN))  # left by a run on this test database
    spawned.append(spawn())  # this run's own
    spawned.append(spawn(DATABASE_URL="postgres://postgres@127.0.0.1:5432/someone_elses_test_db", **PREVIOUS_RUN))
    bystander = subprocess.Popen(["/bin/sleep", "600"], start_new_session=True)  # not a test process
    with open(processes._pidfile(), "a") as pidfile:
        pidfile.write(f"{bystander.pid}\n")  # as a reused pid would be
    try:
        killed = processes.reap_stale_processes()

        assert killed == [spawned[0].pid]
        assert spawned[0].wait(timeout=10) == -9
        assert [p.poll() for p in (*spawned[1:], bystander)] == [None, None, None]
    finally:
        for process in (*spawned, bystander):
            processes.kill(process)
