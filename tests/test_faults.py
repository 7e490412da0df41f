"""Faults with real processes: a Celery worker killed with SIGKILL (parent and pool child at once)
during a crawl, during embedding and during training. After a restart, beat's resume
(`twinsite.resume_stalled_jobs`, called here as beat would) sends the job again; the work
completes with no duplicate and no missing row, and a late redelivery of the original message
(Redis hands it back after the visibility timeout) changes nothing.

The heartbeat and stale window are shortened for the test (1 s and 4 s; production: 30 s and 5 min).
"""

import os
import subprocess
import sys
import time

import pytest
import redis
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from features.models import Chunk, CleanDocument, DatasetVersion, FeatureRun
from ingestion.actions import do_add_source, do_add_upload_source
from ingestion.models import CrawlRun, Document
from tests import processes
from tests.conftest import add_markdown_source
from tests.ingestion.sites import Site, post_html
from training.actions import do_start_training_run
from training.models import ModelVersion, TrainingRun
from twinsite.celery import app as celery_app
from twinsite.celery import resume_stalled_jobs

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
TIMEOUT = 300
TOPICS = ["rye bread", "beekeeping", "dinghy sailing", "sourdough", "cycling", "chess", "pottery", "running"]
TOPICS += ["birdwatching", "knitting"]


class Worker:
    """A real `celery worker` for one queue, in a process group of its own so that a kill takes the pool too."""

    def __init__(self, queue, log, env):
        self.queue, self.log, self.env, self.process = queue, log, env, None

    def start(self):
        command = [sys.executable, "-m", "celery", "-A", "twinsite", "worker", "--queues", self.queue]
        command += ["--hostname", f"{self.queue}-{time.monotonic_ns()}@%h", "--concurrency", "1"]
        command += ["--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"]
        marker = self.log.read_text().count("ready.") if self.log.exists() else 0
        with open(self.log, "a") as output:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for(lambda: self.log.read_text().count("ready.") > marker, self, f"the {self.queue} worker to start")

    def kill(self):
        processes.kill(self.process)

    def stop(self):
        if self.process:
            processes.stop(self.process)


def wait_for(condition, worker, what, timeout=TIMEOUT):
    return processes.wait_for(condition, {f"{worker.queue} worker": worker.log}, what, timeout)


@pytest.fixture
def blog_site():
    """Served before the workers start: they are told its port (an allowed host needs an allowed port)."""
    site = Site()
    yield site
    site.close()


@pytest.fixture
def worker_env(settings, blog_site):
    port = blog_site.server.server_port
    settings.TWIN_JOB_HEARTBEAT_SECONDS = 1
    settings.TWIN_JOB_STALE_SECONDS = 4
    settings.TWIN_CRAWL_ALLOWED_HOSTS, settings.TWIN_CRAWL_ALLOWED_PORTS = ["127.0.0.1"], [port]
    processes.forget_queued_tasks("default", "gpu")
    celery_app.conf.task_always_eager = False
    yield processes.process_env(
        TWIN_JOB_HEARTBEAT_SECONDS="1",
        TWIN_JOB_STALE_SECONDS="4",
        TWIN_CRAWL_ALLOWED_HOSTS="127.0.0.1",
        TWIN_CRAWL_ALLOWED_PORTS=str(port),
    )
    celery_app.conf.task_always_eager = True


@pytest.fixture
def default_worker(worker_env, tmp_path):
    worker = Worker("default", tmp_path / "default.log", worker_env)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def gpu_worker(worker_env, tmp_path):
    worker = Worker("gpu", tmp_path / "gpu.log", worker_env)
    worker.start()
    yield worker
    worker.stop()


def kill_and_resume(worker, job):
    """SIGKILL mid-job, restart, and resume it as beat would once its heartbeat has gone silent."""
    worker.kill()
    job.refresh_from_db()
    assert job.status == "running", f"the job was not running when the worker died: {job.status}"
    worker.start()
    resumed = lambda: resume_stalled_jobs()[type(job).__name__]["resumed"]  # noqa: E731
    wait_for(resumed, worker, "beat to resume the job", timeout=60)
    wait_for(lambda: type(job).objects.get(pk=job.pk).status not in ("queued", "running"), worker, "the job")
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert job.attempts == 2  # the killed claim, then the resumed one: never two at once


def assert_features_whole(owner):
    """Every present document has one cleaned text and its chunks 0..n-1, once each; one dataset per content."""
    for document in Document.objects.for_user(owner):
        clean = CleanDocument.objects.get(document=document)
        indexes = list(Chunk.objects.filter(clean_document=clean).order_by("index").values_list("index", flat=True))
        assert indexes == list(range(len(indexes))) and indexes, document.title
    hashes = list(DatasetVersion.objects.for_user(owner).values_list("sha256", flat=True))
    assert len(hashes) == len(set(hashes))


def features_settled(owner) -> bool:
    return not FeatureRun.objects.for_user(owner).active().exists()


def test_a_crawl_killed_mid_way_completes_after_a_restart_with_every_page_once(default_worker, owner, blog_site):
    site = blog_site
    site.delay = 0.5  # a slow blog: the kill lands mid-crawl
    posts = [f"/posts/{n}" for n in range(len(TOPICS))]
    for path, topic in zip(posts, TOPICS, strict=True):
        site.add(path, post_html(topic.title(), topic))
    site.add("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
    site.add("/", "<html><body>" + "".join(f"<a href='{p}'>{p}</a> " for p in posts) + "</body></html>")
    source = do_add_source(owner, "blog", {"url": site.base + "/", "category": "post"})
    run = source.last_run
    wait_for(lambda: Document.objects.filter(source=source).count() >= 3, default_worker, "a few pages")

    kill_and_resume(default_worker, run)

    urls = sorted(Document.objects.filter(source=source).values_list("url", flat=True))
    assert urls == sorted(site.base + p for p in posts)  # every page, once (and the home page is no post)
    wait_for(lambda: features_settled(owner), default_worker, "the feature runs")
    assert_features_whole(owner)

    before = list(CrawlRun.objects.filter(pk=run.pk).values())
    documents = Document.objects.count()
    celery_app.send_task("ingestion.tasks.crawl_source", args=[run.pk])  # the original message, hours later
    time.sleep(3)
    assert list(CrawlRun.objects.filter(pk=run.pk).values()) == before and Document.objects.count() == documents


def big_notes(paragraphs=400) -> str:
    lines = ["# A long notebook"]
    for n in range(paragraphs):
        lines.append(
            f"## Entry {n}\n\nOn morning {n} I checked hive {n % 17} and counted {n * 3 % 101} frames of brood; "
            f"the queen of colony {n % 23} was laying well, and the smoker needed {n % 5 + 1} handfuls of pine."
        )
    return "\n\n".join(lines)


def test_embedding_killed_mid_way_completes_after_a_restart_with_every_chunk_once(default_worker, owner):
    upload = SimpleUploadedFile("notebook.md", big_notes().encode(), content_type="text/markdown")
    do_add_upload_source(owner, upload, category="article")
    embedding = lambda: FeatureRun.objects.for_user(owner).filter(status="running").first()  # noqa: E731
    run = wait_for(embedding, default_worker, "the feature run to start embedding")
    time.sleep(1)

    kill_and_resume(default_worker, run)

    assert_features_whole(owner)
    assert Chunk.objects.for_user(owner).count() > 50 and DatasetVersion.objects.for_user(owner).count() == 1


def test_training_killed_mid_way_resumes_from_its_checkpoint(default_worker, gpu_worker, owner):
    add_markdown_source(owner)
    dataset = wait_for(lambda: DatasetVersion.objects.for_user(owner).first(), default_worker, "the dataset")
    run = do_start_training_run(owner, dataset, max_steps=12, epochs=50.0, save_every=3, eval_every=6)
    wait_for(lambda: TrainingRun.objects.get(pk=run.pk).current_step >= 5, gpu_worker, "a checkpoint")

    kill_and_resume(gpu_worker, run)

    assert [step for step, _ in run.loss_history] == list(range(1, 13))  # each step once, none missing
    assert "resuming from" in gpu_worker.log.read_text()
    assert ModelVersion.objects.filter(training_run=run).count() == 1
    assert settings.TWIN_DATA_DIR.joinpath(ModelVersion.objects.get(training_run=run).adapter_path).is_dir()


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_tasks_queued_when_the_broker_restarts_are_kept_and_run(owner, tmp_path):
    """`make run`'s Redis (scripts/persistent-redis.sh, append-only file), on a port of the test's own:
    tasks queued before a restart are there after it, and a worker runs them with no manual step."""
    port = free_port()
    env = {**os.environ, "TWIN_REDIS_PORT": str(port), "TWIN_REDIS_DIR": str(tmp_path / "redis")}
    start_redis = lambda: subprocess.run(["bash", "scripts/persistent-redis.sh"], env=env, check=True)  # noqa: E731
    url = f"redis://127.0.0.1:{port}/0"
    start_redis()
    worker = None
    try:
        sources = [add_markdown_source(owner, f"note-{n}.md", big_notes(3 + n)) for n in range(3)]  # crawled here
        runs = [CrawlRun.objects.create(owner=owner, source=source) for source in sources]  # queued again
        with celery_app.connection_for_write(url) as connection_:
            for run in runs:
                celery_app.send_task("ingestion.tasks.crawl_source", args=[run.pk], connection=connection_)
        queue = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "") + "default"  # the run's namespace
        broker = redis.Redis.from_url(url)
        assert broker.llen(queue) == 3

        broker.shutdown()  # what a restart of the service or the machine does: the file is synced
        with pytest.raises(redis.ConnectionError):
            redis.Redis.from_url(url).ping()
        start_redis()

        assert redis.Redis.from_url(url).llen(queue) == 3
        redis_env = {name: env[name] for name in ("TWIN_REDIS_PORT", "TWIN_REDIS_DIR")}
        worker_env = processes.process_env(**redis_env, TWIN_TEST_REDIS_URL=url)
        worker = Worker("default", tmp_path / "default.log", worker_env)
        worker.start()
        done = lambda: all(CrawlRun.objects.get(pk=r.pk).status == "succeeded" for r in runs)  # noqa: E731
        wait_for(done, worker, "the queued crawls")
        assert Document.objects.for_user(owner).count() == 3  # nothing twice
    finally:
        if worker:
            worker.stop()
        try:
            redis.Redis.from_url(url).shutdown(nosave=True)
        except redis.ConnectionError:
            pass
